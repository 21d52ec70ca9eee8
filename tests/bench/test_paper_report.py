"""The second pass's report on hand-made outcomes: how docs/ccpgd.md §10, Amendment 1, reads
a FedAvg inversion success of 0 (not measurable; the membership advantage carries the
leakage verdict alone)."""

from __future__ import annotations

import math
from typing import Any

from medsilo.bench.paper_report import per_run, table, verdict_markdown, verdicts
from medsilo.bench.paper_rules import FAILS, HOLDS, NO_EVIDENCE, NOT_MEASURABLE
from medsilo.bench.paper_second import Outcome

SETTING = "mnist-iid"
POINT = {"none": (0.1, 0.02)}
CCPGD = "ccpgd lam=0.1 mu=0.02"


def _rounds(accuracies: list[float], bytes_each: int) -> list[dict[str, Any]]:
    return [
        {
            "round": i + 1,
            "bytes_up": bytes_each,
            "bytes_down": bytes_each,
            "sim_time_s": 1.0,
            "test": {"accuracy": a},
        }
        for i, a in enumerate(accuracies)
    ]


def _outcome(
    seed: int,
    family: str,
    label: str,
    inversion: float | None,
    advantage: float,
    tpr: float,
    b: int,
) -> Outcome:
    leakage = {
        "inversion_success": inversion,
        "inversion_success_by_site": {"s0": inversion, "s1": inversion},
        "exposed_sites": ["s1"],
        "membership_advantage": advantage,
        "membership_tpr_at_low_fpr": tpr,
    }
    return Outcome(
        SETTING,
        seed,
        family,
        label,
        "none",
        {},
        0.95,
        _rounds([0.5, 0.95], b),
        None,
        None,
        None,
        leakage,
        1.0,
        1.0,
    )


def _runs(fedavg_inversion: float) -> list[dict[str, Any]]:
    outcomes = []
    for seed in (0, 1, 2):
        outcomes += [
            # a pooled run's inversion is not measured: None, as LeakageMeasures.as_dict has it
            _outcome(seed, "pooled", "pooled", None, 0.0, 0.0, 0),
            _outcome(seed, "fedavg", "fedavg", fedavg_inversion, 0.04, 0.010, 100),
            # CC-PGD: no inversion either, membership advantage a half of FedAvg's (+- a bit),
            # the same bytes: communication does not hold, the leakage can
            _outcome(seed, "ccpgd", CCPGD, 0.0, 0.02 + 0.001 * seed, 0.0, 100),
        ]
    return per_run(outcomes)


def test_a_zero_fedavg_inversion_is_not_measurable_and_membership_carries_the_verdict() -> None:
    runs = _runs(fedavg_inversion=0.0)
    rows = {(r["family"], r["method"]): r for r in table(runs)}
    pooled = rows[("pooled", "pooled")]
    assert math.isnan(pooled["inversion_success"])
    assert math.isnan(pooled["inversion_success_exposed"])
    assert rows[("fedavg", "fedavg")]["inversion_success_exposed"] == 0.0
    # never 0 % or 100 %: CC-PGD's and FedAvg's own inversion reductions are 0/0
    assert rows[("ccpgd", CCPGD)]["leakage_reduction"] == NOT_MEASURABLE
    assert rows[("fedavg", "fedavg")]["leakage_reduction"] == NOT_MEASURABLE
    assert rows[("ccpgd", CCPGD)]["membership_reduction"] != NOT_MEASURABLE
    (v,) = verdicts(runs, POINT)
    assert v["leakage_verdict"] == NO_EVIDENCE
    assert not v["leakage_reduction"]["measurable"]
    assert v["membership_verdict"] == HOLDS  # 1 - 0.021 / 0.04 = 0.475 >= 0.23
    assert v["leakage_verdict_carried_by"].startswith("membership advantage alone")
    assert v["communication_verdict"] == FAILS  # same bytes: reduction 0 < 0.18
    assert v["joint_verdict_inversion"] == FAILS  # a failing claim still fails the joint one
    assert v["joint_verdict_membership"] == FAILS
    text = verdict_markdown([v])
    assert NOT_MEASURABLE in text and NO_EVIDENCE in text


def test_a_measured_fedavg_inversion_is_judged_on_both_primary_measures() -> None:
    runs = _runs(fedavg_inversion=0.5)
    rows = {(r["family"], r["method"]): r for r in table(runs)}
    assert rows[("ccpgd", CCPGD)]["leakage_reduction"] == 1.0  # 1 - 0 / 0.5
    (v,) = verdicts(runs, POINT)
    assert v["leakage_reduction"]["measurable"]
    assert v["leakage_verdict"] == HOLDS
    assert v["leakage_verdict_carried_by"].startswith("inversion and membership")
    # FedAvg's TPR at 0.1 % FPR is 0.01, CC-PGD's 0: measurable, a full reduction
    assert v["tpr_verdict"] == HOLDS
