"""Exact unlearning: the retrained model equals (same seed) a from-scratch run without the site."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import ConfigError, RunConfig
from medsilo.data.base import FederatedData
from medsilo.experiment import run_experiment
from medsilo.governance.retire import retirement
from medsilo.governance.unlearn import UNLEARN_KIND, Withdrawal, read_rounds, unlearn
from medsilo.ledger.keys import load_or_create_private_key, load_public_key
from medsilo.ledger.run_ledger import LEDGER_FILE, PUBLIC_KEY_FILE
from medsilo.ledger.store import Ledger
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.simulation import run_federation
from medsilo.types import Weights
from tests.conftest import small_config


def heart_config(tmp_path: Path, **extra: object) -> RunConfig:
    """Four heart-disease hospitals, two sampled a round, a checkpoint after every round."""
    return small_config(
        training={"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1, "fraction": 0.5},
        governance={"checkpoint": {"every": 1}, **extra},
        output_dir=str(tmp_path),
    )


def final_weights(run_dir: Path) -> Weights:
    with np.load(run_dir / "final_weights.npz") as npz:
        return [npz[k] for k in npz.files]


def assert_identical(a: Weights, b: Weights) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def latest_first_contribution(run_dir: Path) -> tuple[str, int]:
    first: dict[str, int] = {}
    for rec in read_rounds(run_dir):
        for site in rec["sites"]:
            first.setdefault(site, rec["round"])
    site = max(first, key=lambda s: first[s])
    return site, first[site]


def test_unlearning_a_site_equals_training_from_scratch_without_it(tmp_path: Path) -> None:
    cfg = heart_config(tmp_path)
    run = run_experiment(cfg, tmp_path / "run").run_dir
    site, first = latest_first_contribution(run)
    assert first > 1  # so the retraining really starts from a checkpoint, not from scratch

    outcome = unlearn(run, Withdrawal(site))
    assert outcome.first_round == first and outcome.resumed_after == first - 1
    assert outcome.new_run is not None

    scratch = run_experiment(heart_config(tmp_path, withdrawn_sites=[site]), tmp_path / "scratch")
    assert_identical(final_weights(outcome.new_run), final_weights(scratch.run_dir))
    assert_identical(
        final_weights(outcome.new_run), [np.asarray(w) for w in scratch.result.weights]
    )
    # and it is a different model from the original, which did learn from the site
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(final_weights(run), final_weights(outcome.new_run), strict=True)
    )
    new_rounds = read_rounds(outcome.new_run)
    assert [r["round"] for r in new_rounds] == [1, 2, 3, 4]
    assert all(site not in r["sites"] for r in new_rounds)

    notice = retirement(run)
    assert notice is not None and notice["replacement"] == str(outcome.new_run)
    assert site in notice["reason"]
    events = [json.loads(line) for line in (run / "governance.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "unlearn" and events[-1]["withdrawn"] == site
    with pytest.raises(ConfigError, match="already retired"):
        unlearn(run, Withdrawal(site))


def test_the_unlearning_is_a_signed_record_in_both_ledgers(tmp_path: Path) -> None:
    run = run_experiment(heart_config(tmp_path), tmp_path / "run").run_dir
    site, first = latest_first_contribution(run)
    outcome = unlearn(run, Withdrawal(site))
    assert outcome.new_run is not None
    for directory in (run, outcome.new_run):
        key = load_public_key(directory / PUBLIC_KEY_FILE)
        verified = verify_ledger(directory / LEDGER_FILE, key)
        assert verified.problem is None
        with Ledger(directory / LEDGER_FILE, load_or_create_private_key()) as ledger:
            last = ledger.records()[-1]
        assert last.kind == UNLEARN_KIND
        payload = json.loads(last.payload)
        assert payload["withdrawn"] == site and payload["first_contribution_round"] == first


def test_withdrawing_the_last_site_equals_a_federation_without_it(fed: FederatedData) -> None:
    """With every site sampled each round, an absent site at the end of the roster changes
    no other site's index, so the roster definition agrees with simply omitting the site."""
    cfg = small_config(governance={"withdrawn_sites": ["h2"]})
    withdrawn = run_federation(cfg, fed)
    omitted = run_federation(small_config(), fed.without("h2"))
    assert_identical(withdrawn.weights, omitted.weights)


def test_a_site_that_never_contributed_is_a_no_op(tmp_path: Path) -> None:
    cfg = heart_config(tmp_path, withdrawn_sites=["va"])
    run = run_experiment(cfg, tmp_path / "run").run_dir
    outcome = unlearn(run, Withdrawal("va"))
    assert outcome.new_run is None and "never contributed" in outcome.message
    assert retirement(run) is None
    with pytest.raises(ConfigError, match="has no site 'atlantis'"):
        unlearn(run, Withdrawal("atlantis"))


def test_unlearn_command_retires_the_run_and_report_warns(tmp_path: Path) -> None:
    cfg = heart_config(tmp_path)
    run = run_experiment(cfg, tmp_path / "run").run_dir
    site, _ = latest_first_contribution(run)
    out = tmp_path / "replacement"
    runner = CliRunner()
    res = runner.invoke(
        app, ["unlearn", str(run), "--site", site, "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "retired" in res.output and (out / "final_weights.npz").is_file()
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0 and "retired" in res.output, res.output
    res = runner.invoke(app, ["unlearn", str(run), "--site", site, "--cohort", "a:b"])
    assert "exactly one of --site" in res.output
    assert res.exit_code == 2


def test_unlearning_a_cohort_equals_training_without_that_cohort(tmp_path: Path) -> None:
    cohorts = {
        name: {"version": "2026-10", "collected_until": "2026-10-31"}
        for name in ("cleveland", "hungarian", "switzerland", "va")
    }
    run = run_experiment(heart_config(tmp_path, cohorts=cohorts), tmp_path / "run").run_dir
    site, first = latest_first_contribution(run)
    assert read_rounds(run)[first - 1]["cohorts"][site] == "2026-10"
    assert unlearn(run, Withdrawal(site, "2026-09")).new_run is None  # a version it never used
    outcome = unlearn(run, Withdrawal.parse(None, f"{site}:2026-10"))
    assert outcome.new_run is not None and outcome.resumed_after == first - 1
    label = f"{site}:2026-10"
    scratch = heart_config(tmp_path, cohorts=cohorts, withdrawn_cohorts=[label])
    expected = run_experiment(scratch, tmp_path / "scratch").run_dir
    assert_identical(final_weights(outcome.new_run), final_weights(expected))
