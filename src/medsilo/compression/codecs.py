"""Update codecs: the exact bytes a site sends, and the coordinator's decoding of them.

Both ends know the model layout, so shapes are never sent. All numbers are little-endian.
``len(codec.encode(delta))`` is the uplink size a round record reports. The formats:

* ``none``: :mod:`medsilo.wire` (per tensor, dense float32 or sparse index/value pairs).
* ``fp16``: per tensor, uint32 count ``n`` then ``n`` float16 values: ``4 + 2n`` bytes
  (vs ``5 + 4n`` for dense float32). Values beyond float16's range become Inf, which the
  coordinator's validation rejects.
* ``int8``: per tensor, uint32 ``n``, float32 scale ``s = max|x| / 127``, ``n`` int8 values
  ``round(x / s)``: ``8 + n`` bytes; error per entry at most ``s / 2``.
* ``topk``: over the whole flattened update, the ``k = round(fraction * d)`` (at least 1)
  entries of largest magnitude: uint32 ``k``, the sorted flat indices as LEB128 varints of
  their gaps (first gap = first index), then ``k`` float32 values.
* ``qsgd`` (Alistarh et al. 2017, with their bucketing): per tensor, uint32 ``n``, then one
  float32 l2 norm per bucket of ``bucket`` consecutive entries (``ceil(n / bucket)`` of
  them), then each entry's signed level ``l`` in ``[-s, s]`` (stochastic rounding of
  ``s |x| / norm`` with its bucket's norm, so unbiased) stored as ``l + s`` in
  ``bit_length(2s)`` bits, bit-packed: ``4 + 4 ceil(n / bucket) + ceil(n * bits / 8)``
  bytes. Bucketing bounds the variance: one norm over a whole tensor of ``d`` entries gives
  variance up to ``min(d / s^2, sqrt(d) / s) ||x||^2``, which for a 200k-entry layer is
  about 100 times the update itself and made training diverge in our benchmark; with
  512-entry buckets the factor is at most ``sqrt(512) / s``.
* ``powersgd`` (Vogels et al. 2019), rank ``r``: a tensor of shape ``(rows, ...)`` with
  ``cols = prod(rest)`` is sent as ``P`` (rows x r) and ``Q`` (cols x r) float32 from one
  power iteration from a random ``Q`` (``M ~ P Q^T``) when ``r (rows + cols) < rows cols``,
  else as ``n`` dense float32 values.

Non-finite input stays non-finite after decoding (int8 and QSGD decode it as NaN), so the
coordinator rejects it instead of aggregating garbage.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from medsilo import wire
from medsilo.types import Weights

Shapes = Sequence[tuple[int, ...]]
U32 = struct.Struct("<I")
U32_F32 = struct.Struct("<If")
#: Entries top-k scans at a time when gathering its indices.
_CHUNK = 1 << 20


class DecodeError(ValueError):
    """A payload does not decode to the expected layout."""


class Codec(ABC):
    name: ClassVar[str]
    #: Lossless codecs never need error feedback.
    lossless: ClassVar[bool] = False

    @abstractmethod
    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        """The bytes sent for ``delta``; ``rng`` drives stochastic codecs (QSGD, PowerSGD)."""

    @abstractmethod
    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        """Float32 arrays of ``shapes``; raises :class:`DecodeError` on a malformed payload."""

    def encode_with_residual(
        self, target: Weights, rng: np.random.Generator | None = None
    ) -> tuple[bytes, Weights]:
        """``(encode(target), target - decode(encode(target)))``: what error feedback keeps.
        A codec that knows what it drops without decoding overrides this (top-k)."""
        payload = self.encode(target, rng)
        sent = self.decode(payload, [t.shape for t in target])
        with np.errstate(invalid="ignore"):  # Inf - Inf: the caller drops it
            residual = [np.subtract(t, s, dtype=t.dtype) for t, s in zip(target, sent, strict=True)]
        return payload, residual


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


class _Reader:
    """Sequential reads from a payload that fail with a :class:`DecodeError`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(
                f"payload truncated: need {n} bytes at offset {self.pos}, have "
                f"{len(self.data) - self.pos}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def array(self, dtype: str, count: int) -> NDArray[np.generic]:
        width = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(width * count), dtype=dtype).copy()

    def count(self, expected: int, what: str) -> None:
        (n,) = U32.unpack(self.take(U32.size))
        if n != expected:
            raise DecodeError(f"{what} announces {n} values, the layout has {expected}")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} trailing bytes")


