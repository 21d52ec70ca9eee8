"""Error feedback (Seide et al. 2014; Karimireddy et al. 2019) around any lossy codec.

A site adds what earlier rounds' compression dropped (its residual ``e``) to this round's
delta before encoding, and keeps the new residual ``delta + e - decode(encode(delta + e))``
for the next round. Nothing is lost for good, only delayed, which is what lets top-k at 1%
train almost as well as dense updates. The residual lives in the site's persistent state
under :data:`RESIDUAL_KEY`, so both runtimes keep it between the rounds a site is sampled in.
"""

from __future__ import annotations

import numpy as np

from medsilo.compression.codecs import Codec
from medsilo.types import Weights

RESIDUAL_KEY = "ef_residual"


def compress(
    codec: Codec,
    delta: Weights,
    residual: Weights | None,
    rng: np.random.Generator | None = None,
    error_feedback: bool = True,
) -> tuple[bytes, Weights | None]:
    """``(payload, new residual)``; the residual is ``None`` without error feedback.

    A non-finite residual (left by a broken update) is dropped rather than carried forever.
    """
    use_feedback = error_feedback and not codec.lossless
    target = delta
    if use_feedback and residual is not None:
        target = [np.add(d, e, dtype=d.dtype) for d, e in zip(delta, residual, strict=True)]
    if not use_feedback:
        return codec.encode(target, rng), None
    payload, new = codec.encode_with_residual(target, rng)
    if not all(np.isfinite(r).all() for r in new):
        new = [np.zeros_like(r) for r in new]
    return payload, new
