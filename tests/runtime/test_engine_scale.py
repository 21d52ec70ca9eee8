"""The engine at many sites: a round's work follows its cohort, not the roster (docs/scale.md).

Counts, never timings: which sites a round trains and scores, and how many per-site
evaluations a run makes, with 200 tiny sites and a cohort of 5.
"""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.config import ConfigError, RunConfig
from medsilo.runtime.clinical import ClinicalMetrics
from medsilo.runtime.cohorts import refuse_cohort_evaluation
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation

SITES = 200
COHORT = 5
ROUNDS = 3


def many_sites_config(evaluated: str) -> RunConfig:
    return small_config(
        training={
            "rounds": ROUNDS,
            "local_steps": 2,
            "batch_size": 4,
            "lr": 0.1,
            "fraction": COHORT / SITES,
        },
        evaluation={"sites": evaluated, "bootstrap_replicates": 5},
    )


def test_cohort_evaluation_scores_only_the_sampled_sites(monkeypatch: pytest.MonkeyPatch) -> None:
    fed = synthetic_federation(num_sites=SITES, n=8)
    scored: list[str] = []
    report_for = ClinicalMetrics.report_for

    def counting(self: ClinicalMetrics, prep, site, weights, last):  # type: ignore[no-untyped-def]
        scored.append(site)
        return report_for(self, prep, site, weights, last)

    monkeypatch.setattr(ClinicalMetrics, "report_for", counting)
    result = run_federation(many_sites_config("cohort"), fed)
    assert len(result.rounds) == ROUNDS
    for rec in result.rounds:
        assert len(rec["sites"]) == COHORT
        assert set(rec["per_site"]) == set(rec["sites"])
        assert set(rec["metrics"]["per_site"]) == set(rec["sites"])
        assert rec["test"]["n"] == len(fed.test)  # the pooled test set, whole, every time
    assert scored == [site for rec in result.rounds for site in rec["sites"]]


def test_all_sites_evaluation_is_the_default_and_scores_the_roster() -> None:
    fed = synthetic_federation(num_sites=12, n=8)
    cfg = small_config(training={"rounds": 2, "local_steps": 2, "batch_size": 4, "fraction": 0.25})
    assert cfg.evaluation.sites == "all"
    cohort = cfg.with_overrides(evaluation=cfg.evaluation.model_dump() | {"sites": "cohort"})
    every, sampled = run_federation(cfg, fed), run_federation(cohort, fed)
    for a, b in zip(every.rounds, sampled.rounds, strict=True):
        assert set(a["per_site"]) == set(fed.site_names)
        assert a["sites"] == b["sites"] and a["test"] == b["test"]  # same training either way
        for site in b["sites"]:
            assert a["per_site"][site] == b["per_site"][site]
    for x, y in zip(every.weights, sampled.weights, strict=True):
        np.testing.assert_array_equal(x, y)


def test_cohort_evaluation_is_refused_where_it_cannot_run() -> None:
    with pytest.raises(ConfigError, match="no rounds of sampled sites"):
        small_config(
            asynchrony={"mode": "fedbuff", "buffer_size": 2},
            evaluation={"sites": "cohort"},
        )
    with pytest.raises(ValueError, match="in-process engine only, not in the Flower ServerApp"):
        refuse_cohort_evaluation("cohort", "the Flower ServerApp")
    refuse_cohort_evaluation("all", "the Flower ServerApp")  # the default runs anywhere