def _f32(x: NDArray[np.generic]) -> NDArray[np.float32]:
    return np.ascontiguousarray(x, dtype=np.float32).ravel()


class NoCompression(Codec):
    name: ClassVar[str] = "none"
    lossless: ClassVar[bool] = True

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        return wire.encode(delta)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        try:
            return wire.decode(data, shapes)
        except (ValueError, struct.error) as err:
            raise DecodeError(str(err)) from None


class Fp16(Codec):
    name: ClassVar[str] = "fp16"

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        parts: list[bytes] = []
        with np.errstate(over="ignore"):
            for w in delta:
                flat = _f32(w)
                parts += [U32.pack(flat.size), flat.astype("<f2").tobytes()]
        return b"".join(parts)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        r = _Reader(data)
        out: Weights = []
        for shape in shapes:
            r.count(_size(shape), "fp16 tensor")
            out.append(r.array("<f2", _size(shape)).astype(np.float32).reshape(shape))
        r.done()
        return out


class Int8(Codec):
    name: ClassVar[str] = "int8"

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        parts: list[bytes] = []
        for w in delta:
            flat = _f32(w)
            amax = float(np.max(np.abs(flat))) if flat.size else 0.0
            if not math.isfinite(amax):
                scale, q = math.nan, np.zeros(flat.size, np.int8)
            else:
                scale = amax / 127.0 if amax > 0 else 1.0
                q = np.clip(np.rint(flat / np.float32(scale)), -127, 127).astype(np.int8)
            parts += [U32_F32.pack(flat.size, scale), q.tobytes()]
        return b"".join(parts)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        r = _Reader(data)
        out: Weights = []
        for shape in shapes:
            n, scale = U32_F32.unpack(r.take(U32_F32.size))
            if n != _size(shape):
                raise DecodeError(f"int8 tensor announces {n} values, the layout has {shape}")
            q = r.array("i1", n).astype(np.float32)
            out.append((q * np.float32(scale)).reshape(shape))
        r.done()
        return out


# --- top-k --------------------------------------------------------------------------------


