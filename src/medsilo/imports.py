"""Objects named by an import path in a config: ``"package.module:attribute"``.

This is how a user's own dataset (and, later, model or metric) reaches medsilo without
editing any list in the package: the config names where it lives, medsilo imports it. A bad
path is a clear error naming what was looked for, never a traceback.
"""

from __future__ import annotations

import importlib
import re
from typing import Annotated

from pydantic import StringConstraints

#: ``package.module:attribute`` (the attribute may be dotted: ``module:Class.factory``).
IMPORT_PATH_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
ImportPath = Annotated[str, StringConstraints(pattern=IMPORT_PATH_PATTERN)]


class ImportPathError(ValueError):
    """An import path that does not name an importable object."""


def is_import_path(text: str) -> bool:
    return re.match(IMPORT_PATH_PATTERN, text) is not None


def load_object(path: str, what: str) -> object:
    """The object ``path`` names; ``what`` says what it is for, in the error message."""
    if not is_import_path(path):
        raise ImportPathError(f"{what} {path!r} is not an import path 'package.module:name'")
    module_name, attribute = path.split(":", 1)
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportPathError(
            f"{what} {path!r}: cannot import module {module_name!r} ({err}); is it installed "
            "or on PYTHONPATH?"
        ) from err
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ImportPathError(f"{what} {path!r}: {module_name!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    return obj
