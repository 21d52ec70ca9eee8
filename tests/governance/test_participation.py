"""Cohorts and the consent window: expired or withdrawn cohorts do not train."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsilo.config import ConfigError
from medsilo.data.base import FederatedData
from medsilo.experiment import run_experiment
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config

COHORTS = {
    "h0": {"version": "2025-01", "collected_until": "2025-01-31"},
    "h1": {"version": "2026-10", "collected_until": "2026-10-31"},
    "h2": {"version": "2026-09", "collected_until": "2026-09-30"},
}


def test_an_expired_cohort_is_excluded_and_recorded(fed: FederatedData) -> None:
    cfg = small_config(
        governance={"cohorts": COHORTS, "consent": {"window_days": 365, "as_of": "2026-11-25"}}
    )
    result = run_federation(cfg, fed)
    for rec in result.rounds:
        assert rec["sites"] == ["h1", "h2"]
        assert rec["cohorts"] == {"h1": "2026-10", "h2": "2026-09"}
        assert "expired on 2026-01-31" in rec["absent_sites"]["h0"]
    assert "h0" not in result.rounds[0]["bytes_up_site"]


def test_a_cohort_inside_the_window_trains(fed: FederatedData) -> None:
    cfg = small_config(
        governance={"cohorts": COHORTS, "consent": {"window_days": 365, "as_of": "2026-01-31"}}
    )
    rec = run_federation(cfg, fed).rounds[0]
    assert rec["sites"] == ["h0", "h1", "h2"]
    assert "absent_sites" not in rec


def test_withdrawing_a_cohort_only_removes_the_matching_version(fed: FederatedData) -> None:
    gov = {"cohorts": COHORTS, "withdrawn_cohorts": ["h1:2026-10", "h2:2020-01"]}
    rec = run_federation(small_config(governance=gov), fed).rounds[0]
    assert rec["sites"] == ["h0", "h2"]
    assert rec["absent_sites"] == {"h1": "cohort 2026-10 withdrawn"}


def test_consent_needs_every_site_to_declare_a_cohort(fed: FederatedData) -> None:
    cohorts = {k: v for k, v in COHORTS.items() if k != "h2"}
    cfg = small_config(governance={"cohorts": cohorts, "consent": {"window_days": 30}})
    with pytest.raises(ConfigError, match=r"lacks \['h2'\]"):
        run_federation(cfg, fed)


def test_unknown_sites_and_bad_entries_are_refused(fed: FederatedData) -> None:
    with pytest.raises(ConfigError, match=r"withdrawn_sites names unknown site\(s\) \['nowhere'\]"):
        run_federation(small_config(governance={"withdrawn_sites": ["nowhere"]}), fed)
    with pytest.raises(ConfigError, match="is not SITE:VERSION"):
        small_config(governance={"withdrawn_cohorts": ["h1"]})
    with pytest.raises(ConfigError, match=r"governance\.consent\.window_days"):
        small_config(governance={"consent": {"window_days": 0}})


def test_leave_one_hospital_out_drops_the_site_from_governance(tmp_path: Path) -> None:
    cfg = small_config(
        training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1},
        evaluation={"loho": True},
        governance={"withdrawn_sites": ["va"], "withdrawn_cohorts": ["va:x"]},
        output_dir=str(tmp_path),
    )
    summary = run_experiment(cfg, tmp_path / "run").summary
    assert set(summary["loho"]) == {"cleveland", "hungarian", "switzerland", "va"}
