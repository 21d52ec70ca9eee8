"""A small bundled registry of known TEE vulnerabilities and the CC-PGD exploit indicator.

The registry (``tee_vulnerabilities.json`` next to this module) is a **seed list** of
well-known, publicly documented attacks on SGX and SEV-SNP; it must be maintained (and will
be refreshed from vendor advisories by the deployment work). The indicator rule:

    exploit_indicator(record, registry) = 1  iff  some CVE in record.known_vulnerabilities
        is in the registry, marked ``exploitable``, and lists ``record.kind`` among its
        platforms;  0 otherwise.

So a site is flagged only when its own platform record admits an unpatched, demonstrated
attack that applies to its TEE technology. CVE ids the registry does not know, or that
apply to another platform kind, do not count (they are reported by
:func:`unmatched_vulnerabilities`). ``kind: none`` and ``software`` have no hardware TEE,
so no registry entry applies to them and the indicator is 0: the term models *TEE side
channel* exposure, not the absence of a TEE (a policy choice a deployment may revisit).

Updatable: :func:`default_registry` prefers a user copy installed by ``medsilo registry
update`` (:mod:`medsilo.attestation.registry_update`, ``$MEDSILO_DATA_DIR`` or
``$XDG_DATA_HOME/medsilo``) over the bundled file. An entry may carry ``fixed_tcb``
(platform -> first TCB version that is not affected, :mod:`medsilo.attestation.tcb`) so an
attested TCB version can be matched against it, and ``source`` (advisory URL).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from medsilo.confidential.platform import PlatformRecord


@dataclass(frozen=True)
class Vulnerability:
    cve: str
    name: str
    platforms: tuple[str, ...]
    exploitable: bool
    fixed_tcb: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    source: str = ""


Registry = dict[str, Vulnerability]
REGISTRY_FILE = "tee_vulnerabilities.json"


def user_data_dir() -> Path:
    """``$MEDSILO_DATA_DIR``, else ``$XDG_DATA_HOME/medsilo`` (``~/.local/share`` when unset)."""
    explicit = os.environ.get("MEDSILO_DATA_DIR")
    if explicit:
        return Path(explicit)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "medsilo"


def user_registry_path() -> Path:
    return user_data_dir() / REGISTRY_FILE


def registry_from_json(raw: dict[str, Any]) -> Registry:
    return {
        e["cve"]: Vulnerability(
            e["cve"],
            e["name"],
            tuple(e["platforms"]),
            bool(e["exploitable"]),
            dict(e.get("fixed_tcb", {})),
            str(e.get("source", "")),
        )
        for e in raw["entries"]
    }


@cache
def default_registry() -> Registry:
    """The user copy (``medsilo registry update``) when installed, else the bundled seed."""
    user = user_registry_path()
    if user.is_file():
        return registry_from_json(json.loads(user.read_text(encoding="utf-8")))
    text = resources.files("medsilo.confidential").joinpath(REGISTRY_FILE)
    return registry_from_json(json.loads(text.read_text(encoding="utf-8")))


def exploitable_matches(record: PlatformRecord, registry: Registry | None = None) -> list[str]:
    reg = default_registry() if registry is None else registry
    return [
        cve
        for cve in record.known_vulnerabilities
        if cve in reg and reg[cve].exploitable and record.kind in reg[cve].platforms
    ]


def exploit_indicator(record: PlatformRecord, registry: Registry | None = None) -> int:
    """1 when the record lists an exploitable registry CVE for its platform kind, else 0."""
    return 1 if exploitable_matches(record, registry) else 0


def unmatched_vulnerabilities(
    record: PlatformRecord, registry: Registry | None = None
) -> list[str]:
    """Listed CVEs that do not count towards the indicator (unknown or other platform)."""
    hits = set(exploitable_matches(record, registry))
    return [c for c in record.known_vulnerabilities if c not in hits]
