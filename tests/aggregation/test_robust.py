"""Byzantine-robust rules on constructed inputs with known honest and outlying rows."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.aggregation import robust


def honest_and_outliers(
    n_honest: int = 5, f: int = 2, d: int = 20, seed: int = 0, colluding: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``n_honest`` rows near ``center`` followed by ``f`` huge rows; returns (X, center)."""
    rng = np.random.default_rng(seed)
    center = rng.normal(size=d)
    honest = center + 0.1 * rng.normal(size=(n_honest, d))
    if colluding:  # a tight cluster of their own, far away (what fools plain distances)
        bad = -10 * center + 0.01 * rng.normal(size=(f, d))
    else:
        bad = 100 * rng.normal(size=(f, d))
    return np.vstack([honest, bad]), center


def test_pairwise_distances_match_brute_force() -> None:
    x = np.random.default_rng(1).normal(size=(6, 7))
    d = robust.pairwise_sq_distances(x)
    for i in range(6):
        for j in range(6):
            assert d[i, j] == pytest.approx(np.sum((x[i] - x[j]) ** 2))


def test_krum_scores_by_hand() -> None:
    # 1-d points 0, 1, 3, 10, 20 with f=1: each score sums the n - f - 2 = 2 nearest.
    x = np.array([[0.0], [1.0], [3.0], [10.0], [20.0]])
    assert robust.krum_scores(x, 1).tolist() == [1 + 9, 1 + 4, 4 + 9, 49 + 81, 100 + 289]
    assert robust.krum(x, 1) == 1


@pytest.mark.parametrize("colluding", [True, False])
def test_krum_picks_a_row_of_the_honest_cluster(colluding: bool) -> None:
    x, _ = honest_and_outliers(colluding=colluding)
    assert robust.krum(x, f=2) < 5


@pytest.mark.parametrize("colluding", [True, False])
def test_multi_krum_keeps_exactly_the_honest_rows(colluding: bool) -> None:
    x, _ = honest_and_outliers(colluding=colluding)
    assert robust.multi_krum(x, f=2) == [0, 1, 2, 3, 4]
    assert robust.multi_krum(x, f=2, m=3) == sorted(robust.multi_krum(x, f=2, m=3))
    assert set(robust.multi_krum(x, f=2, m=3)) <= {0, 1, 2, 3, 4}


def test_krum_needs_enough_updates() -> None:
    x, _ = honest_and_outliers(n_honest=4, f=2)  # 6 < 2f + 3
    with pytest.raises(ValueError, match="at least 7 updates, got 6"):
        robust.krum(x, f=2)
    with pytest.raises(ValueError, match="between 1 and 7"):
        robust.multi_krum(honest_and_outliers()[0], f=2, m=8)


@pytest.mark.parametrize("colluding", [True, False])
def test_median_and_trimmed_mean_ignore_f_outliers(colluding: bool) -> None:
    x, center = honest_and_outliers(colluding=colluding)
    plain_error = np.abs(x.mean(axis=0) - center).max()
    median_error = np.abs(robust.coordinate_median(x) - center).max()
    trimmed_error = np.abs(robust.trimmed_mean(x, trim=2 / 7) - center).max()
    assert plain_error > 2.0
    assert median_error < 0.3 and trimmed_error < 0.3


def test_trimmed_mean_drops_floor_trim_n_at_each_end() -> None:
    x = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    assert robust.trim_count(5, 0.2) == 1
    assert robust.trimmed_mean(x, 0.2)[0] == pytest.approx(3.0)
    assert robust.trimmed_mean(x, 0.0)[0] == pytest.approx(22.0)
    with pytest.raises(ValueError, match="trim"):
        robust.trimmed_mean(x, 0.5)


def test_median_per_coordinate() -> None:
    x = np.array([[1.0, -5.0], [2.0, 0.0], [50.0, 7.0]])
    assert robust.coordinate_median(x).tolist() == [2.0, 0.0]


def test_norm_bound_scales_long_rows_only() -> None:
    x = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-30.0, 40.0]])
    out = robust.norm_bound(x, max_norm=1.0)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(out[0], [0.6, 0.8])  # direction kept
    np.testing.assert_array_equal(out[1], x[1])


def test_bulyan_ignores_outliers_and_needs_4f_plus_3() -> None:
    x, center = honest_and_outliers(n_honest=6, f=1)  # n = 7 = 4f + 3
    sel = robust.bulyan_selection(x, f=1)
    assert len(sel) == 5 and all(i < 6 for i in sel)
    assert np.abs(robust.bulyan(x, f=1) - center).max() < 0.3
    with pytest.raises(ValueError, match="at least 11 updates"):
        robust.bulyan(x, f=2)


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        robust.coordinate_median(np.zeros((0, 3)))
