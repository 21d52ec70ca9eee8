"""The names a tracker sees: a run's numbers as flat ``name -> value`` metrics, its config as
flat ``key -> text`` parameters.

Metric names are the JSON path of the number in the round record (or summary) joined by
``/``, with a site's name moved to the front so that a tracker's UI groups each site's
metrics: ``test/accuracy``, ``extra/leakage``, ``cleveland/per_site/accuracy``,
``cleveland/site_health/train_loss``, ``cleveland/bytes_up_site``. The rule needs no list
of fields, so a number added to the round record is tracked without touching this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from numbers import Real
from typing import Any

#: The round record's key that is the step of every metric, not a metric itself.
STEP_KEY = "round"
#: Longest parameter value MLflow stores (its ``MAX_PARAM_VAL_LENGTH``).
MAX_PARAM_LENGTH = 6000
_UNSAFE = re.compile(r"[^\w.\- /]")


def _safe(part: str) -> str:
    """Characters MLflow refuses in a name (anything but letters, digits, ``_.- /``) as ``_``."""
    return _UNSAFE.sub("_", part)


def _numbers(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], float]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers(item, (*path, str(key)))
    elif isinstance(value, Real) and not isinstance(value, bool):
        yield path, float(value)


def metric_name(path: tuple[str, ...], sites: frozenset[str]) -> str:
    """``path`` joined by ``/``, the first part that names a site moved to the front."""
    parts = list(path)
    for i, part in enumerate(parts):
        if part in sites:
            parts.insert(0, parts.pop(i))
            break
    return "/".join(_safe(p) for p in parts)


def metrics_of(
    record: Mapping[str, Any], sites: list[str], prefix: tuple[str, ...] = ()
) -> dict[str, float]:
    """Every number in ``record`` (nested mappings included; booleans, strings, lists and
    ``None`` left out) by its metric name, under ``prefix``; the step key is left out."""
    known = frozenset(sites)
    return {
        metric_name((*prefix, *path), known): value
        for path, value in _numbers(record, ())
        if path != (STEP_KEY,)
    }


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 1] + "…"


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    else:
        yield path, value


def params_of(config: Mapping[str, Any]) -> dict[str, str]:
    """The resolved config (as ``model_dump(mode="json")``) flattened to ``a.b.c -> text``:
    strings as they are, other values as JSON (``null``, ``true``, ``[...]``, ``{}``); a
    value longer than MLflow stores is cut (the whole config is logged as config.yaml)."""
    return {".".join(_safe(p) for p in path): _text(value) for path, value in _leaves(config, ())}
