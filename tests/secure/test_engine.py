"""Secure aggregation inside the in-process engine: same model, masked-only coordinator,
dropouts, aborts that apply nothing, and the combinations config load refuses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medsilo.bundled import resolve_config
from medsilo.config import ConfigError, RunConfig
from medsilo.runtime import rounds
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.secure import aggregation, ckks_round
from medsilo.secure.messages import MaskedInput, parse
from tests.conftest import small_config, synthetic_federation

SECURE = {"enabled": True}


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def test_heart_fedavg_with_secure_aggregation_matches_the_plain_run() -> None:
    base = resolve_config("heart_fedavg").model_dump()
    base["training"].update(rounds=3, local_steps=10)
    base["evaluation"]["loho"] = False
    plain = run_federation(RunConfig.model_validate(base))
    secure = run_federation(RunConfig.model_validate({**base, "secure_aggregation": SECURE}))
    assert 0 < _max_diff(plain.weights, secure.weights) < 1e-5
    for p, s in zip(plain.rounds, secure.rounds, strict=True):
        assert s["train_loss"] == pytest.approx(p["train_loss"], abs=1e-6)
        info = s["secure_aggregation"]
        assert info["survivors"] == p["sites"] and info["dropouts_recovered"] == []
        # Four protocol messages per site: keys, sealed shares, masked input, unmask shares.
        assert s["bytes_up"] == sum(s["bytes_up_site"].values()) > p["bytes_up"]
        assert s["test"]["accuracy"] == pytest.approx(p["test"]["accuracy"], abs=0.02)


def test_the_coordinator_only_ever_receives_masked_vectors(monkeypatch: Any) -> None:
    plain_inputs: dict[str, np.ndarray] = {}
    real_encode = aggregation.encode_site_input

    def spy_encode(update: Any, weight: int, encoder: Any) -> Any:
        out = real_encode(update, weight, encoder)
        plain_inputs[update.site] = out[0]
        return out

    received: list[Any] = []
    real_process = rounds.CoordinatorSteps.process

    def spy_process(self: Any, *args: Any, **kwargs: Any) -> Any:
        received.append(args[3])  # the updates handed to the coordinator
        return real_process(self, *args, **kwargs)

    monkeypatch.setattr(aggregation, "encode_site_input", spy_encode)
    monkeypatch.setattr(rounds.CoordinatorSteps, "process", spy_process)
    training = {"rounds": 1, "local_steps": 10, "batch_size": 8, "lr": 0.1}
    cfg = small_config(training=training, secure_aggregation=SECURE)
    run_federation(cfg, synthetic_federation(num_sites=4))
    (updates,) = received
    assert len(updates) == 4
    for u in updates:
        assert u.delta == [] and u.num_examples == 0 and u.encoded_delta is not None
        msg = parse(u.encoded_delta)
        assert isinstance(msg, MaskedInput)
        y = np.frombuffer(msg.values, dtype=np.uint32)
        assert np.mean(y == plain_inputs[u.site]) < 0.2  # ~2**-32 per coordinate
        assert not any(np.array_equal(y, x) for x in plain_inputs.values())


def test_simulated_dropouts_are_recovered_and_recorded() -> None:
    cfg = small_config(secure_aggregation={**SECURE, "simulated_dropout": 0.25})
    result = run_federation(cfg, synthetic_federation(num_sites=4))
    for r in result.rounds:
        info = r["secure_aggregation"]
        assert len(info["dropouts_recovered"]) == 1 and len(info["survivors"]) == 3
        assert not r["skipped"]
    assert result.rounds[-1]["test"]["accuracy"] > 0.6


def test_too_many_dropouts_abort_the_round_and_apply_nothing() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(secure_aggregation={**SECURE, "threshold": 1.0, "simulated_dropout": 0.25})
    initial = PreparedFederation.build(cfg, fed).initial_weights
    result = run_federation(cfg, fed)
    assert all(r["skipped"] for r in result.rounds)
    assert "aborted at masked input: 3 of 4 sites remain" in result.rounds[0]["skip_reason"]
    assert result.rounds[0]["secure_aggregation"]["abort"] == result.rounds[0]["skip_reason"]
    assert _max_diff(initial, result.weights) == 0.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"algorithm": {"name": "scaffold"}}, "algorithm 'scaffold' needs more"),
        ({"robust": {"rule": "median"}}, "needs individual updates"),
        ({"compression": {"codec": "fp16"}}, "not additive"),
        ({"validation": {"max_norm": 5.0}}, "cannot see under secure_aggregation"),
        ({"validation": {"max_norm_factor": 10.0}}, "cannot see under secure_aggregation"),
        ({"asynchrony": {"mode": "fedasync"}}, "cannot use secure aggregation"),
        ({"algorithm": {"name": "pooled"}}, "baseline 'pooled' exchanges no updates"),
    ],
)
def test_incompatible_combinations_are_refused_at_load(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(secure_aggregation=SECURE, **override)


@pytest.mark.parametrize(
    ("secure", "message"),
    [
        ({"threshold": 0.5}, r"fraction must be in \(0.5, 1\]"),
        ({"threshold": 1}, "as a count must be >= 2"),
        ({"bits": 8}, "greater than or equal to 16"),
        ({"mechanism": "paillier"}, "mechanism"),
        ({"thresold": 0.7}, "thresold"),
    ],
)
def test_bad_secure_aggregation_settings_name_the_field(secure: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(secure_aggregation={**SECURE, **secure})


def test_unsafe_thresholds_for_the_cohort_fail_before_training() -> None:
    cfg = small_config(secure_aggregation={**SECURE, "threshold": 2})
    with pytest.raises(ValueError, match="t=2 of 4 sites; it must exceed half"):
        run_federation(cfg, synthetic_federation(num_sites=4))


@pytest.mark.parametrize("noise", ["central", "local"])
def test_dp_fedavg_noise_uses_the_survivor_count(noise: str) -> None:
    # central: the coordinator adds sigma * C / m after unmasking (m = survivors);
    # local: each site's noise share is masked along with its clipped update.
    dp = {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 0.5, "noise": noise}
    fed = synthetic_federation(num_sites=4)
    plain = run_federation(small_config(algorithm=dp), fed)
    secure = run_federation(small_config(algorithm=dp, secure_aggregation=SECURE), fed)
    assert _max_diff(plain.weights, secure.weights) < 1e-5


def test_ckks_mechanism_matches_the_plain_run_and_tolerates_dropouts(monkeypatch: Any) -> None:
    fed = synthetic_federation(num_sites=4)
    plain = run_federation(small_config(), fed)
    ckks = {**SECURE, "mechanism": "ckks"}
    sums: list[Any] = []
    real = ckks_round.sum_ciphertexts

    def spy(ctx: Any, sites: Any) -> Any:
        sums.append(ctx.is_private())
        return real(ctx, sites)

    monkeypatch.setattr(ckks_round, "sum_ciphertexts", spy)
    secure = run_federation(small_config(secure_aggregation=ckks), fed)
    assert sums == [False] * 3  # the coordinator summed without the secret key
    assert _max_diff(plain.weights, secure.weights) < 1e-5
    r = secure.rounds[-1]
    assert r["secure_aggregation"]["mechanism"] == "ckks"
    assert r["bytes_up"] > 100 * plain.rounds[-1]["bytes_up"]  # ciphertexts are large
    dropped = run_federation(
        small_config(secure_aggregation={**ckks, "simulated_dropout": 0.25}), fed
    )
    info = dropped.rounds[0]["secure_aggregation"]
    assert len(info["survivors"]) == 3 and len(info["dropouts_recovered"]) == 1
    assert not dropped.rounds[0]["skipped"]
