"""``audit verify`` notices a round missing from an intact chain, resumed runs included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.run_ledger import RunLedger
from medsilo.ledger.verify import VerifyResult, verify_ledger
from medsilo.runtime.round_record import RoundRecord
from medsilo.types import Weights

from ..conftest import small_config

WEIGHTS: Weights = [np.zeros((2, 2), dtype=np.float32)]
SITES = ["a", "b"]


@dataclass
class Checkpoint:
    round: int
    weights: Weights


def _run(
    run_dir: Path, rounds: list[int], resumed_after: int | None = None, end: bool = True
) -> None:
    """Ledger ``rounds`` as one run in ``run_dir`` (resumed in place after a checkpoint)."""
    resumed = Checkpoint(resumed_after, WEIGHTS) if resumed_after is not None else None
    ledger = RunLedger(run_dir, small_config(), SITES, resumed)
    for rnd in rounds:
        ledger.round(RoundRecord(round=rnd, sites=SITES))
    if end:
        ledger.end(WEIGHTS, None)
    else:
        ledger.ledger.close()


def _verify(run_dir: Path) -> VerifyResult:
    return verify_ledger(run_dir / "ledger.sqlite", load_public_key(run_dir / "ledger.pub"))


def test_a_round_missing_inside_a_run_is_named(tmp_path: Path) -> None:
    _run(tmp_path, [1, 2, 4])
    problem = _verify(tmp_path).problem
    assert problem is not None and problem.kind == "round" and problem.round == 4
    assert "round 3 missing" in problem.reason
    res = CliRunner().invoke(app, ["audit", "verify", str(tmp_path)])
    assert res.exit_code == 1 and "BROKEN" in res.output and "round 3 missing" in res.output


def test_a_repeated_round_is_named(tmp_path: Path) -> None:
    _run(tmp_path, [1, 2, 2])
    problem = _verify(tmp_path).problem
    assert problem is not None and "round 2 out of order" in problem.reason


def test_resume_after_a_round_the_ledger_never_recorded_is_a_gap(tmp_path: Path) -> None:
    # The crash of issue 15: round 5's checkpoint was saved, then the coordinator died
    # before round 5 reached the ledger; the resumed run starts after round 5.
    _run(tmp_path, [1, 2, 3, 4], end=False)
    _run(tmp_path, [6, 7], resumed_after=5)
    problem = _verify(tmp_path).problem
    assert problem is not None and problem.kind == "run_start"
    assert "round 5 missing" in problem.reason
    res = CliRunner().invoke(app, ["audit", "verify", str(tmp_path)])
    assert res.exit_code == 1 and "round 5 missing" in res.output


def test_resume_in_place_that_redoes_rounds_verifies(tmp_path: Path) -> None:
    _run(tmp_path, [1, 2, 3, 4, 5, 6], end=False)  # died in round 7; checkpoint of round 5
    _run(tmp_path, [6, 7, 8], resumed_after=5)
    assert _verify(tmp_path).ok


def test_run_resumed_into_a_new_ledger_starts_after_its_checkpoint(tmp_path: Path) -> None:
    _run(tmp_path, [4, 5], resumed_after=3)  # rounds 1-3 are in the original run's ledger
    assert _verify(tmp_path).ok
    other = tmp_path / "other"
    other.mkdir()
    _run(other, [5], resumed_after=3)
    problem = _verify(other).problem
    assert problem is not None and "round 4 missing" in problem.reason
