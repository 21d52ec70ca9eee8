"""A run directory's ledger: written by ``run_experiment``, checked by ``medsilo audit verify``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import parse_config
from medsilo.experiment import run_experiment
from medsilo.ledger.digest import config_sha256, weights_sha256
from medsilo.ledger.events import RoundEntry
from medsilo.ledger.keys import fingerprint, load_public_key, write_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.trust import TrustStore
from medsilo.ledger.verify import verify_ledger
from medsilo.runtime.round_record import RoundRecord

from ..conftest import small_config
from .conftest import flip_payload_byte, tamper, write_ledger

runner = CliRunner()
# The 2-round, 4-site witnessed run's ledger: genesis, run_start, 4 countersignatures and
# round 1 (seq 7), 4 and round 2 (seq 12), run_end, 4 countersignatures of the final head.
ROUND_1, ROUND_2, RECORDS = 7, 12, 17


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("key") / "coordinator.pem"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSILO_COORDINATOR_KEY", str(key))
        cfg = small_config(
            training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1},
            governance={"site_witness": True},  # the ledger as deployed sites leave it
        )
        return run_experiment(cfg, tmp_path_factory.mktemp("runs") / "run").run_dir


def _payloads(run: Path) -> list[tuple[str, dict[str, object]]]:
    conn = open_readonly(run / "ledger.sqlite")
    out = [(r.kind, json.loads(r.payload)) for r in read_records(conn)]
    conn.close()
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    """A site's copy of the ledger and public key (nothing else of the run)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("ledger.sqlite", "ledger.pub"):
        (copy / name).write_bytes((run / name).read_bytes())
    return copy


