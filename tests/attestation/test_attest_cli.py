"""``medsilo attest software`` -> ``attest verify`` end to end, and ``registry update``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.attestation.measurement import measure_files
from medsilo.cli import app


def test_software_evidence_round_trip(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "a.py").write_text("print(1)\n")
    measurement = measure_files(code)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"allowed_backends: [software]\nallowed_measurements: ['{measurement}']\n")
    nonce = "12" * 32
    runner = CliRunner()
    signed = runner.invoke(
        app,
        [
            "attest", "software", "--key", str(tmp_path / "site.pem"), "--out",
            str(tmp_path / "ev.json"), "--nonce", nonce, "--site", "hungary", "--measure",
            str(code), "--public-out", str(tmp_path / "site.pub"),
        ],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    base = ["attest", "verify", str(tmp_path / "ev.json"), "--policy", str(policy)]
    ok = runner.invoke(app, [*base, "--public-key", str(tmp_path / "site.pub"), "--nonce", nonce])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["backend"] == "software"
    bad = runner.invoke(
        app, [*base, "--public-key", str(tmp_path / "site.pub"), "--nonce", "34" * 32]
    )
    assert bad.exit_code == 1 and "nonce mismatch" in bad.output
    (code / "a.py").write_text("print(2)\n")  # the code changed: measurement no longer allowed
    resigned = runner.invoke(
        app,
        ["attest", "software", "--key", str(tmp_path / "site.pem"), "--out",
         str(tmp_path / "ev.json"), "--nonce", nonce, "--site", "hungary", "--measure", str(code)],
    )  # fmt: skip
    assert resigned.exit_code == 0, resigned.output
    changed = runner.invoke(
        app, [*base, "--public-key", str(tmp_path / "site.pub"), "--nonce", nonce]
    )
    assert changed.exit_code == 1 and "not in the allow-list" in changed.output


def test_registry_update_cli_names_bad_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSILO_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"entries": [{"cve": "CVE-2099-0001", "name": "x"}]}))
    result = CliRunner().invoke(app, ["registry", "update", str(bad)])
    assert result.exit_code == 2
    assert "CVE-2099-0001" in result.output
    assert not (tmp_path / "data").exists()


def test_verify_records_the_decision_in_a_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDSILO_COORDINATOR_KEY", str(tmp_path / "coordinator.pem"))
    code = tmp_path / "model.bin"
    code.write_bytes(b"\x00\x01")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"allowed_measurements: ['{measure_files(code)}']\n")  # software not allowed
    nonce = "56" * 32
    runner = CliRunner()
    signed = runner.invoke(
        app,
        ["attest", "software", "--key", str(tmp_path / "site.pem"), "--out",
         str(tmp_path / "ev.json"), "--nonce", nonce, "--measure", str(code),
         "--public-out", str(tmp_path / "site.pub")],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    ledger_path = tmp_path / "ledger.sqlite"
    result = runner.invoke(
        app,
        ["attest", "verify", str(tmp_path / "ev.json"), "--policy", str(policy),
         "--public-key", str(tmp_path / "site.pub"), "--nonce", nonce,
         "--ledger", str(ledger_path)],
    )  # fmt: skip
    assert result.exit_code == 1 and "not allowed by policy" in result.output
    with sqlite3.connect(ledger_path) as conn:
        kinds = [row[0] for row in conn.execute("SELECT kind FROM records ORDER BY seq")]
    assert kinds == ["genesis", "attestation"]
