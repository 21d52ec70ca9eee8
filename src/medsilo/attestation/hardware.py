"""What the SEV-SNP and TDX verifiers share: chain check hook, nonce binding, measurement.

A hardware report is only worth something once its signature chain to the vendor root is
verified (SEV-SNP: report signed by the VCEK, VCEK certified by ASK, ASK by ARK; TDX: quote
signed by the QE attestation key, certified through the PCK certificate chain to Intel's
root, plus TCB info/QE identity collateral). That needs vendor certificates and collateral
this offline build does not have, so a hardware verifier **refuses** every report unless the
deployment supplies a ``chain_check`` callback ``(raw_report, parsed) -> None`` that raises
:class:`AttestationError` when the chain does not verify.

After the chain check, the report must bind the coordinator challenge:

    report_data[0:32] == SHA-256(nonce as UTF-8)

and the evidence's ``measurement`` must equal the report's (SNP MEASUREMENT / TDX MRTD, hex).
The TCB version recorded is the one read from the report, never the site's claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.evidence import Evidence
from medsilo.attestation.verifier import VerifiedPlatform, check_nonce

NO_CHAIN = (
    "hardware chain verification not available in this build: {backend} reports need the "
    "vendor certificate chain ({chain}) checked; supply a chain_check callback"
)


@dataclass(frozen=True)
class ParsedReport:
    """The fields of a hardware report that enrolment uses (plus backend-specific ones)."""

    tcb_version: str
    measurement: str  # hex
    report_data: bytes
    fields: dict[str, Any]


ChainCheck = Callable[[bytes, ParsedReport], None]


def nonce_report_data(nonce: str) -> bytes:
    """The 32 bytes a site puts at the start of REPORT_DATA to answer ``nonce``."""
    return hashlib.sha256(nonce.encode("utf-8")).digest()


class HardwareVerifier:
    backend = ""
    chain = ""

    def __init__(self, chain_check: ChainCheck | None = None) -> None:
        self.chain_check = chain_check

    def parse(self, raw: bytes) -> ParsedReport:
        raise NotImplementedError

    def verify(
        self,
        evidence: Evidence,
        expected_nonce: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
    ) -> VerifiedPlatform:
        if evidence.backend != self.backend:
            raise AttestationError(f"{self.backend} verifier got {evidence.backend} evidence")
        try:
            raw = bytes.fromhex(evidence.report)
        except ValueError as err:
            raise AttestationError(f"{self.backend} report is not valid hex") from err
        parsed = self.parse(raw)
        if self.chain_check is None:
            raise AttestationError(NO_CHAIN.format(backend=self.backend, chain=self.chain))
        self.chain_check(raw, parsed)
        check_nonce(evidence, expected_nonce)
        if parsed.report_data[:32] != nonce_report_data(expected_nonce):
            raise AttestationError("report_data does not bind the coordinator nonce")
        if evidence.measurement != parsed.measurement:
            raise AttestationError("evidence measurement differs from the report's measurement")
        return VerifiedPlatform(
            site=evidence.site,
            backend=self.backend,
            kind=self.backend,
            tcb_version=parsed.tcb_version,
            measurement=parsed.measurement,
            hardware_rooted=True,
            details=dict(parsed.fields),
        )
