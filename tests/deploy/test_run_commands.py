"""``medsilo coordinator start`` / ``medsilo site start``: what they refuse before starting
anything (fast; the runs themselves are in test_loopback.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import parse_config
from medsilo.deploy.kits import provision
from medsilo.deploy.loopback import SITES, heart_experiment
from medsilo.deploy.spec import parse_federation
from medsilo.governance.checkpoint import Checkpoint, checkpoint_path, config_hash, save_checkpoint


def _text(output: str) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(output.split())


def _kits(root: Path) -> Path:
    spec = parse_federation(
        {
            "federation": "cli",
            "coordinator": {"address": "127.0.0.1", "port": 9999},
            "sites": [{"name": s} for s in SITES],
            "enrolment": {"allowed_backends": ["software"]},
        }
    )
    provision(spec, root / "kits")
    return root / "kits"


def _experiment(root: Path, **training: object) -> Path:
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(heart_experiment(3, **training)))
    return path


def _checkpoint(run_dir: Path, exp: Path) -> Path:
    cfg = parse_config(yaml.safe_load(exp.read_text()))
    ckpt = Checkpoint(
        round=2,
        weights=[np.zeros((1, 13), np.float32), np.zeros(1, np.float32)],
        server_state={},
        server_optimizer={},
        site_states={s: {} for s in SITES},
        sim_clock_s=0.0,
        contributed=list(SITES),
        absent={},
        config_hash=config_hash(cfg),
        sites=list(SITES),
    )
    save_checkpoint(run_dir / "checkpoints", ckpt)
    (run_dir / "rounds.jsonl").write_text('{"round": 1}\n{"round": 2}\n')
    return checkpoint_path(run_dir / "checkpoints", 2)


def test_insecure_is_announced_loudly_before_anything_else(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "coordinator",
            "start",
            str(tmp_path / "no-kit"),
            "--config",
            str(tmp_path / "x.yaml"),
            "--out",
            str(tmp_path / "run"),
            "--insecure",
        ],
    )
    assert result.exit_code == 2
    assert "WITHOUT TLS" in _text(result.output) and "WITHOUT site" in _text(result.output)
    assert "not a coordinator kit" in _text(result.output)


def test_a_corrupted_checkpoint_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    kits, exp = _kits(tmp_path), _experiment(tmp_path)
    run_dir = tmp_path / "run"
    manifest = _checkpoint(run_dir, exp)
    npz = manifest.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    args = ["coordinator", "start", str(kits / "coordinator"), "--config", str(exp)]
    result = CliRunner().invoke(app, [*args, "--out", str(run_dir), "--resume"])
    assert result.exit_code == 2, result.output
    assert "corrupted" in _text(result.output)
    assert not (run_dir / "flower").exists()  # no SuperLink was started


def test_a_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    kits = _kits(tmp_path)
    run_dir = tmp_path / "run"
    _checkpoint(run_dir, _experiment(tmp_path, lr=0.5))  # written by another experiment
    other = _experiment(tmp_path)  # same file name, now lr 0.01
    args = ["coordinator", "start", str(kits / "coordinator"), "--config", str(other)]
    result = CliRunner().invoke(app, [*args, "--out", str(run_dir), "--resume"])
    assert result.exit_code == 2, result.output
    assert "config hash mismatch" in _text(result.output)
    # And without --resume, a folder holding a run is never overwritten.
    fresh = CliRunner().invoke(app, [*args, "--out", str(run_dir)])
    assert fresh.exit_code == 2 and "already holds a run" in _text(fresh.output)


def test_site_start_refuses_a_missing_data_path_and_a_folder_that_is_not_a_kit(
    tmp_path: Path,
) -> None:
    kits = _kits(tmp_path)
    missing = CliRunner().invoke(
        app, ["site", "start", str(kits / "sites" / "va"), "--data", str(tmp_path / "nope")]
    )
    assert missing.exit_code == 2 and "does not exist" in _text(missing.output)
    not_kit = CliRunner().invoke(app, ["site", "start", str(tmp_path)])
    assert not_kit.exit_code == 2 and "provision" in _text(not_kit.output)
