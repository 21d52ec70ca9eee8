"""Exact unlearning of a patient who revoked consent: equals training without them, bit for bit."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import ConfigError, RunConfig
from medsilo.experiment import run_experiment
from medsilo.governance.patient_register import ConsentEntry, load_site_key, patient_ref
from medsilo.governance.patient_unlearn import unlearn_patient
from medsilo.governance.retire import retirement
from medsilo.governance.unlearn import UNLEARN_KIND, read_rounds
from medsilo.ledger.keys import load_or_create_private_key, load_public_key
from medsilo.ledger.run_ledger import LEDGER_FILE, PUBLIC_KEY_FILE
from medsilo.ledger.store import Ledger
from medsilo.ledger.verify import verify_ledger
from tests.conftest import small_config
from tests.governance.patients import START, Registers, joins_in, round_time
from tests.governance.test_unlearn import assert_identical, final_weights

SITES = ["cleveland", "hungarian", "switzerland", "va"]


def heart_config(tmp_path: Path, regs: Registers, **extra: object) -> RunConfig:
    """Four hospitals, two sampled a round, a checkpoint after every round."""
    return small_config(
        training={"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1, "fraction": 0.5},
        governance={"checkpoint": {"every": 1}, "patient_consent": regs.section()},
        output_dir=str(tmp_path),
        **extra,
    )


def late_joiner(run_dir: Path, regs: Registers) -> tuple[str, int, int]:
    """A (site, row, round) whose patient first trained in ``round`` >= 2: the site trained
    in that round, and the patient joined in it."""
    for rec in read_rounds(run_dir)[1:]:
        for site in sorted(rec.patients or {}):
            rows = [r for r in range(regs.sizes[site]) if joins_in(r) == rec["round"]]
            if rows and rec.patients[site]["consented"] > 0:
                return site, rows[0], int(rec["round"])
    raise AssertionError("no site trained after round 1")


def revoke(regs: Registers, site: str, row: int, when: object) -> str:
    patient = regs.patient(site, row)
    entry = regs.entries[site][patient]
    regs.entries[site][patient] = ConsentEntry(entry.granted, when)
    regs.write(site)
    return patient


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secure-aggregation"])
def test_unlearning_a_patient_equals_training_from_scratch_without_them(
    tmp_path: Path, secure: bool
) -> None:
    regs = Registers(tmp_path / "site", SITES)
    extra = {"secure_aggregation": {"enabled": True}} if secure else {}
    cfg = heart_config(tmp_path, regs, **extra)
    run = run_experiment(cfg, tmp_path / "run").run_dir
    site, row, first = late_joiner(run, regs)
    patient = revoke(regs, site, row, round_time(10))  # after the run's last round

    outcome = unlearn_patient(run, site, patient)
    assert outcome.first_round == first and outcome.resumed_after == first - 1
    assert outcome.new_run is not None

    # from scratch: the same config, the patient's consent revoked before round 1
    del regs.entries[site][patient]
    regs.write(site)
    scratch = run_experiment(cfg, tmp_path / "scratch").run_dir
    assert_identical(final_weights(outcome.new_run), final_weights(scratch))
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(final_weights(run), final_weights(outcome.new_run), strict=True)
    )
    assert [r["patients"] for r in read_rounds(outcome.new_run)] == [
        r["patients"] for r in read_rounds(scratch)
    ]


def test_the_patient_leaves_the_site_only_as_a_keyed_ref(tmp_path: Path) -> None:
    regs = Registers(tmp_path / "site", SITES)
    run = run_experiment(heart_config(tmp_path, regs), tmp_path / "run").run_dir
    site, row, first = late_joiner(run, regs)
    patient = revoke(regs, site, row, round_time(9))
    outcome = unlearn_patient(run, site, patient)
    assert outcome.new_run is not None
    ref = patient_ref(load_site_key(regs.key_file(site)), patient)
    for directory in (run, outcome.new_run):
        for path in directory.rglob("*"):
            if path.is_file():
                assert patient.encode() not in path.read_bytes(), path
        key = load_public_key(directory / PUBLIC_KEY_FILE)
        assert verify_ledger(directory / LEDGER_FILE, key).problem is None
        with Ledger(directory / LEDGER_FILE, load_or_create_private_key()) as ledger:
            last = ledger.records()[-1]
        assert last.kind == UNLEARN_KIND
        payload = json.loads(last.payload)
        assert payload["patient_ref"] == ref and payload["site"] == site
        assert payload["first_contribution_round"] == first
    config = (outcome.new_run / "config.yaml").read_text()
    assert ref in config  # the new run withdraws the ref from every round
    notice = retirement(run)
    assert notice is not None and ref[:16] in notice["reason"]
    with pytest.raises(ConfigError, match="already retired"):
        unlearn_patient(run, site, patient)


def test_a_patient_who_never_trained_needs_no_retraining(tmp_path: Path) -> None:
    regs = Registers(tmp_path / "site", SITES)
    patient = regs.patient("cleveland", 0)  # consent granted and revoked between two rounds
    granted = round_time(2) + timedelta(hours=1)
    regs.entries["cleveland"][patient] = ConsentEntry(granted, granted + timedelta(hours=2))
    regs.write("cleveland")
    run = run_experiment(heart_config(tmp_path, regs), tmp_path / "run").run_dir
    outcome = unlearn_patient(run, "cleveland", patient)
    assert outcome.new_run is None and "no retraining is needed" in outcome.message
    assert retirement(run) is None
    with pytest.raises(ConfigError, match="not in 'cleveland'"):
        unlearn_patient(run, "cleveland", "nobody")
    with pytest.raises(ConfigError, match="shows no revocation"):
        unlearn_patient(run, "cleveland", regs.patient("cleveland", 1))


def test_a_register_changed_beyond_the_revocation_is_refused(tmp_path: Path) -> None:
    regs = Registers(tmp_path / "site", SITES)
    run = run_experiment(heart_config(tmp_path, regs), tmp_path / "run").run_dir
    site, row, _ = late_joiner(run, regs)
    patient = revoke(regs, site, row, round_time(9))
    late = next(r for r in range(regs.sizes[site]) if joins_in(r) == 4)
    other = regs.patient(site, late)  # back-dated: the register now says round 1
    regs.entries[site][other] = ConsentEntry(START - timedelta(days=1), None)
    regs.write(site)
    with pytest.raises(ConfigError, match="register no longer gives"):
        unlearn_patient(run, site, patient)
    assert retirement(run) is None


def test_unlearn_command_takes_a_patient(tmp_path: Path) -> None:
    regs = Registers(tmp_path / "site", SITES)
    run = run_experiment(heart_config(tmp_path, regs), tmp_path / "run").run_dir
    site, row, _ = late_joiner(run, regs)
    patient = revoke(regs, site, row, round_time(9))
    runner = CliRunner()
    res = runner.invoke(app, ["unlearn", str(run), "--patient", patient, "--no-progress"])
    assert res.exit_code == 2 and "--patient ID needs --site" in res.output
    out = tmp_path / "replacement"
    args = ["unlearn", str(run), "--site", site, "--patient", patient, "--out", str(out)]
    res = runner.invoke(app, [*args, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "retired" in res.output and (out / "final_weights.npz").is_file()
    assert patient not in res.output
