"""The canonical wire encoding of a list of arrays, used to count bytes for every algorithm.

Each tensor of ``n`` entries with ``k`` nonzeros is sent as whichever is smallest of

* dense: ``n`` float32 values (``4 n`` bytes);
* index: the ``k`` nonzeros as ``k`` int32 flat indices followed by ``k`` float32 values
  (``8 k`` bytes);
* bitmap: one bit per entry, set where the entry is nonzero (``ceil(n / 8)`` bytes, bit ``j``
  of byte ``j // 8`` least significant first, padding bits zero), then the ``k`` nonzero
  values as float32 in index order (``ceil(n / 8) + 4 k`` bytes);

behind a 5-byte header (1 byte kind, uint32 count: ``n`` for dense, ``k`` otherwise); ties go
to the earlier kind in this list. All numbers are little-endian. Index wins below ``n / 32``
nonzeros, bitmap between ``n / 32`` and about ``31 n / 32``, dense above: so any exact zero
beyond the first 3 % of a tensor saves bytes, not only more than half of them. Shapes are not
sent: both ends know the model layout. Values are cast to float32 first, so float32 weights
round-trip exactly.

The audit ledger's model hashes (:func:`medsilo.ledger.digest.weights_sha256`) keep the first
version of this format (dense or index only, ``bitmap=False``), so the hashes of runs made
before the bitmap kind existed still verify.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from medsilo.types import Weights

HEADER = struct.Struct("<BI")
DENSE, SPARSE, BITMAP = 0, 1, 2


def _kind(n: int, k: int, bitmap: bool) -> tuple[int, int]:
    """The kind a tensor of ``n`` entries with ``k`` nonzeros is sent as, and its body size."""
    sizes = [(4 * n, DENSE), (8 * k, SPARSE)]
    if bitmap:
        sizes.append(((n + 7) // 8 + 4 * k, BITMAP))
    size, kind = min(sizes, key=lambda s: (s[0], s[1]))
    return kind, size


def encode(weights: Weights, *, bitmap: bool = True) -> bytes:
    """The bytes of ``weights``; ``bitmap=False``: without the bitmap kind (the ledger's)."""
    parts: list[bytes] = []
    for w in weights:
        flat = np.ascontiguousarray(w, dtype=np.float32).ravel()
        nz = np.flatnonzero(flat)
        kind, _ = _kind(flat.size, nz.size, bitmap)
        if kind == DENSE:
            parts.append(HEADER.pack(DENSE, flat.size))
            parts.append(flat.astype("<f4", copy=False).tobytes())
        elif kind == SPARSE:
            parts.append(HEADER.pack(SPARSE, nz.size))
            parts.append(nz.astype("<i4").tobytes())
            parts.append(flat[nz].astype("<f4").tobytes())
        else:
            parts.append(HEADER.pack(BITMAP, nz.size))
            parts.append(np.packbits(flat != 0, bitorder="little").tobytes())
            parts.append(flat[nz].astype("<f4").tobytes())
    return b"".join(parts)


def encoded_size(weights: Weights, *, bitmap: bool = True) -> int:
    """``len(encode(weights, bitmap=bitmap))`` without building the bytes."""
    total = 0
    for w in weights:
        n = int(np.size(w))
        k = int(np.count_nonzero(np.asarray(w, dtype=np.float32)))
        total += HEADER.size + _kind(n, k, bitmap)[1]
    return total


def _bitmap(data: bytes, pos: int, size: int, count: int) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8, count=(size + 7) // 8, offset=pos)
    bits = np.unpackbits(raw, bitorder="little")
    if bits[size:].any():
        raise ValueError(f"bitmap tensor with padding bits set at byte {pos}")
    mask = bits[:size].astype(bool)
    if int(mask.sum()) != count:
        raise ValueError(f"bitmap marks {int(mask.sum())} nonzeros, header says {count}")
    return mask


def decode(data: bytes, shapes: Sequence[tuple[int, ...]]) -> Weights:
    out: Weights = []
    pos = 0
    for shape in shapes:
        kind, count = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        size = int(np.prod(shape, dtype=np.int64))
        if kind == DENSE:
            if count != size:
                raise ValueError(f"dense tensor of {count} values, expected shape {shape}")
            arr = np.frombuffer(data, dtype="<f4", count=count, offset=pos).copy()
            pos += 4 * count
        elif kind == SPARSE:
            idx = np.frombuffer(data, dtype="<i4", count=count, offset=pos)
            vals = np.frombuffer(data, dtype="<f4", count=count, offset=pos + 4 * count)
            pos += 8 * count
            arr = np.zeros(size, dtype=np.float32)
            arr[idx] = vals
        elif kind == BITMAP:
            mask = _bitmap(data, pos, size, count)
            pos += (size + 7) // 8
            arr = np.zeros(size, dtype=np.float32)
            arr[mask] = np.frombuffer(data, dtype="<f4", count=count, offset=pos)
            pos += 4 * count
        else:
            raise ValueError(f"unknown tensor kind {kind} at byte {pos - HEADER.size}")
        out.append(arr.astype(np.float32, copy=False).reshape(shape))  # arr is already ours
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after {len(shapes)} tensors")
    return out
