"""A proposal the council votes on, and a member's signed approval of it.

A proposal names one coordinator action and its subject (for ``start_run`` the config hash
of :func:`medsilo.governance.checkpoint.config_hash`; for ``retire_model`` the final model
hash of the run to retire; for ``remove_site`` and ``admit_site`` the site name), the
federation, a random nonce and its creation time.
Its id is the SHA-256 of its canonical JSON, so the id commits to every field: two
proposals for the same subject differ by nonce, and an approval of one is no approval of
the other.

An approval is a member's Ed25519 signature, with the key of its site kit (``attest.key``),
over :data:`APPROVAL_TAG` followed by the canonical JSON of ``{council, member, proposal}``
(the council id of :meth:`~medsilo.governance.council.Council.council_id`). The tag keeps the
signature from being mistaken for anything else that key signs (attestation evidence is a
bare JSON object); the proposal id binds it to one proposal, the council id to one council,
the member name to one voter.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.governance.council import Council
from medsilo.ledger.canonical import canonical_json
from medsilo.ledger.keys import raw_public

APPROVAL_TAG = b"medsilo-council-approval/1\n"
_HEX_ID = re.compile(r"^[0-9a-f]{64}$")

#: The coordinator actions a council decides (docs/governance.md, "Quorum decisions").
Action = Literal["start_run", "retire_model", "remove_site", "admit_site"]


class ProposalError(ConfigError):
    """A proposal or approval file that cannot be read, or does not match its id."""


class Proposal(BaseModel):
    """One action the coordinator may take once the council approved it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["medsilo-proposal/1"] = "medsilo-proposal/1"
    federation: str = Field(min_length=1)
    action: Action
    subject: str = Field(min_length=1)
    details: dict[str, Any] = Field(default_factory=dict, description="shown to voters")
    nonce: str = Field(default_factory=lambda: secrets.token_hex(16))
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def canonical(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def proposal_id(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def describe(self) -> str:
        return f"{self.action} {self.subject}"


class Approval(BaseModel):
    """A member's vote for one proposal, as the file the member hands to the coordinator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["medsilo-approval/1"] = "medsilo-approval/1"
    proposal: str = Field(pattern=_HEX_ID.pattern)
    member: str = Field(min_length=1)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


def approval_message(proposal_id: str, member: str, council: Council) -> bytes:
    fields = {"council": council.council_id(), "member": member, "proposal": proposal_id}
    return APPROVAL_TAG + canonical_json(fields)


def sign_approval(
    key: Ed25519PrivateKey, proposal: Proposal, member: str, council: Council
) -> Approval:
    """``member``'s approval of ``proposal``; refused when the proposal is for another
    federation or ``key`` is not the member's provisioned key (a vote that could not count)."""
    if proposal.federation != council.federation:
        raise ProposalError(
            f"the proposal is for federation {proposal.federation!r}, the council is "
            f"{council.federation!r}'s"
        )
    if member not in council.members:
        raise ProposalError(f"{member!r} is not a council member ({', '.join(council.members)})")
    if raw_public(key.public_key()).hex() != council.members[member]:
        raise ProposalError(f"this key is not the key {member!r} was provisioned with")
    message = approval_message(proposal.proposal_id(), member, council)
    return Approval(
        proposal=proposal.proposal_id(), member=member, signature=key.sign(message).hex()
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProposalError(f"file not found: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProposalError(f"{path} is not JSON: {err}") from None


def read_proposal(path: Path) -> Proposal:
    """A proposal file; its name (``<id>.json``) must be the id of its content."""
    try:
        proposal = Proposal.model_validate(_read_json(path))
    except ValidationError as err:
        raise ProposalError(f"{path}: " + "; ".join(problem_lines(err))) from None
    if path.stem != proposal.proposal_id():
        raise ProposalError(
            f"{path} does not hold proposal {path.stem}: its content hashes to "
            f"{proposal.proposal_id()} (changed after it was proposed)"
        )
    return proposal


def read_approval(path: Path) -> Approval:
    try:
        return Approval.model_validate(_read_json(path))
    except ValidationError as err:
        raise ProposalError(f"{path}: " + "; ".join(problem_lines(err))) from None


def write_json(path: Path, model: BaseModel) -> Path:
    """Write ``model`` to ``path``; never replaces an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:
        handle.write(json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    return path
