"""Software attestation backend: the site signs its code measurement and platform descriptor.

What it proves (and what it does not). A verified software evidence shows that

* whoever produced it holds the private key registered for that site (Ed25519 signature over
  :meth:`Evidence.signed_bytes`),
* it answers *this* coordinator challenge (nonce) and is recent (timestamp window),
* the site *claims* to run code with that measurement on that platform/TCB.

It does **not** show that the code really runs as measured, nor that the claimed TEE is
genuine or its TCB is what is claimed: there is no hardware root of trust, a site (or anyone
with its key) can sign any descriptor. The result is therefore labelled ``backend:
software`` and ``hardware_rooted: False``, and :class:`~medsilo.attestation.policy
.EnrolmentPolicy` admits it only when ``software`` is explicitly among its allowed backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsilo.attestation.errors import AttestationError
from medsilo.attestation.evidence import Evidence
from medsilo.attestation.verifier import (
    Clock,
    VerifiedPlatform,
    check_fresh,
    check_nonce,
    utc_now,
)
from medsilo.confidential.platform import PlatformKind

BACKEND = "software"


def sign_evidence(
    key: Ed25519PrivateKey,
    *,
    site: str,
    measurement: str,
    nonce: str,
    platform: PlatformKind = "software",
    tcb_version: str = "",
    now: datetime | None = None,
) -> Evidence:
    """The site side: build and sign software evidence answering ``nonce``."""
    unsigned = Evidence(
        site=site,
        backend="software",
        platform=platform,
        tcb_version=tcb_version,
        measurement=measurement,
        nonce=nonce,
        timestamp=(now or utc_now()).isoformat(),
    )
    return unsigned.model_copy(update={"signature": key.sign(unsigned.signed_bytes()).hex()})


class SoftwareVerifier:
    backend = BACKEND

    def __init__(self, max_age_s: float = 300.0, clock: Clock = utc_now) -> None:
        self.max_age_s = max_age_s
        self.clock = clock

    def verify(
        self,
        evidence: Evidence,
        expected_nonce: str,
        trusted_keys: Mapping[str, Ed25519PublicKey],
    ) -> VerifiedPlatform:
        if evidence.backend != BACKEND:
            raise AttestationError(f"software verifier got {evidence.backend} evidence")
        key = trusted_keys.get(evidence.site)
        if key is None:
            raise AttestationError(f"no registered public key for site {evidence.site!r}")
        if not evidence.signature:
            raise AttestationError("software evidence carries no signature")
        try:
            key.verify(bytes.fromhex(evidence.signature), evidence.signed_bytes())
        except (InvalidSignature, ValueError) as err:
            raise AttestationError(
                "signature does not verify with the site's registered key "
                "(wrong key or tampered evidence)"
            ) from err
        check_nonce(evidence, expected_nonce)
        check_fresh(evidence, self.max_age_s, self.clock())
        return VerifiedPlatform(
            site=evidence.site,
            backend=BACKEND,
            kind=evidence.platform,
            tcb_version=evidence.tcb_version,
            measurement=evidence.measurement,
            hardware_rooted=False,
            details={"proves": "key possession and a claimed platform descriptor only"},
        )
