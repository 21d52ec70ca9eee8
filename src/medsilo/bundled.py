"""Configs that ship with medsilo, addressable by name (``medsilo simulate heart_fedavg``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from medsilo.config import ConfigError, RunConfig, load_raw_config, parse_config
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
    (``KEY=VALUE``, :mod:`medsilo.overrides`) applied before validation."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        raw, source = load_raw_config(path), str(path)
    elif ref in bundled_names():
        raw, source = yaml.safe_load(bundled_text(ref)), f"bundled config {ref!r}"
    else:
        raise ConfigError(
            f"{ref!r} is neither a config file nor a bundled config; "
            f"bundled: {', '.join(bundled_names())}"
        )
    if overrides:
        source += f" with {' '.join(overrides)}"
    return parse_config(apply_overrides(raw, overrides or []), source)
