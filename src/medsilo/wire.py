"""The canonical wire encoding of a list of arrays, used to count bytes for every algorithm.

Each tensor is sent as whichever is smaller of

* dense: ``n`` float32 values, or
* sparse: the ``k`` nonzeros as ``k`` int32 flat indices followed by ``k`` float32 values,

behind a 5-byte header (1 byte kind, uint32 count: ``n`` for dense, ``k`` for sparse). All
numbers are little-endian. Sparse wins exactly when ``8 k < 4 n``, i.e. when more than half
of the entries are exactly zero, so an algorithm only saves bytes by producing real zeros.
Shapes are not sent: both ends know the model layout. Values are cast to float32 first, so
float32 weights round-trip exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from medsilo.types import Weights

HEADER = struct.Struct("<BI")
DENSE, SPARSE = 0, 1


def encode(weights: Weights) -> bytes:
    parts: list[bytes] = []
    for w in weights:
        flat = np.ascontiguousarray(w, dtype=np.float32).ravel()
        nz = np.flatnonzero(flat)
        if 8 * nz.size < 4 * flat.size:
            parts.append(HEADER.pack(SPARSE, nz.size))
            parts.append(nz.astype("<i4").tobytes())
            parts.append(flat[nz].astype("<f4").tobytes())
        else:
            parts.append(HEADER.pack(DENSE, flat.size))
            parts.append(flat.astype("<f4").tobytes())
    return b"".join(parts)


def encoded_size(weights: Weights) -> int:
    """``len(encode(weights))`` without building the bytes."""
    total = 0
    for w in weights:
        n = int(np.size(w))
        k = int(np.count_nonzero(np.asarray(w, dtype=np.float32)))
        total += HEADER.size + (8 * k if 8 * k < 4 * n else 4 * n)
    return total


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
        else:
            raise ValueError(f"unknown tensor kind {kind} at byte {pos - HEADER.size}")
        out.append(arr.astype(np.float32).reshape(shape))
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after {len(shapes)} tensors")
    return out
