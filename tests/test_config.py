from __future__ import annotations

from pathlib import Path

import pytest

from medsilo.bundled import bundled_names, resolve_config
from medsilo.config import ConfigError, load_config, parse_config

from .conftest import small_config


def test_bundled_configs_all_validate() -> None:
    names = bundled_names()
    assert "heart_fedavg" in names and "mnist_fedavg" in names
    for name in names:
        resolve_config(name)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "data: {dataset: heart_disease}\ntraining: {local_steps: 5, learning_rate: 0.1}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "training.learning_rate" in str(err.value) and str(path) in str(err.value)


def test_wrong_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"training\.batch_size.*got 0"):
        small_config(training={"local_steps": 5, "batch_size": 0})
    with pytest.raises(ConfigError, match=r"algorithm"):
        small_config(algorithm={"name": "fedsgd"})
    with pytest.raises(ConfigError, match=r"algorithm\.fedavg\.mu"):
        small_config(algorithm={"name": "fedavg", "mu": 0.1})


def test_incompatible_combinations_are_refused() -> None:
    with pytest.raises(ConfigError, match="plain local SGD"):
        small_config(
            algorithm={"name": "scaffold"}, training={"local_steps": 5, "optimizer": "adam"}
        )
    with pytest.raises(ConfigError, match="exactly one of"):
        small_config(training={"local_steps": 5, "local_epochs": 1})
    with pytest.raises(ConfigError, match="cnn_bn"):
        small_config(algorithm={"name": "fedbn"})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([1, 2])
