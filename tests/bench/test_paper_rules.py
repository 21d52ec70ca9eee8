"""docs/ccpgd.md §10's measures and decision rules on hand-made numbers."""

from __future__ import annotations

import math

import pytest
from scipy import stats  # type: ignore[import-untyped]

from medsilo.bench.paper_rules import (
    COMMUNICATION_THRESHOLD,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    LEAKAGE_THRESHOLD,
    NO_EVIDENCE,
    Candidate,
    Interval,
    Point,
    amended_verdict,
    choose_operating_point,
    dominance,
    dominance_verdict,
    gap_verdict,
    joint_verdict,
    measurable,
    paired_interval,
    primary_reduction,
    reduction,
    reduction_verdict,
    to_target,
)


def _round(i: int, acc: float | None, up: int = 100, down: int = 50, s: float = 0.5) -> dict:
    r: dict = {"round": i, "bytes_up": up, "bytes_down": down, "sim_time_s": s}
    if acc is not None:
        r["test"] = {"accuracy": acc}
    return r


def test_to_target_counts_every_round_up_to_the_first_at_target() -> None:
    rounds = [_round(1, 0.5), _round(2, None), _round(3, 0.9), _round(4, 0.95)]
    hit = to_target(rounds, 0.9)
    assert hit.round == 3
    assert hit.bytes == 3 * 150  # uplink + downlink of rounds 1-3, the unevaluated one too
    assert hit.seconds == pytest.approx(1.5)
    missed = to_target(rounds, 0.99)
    assert missed.round is None and math.isinf(missed.bytes) and math.isinf(missed.seconds)


def test_reduction_handles_unreached_targets() -> None:
    assert reduction(75.0, 100.0) == pytest.approx(0.25)
    assert reduction(120.0, 100.0) == pytest.approx(-0.2)
    assert reduction(10.0, math.inf) == 1.0
    assert reduction(math.inf, 10.0) == -math.inf
    assert math.isnan(reduction(math.inf, math.inf))
    assert math.isnan(reduction(0.0, 0.0))


def test_paired_interval_is_the_student_t_interval() -> None:
    values = [0.30, 0.25, 0.35]
    iv = paired_interval(values)
    low, high = stats.t.interval(0.95, 2, loc=0.30, scale=stats.sem(values))
    assert iv.mean == pytest.approx(0.30)
    assert (iv.low, iv.high) == (pytest.approx(low), pytest.approx(high))
    one = paired_interval([0.4])
    assert one.mean == 0.4 and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(paired_interval([0.1, math.nan, 0.2]).mean)
    assert paired_interval([0.1, -math.inf, 0.2]).high == -math.inf


def test_reduction_verdicts() -> None:
    t = LEAKAGE_THRESHOLD
    assert reduction_verdict(Interval(0.4, t, 0.5, 3), t) == HOLDS
    assert reduction_verdict(Interval(0.1, 0.0, t - 1e-9, 3), t) == FAILS
    assert reduction_verdict(Interval(0.2, 0.1, 0.3, 3), t) == INCONCLUSIVE
    assert reduction_verdict(paired_interval([0.9]), COMMUNICATION_THRESHOLD) == INCONCLUSIVE
    assert reduction_verdict(paired_interval([-math.inf] * 3), t) == FAILS


def test_gap_and_joint_verdicts() -> None:
    assert gap_verdict(Interval(1.0, 0.0, 2.0, 3)) == HOLDS
    assert gap_verdict(Interval(3.0, 2.5, 3.5, 3)) == FAILS
    assert gap_verdict(Interval(2.0, 1.0, 3.0, 3)) == INCONCLUSIVE
    assert joint_verdict([HOLDS, HOLDS, HOLDS]) == HOLDS
    assert joint_verdict([HOLDS, INCONCLUSIVE, HOLDS]) == INCONCLUSIVE
    assert joint_verdict([HOLDS, FAILS, INCONCLUSIVE]) == FAILS


