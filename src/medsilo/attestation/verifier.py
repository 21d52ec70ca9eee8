"""The verifier contract every backend implements, and what a successful check yields.

``verify(evidence, expected_nonce, trusted_keys)`` returns a :class:`VerifiedPlatform` or
raises :class:`~medsilo.attestation.errors.AttestationError`. ``trusted_keys`` maps site
name to the Ed25519 public key registered for that site out of band (used by the software
backend; hardware backends root trust in the vendor chain instead). ``hardware_rooted``
says whether a vendor root of trust vouched for the platform: False for the software
backend, whose platform fields are *claims* signed by the site's key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.evidence import Evidence

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class VerifiedPlatform:
    site: str
    backend: str
    kind: str
    tcb_version: str
    measurement: str
    hardware_rooted: bool
    details: dict[str, Any] = field(default_factory=dict)


class Verifier(Protocol):
    backend: str

    def verify(
        self,
        evidence: Evidence,
        expected_nonce: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
    ) -> VerifiedPlatform: ...


def check_nonce(evidence: Evidence, expected_nonce: str) -> None:
    if evidence.nonce != expected_nonce:
        raise AttestationError(
            f"nonce mismatch: evidence carries {evidence.nonce[:16]}..., the coordinator "
            "expected another challenge (replayed or stale evidence)"
        )


def check_fresh(evidence: Evidence, max_age_s: float, now: datetime) -> None:
    """Timestamp within ``max_age_s`` in the past (60 s of clock skew into the future)."""
    try:
        stamp = datetime.fromisoformat(evidence.timestamp)
    except ValueError as err:
        raise AttestationError(f"timestamp {evidence.timestamp!r} is not ISO-8601") from err
    if stamp.tzinfo is None:
        raise AttestationError(f"timestamp {evidence.timestamp!r} has no time zone")
    age = (now - stamp).total_seconds()
    if age > max_age_s:
        raise AttestationError(f"stale evidence: {age:.0f} s old, policy allows {max_age_s:g} s")
    if age < -60:
        raise AttestationError(f"evidence timestamp is {-age:.0f} s in the future")
