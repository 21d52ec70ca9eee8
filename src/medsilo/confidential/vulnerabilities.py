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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from medsilo.confidential.platform import PlatformRecord


@dataclass(frozen=True)
class Vulnerability:
    cve: str
    name: str
    platforms: tuple[str, ...]
    exploitable: bool


Registry = dict[str, Vulnerability]


@cache
def default_registry() -> Registry:
    text = resources.files("medsilo.confidential").joinpath("tee_vulnerabilities.json")
    raw = json.loads(text.read_text(encoding="utf-8"))
    return {
        e["cve"]: Vulnerability(e["cve"], e["name"], tuple(e["platforms"]), bool(e["exploitable"]))
        for e in raw["entries"]
    }


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
