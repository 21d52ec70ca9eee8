"""Configs that ship with medsilo, addressable by name (``medsilo simulate heart_fedavg``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from medsilo.config import ConfigError, RunConfig, config_of_file, load_raw_config, parse_config
from medsilo.overrides import apply_overrides


def bundled_names() -> list[str]:
    folder = resources.files("medsilo") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def bundled_text(name: str) -> str:
    """The YAML of bundled config ``name`` as shipped (``medsilo configs show NAME``)."""
    if name not in bundled_names():
        raise ConfigError(f"no bundled config {name!r}; bundled: {', '.join(bundled_names())}")
    return (resources.files("medsilo") / "configs" / f"{name}.yaml").read_text()


def resolve_config(ref: str, overrides: list[str] | None = None) -> RunConfig:
    """A path to a YAML file, or the name of a bundled config, with ``overrides``
    (``KEY=VALUE``, :mod:`medsilo.overrides`) applied before validation. A file's data paths
    are relative to its folder."""
    path = Path(ref)
    suffix = f" with {' '.join(overrides)}" if overrides else ""
    if path.suffix in (".yaml", ".yml") or path.exists():
        raw = apply_overrides(load_raw_config(path), overrides or [])
        return config_of_file(raw, path, str(path) + suffix)
    if ref in bundled_names():
        raw = apply_overrides(yaml.safe_load(bundled_text(ref)), overrides or [])
        return parse_config(raw, f"bundled config {ref!r}" + suffix)
    raise ConfigError(
        f"{ref!r} is neither a config file nor a bundled config; "
        f"bundled: {', '.join(bundled_names())}"
    )
