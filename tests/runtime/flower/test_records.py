"""medsilo types <-> Flower records: exact round trips, no Flower run."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from flwr.app import ArrayRecord, RecordDict

from medsilo.runtime.flower import records as rec
from medsilo.types import Update


def _weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(3, 4)).astype(np.float32),
        rng.normal(size=(4,)).astype(np.float32),
        np.array(rng.normal(), dtype=np.float32),  # 0-d entry
        rng.normal(size=(2, 1, 3, 3)).astype(np.float64),
        np.asfortranarray(rng.normal(size=(5, 2)).astype(np.float32)),  # not C-contiguous
        *[rng.normal(size=(2,)).astype(np.float32) for _ in range(9)],  # > 10 entries
    ]


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)  # bit for bit, not approximately


def _through_the_wire(content: RecordDict) -> RecordDict:
    """What Flower's Ray transport does to a record dict: pickle and unpickle it."""
    return pickle.loads(pickle.dumps(content))


def test_weights_round_trip_exactly() -> None:
    w = _weights()
    content = _through_the_wire(RecordDict({"w": rec.weights_to_record(w)}))
    back = rec.record_to_weights(content.array_records["w"])
    _assert_same(w, back)
    assert all(x.flags.writeable for x in back)


def test_weights_order_comes_from_keys_not_insertion() -> None:
    w = _weights()
    record = rec.weights_to_record(w)
    shuffled = ArrayRecord({k: record[k] for k in sorted(record.keys())})  # "0","1","10",...
    _assert_same(w, rec.record_to_weights(shuffled))


def test_bad_weight_keys_are_refused() -> None:
    record = rec.weights_to_record(_weights()[:2])
    record["x"] = record.pop("1")
    with pytest.raises(rec.RecordFormatError, match=r"keys 0\.\.1"):
        rec.record_to_weights(record)


def test_update_round_trip_with_extras_and_metrics() -> None:
    update = Update(
        site="cleveland",
        delta=_weights(1),
        num_examples=199,
        num_steps=100,
        metrics={"train_loss": 0.123456789012345, "a_i": 100.0, "personal_train_loss": 1e-30},
        extras={"delta_c": _weights(2), "other": [np.arange(3, dtype=np.float32)]},
    )
    back = rec.content_to_update(_through_the_wire(rec.update_to_content(update)))
    assert back.site == update.site
    assert back.num_examples == 199 and back.num_steps == 100
    assert back.metrics == update.metrics
    assert set(back.extras) == {"delta_c", "other"}
    _assert_same(update.delta, back.delta)
    for key, extra in update.extras.items():
        _assert_same(extra, back.extras[key])


def test_a_compressed_update_travels_as_its_bytes_only() -> None:
    payload = bytes(range(256)) * 3
    update = Update("s", [], 3, 1, metrics={"train_loss": 0.5}, encoded_delta=payload)
    content = rec.update_to_content(update)
    assert rec.DELTA not in content
    back = rec.content_to_update(_through_the_wire(content))
    assert back.encoded_delta == payload and back.delta == []
    assert rec.content_to_update(rec.update_to_content(Update("s", [], 3, 1))).encoded_delta is None


def test_numpy_metric_values_are_accepted() -> None:
    metrics: dict = {"train_loss": np.float32(0.5)}  # algorithms may hand back numpy scalars
    update = Update("s", _weights()[:1], 3, 1, metrics=metrics)
    assert rec.content_to_update(rec.update_to_content(update)).metrics == {"train_loss": 0.5}


def test_broadcast_round_trip() -> None:
    w, c = _weights(3), _weights(4)
    rnd, w2, payload, return_state = rec.read_broadcast(
        _through_the_wire(rec.broadcast_content(7, w, {"c": c}, return_state=True))
    )
    assert rnd == 7 and return_state
    _assert_same(w, w2)
    assert set(payload) == {"c"}
    _assert_same(c, payload["c"])
    assert rec.read_broadcast(rec.broadcast_content(1, w))[2:] == ({}, False)


def test_state_store_replaces_previous_state() -> None:
    records = RecordDict()
    records["unrelated"] = rec.weights_to_record(_weights()[:1])
    rec.store_state(records, {"c": _weights(5), "old": _weights(6)}, rec.CONTEXT_STATE_PREFIX)
    rec.store_state(records, {"c": _weights(7)}, rec.CONTEXT_STATE_PREFIX)
    state = rec.load_state(_through_the_wire(records), rec.CONTEXT_STATE_PREFIX)
    assert set(state) == {"c"}
    _assert_same(_weights(7), state["c"])
    assert "unrelated" in records


def test_eval_and_identity_round_trip() -> None:
    content = _through_the_wire(rec.eval_content("va", 3, {"loss": 0.25, "accuracy": 0.5, "n": 8}))
    assert rec.read_identity(content) == ("va", 3)
    assert rec.read_eval(content) == {"loss": 0.25, "accuracy": 0.5, "n": 8}
    assert isinstance(rec.read_eval(content)["n"], int)


def test_missing_records_are_named() -> None:
    with pytest.raises(rec.RecordFormatError, match="delta"):
        rec.content_to_update(RecordDict())


def test_a_train_reply_carries_the_evaluation_of_what_it_received() -> None:
    """Train-with-evaluation: the ``train`` broadcast asks for it, the reply holds both."""
    content = rec.broadcast_content(3, [np.ones(2)], evaluate_first=True, global_eval=True)
    assert rec.evaluates_first(content) and rec.wants_global_eval(content)
    assert not rec.evaluates_first(rec.broadcast_content(3, [np.ones(2)]))
    update = Update(site="a", delta=[np.zeros(2)], num_examples=4, num_steps=1, metrics={})
    reply = rec.add_records(
        rec.update_to_content(update), rec.eval_content("a", 0, {"loss": 0.5, "n": 4})
    )
    assert rec.content_to_update(reply).num_examples == 4
    assert rec.read_eval(reply) == {"loss": 0.5, "n": 4}
    with pytest.raises(rec.RecordFormatError, match="overwritten"):
        rec.add_records(reply, rec.eval_content("a", 0, {"loss": 0.1, "n": 4}))
