"""Command-line changes to a config (``--set training.rounds=3``), applied before validation.

Each override is ``DOTTED.KEY=VALUE``; the value is read as YAML (``3`` is a number, ``true``
a boolean, ``[a, b]`` a list, anything else a string) and replaces that key of the config's
YAML, creating the sections it names. The config is validated only afterwards, so an override
is checked like the file itself, and the run's ``config.yaml`` (the resolved config) records
it.
"""

from __future__ import annotations

from typing import Any

import yaml

from medsilo.config import ConfigError


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"training.rounds=3"`` -> ``(["training", "rounds"], 3)``."""
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ConfigError(f"override {text!r} is not KEY=VALUE (e.g. training.rounds=3)")
    try:
        return path, yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None


def apply_overrides(raw: Any, overrides: list[str]) -> Any:
    """``raw`` (a config's YAML) with every override applied, in order."""
    if not overrides:
        return raw
    if not isinstance(raw, dict):
        return raw  # parse_config refuses it with its own message
    out = dict(raw)
    for text in overrides:
        path, value = parse_override(text)
        section = out
        for key in path[:-1]:
            inner = section.get(key)
            if inner is None:
                inner = {}
            elif not isinstance(inner, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section of the config")
            section[key] = inner = dict(inner)
            section = inner
        section[path[-1]] = value
    return out
