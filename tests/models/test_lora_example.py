"""examples/lora: the backbone script writes a state_dict the CNN loads, and the example
config fine-tunes that file through adapters (its SHA-256 in the run's summary)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from medsilo.config import load_config
from medsilo.experiment import run_experiment
from medsilo.models.builder import build_model
from medsilo.models.lora_config import LoraConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lora"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("make_backbone", EXAMPLE / "make_backbone.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_make_backbone_writes_a_loadable_seeded_state(tmp_path: Path) -> None:
    script = _script()
    first = script.main(["--out", str(tmp_path / "a.pt"), "--steps", "2"])
    again = script.main(["--out", str(tmp_path / "b.pt"), "--steps", "2"])
    state = torch.load(first, weights_only=True)
    model = build_model("cnn", (1, 28, 28), 10)
    model.load_state_dict(state)  # strict: every tensor of the CNN, nothing else
    other = torch.load(again, weights_only=True)
    assert all(torch.equal(state[k], other[k]) for k in state)  # seeded
    untrained = build_model("cnn", (1, 28, 28), 10, seed=0).state_dict()
    assert not torch.equal(state["head.3.weight"], untrained["head.3.weight"])  # pretrained


def test_example_config_fine_tunes_its_backbone_file_through_adapters(tmp_path: Path) -> None:
    script = _script()
    script.main(["--out", str(tmp_path / "backbone.pt"), "--steps", "2"])
    raw = yaml.safe_load((EXAMPLE / "lora_mnist.yaml").read_text())
    assert raw["model"]["weights"] == "backbone.pt"
    raw["training"] |= {"rounds": 1, "local_steps": 2}
    raw["data"] |= {"max_train_samples": 200, "max_test_samples": 50}
    (tmp_path / "lora_mnist.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_config(tmp_path / "lora_mnist.yaml")
    assert cfg.model.lora == LoraConfig(r=4, alpha=8, train_head=True)
    run = run_experiment(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    digest = hashlib.sha256((tmp_path / "backbone.pt").read_bytes()).hexdigest()
    assert summary["model_weights_sha256"] == digest
    full = build_model("cnn", (1, 28, 28), 10)
    full_bytes = 4 * sum(p.numel() for p in full.parameters()) * 4  # float32, 4 sites
    assert run.result.rounds[0]["bytes_up"] < full_bytes / 10  # adapters and head only
