"""The user's own model: ``model: {factory: "pkg.mod:build", kwargs: {...}}``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from medsilo.config import ConfigError
from medsilo.experiment import run_experiment
from medsilo.models.builder import build_model
from medsilo.models.spec import ModelConfig

from ..conftest import small_config


def factory(module: str, attribute: str = "build", **kwargs: object) -> ModelConfig:
    return ModelConfig(factory=f"{module}:{attribute}", kwargs=kwargs)


def test_the_factory_is_called_with_the_shape_the_outputs_and_the_kwargs(user_models: str) -> None:
    model = build_model(factory(user_models, norm=True), (13,), 2, task="binary")
    assert model(torch.zeros(4, 13)).shape == (4, 1)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    three = build_model(factory(user_models), (1, 4, 4), 3, task="multiclass")
    assert three.net[-1].out_features == 3


def test_a_user_model_federates_and_its_source_is_recorded(
    user_models: str, tmp_path: Path
) -> None:
    cfg = small_config(
        model={"factory": f"{user_models}:build"},
        training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1},
    )
    res = run_experiment(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["model"] == f"{user_models}:build"
    assert summary["model_weights_sha256"] is None
    assert len(res.result.rounds) == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_xyz:build", "cannot import module 'no_such_module_xyz'"),
        ("{m}:missing", "{m}' has no attribute 'missing'"),
        ("{m}:NOT_CALLABLE", "is int, not callable"),
        ("{m}:not_a_module", "returned str; it must return a torch.nn.Module"),
        ("{m}:positional_only", "cannot be called as build(input_shape=..., num_outputs=..."),
        (
            "{m}:wrong_outputs",
            "outputs shape (2, 2) for a batch of 2 inputs (13,), but a binary task with 2 "
            "classes needs (2, 1)",
        ),
    ],
)
def test_a_bad_factory_is_a_config_error_before_anything_is_written(
    user_models: str, tmp_path: Path, path: str, message: str
) -> None:
    cfg = small_config(model={"factory": path.format(m=user_models)})
    with pytest.raises(ConfigError) as err:
        run_experiment(cfg, tmp_path / "run")
    assert message.format(m=user_models) in str(err.value)
    assert str(err.value).startswith("config 't' cannot run: ")
    assert not (tmp_path / "run").exists()


def test_name_and_factory_are_exclusive() -> None:
    with pytest.raises(ConfigError, match=r"give either name .* or factory"):
        small_config(model={"name": "mlp", "factory": "a.b:c"})
    with pytest.raises(ConfigError, match=r"model\.factory: String should match pattern"):
        small_config(model={"factory": "not a path"})
    assert small_config(model={}).model.name == "logistic"


def test_fedbn_is_decided_by_the_built_model(user_models: str, tmp_path: Path) -> None:
    """Config validation cannot know a factory's layers; preflight checks the built model."""
    training = {"rounds": 1, "local_steps": 2, "batch_size": 8, "lr": 0.1}
    plain = small_config(
        model={"factory": f"{user_models}:build"},
        algorithm={"name": "fedbn"},
        training=training,
    )
    with pytest.raises(ConfigError, match=r"needs a model with BatchNorm, which model factory"):
        run_experiment(plain, tmp_path / "plain")
    assert not (tmp_path / "plain").exists()
    normed = small_config(
        model={"factory": f"{user_models}:build", "kwargs": {"norm": True}},
        algorithm={"name": "fedbn"},
        training=training,
    )
    assert len(run_experiment(normed, tmp_path / "normed").result.rounds) == 1


def test_the_documented_factory_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "doc_models_example.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = ModelConfig(factory="doc_models_example:build", kwargs={"width": 8})
    model = build_model(cfg, (1, 28, 28), 2, task="binary")
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 1)
