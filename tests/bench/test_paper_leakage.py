"""The second pass's leakage measures (docs/ccpgd.md §10) on tiny federations: the success
criterion, the proxies, the site weighting, the replayed round, and attacks that succeed on
an undefended update and fail on a heavily noised one."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from medsilo.audit.image_metrics import psnr, ssim
from medsilo.audit.inversion_audit import run_inverter
from medsilo.bench.leakage_inversion import RoundInverter, reconstructed, round_batches
from medsilo.bench.leakage_proxies import (
    log2_binomial,
    site_weighted_mean,
    site_weights,
    spread,
    support_bits_per_param,
)
from medsilo.bench.paper_leakage import (
    QUICK_LEAKAGE,
    LeakageSettings,
    TransmittedUpdates,
    measure_leakage,
    run_with_leakage,
)
from medsilo.confidential.leakage import leakage_risk
from medsilo.config import RunConfig
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.training.tensors import TensorData
from medsilo.types import Update, Weights
from tests.audit.conftest import audit_config, image_federation, random_label_federation

EXPOSED = {"kind": "sgx", "tcb_version": "t", "known_vulnerabilities": ["CVE-2020-0551"]}
SAFE = {"kind": "sev-snp", "tcb_version": "t"}
TINY = LeakageSettings(
    inversion_images=1,
    inversion_iterations=100,
    membership_shadows=2,
    membership_rows=20,
    attacked_rounds="first",
    membership_shadow_epochs=1.0,
)


def _blob(seed: int, size: int = 16) -> np.ndarray:
    raw = gaussian_filter(np.random.default_rng(seed).random((1, size, size)), sigma=(0, 1.5, 1.5))
    return ((raw - raw.min()) / (raw.max() - raw.min())).astype(np.float64)


def _criterion(recon: np.ndarray, truth: np.ndarray, guess: np.ndarray) -> bool | None:
    return reconstructed(psnr(recon, truth, 1.0), ssim(recon, truth, 1.0), psnr(guess, truth, 1.0))


# --- the success criterion ---------------------------------------------------------------


def test_an_image_counts_as_reconstructed_only_with_ssim_and_psnr_above_the_guess() -> None:
    truth = _blob(0)
    guess = np.full_like(truth, truth.mean())
    near = truth + np.random.default_rng(1).normal(0, 0.02, truth.shape)
    assert _criterion(truth, truth, guess) is True  # exact: PSNR inf, SSIM 1
    assert _criterion(near, truth, guess) is True
    assert _criterion(guess, truth, guess) is False  # the guess itself does not beat itself
    assert _criterion(_blob(7), truth, guess) is False  # another image: low SSIM
    # the right structure at the wrong brightness: SSIM high enough, PSNR below the guess
    shifted = truth + 0.4
    assert ssim(shifted, truth, 1.0) >= 0.5
    assert psnr(shifted, truth, 1.0) < psnr(guess, truth, 1.0)
    assert _criterion(shifted, truth, guess) is False
    assert reconstructed(30.0, None, 10.0) is None  # tabular: no SSIM, criterion undefined


# --- proxies and weighting ---------------------------------------------------------------


def test_a_dense_update_has_no_support_leakage_and_a_sparse_one_the_binomial_bits() -> None:
    rng = np.random.default_rng(0)
    dense = [rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=7).astype(np.float32)]
    assert support_bits_per_param(dense) == 0.0
    sparse = [dense[0].copy(), np.zeros(7, np.float32)]
    sparse[0][0, :3] = 0.0  # 17 of 20 nonzero; the all-zero tensor reveals no pattern either
    assert support_bits_per_param(sparse) == pytest.approx(math.log2(math.comb(20, 17)) / 27)
    assert log2_binomial(50, 10) == pytest.approx(math.log2(math.comb(50, 10)))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        log2_binomial(3, 4)


def test_spread_is_one_minus_concentration_and_zero_for_a_zero_update() -> None:
    rng = np.random.default_rng(1)
    u = [rng.normal(size=30).astype(np.float32), np.zeros(5, np.float32)]
    assert spread(u) + leakage_risk(u) == pytest.approx(1.0)
    assert spread([np.zeros(4, np.float32)]) == 0.0
    assert spread([np.ones(4, np.float32)]) == pytest.approx(1.0)


def test_sites_are_weighted_one_plus_kappa_times_their_indicator() -> None:
    w = site_weights({"a": 0, "b": 1, "c": 0}, kappa=3.0)
    assert w == {"a": 1.0, "b": 4.0, "c": 1.0}
    assert site_weighted_mean({"a": 0.0, "b": 1.0, "c": 0.5}, w) == pytest.approx(4.5 / 6)
    # a site with nothing measured (NaN) is left out, not counted as 0
    assert site_weighted_mean({"a": math.nan, "b": 1.0, "c": 0.5}, w) == pytest.approx(4.5 / 5)
    assert math.isnan(site_weighted_mean({"a": math.nan}, w))
    with pytest.raises(ValueError, match="kappa"):
        site_weights({"a": 1}, kappa=-1.0)


def test_attacked_rounds_are_first_middle_last_or_numbers() -> None:
    assert LeakageSettings().rounds(20) == [1, 10, 20]
    assert LeakageSettings().rounds(1) == [1]
    assert LeakageSettings(attacked_rounds="last, 3").rounds(5) == [3, 5]
    with pytest.raises(ValueError, match="'second' is neither"):
        LeakageSettings(attacked_rounds="first,second")
    with pytest.raises(ValueError, match="membership_shadows"):
        LeakageSettings(membership_shadows=1)


# --- the engine's observer and the replayed round -----------------------------------------


class _Keep:
    def __init__(self) -> None:
        self.seen: list[tuple[int, Weights, list[Update]]] = []

    def received(self, rnd: int, weights: Weights, updates: list[Update]) -> None:
        self.seen.append((rnd, weights, updates))


def test_the_observer_sees_every_round_s_decoded_updates_and_the_weights_they_started_from() -> (
    None
):
    cfg = audit_config(
        training={"rounds": 2, "local_steps": 2, "batch_size": 2, "lr": 0.1},
        compression={"codec": "fp16"},
    )
    prep = PreparedFederation.build(cfg, image_federation())
    keep = _Keep()
    result = run_federation(cfg, prepared=prep, observer=keep)
    assert [r for r, _, _ in keep.seen] == [1, 2]
    first_weights = keep.seen[0][1]
    assert all(
        np.array_equal(a, b) for a, b in zip(first_weights, prep.initial_weights, strict=True)
    )
    for _, _, updates in keep.seen:
        assert sorted(u.site for u in updates) == ["s0", "s1"]
        assert all(
            u.encoded_delta is not None and len(u.delta) == len(result.weights) for u in updates
        )  # what the codec sent, decoded by the coordinator
    with pytest.raises(ValueError, match="synchronous engine"):
        run_federation(
            cfg.with_overrides(asynchrony={"mode": "fedasync"}), prepared=prep, observer=keep
        )


@pytest.mark.parametrize(
    ("steps", "batch"),
    [(7, 3), (4, 5)],  # 12 rows a site: 4 x 5 runs past an epoch, whose last batch has 2 rows
)
def test_the_replayed_batches_are_the_rows_the_site_trained_on(
    monkeypatch: pytest.MonkeyPatch, steps: int, batch: int
) -> None:
    cfg = audit_config(training={"rounds": 2, "local_steps": steps, "batch_size": batch, "lr": 0.1})
    prep = PreparedFederation.build(cfg, image_federation())
    fetched: dict[int, list[torch.Tensor]] = {}
    original = TensorData.fetch

    def spy(self: TensorData, indices: torch.Tensor) -> Any:
        fetched.setdefault(id(self), []).append(indices.clone())
        return original(self, indices)

    monkeypatch.setattr(TensorData, "fetch", spy)
    run_federation(cfg, prepared=prep)
    for site in ("s0", "s1"):
        drawn = fetched[id(prep.train[site])]  # 2 rounds x `steps` batches
        assert len(drawn) == 2 * steps
        for rnd in (1, 2):
            expected = round_batches(cfg, prep, site, rnd)
            real = drawn[(rnd - 1) * steps : rnd * steps]
            assert len(expected) == steps
            assert all(torch.equal(a, b) for a, b in zip(real, expected, strict=True))


@pytest.mark.parametrize(
    ("steps", "batch", "sizes"),
    [(3, 2, [2, 2, 2]), (4, 5, [5, 5, 2, 5])],  # the second wraps a 12-row site's epoch
)
def test_the_attacker_s_simulated_round_is_the_site_s_real_multi_step_update(
    steps: int, batch: int, sizes: list[int]
) -> None:
    """The attack's model of a FedAvg round (k steps, each on its own replayed batch, a short
    one where the site's epoch ends) gives the update the coordinator received: the attacker
    is misspecified only by defences."""
    cfg = audit_config(
        training={
            "rounds": 1,
            "local_steps": steps,
            "batch_size": batch,
            "lr": 0.1,
            "weight_decay": 0.01,
        }
    )
    prep = PreparedFederation.build(cfg, image_federation())
    seen = TransmittedUpdates([1])
    run_federation(cfg, prepared=prep, observer=seen)
    weights, updates = seen.kept[1]
    inverter = run_inverter(cfg, prep, weights, RoundInverter)
    train = prep.train["s1"]
    assert isinstance(train, TensorData)
    batches = round_batches(cfg, prep, "s1", 1)
    assert [len(b) for b in batches] == sizes
    inverter.batch_sizes = sizes
    rows = torch.cat(batches)
    simulated = inverter.simulate(train.x[rows], train.y[rows], steps).detach()
    observed = inverter.observed_vector(updates["s1"], prep.layout)
    assert torch.allclose(simulated, observed, atol=1e-5)
    with pytest.raises(ValueError, match=f"{sum(sizes)} dummy inputs do not split"):
        inverter.simulate(train.x[rows], train.y[rows], steps + 1)


def test_a_round_that_wraps_the_site_s_epoch_is_attacked_end_to_end() -> None:
    """A site with fewer rows than one round's batches (heart disease at 10 x 32): the last
    batch of its epoch is shorter, and the attack still replays and scores the round."""
    cfg = _one_step_config(training={"rounds": 1, "local_steps": 4, "batch_size": 5, "lr": 0.1})
    _, m = run_with_leakage(cfg, TINY, PreparedFederation.build(cfg, image_federation()))
    assert m.attacked == 2 and m.images_scored == 2
    assert 0.0 <= m.inversion_success <= 1.0


# --- the attacks, end to end -------------------------------------------------------------


def _one_step_config(**overrides: Any) -> RunConfig:
    raw: dict[str, Any] = {
        "training": {"rounds": 1, "local_steps": 1, "batch_size": 1, "lr": 0.1},
        "sites": {"default": {"platform": SAFE}, "overrides": {"s1": {"platform": EXPOSED}}},
    }
    raw.update(overrides)
    return audit_config(**raw)


def test_fedavg_one_image_round_is_reconstructed_and_a_noised_dp_update_is_not() -> None:
    fed = image_federation()
    cfg = _one_step_config()
    _, clear = run_with_leakage(cfg, TINY, PreparedFederation.build(cfg, fed))
    assert clear.inversion_success > 0
    assert clear.inversion_success_by_site["s0"] == 1.0
    assert clear.exposed_sites == ("s1",)
    assert clear.site_weights == {"s0": 1.0, "s1": 2.0}
    expected = clear.inversion_success_by_site["s0"] + 2 * clear.inversion_success_by_site["s1"]
    assert clear.inversion_success == pytest.approx(expected / 3)
    noisy_cfg = _one_step_config(
        algorithm={"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 20.0, "noise": "local"}
    )
    _, noisy = run_with_leakage(noisy_cfg, TINY, PreparedFederation.build(noisy_cfg, fed))
    assert noisy.inversion_success == 0.0
    assert noisy.inversion_beats_guess < clear.inversion_beats_guess


@pytest.mark.slow
def test_measure_leakage_runs_end_to_end_on_a_tiny_multi_step_run() -> None:
    cfg = audit_config(
        data={
            "dataset": "mnist",
            "partition": "iid",
            "num_sites": 3,
            "max_train_samples": 150,
            "max_test_samples": 100,
        },
        training={"rounds": 3, "local_steps": 2, "batch_size": 4, "lr": 0.1},
        algorithm={"name": "ccpgd", "lam": 0.05, "mu": 0.01},
        sites={"default": {"platform": SAFE}, "overrides": {"site-01": {"platform": EXPOSED}}},
    )
    settings = replace(
        TINY,
        inversion_images=2,
        inversion_iterations=20,
        membership_rows=30,
        attacked_rounds="first,last",
    )
    m = measure_leakage(cfg, seed=3, settings=settings)
    assert m.attacked == 3 * 2 and m.images_scored == 3 * 2 * 2
    assert set(m.inversion_success_by_site) == {"site-00", "site-01", "site-02"}
    assert 0.0 <= m.inversion_success <= 1.0
    assert -0.5 <= m.membership_advantage <= 0.5 and 0 <= m.membership_tpr_at_low_fpr <= 1
    assert m.exposed_sites == ("site-01",)
    assert m.support_bits_per_param > 0  # CC-PGD's soft-threshold leaves exact zeros
    assert m.r_concentration + m.r_spread == pytest.approx(1.0)
    assert m.as_dict()["exposed_sites"] == ["site-01"]


def test_tabular_inversion_is_undefined_and_a_baseline_has_only_membership() -> None:
    cfg = audit_config(
        model="logistic", training={"rounds": 1, "local_steps": 1, "batch_size": 2, "lr": 0.1}
    )
    fed = random_label_federation(n=40)
    _, tab = run_with_leakage(cfg, TINY, PreparedFederation.build(cfg, fed))
    assert math.isnan(tab.inversion_success) and tab.as_dict()["inversion_success"] is None
    assert not math.isnan(tab.inversion_beats_guess)
    assert any("SSIM" in n for n in tab.notes)
    pooled = cfg.with_overrides(algorithm={"name": "pooled"})
    _, base = run_with_leakage(pooled, TINY, PreparedFederation.build(pooled, fed))
    assert math.isnan(base.inversion_success) and math.isnan(base.r_concentration)
    assert not math.isnan(base.membership_advantage)
    assert base.attacked == 0


def test_quick_preset_is_cheaper_than_the_pre_registered_budget() -> None:
    full = LeakageSettings()
    assert (full.inversion_iterations, full.membership_shadows, full.rounds(20)) == (
        300,
        8,
        [1, 10, 20],
    )
    assert QUICK_LEAKAGE.inversion_iterations < full.inversion_iterations
    assert QUICK_LEAKAGE.membership_shadows < full.membership_shadows
    assert QUICK_LEAKAGE.rounds(20) == [1]


def test_runs_the_attack_cannot_replay_are_refused() -> None:
    cfg = _one_step_config(
        training={"rounds": 1, "local_steps": 1, "batch_size": 1, "lr": 0.1, "momentum": 0.9}
    )
    with pytest.raises(ValueError, match="plain local SGD"):
        run_with_leakage(cfg, TINY, PreparedFederation.build(cfg, image_federation()))


def test_observer_keeps_copies_only_at_attacked_rounds() -> None:
    seen = TransmittedUpdates([2])
    u = Update("a", [np.ones(3, np.float32)], 1, 1)
    seen.received(1, [np.zeros(3, np.float32)], [u])
    seen.received(2, [np.zeros(3, np.float32)], [u])
    assert list(seen.kept) == [2] and len(seen.support["a"]) == 2
    u.delta[0][0] = 5.0  # later changes by the engine do not reach the kept copy
    assert seen.kept[2][1]["a"][0][0] == 1.0
