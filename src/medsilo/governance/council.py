"""The federation's council: who votes on the coordinator's decisions, and how many must agree.

A council is fixed at provisioning (``council:`` in FEDERATION.yaml, docs/deployment.md):
the member sites, each with the Ed25519 public key of its kit's ``attest.key``, and the
threshold M of N. ``medsilo provision`` writes it as ``council.json`` into the coordinator
kit and into every site kit, signed by the federation's certificate authority (the
``authority/ca.key`` the provisioner keeps, never shipped). The coordinator checks that
signature against its kit's ``ca.crt`` before it counts a single vote, so an operator who
edits ``council.json`` on the coordinator (a lower threshold, a member key of their own)
gets the council refused instead of obeyed; each site keeps its own signed copy to check the
coordinator's recorded decisions with (docs/governance.md, "Quorum decisions").

File format (``format`` tags the layout; ``authority_signature`` is ECDSA P-384/SHA-384 over
:data:`AUTHORITY_TAG` followed by the canonical JSON of ``council``, hex)::

    {"format": "medsilo-council/1",
     "council": {"federation": ..., "threshold": M, "members": {site: public key hex}},
     "authority_signature": "..."}
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.deploy.signed_documents import read_envelope
from medsilo.ledger.canonical import canonical_json

COUNCIL_FILE = "council.json"
FORMAT = "medsilo-council/1"
AUTHORITY_TAG = b"medsilo-council/1\n"
_PUBLIC_HEX = re.compile(r"^[0-9a-f]{64}$")


class CouncilError(ConfigError):
    """A council file that is missing, malformed or not signed by the federation's CA."""


class Council(BaseModel):
    """The voting members (site name -> raw Ed25519 public key, hex) and the threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    federation: str = Field(min_length=1)
    threshold: int = Field(ge=1)
    members: dict[str, str] = Field(min_length=1)

    @field_validator("members")
    @classmethod
    def _raw_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for name, key in value.items():
            if not _PUBLIC_HEX.match(key):
                raise ValueError(f"member {name!r}: key is not 32 bytes of lowercase hex")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Council:
        if self.threshold > len(self.members):
            raise ValueError(
                f"threshold {self.threshold} exceeds the {len(self.members)} council members"
            )
        return self

    def council_id(self) -> str:
        """SHA-256 of the canonical JSON: every approval is bound to it, so a vote cast under
        one council (members, keys, threshold) never counts under another."""
        return hashlib.sha256(canonical_json(self.model_dump(mode="json"))).hexdigest()

    def public_key(self, member: str) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.members[member]))


def authority_message(council: Council) -> bytes:
    return AUTHORITY_TAG + canonical_json(council.model_dump(mode="json"))


def council_document(council: Council, authority_key: ec.EllipticCurvePrivateKey | None) -> str:
    """The text of ``council.json``; signed when the CA's private key is given."""
    document: dict[str, object] = {"format": FORMAT, "council": council.model_dump(mode="json")}
    if authority_key is not None:
        signature = authority_key.sign(authority_message(council), ec.ECDSA(hashes.SHA384()))
        document["authority_signature"] = signature.hex()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _check_authority(council: Council, signature: object, path: Path, authority: Path) -> None:
    if not isinstance(signature, str):
        raise CouncilError(f"{path} carries no authority signature; re-run `medsilo provision`")
    try:
        certificate = x509.load_pem_x509_certificate(authority.read_bytes())
    except (OSError, ValueError) as err:
        raise CouncilError(f"cannot read the authority certificate {authority}: {err}") from None
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CouncilError(f"{authority} is not the federation's EC certificate authority")
    try:
        key.verify(bytes.fromhex(signature), authority_message(council), ec.ECDSA(hashes.SHA384()))
    except (InvalidSignature, ValueError):
        raise CouncilError(
            f"{path} is not signed by the certificate authority {authority}: the council was "
            "changed after provisioning (members, keys or threshold); it is refused"
        ) from None


def load_council(path: Path, authority: Path) -> Council:
    """Read ``council.json``; its signature must verify with ``authority`` (a ``ca.crt``), so
    a council whose threshold or keys were edited, or that was never signed, is refused."""
    if not path.is_file():
        raise CouncilError(f"council file not found: {path}")
    body, signature = read_envelope(path, FORMAT, "council", "council file", CouncilError)
    try:
        council = Council.model_validate(body)
    except ValidationError as err:
        raise CouncilError(f"{path}: " + "; ".join(problem_lines(err))) from None
    _check_authority(council, signature, path, authority)
    return council
