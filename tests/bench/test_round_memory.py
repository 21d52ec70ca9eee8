"""Peak memory of one round with a 4-million-parameter model (16 MB), as multiples of it.

The bounds are the ones docs/scale.md ("Large updates") states; they are in bytes traced
by ``tracemalloc`` (:mod:`medsilo.bench.round_memory`), so they do not depend on the
machine's load. Before the chunked masks, encodings and top-k selection, a secure
aggregation site peaked at 7x the model and a top-k site at 8x: these tests fail on
that code.
"""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.bench.round_memory import secure_round, synthetic_delta, synthetic_shapes, topk_round
from medsilo.types import weighted_mean

PARAMS = 4_000_000
SITES = 3


def _expected_mean(shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    deltas = [synthetic_delta(shapes, i) for i in range(1, SITES + 1)]
    return weighted_mean(deltas, [10.0 * i for i in range(1, SITES + 1)])


@pytest.mark.parametrize("graph", ["complete", "harary"])
def test_secure_aggregation_round_stays_within_its_memory_bound(graph: str) -> None:
    shapes = synthetic_shapes(PARAMS)
    got = secure_round(shapes, SITES, graph)
    assert got.multiple("site") < 4.5  # delta, encoding, masked vector, its message
    assert got.multiple("coordinator") < SITES + 6.5  # n masked vectors + sum + decoding
    for g, e in zip(got.global_delta, _expected_mean(shapes), strict=True):
        np.testing.assert_allclose(g, e, atol=1e-6)  # the bench measures a real round


def test_topk_error_feedback_round_stays_within_its_memory_bound() -> None:
    shapes = synthetic_shapes(PARAMS)
    got = topk_round(shapes, SITES)
    assert got.multiple("site") < 5.5  # delta, residual, target, flat copy, magnitudes
    assert got.multiple("coordinator") < SITES + 3.5  # n decoded updates + the mean
    kept = sum(int(np.count_nonzero(d)) for d in got.global_delta)
    assert 0 < kept <= SITES * round(0.01 * PARAMS)
