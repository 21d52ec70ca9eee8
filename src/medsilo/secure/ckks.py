"""Homomorphic aggregation with CKKS (TenSEAL): the alternative to pairwise masking.

A key holder (one site, or a key authority that never sees ciphertexts from the
coordinator's side) creates a CKKS context and gives the sites the full context and the
coordinator the public one (:class:`CKKSKeys`). Sites encrypt their weighted update in
chunks of ``poly_modulus / 2`` slots (:func:`encrypt_vector`); the coordinator adds the
ciphertexts slot-wise with the public context only (:func:`sum_ciphertexts`), and the key
holder decrypts the sum alone (:func:`decrypt_sum`). A site that drops out is simply missing
from the sum: there is no recovery phase, but the threat model is different from masking:
the key holder must not collude with the coordinator (it could decrypt any single update).

Parameters (defaults): polynomial modulus 8192 (4096 slots a ciphertext), coefficient
moduli ``[60, 40, 40, 60]`` bits, scale ``2**40``: about 128-bit security (SEAL's table for
N = 8192 allows 218 bits) and, for sums of values of order 1, an absolute error of order
``1e-6`` or below (measured in the tests). Costs are measured by ``medsilo bench secagg``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tenseal as ts  # type: ignore[import-untyped]
from numpy.typing import NDArray


@dataclass(frozen=True)
class CKKSKeys:
    """Serialized contexts: ``secret`` (the key holder's), ``public`` (everyone else's)."""

    secret: bytes
    public: bytes
    poly_modulus: int

    @property
    def slots(self) -> int:
        """Values packed in one ciphertext."""
        return self.poly_modulus // 2

    @classmethod
    def generate(cls, poly_modulus: int = 8192, scale_bits: int = 40) -> CKKSKeys:
        bits = [60, scale_bits, scale_bits, 60]
        ctx = ts.context(
            ts.SCHEME_TYPE.CKKS, poly_modulus_degree=poly_modulus, coeff_mod_bit_sizes=bits
        )
        ctx.global_scale = 2.0**scale_bits
        secret = ctx.serialize(save_secret_key=True)
        ctx.make_context_public()
        return cls(secret=secret, public=ctx.serialize(), poly_modulus=poly_modulus)


def load_context(serialized: bytes) -> ts.Context:
    """A context from its bytes (done once per round by each party)."""
    return ts.context_from(serialized)


def chunks_for(length: int, slots: int) -> int:
    return -(-length // slots)


def encrypt_vector(ctx: ts.Context, x: NDArray[np.floating], slots: int) -> list[bytes]:
    """A site's vector as serialized ciphertexts of ``slots`` values each (public key only)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    return [
        ts.ckks_vector(ctx, flat[i : i + slots].tolist()).serialize()
        for i in range(0, flat.size, slots)
    ]


def sum_ciphertexts(ctx: ts.Context, sites: list[list[bytes]]) -> list[bytes]:
    """Slot-wise sum of every site's chunks, computed without the secret key."""
    if not sites:
        raise ValueError("no ciphertexts to sum")
    if ctx.is_private():
        raise ValueError("the coordinator must not hold the secret key")
    if len({len(chunks) for chunks in sites}) != 1:
        raise ValueError("sites sent different numbers of ciphertext chunks")
    totals = [ts.ckks_vector_from(ctx, c) for c in sites[0]]
    for chunks in sites[1:]:
        for acc, c in zip(totals, chunks, strict=True):
            acc.add_(ts.ckks_vector_from(ctx, c))
    return [t.serialize() for t in totals]


def decrypt_sum(ctx: ts.Context, chunks: list[bytes], length: int) -> NDArray[np.float64]:
    """The key holder's decryption of a summed vector of ``length`` values."""
    if not ctx.is_private():
        raise ValueError("decryption needs the key holder's secret context")
    values = np.concatenate([np.array(ts.ckks_vector_from(ctx, c).decrypt()) for c in chunks])
    if values.size < length:
        raise ValueError(f"the ciphertexts hold {values.size} values, expected {length}")
    return values[:length].astype(np.float64)
