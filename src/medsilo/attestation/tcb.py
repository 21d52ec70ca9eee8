"""Matching an attested (platform, TCB version) against the vulnerability registry.

A TCB version is a dot-separated list of security version numbers (SEV-SNP
``"bootloader.tee.snp.microcode"``, TDX the 16 TEE_TCB_SVN bytes). A registry entry's
``fixed_tcb[platform]`` is the first TCB that contains the fix. Vendors raise SVNs
independently per component, so a TCB is patched only when **every** component is at least
the fixed one:

    affected(tcb, fixed)  iff  NOT  all(tcb[i] >= fixed[i])

Entries without ``fixed_tcb`` for the platform are not matched from attestation (the
registry does not say which TCBs they affect; an operator can still list them in a
``PlatformRecord``). Unparsable or differently shaped versions raise ``ValueError``.
"""

from __future__ import annotations

from medsilo.confidential.vulnerabilities import Registry


def parse_tcb(version: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError as err:
        raise ValueError(f"TCB version {version!r} is not dot-separated integers") from err
    if any(p < 0 for p in parts):
        raise ValueError(f"TCB version {version!r} has a negative component")
    return parts


def tcb_affected(tcb_version: str, fixed: str) -> bool:
    tcb, fix = parse_tcb(tcb_version), parse_tcb(fixed)
    if len(tcb) != len(fix):
        raise ValueError(f"TCB version {tcb_version!r} and fixed version {fixed!r} differ in shape")
    return not all(t >= f for t, f in zip(tcb, fix, strict=True))


def affecting_cves(kind: str, tcb_version: str, registry: Registry) -> list[str]:
    """Registry CVEs (exploitable or not) whose fixed TCB for ``kind`` is above ``tcb_version``."""
    if not tcb_version:
        return []
    return sorted(
        cve
        for cve, v in registry.items()
        if kind in v.platforms
        and kind in v.fixed_tcb
        and tcb_affected(tcb_version, v.fixed_tcb[kind])
    )
