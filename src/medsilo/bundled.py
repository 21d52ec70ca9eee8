"""Configs that ship with medsilo, addressable by name (``medsilo simulate heart_fedavg``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from medsilo.config import ConfigError, RunConfig, load_config, parse_config


def bundled_names() -> list[str]:
    folder = resources.files("medsilo") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def resolve_config(ref: str) -> RunConfig:
    """A path to a YAML file, or the name of a bundled config."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_config(path)
    if ref in bundled_names():
        text = (resources.files("medsilo") / "configs" / f"{ref}.yaml").read_text()
        return parse_config(yaml.safe_load(text), f"bundled config {ref!r}")
    raise ConfigError(
        f"{ref!r} is neither a config file nor a bundled config; "
        f"bundled: {', '.join(bundled_names())}"
    )
