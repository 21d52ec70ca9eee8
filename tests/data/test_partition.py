"""Partitioners: disjoint, complete where they should be, reproducible, and skewed as named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from medsilo.data import (
    dirichlet_partition,
    iid_partition,
    match_label_mix,
    quantity_skew_partition,
    shard_partition,
)

Parts = list[NDArray[np.int64]]
LABELS = np.repeat(np.arange(10), 200)  # 2,000 samples, 10 balanced classes
np.random.default_rng(0).shuffle(LABELS)


def _assert_disjoint_sorted(parts: Parts) -> NDArray[np.int64]:
    for p in parts:
        assert p.dtype == np.int64
        assert np.all(np.diff(p) > 0), "indices must be sorted and unique within a site"
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    assert len(np.unique(flat)) == len(flat), "an index was given to two sites"
    return flat


def _covers(parts: Parts, n: int) -> bool:
    return sorted(_assert_disjoint_sorted(parts).tolist()) == list(range(n))


def _same(a: Parts, b: Parts) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _mean_entropy(parts: Parts, labels: NDArray[np.int64]) -> float:
    ents = []
    for p in parts:
        q = np.bincount(labels[p], minlength=10) / len(p)
        q = q[q > 0]
        ents.append(float(-(q * np.log(q)).sum()))
    return float(np.mean(ents))


# --- iid -------------------------------------------------------------------------------------


def test_iid_near_equal_and_reproducible() -> None:
    parts = iid_partition(103, 10, seed=1)
    assert _covers(parts, 103)
    assert {len(p) for p in parts} == {10, 11}
    assert _same(parts, iid_partition(103, 10, seed=1))
    assert not _same(parts, iid_partition(103, 10, seed=2))


@pytest.mark.parametrize(("n", "sites", "match"), [(10, 0, "num_sites"), (3, 4, "more sites")])
def test_iid_bad_arguments(n: int, sites: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        iid_partition(n, sites, seed=0)


# --- dirichlet -------------------------------------------------------------------------------


def test_dirichlet_covers_everything_and_is_reproducible() -> None:
    parts = dirichlet_partition(LABELS, 8, alpha=0.5, seed=3)
    assert _covers(parts, len(LABELS))
    assert min(len(p) for p in parts) >= 10
    assert _same(parts, dirichlet_partition(LABELS, 8, alpha=0.5, seed=3))
    assert not _same(parts, dirichlet_partition(LABELS, 8, alpha=0.5, seed=4))


def test_dirichlet_small_alpha_is_more_skewed() -> None:
    skewed = [_mean_entropy(dirichlet_partition(LABELS, 10, 0.1, s), LABELS) for s in range(5)]
    mild = [_mean_entropy(dirichlet_partition(LABELS, 10, 100.0, s), LABELS) for s in range(5)]
    assert max(skewed) < min(mild)
    assert min(mild) > 0.95 * np.log(10)  # alpha=100 is close to IID


def test_dirichlet_min_size_is_honoured() -> None:
    for seed in range(5):
        parts = dirichlet_partition(LABELS, 20, alpha=0.1, seed=seed, min_size=40)
        assert min(len(p) for p in parts) >= 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_sites": 0}, "num_sites must be >= 1"),
        ({"alpha": 0.0}, "alpha must be > 0"),
        ({"alpha": -1.0}, "alpha must be > 0"),
        ({"num_sites": 3000}, "more sites than samples"),
        ({"min_size": 300}, "min_size=300 .* 3000 samples"),
    ],
)
def test_dirichlet_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    args = {"num_sites": 10, "alpha": 0.5, "min_size": 10} | kwargs
    with pytest.raises(ValueError, match=match):
        dirichlet_partition(
            LABELS, int(args["num_sites"]), args["alpha"], 0, min_size=int(args["min_size"])
        )


def test_dirichlet_gives_up_after_max_tries() -> None:
    labels = np.repeat([0, 1], 50)
    with pytest.raises(ValueError, match="no draw in 1000 tries"):
        dirichlet_partition(labels, 10, alpha=0.01, seed=0, min_size=10)


# --- shards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sites", "k"), [(10, 2), (5, 2), (3, 4), (20, 1), (7, 3)])
def test_shards_exactly_k_labels_per_site(sites: int, k: int) -> None:
    parts = shard_partition(LABELS, sites, k, seed=0)
    flat = _assert_disjoint_sorted(parts)
    for p in parts:
        assert len(np.unique(LABELS[p])) == k
    # Every label has a holder when sites * k >= 10, so nothing is left out.
    assert len(flat) == len(LABELS)
    # A label's samples are split evenly among its holders.
    for c in range(10):
        sizes = [int(np.sum(LABELS[p] == c)) for p in parts if np.any(LABELS[p] == c)]
        assert max(sizes) - min(sizes) <= 1


def test_shards_too_few_slots_leave_labels_out() -> None:
    parts = shard_partition(LABELS, 2, 3, seed=0)
    used = np.unique(LABELS[np.concatenate(parts)])
    assert all(len(np.unique(LABELS[p])) == 3 for p in parts)
    assert len(used) == 6  # round-robin dealing: 2 sites x 3 labels, none shared


def test_shards_reproducible_and_bad_arguments() -> None:
    assert _same(shard_partition(LABELS, 10, 2, 5), shard_partition(LABELS, 10, 2, 5))
    assert not _same(shard_partition(LABELS, 10, 2, 5), shard_partition(LABELS, 10, 2, 6))
    with pytest.raises(ValueError, match="classes_per_site=11 but the labels have only 10"):
        shard_partition(LABELS, 10, 11, 0)
    with pytest.raises(ValueError, match="classes_per_site must be >= 1"):
        shard_partition(LABELS, 10, 0, 0)
    with pytest.raises(ValueError, match="got no samples"):
        shard_partition(np.array([0, 0, 1]), 3, 1, 0)


# --- quantity skew ---------------------------------------------------------------------------


def test_quantity_skew_sizes_vary_with_alpha() -> None:
    n = 5000
    skew = quantity_skew_partition(n, 10, alpha=0.3, seed=0)
    flat = quantity_skew_partition(n, 10, alpha=1000.0, seed=0)
    assert _covers(skew, n) and _covers(flat, n)
    assert min(len(p) for p in skew) >= 10
    assert np.std([len(p) for p in skew]) > 5 * np.std([len(p) for p in flat])
    assert _same(skew, quantity_skew_partition(n, 10, alpha=0.3, seed=0))
    assert not _same(skew, quantity_skew_partition(n, 10, alpha=0.3, seed=1))
    with pytest.raises(ValueError, match="alpha must be > 0"):
        quantity_skew_partition(n, 10, alpha=0, seed=0)


# --- match_label_mix -------------------------------------------------------------------------


def test_match_label_mix_follows_train_mix() -> None:
    train_parts = dirichlet_partition(LABELS, 5, alpha=0.3, seed=0)
    test_labels = np.repeat(np.arange(10), 50)
    test_parts = match_label_mix(test_labels, train_parts, LABELS, seed=0)
    assert _covers(test_parts, len(test_labels))
    for c in range(10):
        train_counts = np.array([np.sum(LABELS[p] == c) for p in train_parts])
        test_counts = np.array([np.sum(test_labels[p] == c) for p in test_parts])
        expected = 50 * train_counts / train_counts.sum()
        assert np.all(np.abs(test_counts - expected) < 1)  # largest-remainder rounding
        assert np.all(test_counts[train_counts == 0] == 0)


def test_match_label_mix_unseen_class_still_assigned() -> None:
    train_labels = np.array([0, 0, 0, 1, 1, 1])
    parts = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    test = np.array([0, 1, 2, 2, 2, 2])  # class 2 is in no site's training data
    out = match_label_mix(test, parts, train_labels, seed=0)
    assert _covers(out, 6)
    assert out[0].tolist()[0] == 0 and 1 in out[1].tolist()
    assert sorted(len(p) for p in out) == [3, 3]


# --- properties ------------------------------------------------------------------------------

label_arrays = st.lists(st.integers(0, 4), min_size=1, max_size=200).map(
    lambda v: np.array(v, dtype=np.int64)
)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), sites=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_prop_iid(n: int, sites: int, seed: int) -> None:
    if sites > n:
        with pytest.raises(ValueError):
            iid_partition(n, sites, seed)
        return
    parts = iid_partition(n, sites, seed)
    assert len(parts) == sites and _covers(parts, n)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@settings(max_examples=60, deadline=None)
@given(
    labels=label_arrays,
    sites=st.integers(1, 8),
    alpha=st.floats(0.05, 50.0),
    min_size=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_prop_dirichlet(
    labels: NDArray[np.int64], sites: int, alpha: float, min_size: int, seed: int
) -> None:
    try:
        parts = dirichlet_partition(labels, sites, alpha, seed, min_size=min_size)
    except ValueError as err:
        assert sites > len(labels) or min_size * sites > len(labels) or "tries" in str(err)
        return
    assert len(parts) == sites and _covers(parts, len(labels))
    assert min(map(len, parts)) >= min_size


@settings(max_examples=60, deadline=None)
@given(
    labels=label_arrays,
    sites=st.integers(1, 8),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_prop_shards(labels: NDArray[np.int64], sites: int, k: int, seed: int) -> None:
    num_classes = len(np.unique(labels))
    try:
        parts = shard_partition(labels, sites, k, seed)
    except ValueError as err:
        assert sites > len(labels) or k > num_classes or "got no samples" in str(err)
        return
    flat = _assert_disjoint_sorted(parts)
    assert all(len(np.unique(labels[p])) <= k for p in parts)
    if sites * k >= num_classes:
        assert len(flat) == len(labels)
    counts = np.bincount(labels)
    if all(counts[c] >= sites for c in np.unique(labels)):
        assert all(len(np.unique(labels[p])) == k for p in parts)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    sites=st.integers(1, 8),
    alpha=st.floats(0.1, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_prop_quantity_skew(n: int, sites: int, alpha: float, seed: int) -> None:
    min_size = min(5, n // sites) if sites <= n else 0
    try:
        parts = quantity_skew_partition(n, sites, alpha, seed, min_size=min_size)
    except ValueError as err:
        assert sites > n or "tries" in str(err)
        return
    assert len(parts) == sites and _covers(parts, n)
    assert min(map(len, parts)) >= min_size


@settings(max_examples=60, deadline=None)
@given(train=label_arrays, test=label_arrays, sites=st.integers(1, 6), seed=st.integers(0, 99))
def test_prop_match_label_mix(
    train: NDArray[np.int64], test: NDArray[np.int64], sites: int, seed: int
) -> None:
    parts = np.array_split(np.random.default_rng(seed).permutation(len(train)), sites)
    out = match_label_mix(test, parts, train, seed)
    assert len(out) == sites and _covers(out, len(test))
    for c in np.unique(test):
        held = [bool(np.any(train[p] == c)) for p in parts]
        if any(held):  # sites that never train on c get none of its test samples
            for o, h in zip(out, held, strict=True):
                assert h or not np.any(test[o] == c)
