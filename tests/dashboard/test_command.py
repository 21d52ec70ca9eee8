from pathlib import Path

from typer.testing import CliRunner

from medsilo.cli import app


def test_dashboard_refuses_a_non_positive_epsilon(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", str(tmp_path), "--epsilon", "0"])
    assert result.exit_code == 2
    assert "epsilon must be > 0" in result.output
