from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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


def test_data_paths_are_read_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "fed.yaml"
    path.write_text(
        "data:\n"
        "  dataset: tabular\n"
        "  tabular:\n"
        "    schema: schema.yaml\n"
        "    sites:\n"
        "      - {name: a, csv: ../exports/a.csv, mapping: /abs/map_a.yaml}\n"
        "      - {name: b, csv: ~/b.csv, mapping: maps/b.yaml}\n"
        "training: {local_steps: 1}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tabular = load_config(Path("configs/fed.yaml")).data.tabular
    assert tabular is not None
    assert tabular.schema_path == folder / "schema.yaml"
    a, b = tabular.sites
    assert (a.csv, a.mapping) == (folder / "../exports/a.csv", Path("/abs/map_a.yaml"))
    assert (b.csv, b.mapping) == (tmp_path / "home" / "b.csv", folder / "maps/b.yaml")
    # A config built in code has no file: its paths stay relative to the working directory.
    in_code = parse_config(yaml.safe_load(path.read_text())).data.tabular
    assert in_code is not None and in_code.schema_path == Path("schema.yaml")
