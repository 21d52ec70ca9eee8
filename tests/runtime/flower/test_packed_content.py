"""Deployed messages travel packed (``medsilo.runtime.flower.packed_content``).

The deployed apps' end-to-end parity (packed both ways) is proven by
``test_deployed_apps.py`` in-process and by the loopback tests with real processes; these
check the packing itself: exact round trips, the object counts it promises, when it declines,
and the client mod and grid wrapper that apply it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app import Error as FlowerError
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.run import Run

from medsilo.runtime.flower import packed_content as packing
from medsilo.runtime.flower.packed_content import (
    PACKED,
    PackedGrid,
    is_packed,
    pack,
    packed_mod,
    unpack,
    wire_objects,
)
from medsilo.runtime.flower.records import RecordFormatError

from .test_apps_inprocess import task_identity  # noqa: F401  (autouse: messages need a run)


def heart_reply() -> RecordDict:
    """The shape of a deployed heart-disease reply: weights, counters, metrics, a report."""
    rng = np.random.default_rng(0)
    return RecordDict(
        {
            "weights": ArrayRecord(
                [rng.normal(size=(1, 13)).astype(np.float32), np.array([0.5], np.float32)]
            ),
            "update": ConfigRecord({"site": "cleveland", "num_examples": 199, "steps": 20}),
            "metrics": MetricRecord({"loss": 0.61, "accuracy": 0.7}),
            "eval": MetricRecord({"loss": 0.58, "accuracy": 0.72, "n": 50}),
            "clinical": ConfigRecord({"report": '{"auroc": [0.1, 0.2]}' * 500}),
            "site": ConfigRecord({"site": "cleveland", "index": 0}),
            "state.residual": ArrayRecord([np.arange(6, dtype=np.float64).reshape(2, 3)]),
            "witness": ConfigRecord({"signature": b"\x00\x01" * 32, "flags": [True, False]}),
        }
    )


def flower_objects(content: RecordDict) -> int:
    """What Flower itself sends for a message with this content."""
    return len(get_all_nested_objects(_message(content)))


def assert_same(a: RecordDict, b: RecordDict) -> None:
    assert list(a.keys()) == list(b.keys())  # record order kept
    for key, record in a.items():
        other = b[key]
        assert type(other) is type(record)
        assert list(other.keys()) == list(record.keys())
        if isinstance(record, ArrayRecord):
            for name, array in record.items():
                got = other[name]
                assert isinstance(got, Array)
                assert (got.dtype, got.shape, got.stype) == (array.dtype, array.shape, array.stype)
                assert got.data == array.data  # bit for bit
        else:
            for name, value in record.items():
                assert other[name] == value and type(other[name]) is type(value)


def test_a_reply_packs_into_three_objects_and_unpacks_bit_for_bit() -> None:
    content = heart_reply()
    assert wire_objects(content) == flower_objects(content) == 16  # 2 + 8 + 3 x (array + chunk)
    packed = pack(content)
    assert packed is not None and is_packed(packed)
    assert wire_objects(packed) == flower_objects(packed) == 3  # message, content, one record
    assert_same(unpack(packed), content)


def test_content_above_one_chunk_packs_into_one_chunked_array() -> None:
    big = np.random.default_rng(1).normal(size=(1_000_000, 2))  # 16 MB of float64
    content = RecordDict(
        {f"layer{i}": ArrayRecord([big[:, i].copy(), big[:10, i].copy()]) for i in range(2)}
        | {"round": ConfigRecord({"round": 3})}
    )
    packed = pack(content)
    assert packed is not None
    record = packed[PACKED]
    assert isinstance(record, ArrayRecord)
    assert wire_objects(packed) == flower_objects(packed) == 4 + 4  # 16 MB in 5 MiB chunks
    assert wire_objects(content) == flower_objects(content) > wire_objects(packed)
    assert_same(unpack(packed), content)


def test_packing_declines_where_it_saves_nothing_or_would_copy_too_much(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert pack(RecordDict()) is None  # 2 objects already
    assert pack(RecordDict({"site": ConfigRecord({"site": "va"})})) is None  # 3 already
    packed = pack(heart_reply())
    assert packed is not None and pack(packed) is None  # never packed twice
    monkeypatch.setattr(packing, "PACK_LIMIT_BYTES", 100)
    assert pack(heart_reply()) is None  # 3 arrays of 104 + 4 + 48 bytes


def test_plain_content_is_left_alone_and_malformed_packing_is_named() -> None:
    content = heart_reply()
    assert unpack(content) is content
    wrong_key = RecordDict({PACKED: ConfigRecord({"other": b"x"})})
    with pytest.raises(RecordFormatError, match="holds only 'content'"):
        unpack(wrong_key)
    wrong_array = RecordDict({PACKED: ArrayRecord({"content": Array(np.zeros(3))})})
    with pytest.raises(RecordFormatError, match="a packed message holds bytes or a"):
        unpack(wrong_array)
    garbage = RecordDict({PACKED: ConfigRecord({"content": b"\xff\x00not a protobuf"})})
    with pytest.raises(RecordFormatError, match="a packed message does not parse"):
        unpack(garbage)


def _message(content: RecordDict, node: int = 1) -> Message:
    return Message(content, dst_node_id=node, message_type="train", group_id="1")


def _reply_to(msg: Message, content: RecordDict) -> Message:
    return Message(content, reply_to=msg)


def test_the_client_mod_unpacks_a_packed_message_and_packs_its_reply() -> None:
    seen: list[RecordDict] = []

    def app(msg: Message, context: Context) -> Message:
        seen.append(msg.content)
        return _reply_to(msg, heart_reply())

    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    packed = pack(heart_reply())
    assert packed is not None
    reply = packed_mod(_message(packed), context, app)
    assert_same(seen[0], heart_reply())
    assert is_packed(reply.content)
    assert_same(unpack(reply.content), heart_reply())

    plain = packed_mod(_message(heart_reply()), context, app)  # a coordinator that does not pack
    assert not is_packed(plain.content)

    def fails(msg: Message, context: Context) -> Message:
        return Message(FlowerError(code=0, reason="refused"), reply_to=_reply_to(msg, RecordDict()))

    assert packed_mod(_message(packed), context, fails).has_error()


class RecordingGrid(Grid):
    """Keeps what was pushed and answers each message with its own content."""

    def __init__(self) -> None:
        self.pushed: list[Message] = []
        self.pushed_contents: list[RecordDict] = []

    def set_run(self, run: Run) -> None:
        raise NotImplementedError

    @property
    def run(self) -> Run:
        raise NotImplementedError

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id=dst_node_id, message_type=message_type)

    def get_node_ids(self) -> Iterable[int]:
        return [1, 2, 3]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            self.pushed.append(msg)
            self.pushed_contents.append(msg.content)
            ids.append(str(len(self.pushed)))
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = []
        for message_id in message_ids:
            msg = self.pushed[int(message_id) - 1]
            replies.append(_reply_to(msg, self.pushed_contents[int(message_id) - 1]))
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(self.push_messages(messages))


def test_the_grid_pushes_a_broadcast_packed_once_and_gives_back_unpacked_replies() -> None:
    inner = RecordingGrid()
    grid = PackedGrid(inner)
    broadcast = heart_reply()
    own = heart_reply()
    messages = [_message(broadcast, 1), _message(broadcast, 2), _message(own, 3)]
    ids = list(grid.push_messages(messages))
    packed = inner.pushed_contents
    assert all(is_packed(c) for c in packed)
    assert packed[0] is packed[1] and packed[2] is not packed[0]  # one packing per content
    assert [m.content for m in messages] == packed  # sent as pushed
    for reply in grid.pull_messages(ids):
        assert_same(reply.content, heart_reply())
    for reply in grid.send_and_receive([_message(heart_reply())]):
        assert_same(reply.content, heart_reply())
    assert list(grid.get_node_ids()) == [1, 2, 3]
