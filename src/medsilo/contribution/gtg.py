"""GTG-Shapley: per-round Shapley values from models reconstructed out of the round's updates.

Retraining the federation for every coalition of sites costs ``2^n`` runs. Following the
"one-round reconstruction" of Song et al. (2019) and GTG-Shapley (Liu et al., 2022), each
round ``t`` instead defines a small game over the sites whose updates the coordinator
aggregated, using only what it already holds, the global weights ``w_t`` and the deltas
``delta_i`` with example counts ``n_i``:

    w_t(S) = w_t + eta * sum_{i in S} n_i delta_i / sum_{i in S} n_i      (w_t(empty) = w_t)
    v_t(S) = metric(w_t(S)) on the validation set

(``eta`` is the server SGD learning rate: exactly the FedAvg step restricted to ``S``). The
round's Shapley values ``phi_i^t`` are exact over all ``2^|cohort|`` coalitions for small
cohorts and Monte Carlo (guided permutations, truncation) otherwise
(:mod:`medsilo.contribution.shapley`). A site's score is ``sum_t phi_i^t``; a site outside a
round's cohort (sampled out, dropped, rejected) gets 0 for that round.

*Between-round truncation* (GTG, off by default): when ``round_tolerance > 0`` and
``|v_t(N) - v_t(empty)| <= round_tolerance`` the round barely moved the model and all its
values are set to 0 without evaluating any other coalition (an approximation: a round with
no net gain can still have a +a / -a split).

Efficiency holds per round, so the scores sum to ``sum_t (v_t(N) - v_t(empty))``: the
metric gain summed over rounds. Because ``w_{t+1}`` is the real aggregate of all sites,
this attributes each round's *step* and ignores how a site shaped later rounds' starting
points (the known bias of round-wise reconstruction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medsilo.contribution.shapley import shapley
from medsilo.types import Update, Weights, add, weighted_mean


@dataclass(frozen=True)
class GTGSettings:
    #: Exact Shapley over all coalitions up to this many updates in a round.
    exact_up_to: int = 4
    #: Monte Carlo permutations per round above ``exact_up_to``.
    permutations: int = 50
    seed: int = 0
    #: Within-permutation truncation (Monte Carlo only).
    tolerance: float = 0.0
    #: Between-round truncation (when > 0): a round whose full update moves the metric by at
    #: most this much gets all-zero values. 0 keeps every round exact.
    round_tolerance: float = 0.0


@dataclass(frozen=True)
class RoundShapley:
    round: int
    values: dict[str, float]
    utility_empty: float
    utility_all: float
    truncated: bool
    evaluations: int


def reconstruct(weights: Weights, updates: list[Update], server_lr: float) -> Weights:
    """``w + eta * (sample-weighted mean of the updates' deltas)``; ``w`` for no updates."""
    if not updates:
        return weights
    mean = weighted_mean([u.delta for u in updates], [float(u.num_examples) for u in updates])
    return add(weights, mean, server_lr)


@dataclass
class GTGShapley:
    """Accumulates round-wise Shapley values; feed it every aggregation with :meth:`observe`."""

    validator: Callable[[Weights], float]
    server_lr: float
    settings: GTGSettings = field(default_factory=GTGSettings)
    rounds: list[RoundShapley] = field(default_factory=list)

    def observe(self, rnd: int, weights: Weights, updates: list[Update]) -> RoundShapley:
        def utility(coalition: frozenset[int]) -> float:
            chosen = [updates[i] for i in sorted(coalition)]
            return self.validator(reconstruct(weights, chosen, self.server_lr))

        s = self.settings
        names = [u.site for u in updates]
        empty, full = utility(frozenset()), utility(frozenset(range(len(updates))))
        if s.round_tolerance > 0 and abs(full - empty) <= s.round_tolerance:
            result = RoundShapley(rnd, dict.fromkeys(names, 0.0), empty, full, True, 2)
        else:
            seed = int(np.random.SeedSequence([s.seed, rnd]).generate_state(1)[0])
            est = shapley(len(updates), utility, s.exact_up_to, s.permutations, seed, s.tolerance)
            values = dict(zip(names, est.values, strict=True))
            result = RoundShapley(rnd, values, empty, full, False, est.evaluations)
        self.rounds.append(result)
        return result

    def totals(self, site_names: list[str]) -> dict[str, float]:
        """``sum_t phi_i^t`` per site (0 for a site that never contributed an update)."""
        return {n: float(sum(r.values.get(n, 0.0) for r in self.rounds)) for n in site_names}
