"""What a site runs on: the record the simulation config sets and attestation will later fill.

``kind`` is the trusted-execution technology (``none`` for a plain host, ``software`` for an
emulated/software enclave with no hardware isolation claims), ``tcb_version`` the platform's
trusted-computing-base version string as reported by attestation (free text for now), and
``known_vulnerabilities`` the CVE ids the operator (or, later, the attestation verifier)
says the platform's TCB is still exposed to.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PlatformKind = Literal["none", "sgx", "sev-snp", "tdx", "software"]
CVE_PATTERN = r"^CVE-\d{4}-\d{4,}$"


class PlatformRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PlatformKind = "none"
    tcb_version: str = ""
    # a tuple keeps the frozen record hashable; YAML lists are accepted
    known_vulnerabilities: tuple[Annotated[str, StringConstraints(pattern=CVE_PATTERN)], ...] = (
        Field(default=(), description="CVE ids the platform's TCB is exposed to")
    )
