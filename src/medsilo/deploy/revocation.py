"""Revoking a site: a revocation list signed by the federation's CA, kept in the coordinator kit.

``medsilo provision revoke-site OUT --name X --reason TEXT`` adds X to
``OUT/coordinator/revoked.json`` and signs the whole list with ``OUT/authority/ca.key``. The
coordinator obeys the list in two places:

* ``medsilo coordinator start`` does not register a revoked site's SuperNode key
  (``flwr supernode register``), so the SuperLink refuses that node when it connects
  (Flower's "failed to activate", exit 305, at the site);
* the deployed ServerApp refuses a node claiming a revoked site at enrolment (a SuperLink
  that still knows the key, e.g. one that kept its registrations), and writes an
  ``enrolment`` record of action ``revoked`` to the run's audit ledger for every revoked
  site, naming the node when one tried to enrol and otherwise saying that its key was not
  registered.

The list is checked against the kit's ``ca.crt`` every time it is read, so a coordinator
operator cannot edit a site off it (or onto it) without the CA's key: an edited or unsigned
list is refused, loudly, and the coordinator does not start. Deleting the file does lift
every revocation; the sites' kits and ledgers keep no copy, so re-issuing the list (running
the command again from the provisioning folder) is the remedy, and the run ledgers show
which runs had it.

File format (``authority_signature``: ECDSA P-384/SHA-384 over :data:`AUTHORITY_TAG`
followed by the canonical JSON of ``revocations``, hex)::

    {"format": "medsilo-revocations/1",
     "revocations": {"federation": ..., "sites": {site: {"revoked_at", "reason",
                     "node_key_sha256"}}},
     "authority_signature": "..."}
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.deploy.authority import coordinator_roster, load_certificate, load_matching_authority
from medsilo.deploy.kit_files import SITE_KEYS_DIR
from medsilo.deploy.kits import COORDINATOR_DIR
from medsilo.deploy.signed_documents import SIGNATURE_FIELD, read_envelope, sign, signed_by
from medsilo.ledger.canonical import canonical_json
from medsilo.ledger.events import Enrolment, record_enrolment
from medsilo.ledger.store import Ledger

REVOCATION_FILE = "revoked.json"
FORMAT = "medsilo-revocations/1"
AUTHORITY_TAG = b"medsilo-revocations/1\n"


class RevocationError(ConfigError):
    """A revocation list that is malformed or not signed by the federation's CA."""


class Revocation(BaseModel):
    """One revoked site: when, why, and which SuperNode key it held."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    revoked_at: str
    reason: str = Field(min_length=1)
    node_key_sha256: str

    def explain(self, site: str) -> str:
        return (
            f"site {site!r} was revoked by the federation's certificate authority at "
            f"{self.revoked_at} ({self.reason}); its keys are no longer accepted"
        )


class RevocationList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    federation: str = Field(min_length=1)
    sites: dict[str, Revocation] = Field(default_factory=dict)


def _message(revocations: RevocationList) -> bytes:
    return AUTHORITY_TAG + canonical_json(revocations.model_dump(mode="json"))


def revocation_document(revocations: RevocationList, key: ec.EllipticCurvePrivateKey) -> str:
    document = {
        "format": FORMAT,
        "revocations": revocations.model_dump(mode="json"),
        SIGNATURE_FIELD: sign(key, _message(revocations)),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def read_revocation_list(kit: Path) -> RevocationList | None:
    """The kit's signed list, checked against the kit's ``ca.crt``; ``None`` when the
    federation never revoked anyone (no file)."""
    path = kit / REVOCATION_FILE
    if not path.exists():
        return None
    body, signature = read_envelope(path, FORMAT, "revocations", "revocation list", RevocationError)
    try:
        revocations = RevocationList.model_validate(body)
    except ValidationError as err:
        raise RevocationError(f"{path}: " + "; ".join(problem_lines(err))) from None
    certificate = load_certificate(kit / "ca.crt")
    if not isinstance(signature, str) or not signed_by(
        certificate, _message(revocations), signature
    ):
        raise RevocationError(
            f"{path} is not signed by the certificate authority {kit / 'ca.crt'}: the list "
            "was changed outside `medsilo provision revoke-site`; it is refused"
        )
    return revocations


def load_revocations(kit: Path) -> dict[str, Revocation]:
    """Revoked site -> its revocation (empty without a list)."""
    revocations = read_revocation_list(kit)
    return {} if revocations is None else dict(revocations.sites)


def revoke_site(federation_dir: Path, name: str, reason: str) -> Revocation:
    """Add ``name`` to the coordinator kit's signed revocation list; every check (a roster
    site, not revoked yet, the CA's key at hand, a reason) runs before the file is replaced."""
    roster = coordinator_roster(federation_dir)
    if name not in roster.sites:
        raise ConfigError(
            f"{name!r} is not a site of federation {roster.federation} "
            f"({', '.join(roster.sites)}); nothing to revoke"
        )
    if not reason.strip():
        raise ConfigError("give a --reason: it is recorded with the revocation")
    kit = federation_dir / COORDINATOR_DIR
    current = read_revocation_list(kit) or RevocationList(federation=roster.federation)
    if name in current.sites:
        raise ConfigError(f"refused: {current.sites[name].explain(name)}; it is already revoked")
    ca = load_matching_authority(federation_dir)
    node_key = kit / SITE_KEYS_DIR / f"{name}.pub"
    revocation = Revocation(
        revoked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason.strip(),
        node_key_sha256=(
            hashlib.sha256(node_key.read_bytes()).hexdigest() if node_key.is_file() else ""
        ),
    )
    grown = current.model_copy(update={"sites": {**current.sites, name: revocation}})
    tmp = kit / f".{REVOCATION_FILE}.tmp"
    tmp.write_text(revocation_document(grown, ca.key))
    os.chmod(tmp, 0o644)
    os.replace(tmp, kit / REVOCATION_FILE)
    return revocation


def record_revocation(
    ledger: Ledger, site: str, revocation: Revocation, node: int | None, attest_sha256: str
) -> None:
    """The run ledger's note that ``site`` is revoked: an ``enrolment`` record ``revoked``,
    naming the node that tried to enrol as it, or saying that none could (key unregistered)."""
    attempt = (
        {"node": node, "refused_at": "enrolment"}
        if node is not None
        else {"refused_at": "connection: its node key is not registered at the SuperLink"}
    )
    details = {
        "reason": revocation.explain(site),
        "revoked_at": revocation.revoked_at,
        "node_key_sha256": revocation.node_key_sha256,
        **attempt,
    }
    record_enrolment(
        ledger,
        Enrolment(site=site, public_key_sha256=attest_sha256, action="revoked", details=details),
    )
