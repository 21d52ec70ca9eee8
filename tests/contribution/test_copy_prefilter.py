"""The copy rule's prefilter skips only pairs the full comparison would reject."""

from __future__ import annotations

import numpy as np

from medsilo.contribution.copy_prefilter import SKETCH_COORDINATES, CopyPrefilter
from medsilo.contribution.free_riders import DetectionSettings, FreeRiderDetector
from medsilo.types import Update, flatten

DIM = 2_000
TOLERANCE = DetectionSettings().equal_tolerance


def _within(x: np.ndarray, y: np.ndarray) -> bool:
    """The full test the copy rule applies (relative to ``x``, the later update)."""
    return float(np.linalg.norm(x - y)) <= TOLERANCE * float(np.linalg.norm(x))


def _near_copies(original: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Copies of ``original`` moved by just under, and just over, the tolerance: along
    itself (only the norm changes), on the sketched coordinates only (the sketch bound is
    tight), on one unsketched coordinate, and in a random direction."""
    size = original.size
    sketched = np.zeros(size)
    sketched[np.linspace(0, size - 1, num=SKETCH_COORDINATES).astype(int)] = 1.0
    hidden = np.zeros(size)
    hidden[1] = 1.0
    directions = [original, sketched, hidden, rng.normal(size=size)]
    out = [original.copy()]
    for direction in directions:
        for factor in (0.999, 1.001):
            step = factor * TOLERANCE * float(np.linalg.norm(original))
            candidate = original + direction * step / float(np.linalg.norm(direction))
            out.append(candidate)
    return out


def test_no_copy_within_tolerance_is_ever_skipped() -> None:
    rng = np.random.default_rng(0)
    originals = [rng.normal(size=DIM) for _ in range(5)]
    updates = originals + [c for x in originals for c in _near_copies(x, rng)]
    norms = [float(np.linalg.norm(x)) for x in updates]
    prefilter = CopyPrefilter.of(updates, norms)
    within = 0
    for i, x in enumerate(updates):
        kept = set(prefilter.candidates(i, TOLERANCE))
        for j in range(i):
            if _within(x, updates[j]):
                within += 1
                assert j in kept, f"update {i} is a copy of {j} but the prefilter skipped it"
    assert within >= 5 * 5  # the exact copy and the four just-inside moves of each original


def test_the_prefilter_drops_unrelated_updates() -> None:
    rng = np.random.default_rng(1)
    updates = [rng.normal(size=DIM) for _ in range(50)]
    prefilter = CopyPrefilter.of(updates, [float(np.linalg.norm(x)) for x in updates])
    assert all(prefilter.candidates(i, TOLERANCE) == [] for i in range(len(updates)))


def test_zero_updates_are_never_candidates_and_tiny_vectors_work() -> None:
    updates = [np.zeros(3), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])]
    prefilter = CopyPrefilter.of(updates, [float(np.linalg.norm(x)) for x in updates])
    assert prefilter.candidates(1, TOLERANCE) == []
    assert prefilter.candidates(2, TOLERANCE) == [1]
    assert CopyPrefilter.of([], []).sketches.shape == (0, 0)


def test_copy_flags_equal_those_of_comparing_every_pair() -> None:
    """The detector with its prefilter against the all-pairs comparison it replaces, on
    rounds mixing honest updates with copies just inside and just outside the tolerance."""
    rng = np.random.default_rng(2)
    detector = FreeRiderDetector()
    expected: dict[str, list[int]] = {}
    for rnd in range(1, 4):
        honest = [rng.normal(size=DIM) for _ in range(6)]
        vectors = honest + [c for x in honest[:2] for c in _near_copies(x, rng)]
        order = rng.permutation(len(vectors))
        updates = [
            Update(f"s{k}", [vectors[k][:1500].copy(), vectors[k][1500:].copy()], 10, 1)
            for k in order
        ]
        flat = [flatten(u.delta).astype(np.float64) for u in updates]
        for i, u in enumerate(updates):
            if any(np.linalg.norm(flat[j]) > 0 and _within(flat[i], flat[j]) for j in range(i)):
                expected.setdefault(u.site, []).append(rnd)
        detector.observe(rnd, [np.zeros(1500), np.zeros(500)], updates)
    copies = {site: rounds for (site, rule), rounds in detector.hits.items() if rule == "copy"}
    assert copies == expected
    assert len(expected) > 2  # near copies arrived after their originals in some rounds
