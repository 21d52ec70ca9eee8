"""CKKS secure aggregation over Flower with a key-holding site (``ckks_server.py``,
``ckks_site.py``), driven in-process through the fake Grid that pickles every message.

The key holder (a site) generates the keys and decrypts each round's sum; the coordinator
receives only the public context and ciphertexts. CKKS is approximate and its encryption
randomised, so the Flower run equals the engine's CKKS run (and the plain run) only within
CKKS precision: the test bound is 1e-6 on every weight after 3 rounds (measured: see
docs/secure-aggregation.md), while the round structure (sites, survivors, skips) is equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
import tenseal as ts  # type: ignore[import-untyped]
from flwr.app import Message, RecordDict

from medsilo.runtime.flower import ckks_records as wire
from medsilo.runtime.flower import ckks_site, make_client_app
from medsilo.runtime.flower import records as rec
from medsilo.runtime.flower.ckks_site import STATE_KEY
from medsilo.runtime.simulation import run_federation
from medsilo.secure.aggregation import secure_aggregation

from ...conftest import small_config, synthetic_federation
from .test_apps_inprocess import (  # the autouse fixtures apply here too
    FakeGrid,
    one_thread,  # noqa: F401
    run_in_process,
    task_identity,  # noqa: F401
)

TRAIN = {"rounds": 3, "local_steps": 6, "batch_size": 8, "lr": 0.1}
CKKS = {"enabled": True, "mechanism": "ckks", "key_holder": "h2"}
#: Largest weight difference allowed from the engine's CKKS run and from the plain run.
BOUND = 1e-6


def max_diff(a: Iterable[np.ndarray], b: Iterable[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def blobs(content: RecordDict) -> list[bytes]:
    """Every bytes value in a message's ConfigRecords (lists flattened)."""
    out: list[bytes] = []
    for record in content.config_records.values():
        for value in record.values():
            items = value if isinstance(value, list) else [value]
            out += [v for v in items if isinstance(v, bytes)]
    return out


def is_context(blob: bytes) -> bool:
    try:
        ts.context_from(blob)
    except Exception:  # TenSEAL raises its own error types for bytes that are no context
        return False
    return True


class Recording(FakeGrid):
    """The fake Grid, keeping every reply the coordinator receives."""

    replies: list[Message]

    def send_and_receive(  # type: ignore[override]
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        got = super().send_and_receive(messages, timeout=timeout)
        self.replies = getattr(self, "replies", []) + got
        return got


@pytest.mark.parametrize(
    ("overrides", "survivors", "recovered"),
    [
        ({}, 4, 0),
        ({"secure_aggregation": CKKS | {"simulated_dropout": 0.25}}, 3, 1),
    ],
    ids=["fedavg", "simulated-dropout"],
)
def test_flower_ckks_with_a_key_holder_site_matches_the_engine(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], survivors: int, recovered: int
) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(**({"training": TRAIN, "secure_aggregation": CKKS} | overrides))
    monkeypatch.setattr("tests.runtime.flower.test_apps_inprocess.FakeGrid", Recording)
    flower, grid = run_in_process(cfg, fed)
    engine = run_federation(cfg, fed)
    plain = run_federation(small_config(training=TRAIN), fed)
    assert flower.weights is not None
    assert max_diff(flower.weights, engine.weights) < BOUND
    if not recovered:
        assert max_diff(flower.weights, plain.weights) < BOUND
    for mine, theirs in zip(flower.rounds, engine.rounds, strict=True):
        a, b = mine["secure_aggregation"], theirs["secure_aggregation"]
        assert a["mechanism"] == b["mechanism"] == "ckks"
        assert a["survivors"] == b["survivors"] and len(a["survivors"]) == survivors
        assert a["dropouts_recovered"] == b["dropouts_recovered"]
        assert len(a["dropouts_recovered"]) == recovered
        assert mine["sites"] == theirs["sites"] and not mine["skipped"]
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-6)
    kinds = [s.split("->")[0] for s in grid.sent]
    assert "train" not in kinds and kinds.count(wire.MESSAGE_TYPES[wire.KEYS]) == 1
    assert kinds.count(wire.MESSAGE_TYPES[wire.DECRYPT]) == 3  # one decryption a round
    # The coordinator never held the secret key: the key holder's secret context is in no
    # message it received, and every TenSEAL context it received is public.
    assert_no_secret_received(grid.contexts[grid.node_ids[2]].state, grid.replies)  # h2


def assert_no_secret_received(holder_state: RecordDict, replies: list[Message]) -> None:
    """The key holder's secret context (from its node state) is in none of the ``replies``
    the coordinator received, and every TenSEAL context among them is public."""
    secret = holder_state.config_records[STATE_KEY]["secret"]
    assert isinstance(secret, bytes) and ts.context_from(secret).is_private()
    received = [b for reply in replies for b in blobs(reply.content)]
    assert secret not in received
    contexts = [b for b in received if len(b) > 100_000 and is_context(b)]
    assert contexts and not any(ts.context_from(b).is_private() for b in contexts)


def test_the_key_holder_decrypts_once_a_round_and_only_it_holds_keys() -> None:
    cfg = small_config(secure_aggregation=CKKS)
    secure = secure_aggregation(cfg, 4)
    assert secure is not None
    with pytest.raises(PermissionError, match="not the CKKS key holder"):
        ckks_site.publish_keys(secure, "h1", RecordDict())
    state = RecordDict()
    keys = ckks_site.publish_keys(secure, "h2", state)
    public, slots = wire.read_bytes(keys, "public"), wire.read_int(keys, "slots")
    assert not ts.context_from(public).is_private()
    assert wire.read_bytes(ckks_site.publish_keys(secure, "h2", state), "public") == public
    vector = ts.ckks_vector(ts.context_from(public), [1.5, -2.0]).serialize()
    request = wire.decrypt_request(1, 2, [vector])
    values = wire.read_sum(ckks_site.decrypt(secure, "h2", request, state), 2)
    np.testing.assert_allclose(values, [1.5, -2.0], atol=1e-6)
    with pytest.raises(PermissionError, match="already decrypted round 1"):
        ckks_site.decrypt(secure, "h2", request, state)
    with pytest.raises(ValueError, match="1 ciphertexts for 5000 values"):
        ckks_site.decrypt(secure, "h2", wire.decrypt_request(2, 5000, [vector]), state)
    assert slots == 4096


def test_a_site_refuses_a_relayed_context_that_holds_a_secret_key() -> None:
    fed = synthetic_federation(num_sites=3)
    cfg = small_config(secure_aggregation=CKKS | {"key_holder": "h1"})
    grid = FakeGrid(make_client_app(cfg, fed), 3)
    state = RecordDict()
    cfg_secure = secure_aggregation(cfg, 3)
    assert cfg_secure is not None
    ckks_site.publish_keys(cfg_secure, "h1", state)
    secret = state.config_records[STATE_KEY]["secret"]
    assert isinstance(secret, bytes)
    content = wire.add_public(rec.broadcast_content(1, [np.zeros(3)]), secret, 4096)
    msg = Message(content, dst_node_id=grid.node_ids[0], message_type="train.ckks")
    (reply,) = grid.send_and_receive([msg])
    assert reply.has_error() and "holds a secret key" in reply.error.reason
