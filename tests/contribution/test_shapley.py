"""Exact and Monte Carlo Shapley values on toy games with known properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from medsilo.contribution.shapley import exact_shapley, monte_carlo_shapley, shapley


def weighted_game(weights: list[float], synergy: float = 0.0):
    """v(S) = sum of weights in S, plus ``synergy`` when players 0 and 1 are both in."""

    def v(s: frozenset[int]) -> float:
        return sum(weights[i] for i in s) + (synergy if {0, 1} <= s else 0.0)

    return v


def random_game(n: int, seed: int):
    rng = np.random.default_rng(seed)
    table = {
        frozenset(c): float(rng.normal())
        for size in range(n + 1)
        for c in itertools.combinations(range(n), size)
    }
    return lambda s: table[s]


def brute_force(n: int, v) -> list[float]:
    """Average marginal over every one of the n! orders (the definition)."""
    totals = [0.0] * n
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        prefix: frozenset[int] = frozenset()
        for p in order:
            totals[p] += v(prefix | {p}) - v(prefix)
            prefix = prefix | {p}
    return [t / len(orders) for t in totals]


def test_exact_matches_the_permutation_definition() -> None:
    v = random_game(4, seed=3)
    assert exact_shapley(4, v).values == pytest.approx(brute_force(4, v))


def test_efficiency_sum_equals_grand_coalition_gain() -> None:
    v = random_game(5, seed=1)
    values = exact_shapley(5, v).values
    assert sum(values) == pytest.approx(v(frozenset(range(5))) - v(frozenset()))


def test_symmetric_players_get_equal_values_and_synergy_is_split() -> None:
    values = exact_shapley(3, weighted_game([1.0, 1.0, 2.0], synergy=0.5)).values
    assert values[0] == pytest.approx(values[1])
    assert values[0] == pytest.approx(1.25)
    assert values[2] == pytest.approx(2.0)


def test_null_player_gets_zero() -> None:
    values = exact_shapley(4, weighted_game([0.3, 0.0, 1.0, -0.2])).values
    assert values[1] == pytest.approx(0.0)
    assert values == pytest.approx([0.3, 0.0, 1.0, -0.2])


def test_monte_carlo_converges_to_exact_on_four_players() -> None:
    v = random_game(4, seed=7)
    exact = np.array(exact_shapley(4, v).values)
    few = np.array(monte_carlo_shapley(4, v, permutations=8, seed=0).values)
    many = np.array(monte_carlo_shapley(4, v, permutations=4000, seed=0).values)
    assert np.abs(many - exact).max() < 0.05
    assert np.abs(many - exact).max() < np.abs(few - exact).max()


def test_monte_carlo_is_efficient_per_permutation_and_seeded() -> None:
    v = random_game(6, seed=2)
    a = monte_carlo_shapley(6, v, permutations=30, seed=5)
    b = monte_carlo_shapley(6, v, permutations=30, seed=5)
    assert a.values == b.values
    assert sum(a.values) == pytest.approx(v(frozenset(range(6))) - v(frozenset()))


def test_truncation_saves_evaluations_on_a_saturating_game() -> None:
    # any single player already reaches the grand coalition's utility
    def v(s: frozenset[int]) -> float:
        return 1.0 if s else 0.0

    full = monte_carlo_shapley(8, v, permutations=40, seed=0)
    truncated = monte_carlo_shapley(8, v, permutations=40, seed=0, tolerance=1e-9)
    assert truncated.evaluations < full.evaluations
    assert truncated.values == pytest.approx([1 / 8] * 8)


def test_shapley_switches_to_monte_carlo_above_the_exact_limit() -> None:
    v = weighted_game([1.0] * 5)
    assert shapley(5, v, exact_up_to=5, permutations=3, seed=0).permutations == 0
    assert shapley(5, v, exact_up_to=4, permutations=3, seed=0).permutations == 3


def test_games_need_players() -> None:
    with pytest.raises(ValueError, match="at least one player"):
        exact_shapley(0, lambda s: 0.0)
    with pytest.raises(ValueError, match="permutations"):
        monte_carlo_shapley(3, lambda s: 0.0, permutations=0, seed=0)