def varint_encode(values: NDArray[np.integer]) -> bytes:
    """LEB128: 7 bits per byte, low bits first, high bit set on every byte but the last."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size == 0:
        return b""
    lengths = np.ones(v.size, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        lengths += rest > 0
        rest >>= np.uint64(7)
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    for j in range(int(lengths.max())):
        has = lengths > j
        chunk = (v[has] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (lengths[has] > j + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + j] = (chunk | more).astype(np.uint8)
    return out.tobytes()


def varint_decode(buf: NDArray[np.uint8], count: int) -> tuple[NDArray[np.int64], int]:
    """The first ``count`` varints of ``buf`` and the number of bytes they take."""
    if count == 0:
        return np.zeros(0, dtype=np.int64), 0
    ends = np.flatnonzero(buf < 0x80)[:count]
    if ends.size < count:
        raise DecodeError(f"payload truncated inside {count} varint indices")
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 5:
        raise DecodeError("varint index longer than 5 bytes")
    used = int(ends[-1]) + 1
    pos = np.arange(used) - np.repeat(starts, lengths)
    parts = (buf[:used] & 0x7F).astype(np.int64) << (7 * pos)
    return np.add.reduceat(parts, starts), used


def topk_count(fraction: float, size: int) -> int:
    """Entries top-k keeps out of ``size``: ``round(fraction * size)``, at least 1."""
    return min(size, max(1, round(fraction * size))) if size else 0


class TopK(Codec):
    name: ClassVar[str] = "topk"

    def __init__(self, fraction: float = 0.01) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"top-k fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def select(self, flat: NDArray[np.float32]) -> NDArray[np.int64]:
        """Sorted indices of the ``k`` largest-magnitude entries (exactly ``k``).

        The ``k``-th largest magnitude is found by partitioning one float32 copy of the
        magnitudes in place; the entries above it, then the first entries equal to it (in
        index order) up to ``k``, are gathered a chunk at a time. No int64 index array of
        the whole update is made (an argpartition would make one, twice the update's size).
        """
        k = topk_count(self.fraction, flat.size)
        if k == flat.size:
            return np.arange(flat.size, dtype=np.int64)
        mag = _magnitudes(flat)
        mag.partition(flat.size - k)
        threshold = mag[flat.size - k]
        del mag
        above: list[NDArray[np.int64]] = []
        ties: list[NDArray[np.int64]] = []
        missing = k
        for start in range(0, flat.size, _CHUNK):
            part = _magnitudes(flat[start : start + _CHUNK])
            above.append(np.flatnonzero(part > threshold) + start)
            missing -= above[-1].size
        for start in range(0, flat.size, _CHUNK):
            if missing <= 0:
                break
            part = _magnitudes(flat[start : start + _CHUNK])
            ties.append((np.flatnonzero(part == threshold) + start)[:missing])
            missing -= ties[-1].size
        return np.sort(np.concatenate(above + ties)).astype(np.int64)

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        return self._encode_flat(_flat_f32(delta))

    def _encode_flat(self, flat: NDArray[np.float32]) -> bytes:
        return self._payload(flat, self.select(flat))

    @staticmethod
    def _payload(flat: NDArray[np.float32], idx: NDArray[np.int64]) -> bytes:
        gaps = np.diff(idx, prepend=0)
        return U32.pack(idx.size) + varint_encode(gaps) + flat[idx].astype("<f4").tobytes()

    def encode_with_residual(
        self, target: Weights, rng: np.random.Generator | None = None
    ) -> tuple[bytes, Weights]:
        """Top-k knows what it drops: the residual is the flattened target with the sent
        entries zeroed (``x - x``, so a non-finite entry stays non-finite), made in the one
        flat copy the encoding needs (no decoding)."""
        flat = _flat_f32(target)
        idx = self.select(flat)
        payload = self._payload(flat, idx)
        with np.errstate(invalid="ignore"):  # Inf - Inf = NaN, as decoding would give
            flat[idx] -= flat[idx]  # zero where finite: what was sent is no longer owed
        return payload, _split(flat, [t.shape for t in target], copy=False)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        total = sum(_size(s) for s in shapes)
        r = _Reader(data)
        (k,) = U32.unpack(r.take(U32.size))
        if k > total:
            raise DecodeError(f"top-k payload announces {k} entries of {total}")
        gaps, used = varint_decode(np.frombuffer(data, np.uint8, offset=r.pos), k)
        r.take(used)
        if k > 1 and (gaps[1:] <= 0).any():
            raise DecodeError("top-k indices are not strictly increasing")
        idx = np.cumsum(gaps)
        if k and idx[-1] >= total:
            raise DecodeError(f"top-k index {int(idx[-1])} out of range for {total} entries")
        values = r.array("<f4", k)
        r.done()
        flat = np.zeros(total, dtype=np.float32)
        flat[idx] = values
        return _split(flat, shapes, copy=False)  # disjoint views of a vector made here


def _split(flat: NDArray[np.float32], shapes: Shapes, copy: bool = True) -> Weights:
    """``flat`` cut into ``shapes``; ``copy=False``: views of ``flat`` (the caller's own)."""
    out: Weights = []
    pos = 0
    for shape in shapes:
        n = _size(shape)
        part = flat[pos : pos + n].reshape(shape)
        out.append(part.copy() if copy else part)
        pos += n
    return out


def _flat_f32(weights: Weights) -> NDArray[np.float32]:
    """One new float32 vector of all of ``weights`` (the caller owns it)."""
    if not weights:
        return np.zeros(0, np.float32)
    return np.concatenate([np.asarray(w, dtype=np.float32).ravel() for w in weights])


def _magnitudes(flat: NDArray[np.float32]) -> NDArray[np.float32]:
    """``|flat|`` with NaN as +Inf: a NaN entry is sent, so the coordinator sees it."""
    mag = np.abs(flat)
    mag[np.isnan(mag)] = np.inf
    return mag


# --- QSGD ---------------------------------------------------------------------------------


def _pack_bits(values: NDArray[np.integer], bits: int) -> bytes:
    planes = (values.astype(np.uint32)[:, None] >> np.arange(bits, dtype=np.uint32)) & 1
    return np.packbits(planes.astype(np.uint8).ravel(), bitorder="little").tobytes()


def _unpack_bits(raw: NDArray[np.uint8], count: int, bits: int) -> NDArray[np.int64]:
    planes = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(count, bits)
    out: NDArray[np.int64] = (planes.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(1)
    return out


class QSGD(Codec):
    name: ClassVar[str] = "qsgd"

    def __init__(self, levels: int = 4, bucket: int = 512) -> None:
        if not 1 <= levels <= 127:
            raise ValueError(f"QSGD levels must be in [1, 127], got {levels}")
        if bucket < 1:
            raise ValueError(f"QSGD bucket size must be >= 1, got {bucket}")
        self.levels = levels
        self.bucket = bucket
        self.bits = (2 * levels).bit_length()

    def _buckets(self, n: int) -> int:
        return math.ceil(n / self.bucket)

    def _bucket_norms(self, flat: NDArray[np.float64]) -> NDArray[np.float64]:
        padded = np.zeros(self._buckets(flat.size) * self.bucket)
        padded[: flat.size] = flat
        norms: NDArray[np.float64] = np.sqrt(np.square(padded.reshape(-1, self.bucket)).sum(axis=1))
        return norms

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        if rng is None:
            raise ValueError("QSGD rounds stochastically: pass a random generator")
        s = self.levels
        parts: list[bytes] = []
        for w in delta:
            flat = _f32(w).astype(np.float64)
            norms = self._bucket_norms(flat).astype(np.float32)
            level = np.zeros(flat.size, np.int64)
            if flat.size and np.isfinite(norms).all():
                per_entry = np.repeat(norms.astype(np.float64), self.bucket)[: flat.size]
                safe = np.where(per_entry > 0, per_entry, 1.0)
                scaled = np.minimum(np.abs(flat) / safe * s, s)
                low = np.floor(scaled)
                up = rng.random(flat.size) < (scaled - low)
                level = (np.sign(flat) * (low + up)).astype(np.int64)
            else:  # keep a broken update broken so the coordinator rejects it
                norms = np.full_like(norms, np.nan)
            parts += [
                U32.pack(flat.size),
                norms.astype("<f4").tobytes(),
                _pack_bits(level + s, self.bits),
            ]
        return b"".join(parts)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        r = _Reader(data)
        s = self.levels
        out: Weights = []
        for shape in shapes:
            n = _size(shape)
            r.count(n, "qsgd tensor")
            norms = r.array("<f4", self._buckets(n)).astype(np.float64)
            raw = np.frombuffer(r.take(math.ceil(n * self.bits / 8)), dtype=np.uint8)
            stored = _unpack_bits(raw, n, self.bits) if n else np.zeros(0, np.int64)
            if (stored > 2 * s).any():
                raise DecodeError(f"qsgd level out of range for s={s}")
            level = (stored - s).astype(np.float64)
            per_entry = np.repeat(norms, self.bucket)[:n]
            out.append((level * (per_entry / s)).astype(np.float32).reshape(shape))
        r.done()
        return out


# --- PowerSGD -----------------------------------------------------------------------------


def _matrix_shape(shape: tuple[int, ...], rank: int) -> tuple[int, int] | None:
    """``(rows, cols)`` when a rank-``rank`` factorisation is smaller than the tensor."""
    if len(shape) < 2:
        return None
    rows, cols = shape[0], _size(shape[1:])
    return (rows, cols) if rank * (rows + cols) < rows * cols else None


class PowerSGD(Codec):
    name: ClassVar[str] = "powersgd"

    def __init__(self, rank: int = 4) -> None:
        if rank < 1:
            raise ValueError(f"PowerSGD rank must be >= 1, got {rank}")
        self.rank = rank

    def encode(self, delta: Weights, rng: np.random.Generator | None = None) -> bytes:
        if rng is None:
            raise ValueError("PowerSGD starts from a random Q: pass a random generator")
        parts: list[bytes] = []
        for w in delta:
            dims = _matrix_shape(w.shape, self.rank)
            if dims is None:
                parts.append(_f32(w).astype("<f4").tobytes())
                continue
            m = np.asarray(w, dtype=np.float64).reshape(dims)
            q = rng.standard_normal((dims[1], self.rank))
            if np.isfinite(m).all():
                p, _ = np.linalg.qr(m @ q)
                q = m.T @ p
            else:  # keep it non-finite so the coordinator rejects it
                p, q = np.full((dims[0], self.rank), np.nan), np.full_like(q, np.nan)
            parts += [p.astype("<f4").tobytes(), q.astype("<f4").tobytes()]
        return b"".join(parts)

    def decode(self, data: bytes, shapes: Shapes) -> Weights:
        r = _Reader(data)
        out: Weights = []
        for shape in shapes:
            dims = _matrix_shape(shape, self.rank)
            if dims is None:
                out.append(r.array("<f4", _size(shape)).astype(np.float32).reshape(shape))
                continue
            p = r.array("<f4", dims[0] * self.rank).reshape(dims[0], self.rank)
            q = r.array("<f4", dims[1] * self.rank).reshape(dims[1], self.rank)
            prod = p.astype(np.float64) @ q.astype(np.float64).T
            out.append(prod.astype(np.float32).reshape(shape))
        r.done()
        return out
