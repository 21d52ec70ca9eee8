"""Deployed messages travel packed: a message's whole content as one value.

Flower 1.42 moves a message as a tree of objects: the message, its ``RecordDict``, each
record, each array and each 5 MiB chunk of an array, one HTTP request per object at each of
its four hops (ServerApp -> SuperLink -> SuperNode -> ClientApp, and back). A deployed
heart-disease reply was 13 objects; a ResNet-18 update 257. Every request costs the
SuperLink several SQLite transactions (node authentication, run status, object bookkeeping):
on a 2-core machine the SuperLink used 0.75 of a core through a deployed heart-disease round,
most of it on object pushes and pulls, and every hop waited on it.

So the deployed coordinator (:class:`PackedGrid`) and the deployed sites (:func:`packed_mod`,
a Flower client mod) send a message's content as a ``RecordDict`` with one value: Flower's own
protobuf serialisation of the original ``RecordDict`` (``flwr.common.serde``'s
``recorddict_to_proto``, which keeps every array's bytes, every value and the record order),
as the ``bytes`` of one ConfigRecord (3 objects in all), or, above one chunk, as one array
that Flower chunks (a ResNet-18 update: 13 objects). The receiver unpacks before any medsilo
code sees the message, so every handler, signature and round record is unchanged (the
loopback tests' final models equal the engine's bit for bit).

The sender packs only where that means fewer objects, and only contents of at most
:data:`PACK_LIMIT_BYTES` of arrays: packing copies the content (a 100M-parameter update is
400 MB, and its per-object cost is small next to moving it). A site answers packed only a
message that came packed, so a coordinator that does not pack gets plain replies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.node_pb2 import NodeInfo
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from medsilo.runtime.flower.records import RecordFormatError

#: The one record of a packed content, its one key, and the ``stype`` of a packed array.
PACKED = "medsilo.packed"
CONTENT = "content"
PACKED_STYPE = "medsilo.recorddict-protobuf"

#: Contents with more array bytes than this travel unpacked (packing copies them).
PACK_LIMIT_BYTES = 256 * 2**20


def _chunks(nbytes: int) -> int:
    """Flower's ``ArrayChunk`` objects for an array of ``nbytes`` bytes (at least one)."""
    return max(1, math.ceil(nbytes / FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE))


def wire_objects(content: RecordDict) -> int:
    """The objects Flower sends for a message with this content (message and content
    included): one per record, and per array one plus one per 5 MiB chunk."""
    count = 2
    for record in content.values():
        count += 1
        if isinstance(record, ArrayRecord):
            count += sum(1 + _chunks(len(array.data)) for array in record.values())
    return count


def array_bytes(content: RecordDict) -> int:
    return sum(
        len(array.data)
        for record in content.values()
        if isinstance(record, ArrayRecord)
        for array in record.values()
    )


def is_packed(content: RecordDict) -> bool:
    return list(content.keys()) == [PACKED]


def pack(content: RecordDict) -> RecordDict | None:
    """``content`` as one value, or None where that saves no object or copies too much.

    Up to one chunk (5 MiB) it is a ``bytes`` value of one ConfigRecord (3 objects in all);
    larger, one Array, which Flower chunks (4 objects plus one per chunk)."""
    plain = wire_objects(content)
    if plain <= 3 or is_packed(content) or array_bytes(content) > PACK_LIMIT_BYTES:
        return None  # 3 objects is what packing gives at best
    data = recorddict_to_proto(content).SerializeToString()
    if len(data) <= FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE:
        packed: ConfigRecord | ArrayRecord = ConfigRecord({CONTENT: data})
        objects = 3
    else:
        array = Array(dtype="uint8", shape=(len(data),), stype=PACKED_STYPE, data=data)
        packed, objects = ArrayRecord({CONTENT: array}), 4 + _chunks(len(data))
    return RecordDict({PACKED: packed}) if objects < plain else None


def unpack(content: RecordDict) -> RecordDict:
    """The content :func:`pack` was given; any other content unchanged. A packed content
    that does not parse raises :class:`RecordFormatError`, as a plain content missing its
    records does."""
    if not is_packed(content):
        return content
    record = content[PACKED]
    if list(record.keys()) != [CONTENT]:
        raise RecordFormatError(
            f"a packed message holds only {CONTENT!r}, got {list(record.keys())}"
        )
    if isinstance(record, ConfigRecord) and isinstance(record[CONTENT], bytes):
        data = record[CONTENT]
    elif isinstance(record, ArrayRecord) and record[CONTENT].stype == PACKED_STYPE:
        data = record[CONTENT].data
    else:
        raise RecordFormatError(
            f"a packed message holds bytes or a {PACKED_STYPE!r} array, got a "
            f"{type(record).__name__} of {type(record[CONTENT]).__name__}"
        )
    proto = ProtoRecordDict()
    try:
        proto.ParseFromString(data)
        return recorddict_from_proto(proto)
    except (DecodeError, ValueError) as err:
        raise RecordFormatError(f"a packed message does not parse: {err}") from err


def packed_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower client mod: unpack a packed message, and pack the reply to it."""
    came_packed = msg.has_content() and is_packed(msg.content)
    if came_packed:
        msg.content = unpack(msg.content)
    reply = call_next(msg, context)
    if came_packed and reply.has_content():
        packed = pack(reply.content)
        if packed is not None:
            reply.content = packed
    return reply


class PackedGrid(Grid):
    """A :class:`~flwr.serverapp.Grid` that pushes contents packed and unpacks replies.

    Messages that share one content object (a broadcast) share one packed content, so Flower
    still pushes those objects once. A pushed message keeps its packed content (as it keeps
    the id Flower's grid gives it): nothing reads a message's content once it is sent."""

    def __init__(self, inner: Grid) -> None:
        self._inner = inner

    def set_run(self, run: Run) -> None:
        self._inner.set_run(run)

    @property
    def run(self) -> Run:
        return self._inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return self._inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._inner.get_node_ids()

    def get_nodes(self) -> Iterable[NodeInfo]:
        return self._inner.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        batch = list(messages)
        _pack_all(batch)
        return self._inner.push_messages(batch)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [_unpacked(reply) for reply in self._inner.pull_messages(message_ids)]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        batch = list(messages)
        _pack_all(batch)
        return [_unpacked(r) for r in self._inner.send_and_receive(batch, timeout=timeout)]


def _pack_all(messages: list[Message]) -> None:
    by_content: dict[int, RecordDict | None] = {}
    for message in messages:
        if not message.has_content():
            continue
        content = message.content
        if id(content) not in by_content:
            by_content[id(content)] = pack(content)
        packed = by_content[id(content)]
        if packed is not None:
            message.content = packed


def _unpacked(reply: Message) -> Message:
    if reply.has_content() and is_packed(reply.content):
        try:
            reply.content = unpack(reply.content)
        except RecordFormatError as err:
            raise RecordFormatError(f"node {reply.metadata.src_node_id}'s reply: {err}") from err
    return reply
