"""The coordinator's enrolment policy and decision: verify, check, match CVEs, record.

Order of checks (the first failure is the rejection reason):

1. the evidence's backend is in ``allowed_backends`` (``software`` only when listed
   explicitly: it has no hardware root of trust, :mod:`.software`);
2. the site has an outstanding challenge (:class:`~medsilo.attestation.nonces.NonceBook`,
   taken once: a replay finds none);
3. the backend's verifier accepts it (signature / chain, nonce, freshness ``max_age_s``);
4. the measurement is in ``allowed_measurements``;
5. the (platform, TCB) is matched against the vulnerability registry (:mod:`.tcb`); the
   exploit indicator is :func:`medsilo.confidential.vulnerabilities.exploit_indicator` of the
   resulting :class:`PlatformRecord`. With ``exploitable_tcb: reject`` an indicator of 1
   rejects the site; with ``flag`` it is admitted and the indicator feeds CC-PGD.

Every decision is recorded in the audit ledger when one is given: an ``attestation`` event
(verified or not, with the reason) and, when accepted, an ``enrolment`` event with the
fingerprint of the site's registered key and its platform, TCB and indicator.
:meth:`EnrolmentDecision.platform_record` is the ``platform`` to put in the site's
``SiteRecord`` so CC-PGD's indicator follows from attestation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.evidence import Backend, Evidence
from medsilo.attestation.nonces import NonceBook
from medsilo.attestation.sev_snp import SevSnpVerifier
from medsilo.attestation.software import SoftwareVerifier
from medsilo.attestation.tcb import affecting_cves
from medsilo.attestation.tdx import TdxVerifier
from medsilo.attestation.verifier import Clock, Verifier, utc_now
from medsilo.confidential.platform import PlatformKind, PlatformRecord
from medsilo.confidential.vulnerabilities import Registry, default_registry, exploit_indicator
from medsilo.config_errors import describe_invalid
from medsilo.ledger.events import Attestation, Enrolment, record_attestation, record_enrolment
from medsilo.ledger.keys import fingerprint
from medsilo.ledger.store import Ledger


class EnrolmentPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_backends: tuple[Backend, ...] = Field(
        default=("sev-snp", "tdx"), description="add 'software' explicitly to admit it"
    )
    allowed_measurements: tuple[str, ...] = Field(
        min_length=1, description="hex measurements of the code sites may run"
    )
    max_age_s: float = Field(default=300.0, gt=0)
    exploitable_tcb: Literal["reject", "flag"] = "reject"


def load_policy(path: Path) -> EnrolmentPolicy:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return EnrolmentPolicy.model_validate(raw)
    except ValidationError as err:
        raise ValueError(describe_invalid(err, f"bad enrolment policy {path}:")) from err


@dataclass(frozen=True)
class EnrolmentDecision:
    site: str
    accepted: bool
    reason: str
    backend: str
    platform: str
    tcb_version: str
    measurement: str
    hardware_rooted: bool = False
    exploit_indicator: int = 0
    matched_cves: list[str] = field(default_factory=list)

    def platform_record(self) -> PlatformRecord:
        kind: PlatformKind = self.platform  # type: ignore[assignment]  # validated Evidence
        return PlatformRecord(
            kind=kind, tcb_version=self.tcb_version, known_vulnerabilities=tuple(self.matched_cves)
        )

    def details(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "platform": self.platform,
            "tcb_version": self.tcb_version,
            "hardware_rooted": self.hardware_rooted,
            "exploit_indicator": self.exploit_indicator,
            "matched_cves": list(self.matched_cves),
        }


def default_verifiers(policy: EnrolmentPolicy, clock: Clock = utc_now) -> dict[str, Verifier]:
    """Software verifier with the policy's window; hardware ones refuse (no chain check)."""
    return {
        "software": SoftwareVerifier(policy.max_age_s, clock),
        "sev-snp": SevSnpVerifier(),
        "tdx": TdxVerifier(),
    }


def _decide(
    evidence: Evidence,
    policy: EnrolmentPolicy,
    nonces: NonceBook,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    verifiers: Mapping[str, Verifier],
    registry: Registry,
) -> EnrolmentDecision:
    def reject(reason: str, **extra: Any) -> EnrolmentDecision:
        base: dict[str, Any] = {
            "site": evidence.site,
            "accepted": False,
            "reason": reason,
            "backend": evidence.backend,
            "platform": evidence.platform,
            "tcb_version": evidence.tcb_version,
            "measurement": evidence.measurement,
        }
        return EnrolmentDecision(**(base | extra))

    if evidence.backend not in policy.allowed_backends:
        return reject(
            f"backend {evidence.backend!r} not allowed by policy "
            f"(allowed: {list(policy.allowed_backends)})"
        )
    verifier = verifiers.get(evidence.backend)
    if verifier is None:
        return reject(f"no verifier for backend {evidence.backend!r}")
    try:
        expected = nonces.take(evidence.site)
        verified = verifier.verify(evidence, expected, trusted_keys)
    except AttestationError as err:
        return reject(err.reason)
    if verified.measurement not in policy.allowed_measurements:
        return reject(f"measurement {verified.measurement[:16]}... is not in the allow-list")
    try:
        cves = affecting_cves(verified.kind, verified.tcb_version, registry)
    except ValueError as err:
        return reject(str(err))
    record = PlatformRecord(
        kind=evidence.platform if verified.backend == "software" else evidence.backend,
        tcb_version=verified.tcb_version,
        known_vulnerabilities=tuple(cves),
    )
    indicator = exploit_indicator(record, registry)
    fields: dict[str, Any] = {
        "platform": record.kind,
        "tcb_version": record.tcb_version,
        "measurement": verified.measurement,
        "hardware_rooted": verified.hardware_rooted,
        "exploit_indicator": indicator,
        "matched_cves": cves,
    }
    if indicator and policy.exploitable_tcb == "reject":
        return reject(f"TCB {record.tcb_version} has known exploitable CVEs {cves}", **fields)
    reason = "accepted" + (" (flagged: exploitable TCB)" if indicator else "")
    if not verified.hardware_rooted:
        reason += " [software backend: the platform is a signed claim, no hardware root of trust]"
    return EnrolmentDecision(
        site=evidence.site, accepted=True, reason=reason, backend=verified.backend, **fields
    )


def enrol(
    evidence: Evidence,
    policy: EnrolmentPolicy,
    nonces: NonceBook,
    trusted_keys: Mapping[str, Ed25519PublicKey],
    *,
    verifiers: Mapping[str, Verifier] | None = None,
    registry: Registry | None = None,
    ledger: Ledger | None = None,
) -> EnrolmentDecision:
    """Decide on one site's evidence and record the decision in ``ledger`` when given."""
    decision = _decide(
        evidence,
        policy,
        nonces,
        trusted_keys,
        default_verifiers(policy) if verifiers is None else verifiers,
        default_registry() if registry is None else registry,
    )
    if ledger is not None:
        record_attestation(
            ledger,
            Attestation(
                site=decision.site,
                evidence_type=decision.backend,
                measurement_sha256=decision.measurement,
                verified=decision.accepted,
                reason=decision.reason,
                details=decision.details(),
            ),
        )
        if decision.accepted:
            key = trusted_keys.get(decision.site)
            record_enrolment(
                ledger,
                Enrolment(
                    site=decision.site,
                    public_key_sha256=fingerprint(key) if key is not None else "",
                    details=decision.details(),
                ),
            )
    return decision
