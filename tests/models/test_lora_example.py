"""examples/lora: the backbone script writes a state_dict the CNN loads, and the config
parses into a LoRA run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import yaml

from medsilo.config import RunConfig, parse_config
from medsilo.models.lora_config import LoraConfig
from medsilo.models.zoo import build_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lora"


def test_make_backbone_writes_a_loadable_seeded_state(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_backbone", EXAMPLE / "make_backbone.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    first = script.main(["--out", str(tmp_path / "a.pt"), "--steps", "2"])
    again = script.main(["--out", str(tmp_path / "b.pt"), "--steps", "2"])
    state = torch.load(first, weights_only=True)
    model = build_model("cnn", (1, 28, 28), 10)
    model.load_state_dict(state)  # strict: every tensor of the CNN, nothing else
    other = torch.load(again, weights_only=True)
    assert all(torch.equal(state[k], other[k]) for k in state)  # seeded
    untrained = build_model("cnn", (1, 28, 28), 10, seed=0).state_dict()
    assert not torch.equal(state["head.3.weight"], untrained["head.3.weight"])  # pretrained


def test_example_config_is_a_lora_run() -> None:
    raw = yaml.safe_load((EXAMPLE / "lora_mnist.yaml").read_text())
    assert raw["model"]["weights"] == "backbone.pt"
    model_fields = RunConfig.model_fields["model"].annotation.model_fields  # type: ignore[union-attr]
    if "weights" not in model_fields:  # a build before local backbone files: the rest parses
        del raw["model"]["weights"]
    cfg = parse_config(raw)
    assert cfg.model.lora == LoraConfig(r=4, alpha=8, train_head=True)
