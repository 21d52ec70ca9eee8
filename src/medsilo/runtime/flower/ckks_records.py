"""How CKKS secure aggregation travels as Flower records (docs/secure-aggregation.md).

Every message carries one ConfigRecord under :data:`CKKS`:

* coordinator -> key holder, ``query.ckks_keys`` (once per run): ``round``. Reply:
  ``public``, the serialized TenSEAL context *without* its secret key, and ``slots``
  (values a ciphertext holds).
* coordinator -> cohort site, ``train.ckks``: the round's ``train`` broadcast plus
  ``public`` and ``slots``. Reply: ``chunks`` (the site's encrypted
  ``[clip(w * delta), w, w * loss]``) and what the simulated clock and the record need
  (``clock_bytes``, ``clock_examples``, ``clipped``; :data:`.secure_records.CLOCK_FIELDS`).
* coordinator -> key holder, ``query.ckks_decrypt``: ``round``, ``length`` and ``chunks``
  (the coordinator's slot-wise sum). Reply: ``sum``, the decrypted float64 vector's bytes.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ConfigRecord, MessageType, RecordDict
from numpy.typing import NDArray

from medsilo.runtime.flower.records import RecordFormatError
from medsilo.runtime.flower.secure_records import CLOCK_FIELDS

CKKS = "ckks"
KEYS, TRAIN, DECRYPT = "ckks_keys", "ckks", "ckks_decrypt"
MESSAGE_TYPES = {
    KEYS: f"{MessageType.QUERY}.{KEYS}",
    TRAIN: f"{MessageType.TRAIN}.{TRAIN}",
    DECRYPT: f"{MessageType.QUERY}.{DECRYPT}",
}


def _get(content: RecordDict, key: str, kind: type) -> object:
    record = content.config_records.get(CKKS)
    if record is None:
        raise RecordFormatError(f"message carries no {CKKS!r} ConfigRecord ({sorted(content)})")
    value = record.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordFormatError(f"{CKKS} field {key!r} should be a {kind.__name__}")
    return value


def read_int(content: RecordDict, key: str) -> int:
    value = _get(content, key, int)
    assert isinstance(value, int)
    return value


def read_bytes(content: RecordDict, key: str) -> bytes:
    value = _get(content, key, bytes)
    assert isinstance(value, bytes)
    return value


def read_chunks(content: RecordDict) -> list[bytes]:
    value = _get(content, "chunks", list)
    assert isinstance(value, list)
    if not value or not all(isinstance(v, bytes) for v in value):
        raise RecordFormatError(f"{CKKS} field 'chunks' should be a non-empty list of bytes")
    return [bytes(v) for v in value]


def keys_request(rnd: int) -> RecordDict:
    return RecordDict({CKKS: ConfigRecord({"round": rnd})})


def keys_reply(public: bytes, slots: int) -> RecordDict:
    return RecordDict({CKKS: ConfigRecord({"public": public, "slots": slots})})


def add_public(broadcast: RecordDict, public: bytes, slots: int) -> RecordDict:
    """The round's ``train`` broadcast with the public context the sites encrypt under."""
    broadcast.config_records[CKKS] = ConfigRecord({"public": public, "slots": slots})
    return broadcast


def encrypted_reply(chunks: list[bytes], **clock: int) -> RecordDict:
    return RecordDict({CKKS: ConfigRecord({"chunks": chunks, **clock})})


def read_clock(content: RecordDict) -> dict[str, int]:
    return {key: read_int(content, key) for key in CLOCK_FIELDS}


def decrypt_request(rnd: int, length: int, chunks: list[bytes]) -> RecordDict:
    return RecordDict({CKKS: ConfigRecord({"round": rnd, "length": length, "chunks": chunks})})


def sum_reply(values: NDArray[np.float64]) -> RecordDict:
    return RecordDict({CKKS: ConfigRecord({"sum": values.astype("<f8").tobytes()})})


def read_sum(content: RecordDict, length: int) -> NDArray[np.float64]:
    data = read_bytes(content, "sum")
    if len(data) != 8 * length:
        raise RecordFormatError(f"the decrypted sum holds {len(data) // 8} values, not {length}")
    return np.frombuffer(data, dtype="<f8").astype(np.float64)
