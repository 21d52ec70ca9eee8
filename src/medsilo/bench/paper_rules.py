"""The second pass's measures and decision rules (docs/ccpgd.md §10), as pure functions.

Kept apart from the runner so that every rule is unit-tested on hand-made numbers:

* :func:`to_target`: bytes-to-target and seconds-to-target from a run's round records;
* :func:`reduction` and :func:`paired_interval`: per-seed reductions against FedAvg with the
  same seed and codec, and the 95 % t-interval of those paired numbers;
* :func:`reduction_verdict` / :func:`gap_verdict`: holds / does not hold / inconclusive;
* :func:`measurable` / :func:`amended_verdict`: Amendment 1 (a) of §10: a reduction against a
  FedAvg baseline of 0 is "not measurable (0/0)" and its verdict "no evidence either way";
* :func:`primary_reduction`: Amendment 1 (b): the membership advantage carries the primary
  leakage where the inversion reduction is not measurable;
* :func:`choose_operating_point`: §10's rule on the tuning seed;
* :func:`dominance`: the point-by-point frontier-dominance verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
#: Amendment 1 (a): the verdict of a reduction whose FedAvg baseline is 0, and how the
#: reduction itself is reported (never as 0 % or 100 %).
NO_EVIDENCE = "no evidence either way"
NOT_MEASURABLE = "not measurable (0/0)"
#: The paper's lower numbers, used only as thresholds (§10).
LEAKAGE_THRESHOLD = 0.23
COMMUNICATION_THRESHOLD = 0.18
GAP_THRESHOLD_PTS = 2.0
TARGET_SHARE = 0.95
#: "within 1 accuracy point" of the frontier-dominance rule, as a fraction of accuracy.
DOMINANCE_ACC_TOL = 0.01


@dataclass(frozen=True)
class ToTarget:
    """Cost to the first round at or above the target; ``round is None``: not reached
    (infinite bytes and seconds, §10)."""

    round: int | None
    bytes: float
    seconds: float


def to_target(rounds: Sequence[Mapping[str, Any]], target: float) -> ToTarget:
    """Uplink + downlink bytes and simulated seconds of every round up to and including the
    first whose test accuracy is at or above ``target``. Rounds without a test evaluation
    are paid for but cannot reach the target."""
    total_bytes = 0.0
    seconds = 0.0
    for r in rounds:
        # pooled training sends nothing: its records carry no bytes or seconds
        total_bytes += float(r["bytes_up"] or 0) + float(r["bytes_down"] or 0)
        seconds += float(r["sim_time_s"] or 0)
        test = r.get("test")
        if test is not None and float(test["accuracy"]) >= target:
            return ToTarget(int(r["round"]), total_bytes, seconds)
    return ToTarget(None, math.inf, math.inf)


def reduction(method: float, fedavg: float) -> float:
    """``1 - method / fedavg``: the share saved against FedAvg (negative: worse).

    Infinite costs (target not reached) follow the limits: FedAvg never reaching the target
    while the method does is a saving of 1; the method never reaching it while FedAvg does
    is ``-inf``; neither reaching it, or a zero baseline, is undefined (NaN).
    """
    if math.isinf(fedavg) and math.isinf(method):
        return math.nan
    if math.isinf(fedavg):
        return 1.0
    if math.isinf(method):
        return -math.inf
    if fedavg == 0:
        return math.nan
    return 1.0 - method / fedavg


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def paired_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Two-sided t-interval of the mean of per-seed paired values.

    Fewer than two finite values give no interval (NaN bounds, so every verdict is
    inconclusive); a non-finite value makes the mean and bounds that value's kind (an
    infinite per-seed difference cannot be averaged into a finite interval).
    """
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0 or any(math.isnan(v) for v in vals):
        return Interval(math.nan, math.nan, math.nan, n)
    if any(math.isinf(v) for v in vals):
        inf = sum(vals)  # +inf, -inf or nan when both signs occur
        return Interval(inf, inf if n > 1 else math.nan, inf if n > 1 else math.nan, n)
    mean = float(np.mean(vals))
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    from scipy import stats  # type: ignore[import-untyped]

    sem = float(np.std(vals, ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    return Interval(mean, mean - half, mean + half, n)


def reduction_verdict(interval: Interval, threshold: float) -> str:
    """Holds when the lower bound is at or above the threshold, does not hold when the upper
    bound is below it, otherwise (and with no interval) inconclusive."""
    if not math.isnan(interval.low) and interval.low >= threshold:
        return HOLDS
    if not math.isnan(interval.high) and interval.high < threshold:
        return FAILS
    return INCONCLUSIVE


def measurable(baselines: Sequence[float]) -> bool:
    """Amendment 1 (a): a reduction ``1 - L / L_FedAvg`` is measurable only when no seed's
    FedAvg baseline is 0. One zero baseline among the seeds leaves that seed's paired value
    undefined, so the interval over the seeds, and the reduction, is not measurable."""
    return all(b != 0 for b in baselines)


def amended_verdict(interval: Interval, baselines: Sequence[float], threshold: float) -> str:
    """:func:`reduction_verdict`, except that a reduction with a zero FedAvg baseline on any
    seed gives "no evidence either way" (Amendment 1 (a)), never holds or does not hold."""
    if not measurable(baselines):
        return NO_EVIDENCE
    return reduction_verdict(interval, threshold)


def primary_reduction(
    inversion: float, inversion_fedavg: float, membership: float, membership_fedavg: float
) -> float:
    """The primary leakage reduction of one run against its same-seed, same-codec FedAvg:
    the inversion-success reduction, or, when FedAvg's inversion success is 0 (not
    measurable, Amendment 1 (a)), the membership-advantage reduction, which then carries the
    primary leakage alone (Amendment 1 (b)); NaN when neither is measurable."""
    if measurable([inversion_fedavg]):
        return reduction(inversion, inversion_fedavg)
    if measurable([membership_fedavg]):
        return reduction(membership, membership_fedavg)
    return math.nan


def gap_verdict(interval: Interval, threshold_pts: float = GAP_THRESHOLD_PTS) -> str:
    """ "Within 2 % of centralised" holds when the gap's upper bound is at most 2 points.

    §10 states only when it holds; we mirror the reduction rule for the rest: it does not
    hold when the lower bound is above 2 points, otherwise it is inconclusive.
    """
    if not math.isnan(interval.high) and interval.high <= threshold_pts:
        return HOLDS
    if not math.isnan(interval.low) and interval.low > threshold_pts:
        return FAILS
    return INCONCLUSIVE


def joint_verdict(verdicts: Sequence[str]) -> str:
    """The joint claim holds only when every claim holds, fails when any fails; otherwise it
    is "no evidence either way" when a claim has none (Amendment 1 (a)), else inconclusive."""
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == FAILS for v in verdicts):
        return FAILS
    if any(v == NO_EVIDENCE for v in verdicts):
        return NO_EVIDENCE
    return INCONCLUSIVE


@dataclass(frozen=True)
class Candidate:
    """One CC-PGD grid point on the tuning seed, next to FedAvg with the same codec."""

    label: str
    leakage_reduction: float
    bytes_to_target: float
    fedavg_bytes_to_target: float
    gap_to_pooled_pts: float


def choose_operating_point(candidates: Sequence[Candidate]) -> Candidate | None:
    """§10: the largest primary leakage reduction among the points whose bytes-to-target is
    at most FedAvg's (same codec) and whose accuracy gap to pooled is at most 2 points;
    ``None`` when no point qualifies. Ties go to the earlier candidate (grid order)."""
    eligible = [
        c
        for c in candidates
        if c.bytes_to_target <= c.fedavg_bytes_to_target
        and c.gap_to_pooled_pts <= GAP_THRESHOLD_PTS
        and not math.isnan(c.leakage_reduction)
    ]
    if not eligible:
        return None
    best = max(c.leakage_reduction for c in eligible)
    return next(c for c in eligible if c.leakage_reduction == best)


@dataclass(frozen=True)
class Point:
    """A method's point in a setting's (leakage, bytes-to-target) plane."""

    label: str
    leakage: float
    bytes_to_target: float
    accuracy: float


@dataclass(frozen=True)
class Domination:
    other: str
    dominated_by: str | None


def _no_worse_and_better(a: Point, b: Point) -> bool:
    no_worse = a.leakage <= b.leakage and a.bytes_to_target <= b.bytes_to_target
    better = a.leakage < b.leakage or a.bytes_to_target < b.bytes_to_target
    return no_worse and better


def dominance(
    ccpgd: Sequence[Point], other: Sequence[Point], acc_tol: float = DOMINANCE_ACC_TOL
) -> list[Domination]:
    """For each point of another family, the first CC-PGD point within ``acc_tol`` accuracy
    of it that is no worse on both axes and better on at least one (``None``: none is).
    Points with an unmeasured (NaN) leakage cannot be dominated nor dominate."""
    out = []
    for o in other:
        winner = next(
            (
                c.label
                for c in ccpgd
                if abs(c.accuracy - o.accuracy) <= acc_tol + 1e-12
                and not math.isnan(c.leakage)
                and not math.isnan(o.leakage)
                and _no_worse_and_better(c, o)
            ),
            None,
        )
        out.append(Domination(o.label, winner))
    return out


def dominance_verdict(results: Sequence[Domination]) -> str:
    """CC-PGD's frontier dominates the family when every one of its points is dominated."""
    if not results:
        return INCONCLUSIVE
    return HOLDS if all(r.dominated_by is not None for r in results) else FAILS
