"""How the secure-aggregation protocol's messages travel as Flower records.

Each of the protocol's four phases (:data:`medsilo.secure.exchange.PHASES`) is one Message
exchange of type ``train.secagg_<phase>`` (Flower routes ``<category>.<action>`` types to
the ClientApp function registered for that action). Every message carries one ConfigRecord
under :data:`SECAGG`:

* server -> site, ``keys``: the ``train`` broadcast (weights, payload, round) plus
  ``cohort`` (site names; a site's protocol id is its position + 1) and the public
  :class:`~medsilo.secure.protocol.SecAggParams` (``threshold``, ``bits``, ``length``,
  ``label``, ``neighbours``: SecAgg+'s ``k``, 0 for the complete graph; the graph's vertices
  are the cohort).
* server -> site, ``shares``: ``keys``, the :class:`AdvertiseKeys` encodings of the site's
  neighbours and itself (every site's on the complete graph).
* server -> site, ``masked``: ``senders`` and ``sealed``, the shares relayed to that site.
* server -> site, ``unmask``: ``survivors``, the protocol ids whose masked input arrived.
* site -> server, every phase: ``message``, the site's protocol message exactly as
  :mod:`medsilo.secure.messages` encodes it (what the coordinator parses and counts), plus,
  for ``keys``, what the simulated clock and the round record need: ``clock_bytes`` (the size
  the plain update would have had), ``clock_examples`` (examples processed) and ``clipped``
  (coordinates the fixed-point encoding clipped). No delta, metric or state travels.

Every server message also carries ``round``; a site refuses a phase for another round than
the one its stored state belongs to.
"""

from __future__ import annotations

from flwr.app import ConfigRecord, MessageType, RecordDict

from medsilo.runtime.flower.records import RecordFormatError
from medsilo.secure.exchange import PHASES
from medsilo.secure.messages import AdvertiseKeys, KeyList, RelayedShares, Survivors, parse
from medsilo.secure.protocol import SecAggParams

SECAGG = "secagg"
#: ``phase -> message type``; the ClientApp registers one ``train`` action per phase.
ACTIONS = {phase: f"secagg_{phase}" for phase in PHASES}
MESSAGE_TYPES = {phase: f"{MessageType.TRAIN}.{action}" for phase, action in ACTIONS.items()}
#: Site reply fields of the ``keys`` phase that feed the simulated clock and the record.
CLOCK_FIELDS = ("clock_bytes", "clock_examples", "clipped")

Scalar = int | bytes | str | list[int] | list[bytes] | list[str]


def _record(content: RecordDict) -> ConfigRecord:
    if SECAGG not in content.config_records:
        raise RecordFormatError(
            f"message carries no {SECAGG!r} ConfigRecord; it carries {sorted(content)}"
        )
    return content.config_records[SECAGG]


def _field(content: RecordDict, key: str, kind: type) -> object:
    value = _record(content).get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordFormatError(f"{SECAGG} field {key!r} should be a {kind.__name__}")
    return value


def _ints(content: RecordDict, key: str) -> list[int]:
    value = _field(content, key, list)
    assert isinstance(value, list)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise RecordFormatError(f"{SECAGG} field {key!r} should be a list of ints")
    return [int(v) for v in value]


def _blobs(content: RecordDict, key: str) -> list[bytes]:
    value = _field(content, key, list)
    assert isinstance(value, list)
    if not all(isinstance(v, bytes) for v in value):
        raise RecordFormatError(f"{SECAGG} field {key!r} should be a list of bytes")
    return [bytes(v) for v in value]


def _int(content: RecordDict, key: str) -> int:
    value = _field(content, key, int)
    assert isinstance(value, int)
    return value


def request_round(content: RecordDict) -> int:
    return _int(content, "round")


def add_setup(content: RecordDict, rnd: int, cohort: list[str], params: SecAggParams) -> None:
    """Put the ``keys`` phase's fields next to the round's broadcast records."""
    content.config_records[SECAGG] = ConfigRecord(
        {
            "round": rnd,
            "cohort": list(cohort),
            "threshold": params.threshold,
            "bits": params.bits,
            "length": params.length,
            "label": params.label,
            "neighbours": params.neighbours,
        }
    )


def read_setup(content: RecordDict) -> tuple[list[str], SecAggParams]:
    cohort = _field(content, "cohort", list)
    assert isinstance(cohort, list)
    label = _field(content, "label", bytes)
    assert isinstance(label, bytes)
    params = SecAggParams(
        _int(content, "threshold"),
        _int(content, "bits"),
        _int(content, "length"),
        label,
        _int(content, "neighbours"),
        len(cohort),
    )
    return [str(s) for s in cohort], params


def key_list_content(rnd: int, key_list: KeyList) -> RecordDict:
    keys = [key_list.keys[i].encode() for i in sorted(key_list.keys)]
    return RecordDict({SECAGG: ConfigRecord({"round": rnd, "keys": keys})})


def read_key_list(content: RecordDict) -> KeyList:
    keys = [parse(k) for k in _blobs(content, "keys")]
    if not all(isinstance(k, AdvertiseKeys) for k in keys):
        raise RecordFormatError("the key list holds a message that is not an AdvertiseKeys")
    return KeyList({k.site: k for k in keys if isinstance(k, AdvertiseKeys)})


def relayed_content(rnd: int, relayed: RelayedShares) -> RecordDict:
    senders = sorted(relayed.sealed)
    sealed = [relayed.sealed[i] for i in senders]
    return RecordDict({SECAGG: ConfigRecord({"round": rnd, "senders": senders, "sealed": sealed})})


def read_relayed(content: RecordDict) -> RelayedShares:
    senders, sealed = _ints(content, "senders"), _blobs(content, "sealed")
    if len(senders) != len(sealed) or len(set(senders)) != len(senders):
        raise RecordFormatError("relayed shares: senders and sealed shares do not pair up")
    return RelayedShares(dict(zip(senders, sealed, strict=True)))


def survivors_content(rnd: int, survivors: Survivors) -> RecordDict:
    record = ConfigRecord({"round": rnd, "survivors": sorted(survivors.sites)})
    return RecordDict({SECAGG: record})


def read_survivors(content: RecordDict) -> Survivors:
    return Survivors(frozenset(_ints(content, "survivors")))


def reply_content(message: bytes, **extra: int) -> RecordDict:
    return RecordDict({SECAGG: ConfigRecord({"message": message, **extra})})


def read_reply(content: RecordDict) -> bytes:
    value = _field(content, "message", bytes)
    assert isinstance(value, bytes)
    return value


def read_clock(content: RecordDict) -> dict[str, int]:
    return {key: _int(content, key) for key in CLOCK_FIELDS}
