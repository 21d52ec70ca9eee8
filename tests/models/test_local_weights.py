"""Pretrained weights from a local file only, their SHA-256 in the run's summary."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from medsilo.config import ConfigError, config_of_file
from medsilo.experiment import run_experiment
from medsilo.models.builder import build_model
from medsilo.models.spec import ModelConfig
from medsilo.runtime.prepared import PreparedFederation

from ..conftest import small_config

HEART = (13,)  # heart_disease: 13 features, binary


def trained_like(seed: int) -> dict[str, torch.Tensor]:
    """A logistic model's state for heart_disease, different from the run's own init."""
    return build_model("logistic", HEART, 2, seed=seed).state_dict()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_weights_round_trip_and_their_sha256_is_recorded(tmp_path: Path, suffix: str) -> None:
    state = trained_like(seed=99)
    path = tmp_path / f"pretrained{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    model = build_model(ModelConfig(name="logistic", weights=str(path)), HEART, 2, seed=0)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name])
    cfg = small_config(
        model={"name": "logistic", "weights": str(path)},
        training={"rounds": 1, "local_steps": 1, "batch_size": 8, "lr": 0.01},
    )
    initial = PreparedFederation.build(cfg).initial_weights  # what the federation starts from
    assert [w.tolist() for w in initial] == [t.tolist() for t in state.values()]
    run_experiment(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model_weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_relative_weights_path_is_read_from_the_config_file_s_folder(tmp_path: Path) -> None:
    torch.save(trained_like(seed=1), tmp_path / "w.pt")
    raw = small_config().model_dump(mode="json")
    raw["model"] = {"name": "logistic", "weights": "w.pt"}
    cfg = config_of_file(raw, tmp_path / "run.yaml")
    assert cfg.model.weights == str(tmp_path.absolute() / "w.pt")


def test_a_checkpoint_dict_with_a_state_dict_is_accepted(tmp_path: Path) -> None:
    state = trained_like(seed=3)
    torch.save({"epoch": 4, "state_dict": state}, tmp_path / "ckpt.pth")
    model = build_model(ModelConfig(weights=str(tmp_path / "ckpt.pth")), HEART, 2)
    assert torch.equal(model.state_dict()["linear.weight"], state["linear.weight"])


def test_strict_loading_lists_what_does_not_fit(tmp_path: Path) -> None:
    three = build_model("logistic", HEART, 3).state_dict()
    torch.save({**three, "extra.bias": torch.zeros(2)}, tmp_path / "w.pt")
    cfg = ModelConfig(name="logistic", weights=str(tmp_path / "w.pt"))
    with pytest.raises(ValueError) as err:
        build_model(cfg, HEART, 2)
    text = str(err.value)
    assert "does not fit model 'logistic'" in text
    assert "in the file but not in the model: extra.bias" in text
    assert "shaped differently: linear.weight (3, 13) vs (1, 13), linear.bias (3,) vs (1,)" in text
    assert "weights_strict: false" in text


def test_non_strict_loading_skips_a_mismatched_head_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A backbone trained for 3 classes, fine-tuned for a binary task: the head is skipped."""
    backbone = build_model("mlp", HEART, 3, seed=5).state_dict()
    torch.save(backbone, tmp_path / "w.pt")
    cfg = ModelConfig(name="mlp", weights=str(tmp_path / "w.pt"), weights_strict=False)
    with caplog.at_level(logging.WARNING, logger="medsilo.models.local_weights"):
        model = build_model(cfg, HEART, 2, seed=0)
    state = model.state_dict()
    assert torch.equal(state["net.1.weight"], backbone["net.1.weight"])
    assert state["net.5.weight"].shape == (1, 128)  # the binary head, as built
    fresh = build_model("mlp", HEART, 2, seed=0).state_dict()
    assert torch.equal(state["net.5.weight"], fresh["net.5.weight"])
    assert "net.5.weight (3, 128) vs (1, 128)" in caplog.text


def test_an_unreadable_or_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"junk\.pt' cannot be read"):
        build_model(ModelConfig(weights=str(tmp_path / "junk.pt")), HEART, 2)
    with pytest.raises(ValueError, match=r"absent\.safetensors': no such file"):
        build_model(ModelConfig(weights=str(tmp_path / "absent.safetensors")), HEART, 2)
    with pytest.raises(ValueError, match=r"expected a \.pt, \.pth, \.safetensors file"):
        build_model(ModelConfig(weights=str(tmp_path / "w.npz")), HEART, 2)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="is not a state_dict"):
        build_model(ModelConfig(weights=str(tmp_path / "list.pt")), HEART, 2)


@pytest.mark.parametrize(
    "model",
    [
        {"name": "resnet18", "pretrained": True},
        {"name": "densenet121", "kwargs": {"pretrained": True}},
        {"name": "resnet18", "weights": "https://example.org/resnet18.pth"},
        {"factory": "pkg.mod:build", "weights": "hf://org/model.safetensors"},
    ],
)
def test_a_request_to_download_is_refused_when_the_config_is_read(
    model: dict[str, object],
) -> None:
    with pytest.raises(ConfigError) as err:
        small_config(model=model)
    text = str(err.value)
    assert "medsilo never downloads weights: they are read only from a local file" in text
    assert "model: {weights: path/to/file.pt}" in text


def test_a_deployed_site_builds_the_architecture_without_the_coordinator_s_file(
    tmp_path: Path,
) -> None:
    """The coordinator's path means nothing at a site; the global weights come by message."""
    cfg = ModelConfig(name="mlp", weights=str(tmp_path / "only-at-the-coordinator.pt"))
    with pytest.raises(ValueError, match="no such file"):
        build_model(cfg, HEART, 2)
    site = build_model(cfg.without_weights(), HEART, 2, seed=0)
    plain = build_model("mlp", HEART, 2, seed=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(site.state_dict().values(), plain.state_dict().values(), strict=True)
    )
