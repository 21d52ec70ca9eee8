"""Where medsilo keeps a user's own files (signing key, trusted keys): one rule for all.

An environment variable naming the file wins (tests and deployments point it elsewhere);
otherwise the file lives in ``$XDG_CONFIG_HOME/medsilo/`` (``~/.config/medsilo/`` when unset).
"""

from __future__ import annotations

import os
from pathlib import Path


def user_config_file(env_var: str, name: str) -> Path:
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "medsilo" / name
