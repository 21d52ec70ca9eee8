"""Canonical JSON bytes of a record payload: one object, one byte string.

The record hash covers the payload *bytes as stored*, so a verifier never re-serialises
anything; canonical form only makes the writer deterministic (the same payload always gives
the same bytes, on any machine) and lets :mod:`~medsilo.ledger.verify` refuse a payload that
was not written by this encoder. Rules:

* UTF-8 of ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
  allow_nan=False)``: keys sorted, no whitespace, only ASCII bytes (non-ASCII escaped as
  ``\\uXXXX``), so the bytes do not depend on locale or dict order.
* Floats: NaN and infinities are refused (JSON has none; ``allow_nan=False``). A finite
  float is written as Python's ``repr``: the shortest decimal that reads back to the same
  IEEE-754 double, so ``float(text)`` recovers it bit for bit. Integers stay integers
  (``1`` and ``1.0`` are different payloads). numpy scalars become Python numbers first.
* Only dict/list/str/int/float/bool/None (tuples become lists); keys must be strings.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types; refuses what has no canonical JSON form."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite float {value!r} has no canonical JSON form")
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"payload keys must be strings, got {type(key).__name__}")
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def canonical_json(payload: dict[str, Any]) -> bytes:
    """The canonical bytes of ``payload`` (rules in the module docstring)."""
    text = json.dumps(
        _plain(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def parse_canonical(data: bytes) -> dict[str, Any]:
    """Decode stored payload bytes; raise ``ValueError`` unless they are a JSON object in
    exactly the canonical form :func:`canonical_json` writes."""
    try:
        obj = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"payload is not ASCII JSON ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError("payload is not a JSON object")
    if canonical_json(obj) != data:
        raise ValueError("payload is not in canonical form")
    return obj
