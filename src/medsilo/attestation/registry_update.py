"""``medsilo registry update FILE.json``: validate a new vulnerability registry and install it.

Schema (JSON object): optional ``_comment`` string, and ``entries``: a non-empty list of

    {"cve": "CVE-YYYY-NNNN", "name": "short description", "platforms": [PlatformKind, ...],
     "exploitable": true|false, "source": "https://... advisory",
     "fixed_tcb": {"sev-snp": "3.0.8.115", ...}}          # optional, per listed platform

``fixed_tcb`` keys must be among the entry's ``platforms`` and values dot-separated integers
(:mod:`.tcb`). CVE ids must be unique. A bad file is refused with a message naming the entry
(index and CVE id) and the field; nothing is installed. A valid file is written atomically
to :func:`medsilo.confidential.vulnerabilities.user_registry_path`, which
:func:`~medsilo.confidential.vulnerabilities.default_registry` then prefers over the bundled
seed (its cache is cleared so this process sees the update too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from medsilo.attestation.tcb import parse_tcb
from medsilo.confidential.platform import CVE_PATTERN, PlatformKind
from medsilo.confidential.vulnerabilities import default_registry, user_registry_path
from medsilo.config_errors import problem_lines


class RegistryError(ValueError):
    pass


class RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cve: Annotated[str, StringConstraints(pattern=CVE_PATTERN)]
    name: str = Field(min_length=1)
    platforms: list[PlatformKind] = Field(min_length=1)
    exploitable: bool
    source: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    fixed_tcb: dict[PlatformKind, str] = Field(default_factory=dict)


def validate_registry(raw: Any) -> list[RegistryEntry]:
    """The parsed entries, or :class:`RegistryError` naming the first bad entry."""
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise RegistryError("registry must be a JSON object with an 'entries' list")
    unknown = sorted(set(raw) - {"entries", "_comment"})
    if unknown:
        raise RegistryError(f"unknown top-level key(s) {unknown}")
    if not raw["entries"]:
        raise RegistryError("registry has no entries")
    entries: list[RegistryEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw["entries"]):
        label = f"entry {i}" + (
            f" ({item.get('cve')})" if isinstance(item, dict) and item.get("cve") else ""
        )
        try:
            entry = RegistryEntry.model_validate(item)
        except ValidationError as err:
            raise RegistryError(f"{label}: {problem_lines(err)[0]}") from err
        if entry.cve in seen:
            raise RegistryError(f"{label}: duplicate CVE id")
        seen.add(entry.cve)
        for platform, version in entry.fixed_tcb.items():
            if platform not in entry.platforms:
                raise RegistryError(f"{label}: fixed_tcb names {platform!r} not in platforms")
            try:
                parse_tcb(version)
            except ValueError as err:
                raise RegistryError(f"{label}: fixed_tcb.{platform}: {err}") from err
        entries.append(entry)
    return entries


def install_registry(source: Path, target: Path | None = None) -> tuple[Path, int]:
    """Validate ``source`` and install it; returns (installed path, entry count)."""
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RegistryError(f"{source} is not valid JSON: {err}") from err
    entries = validate_registry(raw)
    target = target or user_registry_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"entries": [e.model_dump(mode="json") for e in entries]}
    if "_comment" in raw:
        payload = {"_comment": raw["_comment"]} | payload
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    default_registry.cache_clear()
    return target, len(entries)
