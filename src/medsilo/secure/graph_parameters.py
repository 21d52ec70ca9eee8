"""SecAgg+'s neighbour count ``k`` and Shamir threshold ``t`` for a round of ``n`` sites.

Bell et al. (CCS 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead")
replace Bonawitz et al.'s complete graph by a random ``k``-regular graph (a Harary graph
``H(n, k)`` under a random permutation of the sites, :mod:`medsilo.secure.neighbour_graph`)
and prove the protocol secure and correct when the graph is "good" for the corrupt set
``C`` (at most ``gamma * n`` sites, colluding with the coordinator) and the dropout set
``D`` (at most ``delta * n`` sites). Under a random permutation a site's ``k`` neighbours
are a uniformly random ``k``-subset of the other ``n - 1`` sites, so each condition's
failure is a hypergeometric tail; a union bound over the ``n`` sites gives the round's
failure probability. The conditions (each site keeps a share of its own secrets too, so it
shares ``t``-of-``k + 1``):

* **security** (failure at most ``2**-sigma``, together with connectivity):
  ``|N(i) & C| <= 2t - k - 2`` for every site. A coordinator showing different survivor
  lists to different neighbours collects at most ``k + 1 + |N(i) & C|`` shares of site
  ``i``'s two secrets together, so it can never get ``t`` of both (the paper's condition for
  a malicious coordinator, ``2t > k + |N(i) & C|``, with the site's own share counted);
  with ``gamma = 0`` this is ``t > (k + 1) / 2``, the complete graph's ``t > n / 2``.
* **connectivity** (same budget): the honest survivors stay connected, so the masks cancel
  only in the total and the coordinator learns no partial sum. Removing ``r = |C| + |D|``
  sites disconnects ``H(n, k)`` only if some ``k / 2`` consecutive positions are all
  removed; bounded by ``n * C(r, k/2) / C(n, k/2)``.
* **correctness** (failure at most ``2**-eta``): every site keeps at least ``t`` neighbours
  that do not drop, ``|N(i) \\ D| >= t``, so each secret needed at unmasking can be
  reconstructed.

:func:`choose_graph` returns the smallest even ``k`` (below ``n - 1``) for which some ``t``
meets both budgets, with the smallest such ``t`` (the most dropouts beyond ``delta`` a
neighbourhood survives). If none does, every site is every other's neighbour (``k = n - 1``,
Bonawitz's graph) with the smallest ``t`` meeting the security condition. These are our
union bounds on the paper's conditions, not its closed-form parameter formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class GraphChoice:
    """``k`` neighbours per site, threshold ``t`` and the bounds they meet (as ``log2``)."""

    neighbours: int
    threshold: int
    security_log2: float
    correctness_log2: float


def _log_comb(n: int, r: int) -> float:
    """``ln C(n, r)``; ``-inf`` where ``C(n, r) = 0``."""
    if not 0 <= r <= n:
        return -math.inf
    return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)


def hypergeometric_tail(population: int, marked: int, draws: int, at_least: int) -> float:
    """``P[X >= at_least]`` for ``X`` marked items among ``draws`` drawn without replacement."""
    if at_least <= 0:
        return 1.0
    top = min(draws, marked)
    if at_least > top:
        return 0.0
    base = _log_comb(population, draws)
    return min(
        1.0,
        sum(
            math.exp(_log_comb(marked, x) + _log_comb(population - marked, draws - x) - base)
            for x in range(at_least, top + 1)
        ),
    )


def _log2(p: float) -> float:
    return -math.inf if p <= 0.0 else math.log2(p)


def security_log2(n: int, corrupt: int, removed: int, k: int, t: int) -> float:
    """``log2`` of the bound on a privacy failure for ``k`` neighbours and threshold ``t``."""
    allowed = 2 * t - k - 2  # most corrupt neighbours a site's secrets withstand
    if allowed < 0:
        return 0.0
    leaky = n * hypergeometric_tail(n - 1, corrupt, k, allowed + 1)
    if k >= n - 1:
        return _log2(leaky)
    half = k // 2
    gap = math.exp(_log_comb(removed, half) - _log_comb(n, half)) if removed >= half else 0.0
    return _log2(min(1.0, leaky + n * gap))


def correctness_log2(n: int, dropped: int, k: int, t: int) -> float:
    """``log2`` of the bound on some site keeping fewer than ``t`` surviving neighbours."""
    return _log2(min(1.0, n * hypergeometric_tail(n - 1, dropped, k, k - t + 1)))


@lru_cache(maxsize=64)
def choose_graph(
    n: int, gamma: float, delta: float, sigma: int, eta: int, neighbours: int | None = None
) -> GraphChoice:
    """``(k, t)`` for ``n`` sites, ``floor(gamma n)`` corrupt and ``floor(delta n)`` dropouts.

    ``neighbours`` fixes ``k`` (then only ``t`` is chosen); ``ValueError`` when no ``t``
    meets the security budget ``2**-sigma`` and the correctness budget ``2**-eta``."""
    if n < 2:
        raise ValueError(f"secure aggregation needs at least 2 sites a round, got {n}")
    corrupt, dropped = math.floor(gamma * n + 1e-9), math.floor(delta * n + 1e-9)
    if neighbours is not None:
        candidates = [min(neighbours, n - 1)]
    else:
        candidates = [*range(2, n - 1, 2), n - 1]
    for k in candidates:
        for t in range(k // 2 + 1, k + 2):
            sec = security_log2(n, corrupt, corrupt + dropped, k, t)
            if sec > -sigma:
                continue
            cor = correctness_log2(n, dropped, k, t)
            if cor <= -eta:
                return GraphChoice(k, t, sec, cor)
            break  # a larger t only makes correctness worse
    raise ValueError(
        f"no neighbour count{'' if neighbours is None else f' (k={neighbours})'} and "
        f"threshold meet a 2^-{sigma} security and 2^-{eta} correctness bound for {n} sites "
        f"with {corrupt} corrupt and {dropped} dropping out; lower "
        "secure_aggregation.corrupt_fraction or dropout_fraction"
    )
