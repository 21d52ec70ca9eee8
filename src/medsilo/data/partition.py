"""Splitting one central dataset across simulated sites (NIID-Bench style).

Real hospitals differ in how many patients they see and in their case mix; these partitioners
reproduce those skews on datasets that have no natural sites. Every function is a pure function
of its arguments and ``seed``, so an experiment's partition can be rebuilt from its config.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Parts = list[NDArray[np.int64]]
MAX_TRIES = 1000


def _check_sites(num_sites: int, n: int) -> None:
    if num_sites < 1:
        raise ValueError(f"num_sites must be >= 1, got {num_sites}")
    if num_sites > n:
        raise ValueError(
            f"cannot split {n} samples across {num_sites} sites: more sites than samples"
        )


def _check_alpha(alpha: float) -> None:
    if not alpha > 0:  # also rejects NaN
        raise ValueError(f"alpha must be > 0, got {alpha}")


def _check_min_size(min_size: int, num_sites: int, n: int) -> None:
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    if min_size * num_sites > n:
        raise ValueError(
            f"min_size={min_size} per site needs {min_size * num_sites} samples for "
            f"{num_sites} sites but there are only {n}"
        )


def _labels(labels: ArrayLike) -> NDArray[np.int64]:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _sorted_parts(parts: Sequence[ArrayLike]) -> Parts:
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def iid_partition(n: int, num_sites: int, seed: int) -> Parts:
    """Uniformly shuffled, sizes differing by at most one: the no-heterogeneity baseline."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_sites(num_sites, n)
    perm = np.random.default_rng(seed).permutation(n)
    return _sorted_parts(np.array_split(perm, num_sites))


