"""Secure aggregation in the Flower apps, driven in-process through the fake Grid.

The masked sums are exact integers mod ``2**k``, so whatever keys the sites draw, the
Flower run must reproduce the engine's secure run (same weights, same round records);
dropouts, real (a node that stays silent) or simulated, are recovered up to the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Message, RecordDict

from medsilo.runtime.flower import FlowerRun, make_client_app, make_server_app
from medsilo.runtime.flower import secure_records as wire
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.secure.messages import MaskedInput, Survivors, parse

from ...conftest import small_config, synthetic_federation
from .test_apps_inprocess import (  # the autouse fixtures apply here too
    FakeGrid,
    assert_same_run,
    one_thread,  # noqa: F401
    run_in_process,
    task_identity,  # noqa: F401
)

SECURE = {"enabled": True}
SPARSE = {"graph": "harary", "neighbours": 2}
TRAIN = {"rounds": 3, "local_steps": 6, "batch_size": 8, "lr": 0.1}


@pytest.mark.parametrize(
    ("overrides", "survivors", "recovered"),
    [
        ({}, 4, 0),
        ({"training": TRAIN | {"fraction": 0.75}}, 3, 0),
        ({"algorithm": {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 0.3}}, 4, 0),
        ({"secure_aggregation": SECURE | {"simulated_dropout": 0.25}}, 3, 1),
        (  # SecAgg+: each of the 4 sites masks with 2 neighbours (a 4-cycle), t = 2
            {"secure_aggregation": SECURE | {"simulated_dropout": 0.25} | SPARSE},
            3,
            1,
        ),
        (  # h2's slow uplink makes it miss the simulated deadline: late, then recovered
            {
                "sites": {"overrides": {"h2": {"network": {"uplink_mbps": 0.01}}}},
                "asynchrony": {"mode": "sync", "round_timeout_s": 0.05},
            },
            3,
            1,
        ),
    ],
    ids=["fedavg", "partial-cohort", "dp-fedavg", "simulated-dropout", "secagg-plus", "late-site"],
)
def test_flower_secure_aggregation_reproduces_the_engine(
    overrides: dict, survivors: int, recovered: int
) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(**({"training": TRAIN, "secure_aggregation": SECURE} | overrides))
    flower, grid = run_in_process(cfg, fed)
    engine = run_federation(cfg, fed)
    # The unmasked sums are the same integers whatever keys were drawn: records equal, and
    # weights equal (well within the fixed-point resolution the test allows).
    assert_same_run(flower, engine, tol=1e-5)
    for r in flower.rounds:
        info = r["secure_aggregation"]
        assert (len(info["survivors"]), len(info["dropouts_recovered"])) == (survivors, recovered)
        assert set(info["survivors"]) | set(info["dropouts_recovered"]) <= set(r["sites"])
        assert not r["skipped"]
        assert info.get("neighbours") == cfg.secure_aggregation.neighbours
    kinds = [s.split("->")[0] for s in grid.sent]
    assert "train" not in kinds  # no plain update exchange happened
    for phase in wire.MESSAGE_TYPES.values():
        assert phase in kinds


def test_the_coordinator_receives_only_protocol_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN | {"rounds": 1}, secure_aggregation=SECURE)
    replies: list[tuple[str, RecordDict]] = []
    real = FakeGrid.send_and_receive

    def spy(self: FakeGrid, messages, *, timeout=None):  # type: ignore[no-untyped-def]
        out = real(self, messages, timeout=timeout)
        replies.extend((m.metadata.message_type, m.content) for m in out)
        return out

    monkeypatch.setattr(FakeGrid, "send_and_receive", spy)
    flower, _ = run_in_process(cfg, fed)
    secure = [(kind, c) for kind, c in replies if kind.startswith("train.")]
    assert len(secure) == 16  # 4 sites x 4 phases
    for kind, content in secure:
        assert not content.array_records and not content.metric_records  # no delta, no metric
        assert set(content.config_records) == {wire.SECAGG}
        if kind == wire.MESSAGE_TYPES["masked"]:
            assert isinstance(parse(wire.read_reply(content)), MaskedInput)
    assert flower.rounds[0]["secure_aggregation"]["survivors"] == ["h0", "h1", "h2", "h3"]


def _silent_node(cfg: object, fed: object, index: int) -> int:
    return FakeGrid(make_client_app(cfg, fed), 4).node_ids[index]  # type: ignore[arg-type]


def test_a_site_silent_before_its_masked_input_is_recovered() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN, secure_aggregation=SECURE)
    silent = _silent_node(cfg, fed, 2)
    flower, _ = run_in_process(cfg, fed, drop={(silent, wire.MESSAGE_TYPES["masked"])})
    for r in flower.rounds:
        info = r["secure_aggregation"]
        assert info["survivors"] == ["h0", "h1", "h3"] and info["dropouts_recovered"] == ["h2"]
        assert not r["skipped"]


def test_a_reply_without_the_protocol_record_drops_that_site(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN | {"rounds": 1}, secure_aggregation=SECURE)
    real = FakeGrid.send_and_receive

    def strip_h1(self: FakeGrid, messages, *, timeout=None):  # type: ignore[no-untyped-def]
        out = real(self, messages, timeout=timeout)
        for m in out:
            kind = m.metadata.message_type
            if kind == wire.MESSAGE_TYPES["shares"] and m.metadata.src_node_id == self.node_ids[1]:
                del m.content.config_records[wire.SECAGG]
        return out

    monkeypatch.setattr(FakeGrid, "send_and_receive", strip_h1)
    flower, _ = run_in_process(cfg, fed)
    (r,) = flower.rounds
    assert r["secure_aggregation"]["survivors"] == ["h0", "h2", "h3"] and not r["skipped"]


def test_too_many_silent_sites_skip_the_round_and_leave_the_model_unchanged() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN, secure_aggregation=SECURE | {"threshold": 1.0})
    silent = _silent_node(cfg, fed, 1)
    flower, _ = run_in_process(cfg, fed, drop={(silent, wire.MESSAGE_TYPES["unmask"])})
    initial = PreparedFederation.build(cfg, fed).initial_weights
    assert all(r["skipped"] for r in flower.rounds)
    assert "aborted at unmasking: 3 of 4 sites remain" in flower.rounds[0]["skip_reason"]
    assert flower.rounds[0]["secure_aggregation"]["abort"] == flower.rounds[0]["skip_reason"]
    assert flower.weights is not None
    for a, b in zip(flower.weights, initial, strict=True):
        np.testing.assert_array_equal(a, b)


def test_ckks_without_a_key_holder_site_is_refused_by_the_server_app() -> None:
    fed = synthetic_federation()
    cfg = small_config(secure_aggregation=SECURE | {"mechanism": "ckks"})
    with pytest.raises(ValueError, match=r"needs secure_aggregation\.key_holder"):
        make_server_app(cfg, PreparedFederation.build(cfg, fed), FlowerRun())
    cfg = small_config(secure_aggregation=SECURE | {"mechanism": "ckks", "key_holder": "x"})
    with pytest.raises(ValueError, match="key_holder 'x' is not a site"):
        make_server_app(cfg, PreparedFederation.build(cfg, fed), FlowerRun())


def test_a_phase_without_stored_state_is_an_error_reply() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(secure_aggregation=SECURE)
    app = make_client_app(cfg, fed)
    grid = FakeGrid(app, 3)
    node = grid.node_ids[0]
    request = wire.survivors_content(1, Survivors(frozenset({1, 2})))
    msg = Message(request, dst_node_id=node, message_type=wire.MESSAGE_TYPES["unmask"])
    reply = app(msg, grid.contexts[node])
    assert reply.has_error() and "holds no protocol state" in reply.error.reason