def test_run_ledger_verifies_and_matches_the_run(run_dir: Path) -> None:
    result = verify_ledger(run_dir / "ledger.sqlite", load_public_key(run_dir / "ledger.pub"))
    assert result.ok, result.problem
    records = _payloads(run_dir)
    witnesses = ["witness"] * 4  # every site countersigns the head of each round and the end
    assert [k for k, _ in records] == [
        "genesis", "run_start", *witnesses, "round", *witnesses, "round", "run_end", *witnesses
    ]  # fmt: skip
    start, end = records[1][1], next(p for k, p in records if k == "run_end")
    cfg = parse_config(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert start["config_sha256"] == config_sha256(cfg)
    assert start["sites"] == ["cleveland", "hungarian", "switzerland", "va"]
    rounds = [json.loads(x) for x in (run_dir / "rounds.jsonl").read_text().splitlines()]
    ledger_rounds = [p for k, p in records if k == "round"]
    assert [p["round"] for p in ledger_rounds] == [r["round"] for r in rounds] == [1, 2]
    assert [p["global_model_sha256"] for p in ledger_rounds] == [
        r["global_model_sha256"] for r in rounds
    ]
    assert ledger_rounds[0]["global_model_sha256"] != ledger_rounds[1]["global_model_sha256"]
    saved = np.load(run_dir / "final_weights.npz")
    final = weights_sha256([saved[f"arr_{i}"] for i in range(len(saved.files))])
    assert ledger_rounds[-1]["global_model_sha256"] == final == end["final_model_sha256"]
    assert end["rounds_completed"] == 2


def test_round_entry_keeps_provenance_fields() -> None:
    record = {
        "round": 4,
        "sites": ["a", "b", "c"],
        "global_model_sha256": "f" * 64,
        "rejected": [{"site": "c", "reason": "delta norm 1e9 above max_norm 10"}],
        "skipped": False,
        "robust_selected": ["a", "b"],
        "privacy": {"epsilon": 1.25, "delta": 1e-5, "mechanism": "dp_fedavg"},
        "secure_aggregation": {"mechanism": "masking", "survivors": ["a", "b"], "threshold": 2},
        "train_loss": 0.3,
    }
    payload = RoundEntry.from_round_record(RoundRecord.from_fields(record), "multi_krum").payload()
    assert payload["rejected"] == record["rejected"] and payload["epsilon"] == 1.25
    assert payload["aggregation_rule"] == "multi_krum"
    assert payload["robust_selected"] == ["a", "b"]
    assert payload["secure_aggregation"] == {"mechanism": "masking", "survivors": ["a", "b"]}
    assert "train_loss" not in payload and "stop_reason" not in payload


def test_cli_verify_intact_copy(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    res = runner.invoke(app, ["audit", "verify", str(copy)])
    assert res.exit_code == 0, res.output
    assert f"OK: {RECORDS} record(s) verified" in res.output
    res = runner.invoke(app, ["audit", "show", str(copy)])
    assert res.exit_code == 0 and "run_end" in res.output and "round=2" in res.output


def test_cli_verify_names_the_flipped_round(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    flip_payload_byte(copy / "ledger.sqlite", ROUND_2, index=1)  # the key's first letter
    res = runner.invoke(app, ["audit", "verify", str(copy / "ledger.sqlite")])
    assert res.exit_code == 1
    assert f"BROKEN at record seq {ROUND_2} (kind round" in res.output
    assert "hash mismatch" in res.output


def test_cli_verify_names_the_deleted_round(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    tamper(copy / "ledger.sqlite", f"DELETE FROM records WHERE seq = {ROUND_1}")
    res = runner.invoke(app, ["audit", "verify", str(copy)])
    assert res.exit_code == 1
    assert f"record seq {ROUND_1 + 1} (kind witness, round 2)" in res.output
    assert f"record(s) {ROUND_1} missing" in res.output


def test_cli_verify_with_another_key_and_missing_files(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    small = small_config(training={"rounds": 1, "local_steps": 1, "batch_size": 8, "lr": 0.1})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSILO_COORDINATOR_KEY", str(other / "k.pem"))
        other_run = run_experiment(small, other / "run").run_dir
    res = runner.invoke(
        app, ["audit", "verify", str(copy), "--public-key", str(other_run / "ledger.pub")]
    )
    assert res.exit_code == 1 and "seq 1 (kind genesis)" in res.output
    assert "signature does not verify" in res.output
    res = runner.invoke(app, ["audit", "verify", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no audit ledger" in res.output
    (copy / "ledger.pub").unlink()
    res = runner.invoke(app, ["audit", "verify", str(copy)])
    assert res.exit_code == 2 and "cannot read public key" in res.output


def test_resumed_run_names_the_checkpoint_it_started_from(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from medsilo.ledger.run_ledger import RunLedger
    from medsilo.types import Weights

    @dataclass
    class Checkpoint:
        round: int
        weights: Weights

    weights = [np.arange(6, dtype=np.float32).reshape(2, 3)]
    ledger = RunLedger(tmp_path, small_config(), ["a"], Checkpoint(3, weights))
    ledger.end(weights, None)
    start = _payloads(tmp_path)[1][1]
    assert start["resumed_after_round"] == 3
    assert start["resumed_model_sha256"] == weights_sha256(weights)
    assert verify_ledger(tmp_path / "ledger.sqlite", load_public_key(tmp_path / "ledger.pub")).ok


def test_cli_verify_checks_every_run_of_a_suite(run_dir: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("a", "b"):
        (suite / name).mkdir()
        for file in ("ledger.sqlite", "ledger.pub"):
            (suite / name / file).write_bytes((run_dir / file).read_bytes())
    res = runner.invoke(app, ["audit", "verify", str(suite)])
    assert res.exit_code == 0 and res.output.count(f"OK: {RECORDS} record(s)") == 2
    flip_payload_byte(suite / "b" / "ledger.sqlite", 2)
    res = runner.invoke(app, ["audit", "verify", str(suite)])
    assert res.exit_code == 1 and res.output.count(f"OK: {RECORDS} record(s)") == 1
    assert "BROKEN at record seq 2 (kind run_start)" in res.output
    res = runner.invoke(app, ["audit", "show", str(suite)])
    assert res.exit_code == 2 and "holds 2 ledgers (a, b)" in res.output


def _re_sign_in_place(run: Path) -> None:
    """The attack: replace the ledger with one signed by a new key, and ledger.pub with it."""
    forger = Ed25519PrivateKey.generate()
    (run / "ledger.sqlite").unlink()
    write_ledger(run / "ledger.sqlite", forger)
    write_public_key(forger.public_key(), run / "ledger.pub")


def test_cli_verify_pins_the_key_on_first_use_and_refuses_a_replaced_ledger_pub(
    run_dir: Path, tmp_path: Path
) -> None:
    copy = _copy(run_dir, tmp_path)
    first = runner.invoke(app, ["audit", "verify", str(copy)])
    assert first.exit_code == 0, first.output
    assert "WARNING" in first.output and "pinned (first use)" in first.output
    again = runner.invoke(app, ["audit", "verify", str(copy)])
    assert again.exit_code == 0 and "key matches the one pinned" in again.output
    _re_sign_in_place(copy)
    forged = runner.invoke(app, ["audit", "verify", str(copy)])
    assert forged.exit_code == 1
    assert "UNTRUSTED KEY" in forged.output and "NOT the key pinned" in forged.output
    explicit = ["audit", "verify", str(copy), "--public-key", str(copy / "ledger.pub")]
    assert runner.invoke(app, explicit).exit_code == 1  # a pin is not overridden silently
    repinned = runner.invoke(app, [*explicit, "--repin"])
    assert repinned.exit_code == 0 and "re-pinned" in repinned.output


def test_a_run_pins_its_key_at_provisioning_so_the_first_verify_catches_a_re_signing(
    tmp_path: Path,
) -> None:
    small = small_config(training={"rounds": 1, "local_steps": 1, "batch_size": 8, "lr": 0.1})
    run = run_experiment(small, tmp_path / "run").run_dir
    pin = TrustStore().pin_for(run / "ledger.sqlite")
    assert pin is not None and "provisioning" in pin.source
    assert pin.public_key_sha256 == fingerprint(load_public_key(run / "ledger.pub"))
    _re_sign_in_place(run)
    res = runner.invoke(app, ["audit", "verify", str(run)])
    assert res.exit_code == 1 and "NOT the key pinned" in res.output