def test_a_zero_fedavg_baseline_is_no_evidence_either_way_never_a_verdict() -> None:
    """Amendment 1 (a): FedAvg reconstructs nothing, so 1 - L / L_FedAvg is 0/0; however
    the interval reads, the reduction gives no evidence, and a joint claim resting on it
    neither holds nor is inconclusive, unless another claim fails."""
    t = LEAKAGE_THRESHOLD
    assert measurable([0.2, 0.1, 0.3]) and not measurable([0.2, 0.0, 0.3])
    assert math.isnan(reduction(0.0, 0.0)) and math.isnan(reduction(0.5, 0.0))
    huge = Interval(0.9, 0.8, 1.0, 3)  # would hold, were the baselines measurable
    assert amended_verdict(huge, [0.2, 0.1, 0.3], t) == HOLDS
    assert amended_verdict(huge, [0.2, 0.0, 0.3], t) == NO_EVIDENCE
    assert amended_verdict(Interval(0.0, -0.1, 0.1, 3), [0.0, 0.0, 0.0], t) == NO_EVIDENCE
    assert amended_verdict(paired_interval([0.1, 0.1, 0.1]), [1.0] * 3, t) == FAILS
    assert joint_verdict([NO_EVIDENCE, HOLDS, HOLDS]) == NO_EVIDENCE
    assert joint_verdict([NO_EVIDENCE, INCONCLUSIVE, HOLDS]) == NO_EVIDENCE
    assert joint_verdict([NO_EVIDENCE, FAILS, HOLDS]) == FAILS


def test_the_membership_advantage_carries_the_primary_leakage_when_inversion_is_0_over_0() -> None:
    """Amendment 1 (b): where FedAvg's inversion success is 0, the primary reduction (the
    operating point's criterion) is the membership advantage's."""
    assert primary_reduction(0.2, 0.4, 0.01, 0.02) == pytest.approx(0.5)  # inversion measurable
    assert primary_reduction(0.0, 0.0, 0.01, 0.04) == pytest.approx(0.75)
    assert primary_reduction(0.3, 0.0, 0.03, 0.02) == pytest.approx(-0.5)
    assert math.isnan(primary_reduction(0.0, 0.0, 0.01, 0.0))


def test_operating_point_rule() -> None:
    cands = [
        Candidate("most private, too many bytes", 0.9, 120.0, 100.0, 0.5),
        Candidate("private, too inaccurate", 0.8, 90.0, 100.0, 2.5),
        Candidate("eligible", 0.4, 100.0, 100.0, 2.0),
        Candidate("eligible, less private", 0.3, 50.0, 100.0, 0.0),
        Candidate("unmeasured", math.nan, 50.0, 100.0, 0.0),
    ]
    chosen = choose_operating_point(cands)
    assert chosen is not None and chosen.label == "eligible"
    assert choose_operating_point(cands[:2]) is None


def test_frontier_dominance_point_by_point() -> None:
    ccpgd = [Point("a", 0.2, 100.0, 0.900), Point("b", 0.1, 300.0, 0.800)]
    other = [
        Point("worse on both", 0.3, 200.0, 0.905),
        Point("equal", 0.2, 100.0, 0.900),  # no worse but not better: not dominated
        Point("cheaper", 0.5, 50.0, 0.900),
        Point("far in accuracy", 0.9, 900.0, 0.850),  # no CC-PGD point within 1 point
        Point("dominated by b", 0.15, 400.0, 0.795),
    ]
    result = {d.other: d.dominated_by for d in dominance(ccpgd, other)}
    assert result == {
        "worse on both": "a",
        "equal": None,
        "cheaper": None,
        "far in accuracy": None,
        "dominated by b": "b",
    }
    assert dominance_verdict(dominance(ccpgd, other)) == FAILS
    assert dominance_verdict(dominance(ccpgd, other[:1])) == HOLDS
    unmeasured = [Point("x", math.nan, 10.0, 0.9)]
    assert dominance(unmeasured, other[:1])[0].dominated_by is None