def dirichlet_partition(
    labels: ArrayLike, num_sites: int, alpha: float, seed: int, min_size: int = 10
) -> Parts:
    """Label-distribution skew (NIID-Bench ``noniid-labeldir``): per class, the share each site
    gets is drawn from Dir(alpha); small alpha concentrates each class on few sites.

    As in NIID-Bench, a site that already holds its fair share (n / num_sites) gets no more
    of later classes, and the draw is repeated until every site has ``min_size`` samples.
    """
    y = _labels(labels)
    n = len(y)
    _check_sites(num_sites, n)
    _check_alpha(alpha)
    _check_min_size(min_size, num_sites, n)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(MAX_TRIES):
        parts: list[list[int]] = [[] for _ in range(num_sites)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            props = rng.dirichlet(np.full(num_sites, alpha))
            open_sites = np.array([len(p) < n / num_sites for p in parts])
            masked = props * open_sites
            # Tiny alpha can put all the mass on full sites; then fall back to the raw draw.
            props = masked / masked.sum() if masked.sum() > 0 else props
            cuts = (np.cumsum(props) * len(idx)).astype(np.int64)[:-1]
            for part, chunk in zip(parts, np.split(idx, cuts), strict=True):
                part.extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return _sorted_parts(parts)
    raise ValueError(
        f"dirichlet_partition: no draw in {MAX_TRIES} tries gave every one of {num_sites} sites "
        f"at least min_size={min_size} samples (n={n}, alpha={alpha}); "
        "use a larger alpha, fewer sites or a smaller min_size"
    )


def _assign_classes(
    classes: NDArray[np.int64], num_sites: int, k: int, rng: np.random.Generator
) -> list[list[int]]:
    """k distinct classes per site; dealing a shuffled class list round-robin first makes sure
    every class has a holder whenever num_sites * k covers them."""
    held: list[list[int]] = [[] for _ in range(num_sites)]
    order = rng.permutation(classes)
    for i, c in enumerate(order[: num_sites * k]):
        held[i % num_sites].append(int(c))
    for site in held:
        free = np.setdiff1d(classes, site)
        site.extend(int(c) for c in rng.choice(free, size=k - len(site), replace=False))
    return held


def shard_partition(labels: ArrayLike, num_sites: int, classes_per_site: int, seed: int) -> Parts:
    """Quantity-based label skew (NIID-Bench ``#C=k``): each site sees only k distinct labels,
    and the samples of a label are split evenly among the sites that hold it.

    Unlike NIID-Bench (site i always gets label i mod K), the labels are dealt at random but
    round-robin, so no label is left out when num_sites * k >= the number of labels. Labels
    with no holder (num_sites * k smaller) are left out of every site.
    """
    y = _labels(labels)
    n = len(y)
    _check_sites(num_sites, n)
    classes = np.unique(y)
    if classes_per_site < 1:
        raise ValueError(f"classes_per_site must be >= 1, got {classes_per_site}")
    if classes_per_site > len(classes):
        raise ValueError(
            f"classes_per_site={classes_per_site} but the labels have only {len(classes)} classes"
        )
    rng = np.random.default_rng(seed)
    held = _assign_classes(classes, num_sites, classes_per_site, rng)
    parts: list[list[int]] = [[] for _ in range(num_sites)]
    for c in classes:
        holders = [s for s in range(num_sites) if int(c) in held[s]]
        if not holders:
            continue
        idx = rng.permutation(np.flatnonzero(y == c))
        for s, chunk in zip(holders, np.array_split(idx, len(holders)), strict=True):
            parts[s].extend(chunk.tolist())
    empty = [s for s, p in enumerate(parts) if not p]
    if empty:
        raise ValueError(
            f"shard_partition: site(s) {empty} got no samples: their classes have fewer "
            "samples than sites holding them; use fewer sites or more classes_per_site"
        )
    return _sorted_parts(parts)


def quantity_skew_partition(
    n: int, num_sites: int, alpha: float, seed: int, min_size: int = 10
) -> Parts:
    """Quantity skew (NIID-Bench ``iid-diff-quantity``): site sizes ~ Dir(alpha), content IID.

    Models a federation of one large hospital and several small clinics with similar patients.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_sites(num_sites, n)
    _check_alpha(alpha)
    _check_min_size(min_size, num_sites, n)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    for _ in range(MAX_TRIES):
        props = rng.dirichlet(np.full(num_sites, alpha))
        cuts = (np.cumsum(props) * n).astype(np.int64)[:-1]
        parts = np.split(perm, cuts)
        if min(len(p) for p in parts) >= min_size:
            return _sorted_parts(parts)
    raise ValueError(
        f"quantity_skew_partition: no draw in {MAX_TRIES} tries gave every one of {num_sites} "
        f"sites at least min_size={min_size} samples (n={n}, alpha={alpha}); "
        "use a larger alpha, fewer sites or a smaller min_size"
    )


def _apportion(total: int, weights: NDArray[np.float64]) -> NDArray[np.int64]:
    """Integer counts summing to ``total`` closest to ``weights`` (largest remainder)."""
    exact: NDArray[np.float64] = total * weights / weights.sum()
    counts: NDArray[np.int64] = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def match_label_mix(
    test_labels: ArrayLike, train_parts: Sequence[ArrayLike], train_labels: ArrayLike, seed: int
) -> Parts:
    """Split a test set so that each site's test label mix follows its own train label mix.

    A skewed site should be evaluated on the population it serves. Each test sample goes to
    exactly one site; per class, sites get test samples in proportion to their train count of
    that class (largest-remainder rounding). A class that no site trains on is spread in
    proportion to the sites' train sizes so that no test sample is dropped.
    """
    y_test = _labels(test_labels)
    y_train = _labels(train_labels)
    if not train_parts:
        raise ValueError("train_parts is empty: need at least one site")
    parts_idx = [np.asarray(p, dtype=np.int64) for p in train_parts]
    for s, p in enumerate(parts_idx):
        if p.size and (p.min() < 0 or p.max() >= len(y_train)):
            raise ValueError(f"train_parts[{s}] has indices outside 0..{len(y_train) - 1}")
    sizes = np.array([len(p) for p in parts_idx], dtype=np.float64)
    if sizes.sum() == 0:
        raise ValueError("every site's train part is empty")
    rng = np.random.default_rng(seed)
    out: list[list[int]] = [[] for _ in parts_idx]
    for c in np.unique(y_test):
        counts = np.array([np.sum(y_train[p] == c) for p in parts_idx], dtype=np.float64)
        weights = counts if counts.sum() > 0 else sizes
        idx = rng.permutation(np.flatnonzero(y_test == c))
        cuts = np.cumsum(_apportion(len(idx), weights))[:-1]
        for site, chunk in zip(out, np.split(idx, cuts), strict=True):
            site.extend(chunk.tolist())
    return _sorted_parts(out)
