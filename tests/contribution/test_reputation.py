"""Reputation across runs: the weighted mean, its file, and ``medsilo reputation``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.contribution.reputation import Reputation, ReputationError, update_reputation

runner = CliRunner()


def _run(tmp_path: Path, name: str, shares: dict[str, float]) -> Path:
    run = tmp_path / name
    run.mkdir()
    entry = {"from": "shapley", "zeroed_free_riders": [], "values": shares}
    (run / "contribution.json").write_text(json.dumps({"sites": list(shares), "shares": entry}))
    return run


def test_reputation_is_an_exponentially_weighted_share_relative_to_an_equal_split() -> None:
    rep = Reputation(alpha=0.5)
    rep.update("r1", {"a": 0.5, "b": 0.5})
    assert rep.sites["a"].reputation == pytest.approx(1.0)  # 2 sites x 0.5: an equal split
    rep.update("r2", {"a": 0.0, "b": 1.0})  # a free rode in r2 (share 0)
    assert rep.sites["a"].reputation == pytest.approx(0.5)
    assert rep.sites["b"].reputation == pytest.approx(0.5 * 1.0 + 0.5 * 2.0)
    rep.update("r3", {"b": 0.25, "c": 0.25, "d": 0.25, "e": 0.25})  # a absent: unchanged
    assert rep.sites["a"].reputation == pytest.approx(0.5) and rep.sites["a"].runs == 2
    assert rep.sites["c"].reputation == pytest.approx(1.0) and rep.sites["b"].runs == 3
    with pytest.raises(ReputationError, match="already counted"):
        rep.update("r2", {"a": 1.0})


def test_update_writes_the_file_and_refuses_double_counting_and_a_new_alpha(
    tmp_path: Path,
) -> None:
    file = tmp_path / "reputation.json"
    r1 = _run(tmp_path, "r1", {"a": 0.75, "b": 0.25})
    r2 = _run(tmp_path, "r2", {"a": 0.25, "b": 0.75})
    update_reputation(file, [r1], alpha=0.25)
    rep = update_reputation(file, [r2])
    assert rep.sites["a"].reputation == pytest.approx(0.75 * 1.5 + 0.25 * 0.5)
    stored = json.loads(file.read_text())
    assert stored["alpha"] == 0.25 and stored["runs"] == [str(r1.resolve()), str(r2.resolve())]
    before = file.read_text()
    with pytest.raises(ReputationError, match="already counted"):
        update_reputation(file, [r2])
    with pytest.raises(ReputationError, match="cannot change"):
        update_reputation(file, [r1], alpha=0.5)
    assert file.read_text() == before


def test_cli_update_and_show(tmp_path: Path) -> None:
    file = tmp_path / "rep.json"
    r1 = _run(tmp_path, "r1", {"cleveland": 0.6, "va": 0.4})
    result = runner.invoke(app, ["reputation", "update", str(r1), "--file", str(file)])
    assert result.exit_code == 0, result.output
    assert "cleveland" in result.output and "1.200" in result.output
    shown = runner.invoke(app, ["reputation", "show", "--file", str(file)])
    assert shown.exit_code == 0 and "0.800" in shown.output


def test_cli_refuses_a_run_without_shares_and_writes_nothing(tmp_path: Path) -> None:
    file = tmp_path / "rep.json"
    good = _run(tmp_path, "good", {"a": 1.0})
    bare = tmp_path / "bare"
    bare.mkdir()
    result = runner.invoke(app, ["reputation", "update", str(good), str(bare), "--file", str(file)])
    assert result.exit_code == 1
    assert "has no reward shares" in " ".join(result.output.split())
    assert not file.exists()
    bad_alpha = runner.invoke(
        app, ["reputation", "update", str(good), "--file", str(file), "--alpha", "0"]
    )
    assert bad_alpha.exit_code == 1 and "alpha must be in (0, 1]" in bad_alpha.output
    missing = runner.invoke(app, ["reputation", "show", "--file", str(file)])
    assert missing.exit_code == 1 and "no reputation file" in missing.output
    file.write_text("{not json")
    broken = runner.invoke(app, ["reputation", "show", "--file", str(file)])
    assert broken.exit_code == 1 and "is not a reputation file" in " ".join(broken.output.split())
