"""Shapley values of a cooperative game, exactly or by Monte Carlo permutation sampling.

Players are ``0 .. n-1`` and ``utility`` maps a coalition (a frozenset of players) to a
number. The Shapley value of player ``i`` is its marginal contribution averaged over all
orders in which the players can join:

    phi_i = sum_{S subset N minus {i}} |S|! (n - |S| - 1)! / n!  * (v(S + {i}) - v(S))

It is the unique attribution with *efficiency* (``sum_i phi_i = v(N) - v(empty)``),
*symmetry* (interchangeable players get equal values) and the *null player* property (a
player that never changes the utility gets 0).

:func:`exact_shapley` evaluates all ``2^n`` coalitions (cheap for the few sites of a
cross-silo federation). :func:`monte_carlo_shapley` samples permutations and averages
marginal contributions along each, with two tricks from GTG-Shapley (Liu et al. 2022):

* *guided sampling*: permutation ``k`` starts with player ``k mod n``, so every player is
  seen joining the empty coalition equally often (the largest marginals usually are there);
* *within-permutation truncation*: once ``|v(N) - v(prefix)| <= tolerance`` the remaining
  players in that permutation get marginal 0 without evaluating the utility.

With ``tolerance=0`` the estimator is unbiased; with truncation it trades a small bias for
fewer utility evaluations (each one a model evaluation in :mod:`medsilo.contribution.gtg`).
Every utility value is cached per coalition, so repeated coalitions cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

Utility = Callable[[frozenset[int]], float]


class CachedUtility:
    """``utility`` evaluated at most once per coalition; counts the real evaluations."""

    def __init__(self, utility: Utility) -> None:
        self._utility = utility
        self._cache: dict[frozenset[int], float] = {}

    def __call__(self, coalition: frozenset[int]) -> float:
        if coalition not in self._cache:
            self._cache[coalition] = float(self._utility(coalition))
        return self._cache[coalition]

    @property
    def evaluations(self) -> int:
        return len(self._cache)


@dataclass(frozen=True)
class ShapleyEstimate:
    values: list[float]
    #: How many distinct coalitions were evaluated.
    evaluations: int
    #: 0 for the exact computation.
    permutations: int


def exact_shapley(num_players: int, utility: Utility) -> ShapleyEstimate:
    """All ``2^n`` coalitions; meant for ``n`` up to about 12 (here: sites of a federation)."""
    if num_players < 1:
        raise ValueError("a game needs at least one player")
    v = CachedUtility(utility)
    n = num_players
    weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    values = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        total = 0.0
        for size in range(n):
            for subset in combinations(others, size):
                s = frozenset(subset)
                total += weight[size] * (v(s | {i}) - v(s))
        values.append(total)
    return ShapleyEstimate(values, v.evaluations, 0)


def monte_carlo_shapley(
    num_players: int,
    utility: Utility,
    permutations: int,
    seed: int,
    tolerance: float = 0.0,
) -> ShapleyEstimate:
    """Average marginal contributions over ``permutations`` guided random orders."""
    if num_players < 1:
        raise ValueError("a game needs at least one player")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    v = CachedUtility(utility)
    n = num_players
    rng = np.random.default_rng(seed)
    grand = v(frozenset(range(n)))
    totals = np.zeros(n)
    for k in range(permutations):
        first = k % n
        rest = [j for j in range(n) if j != first]
        order = [first] + [rest[j] for j in rng.permutation(len(rest))]
        prefix: frozenset[int] = frozenset()
        previous = v(prefix)
        for player in order:
            if tolerance > 0 and abs(grand - previous) <= tolerance:
                break  # truncated: the remaining players add (almost) nothing
            prefix = prefix | {player}
            current = v(prefix)
            totals[player] += current - previous
            previous = current
    return ShapleyEstimate([float(t / permutations) for t in totals], v.evaluations, permutations)


def shapley(
    num_players: int,
    utility: Utility,
    exact_up_to: int,
    permutations: int,
    seed: int,
    tolerance: float = 0.0,
) -> ShapleyEstimate:
    """Exact for ``num_players <= exact_up_to``, Monte Carlo otherwise."""
    if num_players <= exact_up_to:
        return exact_shapley(num_players, utility)
    return monte_carlo_shapley(num_players, utility, permutations, seed, tolerance)
