"""The decisions folder: proposals, the approvals members hand in, and the governance ledger.

Layout (one folder per federation, shared with or mailed between the council members)::

    proposals/<id>.json        one file per proposal, named by its id
    approvals/*.json           approval files as members produced them (any names)
    ledger.sqlite, ledger.pub  the governance ledger (docs/audit-ledger.md format), signed
                               with the coordinator's key: quorum_proposal,
                               quorum_approval and quorum_decision records

The coordinator checks each guarded action with :meth:`DecisionBook.approved` (nothing
written), does the steps of the action that can still fail, and then consumes the proposal
with :meth:`DecisionBook.record` (:meth:`DecisionBook.authorize` does both at once, for
actions that are nothing but the decision). The check succeeds only for a proposal of that
action and subject whose valid approvals reach the threshold and that no earlier
``quorum_decision`` record consumed; ``record`` then writes the counted
approvals and the decision (with the whole proposal and every counted signature, so the
record can be re-checked from the ledger and the council alone, :func:`recorded_problems`).
Otherwise it raises :class:`QuorumRefused` naming the members whose approvals are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsilo.config import ConfigError
from medsilo.governance.council import Council
from medsilo.governance.proposal import (
    Approval,
    Proposal,
    ProposalError,
    read_approval,
    read_proposal,
    write_json,
)
from medsilo.governance.quorum import Refused, Tally, Vote, tally
from medsilo.governance.record_kinds import APPROVAL_KIND, DECISION_KIND, PROPOSAL_KIND
from medsilo.ledger.chain import LedgerRecord
from medsilo.ledger.keys import load_or_create_private_key, load_public_key, write_public_key
from medsilo.ledger.store import Ledger, open_readonly, read_records
from medsilo.ledger.verify import verify_records

PROPOSALS_DIR = "proposals"
APPROVALS_DIR = "approvals"
LEDGER_FILE = "ledger.sqlite"
PUBLIC_KEY_FILE = "ledger.pub"


class QuorumRefused(ConfigError):
    """An action the council has not approved: the message lists the missing approvals."""


@dataclass(frozen=True)
class Decision:
    """An authorised action: the proposal, the members whose approvals counted, and the
    governance ledger record that consumed it."""

    proposal: Proposal
    approvals: list[Approval]
    council_id: str
    ledger_seq: int

    def payload(self) -> dict[str, Any]:
        """The ``quorum_decision`` record: enough to re-check it without the folder."""
        return decision_payload(self.proposal, self.approvals, self.council_id)


def decision_payload(
    proposal: Proposal, approvals: list[Approval], council_id: str
) -> dict[str, Any]:
    return {
        "proposal_id": proposal.proposal_id(),
        "proposal": proposal.model_dump(mode="json"),
        "council": council_id,
        "approvals": [{"member": a.member, "signature": a.signature} for a in approvals],
    }


def record_payload(record: LedgerRecord) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(record.payload)
    return loaded


class DecisionBook:
    """One federation's decisions folder, read and appended to by the coordinator."""

    def __init__(self, directory: Path, council: Council, key_path: Path | None = None) -> None:
        self.directory = directory
        self.council = council
        self.key_path = key_path

    # --- reading ---------------------------------------------------------------------

    def proposals(self) -> list[Proposal]:
        folder = self.directory / PROPOSALS_DIR
        found = [read_proposal(path) for path in sorted(folder.glob("*.json"))]
        return sorted(found, key=lambda p: (p.created, p.proposal_id()))

    def find(self, prefix: str) -> Proposal:
        """The one proposal whose id starts with ``prefix``."""
        matches = [p for p in self.proposals() if p.proposal_id().startswith(prefix.lower())]
        if len(matches) != 1:
            what = "no proposal" if not matches else f"{len(matches)} proposals"
            raise ProposalError(f"{what} in {self.directory} with an id starting {prefix!r}")
        return matches[0]

    def votes(self) -> tuple[list[Vote], list[Refused]]:
        """Every approval file, read; files that are not approvals are refused, not fatal
        (anyone may drop a file in the folder; it must not block the others)."""
        votes: list[Vote] = []
        unreadable: list[Refused] = []
        for path in sorted((self.directory / APPROVALS_DIR).glob("*.json")):
            try:
                votes.append(Vote(read_approval(path), path.name))
            except ProposalError as err:
                unreadable.append(Refused(path.name, "?", str(err)))
        return votes, unreadable

    def records(self) -> list[LedgerRecord]:
        return ledger_records(self.directory)

    def executed(self) -> dict[str, int]:
        """Proposal id -> seq of the ``quorum_decision`` record that consumed it."""
        return {
            record_payload(r)["proposal_id"]: r.seq
            for r in self.records()
            if r.kind == DECISION_KIND
        }

    def tally(self, proposal: Proposal, executed: dict[str, int] | None = None) -> Tally:
        proposal_id = proposal.proposal_id()
        votes = [v for v in self.votes()[0] if v.approval.proposal == proposal_id]
        done = self.executed() if executed is None else executed
        return tally(self.council, proposal, votes, done.get(proposal_id))

    # --- writing ---------------------------------------------------------------------

    def _ledger(self) -> Ledger:
        key = load_or_create_private_key(self.key_path)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_public_key(key.public_key(), self.directory / PUBLIC_KEY_FILE)
        return Ledger(self.directory / LEDGER_FILE, key)

    def propose(self, proposal: Proposal) -> Path:
        """Write the proposal file and its ``quorum_proposal`` record."""
        if proposal.federation != self.council.federation:
            raise ProposalError(
                f"proposal for federation {proposal.federation!r}; this council is "
                f"{self.council.federation!r}'s"
            )
        path = self.directory / PROPOSALS_DIR / f"{proposal.proposal_id()}.json"
        with self._ledger() as ledger:  # the key is readable: only then write the file
            write_json(path, proposal)
            payload = {"proposal_id": proposal.proposal_id(), **proposal.model_dump(mode="json")}
            ledger.append(PROPOSAL_KIND, payload)
        return path

    def authorize(self, action: str, subject: str) -> Decision:
        """Consume an approved proposal for ``action`` on ``subject``, or refuse (module
        docstring). Nothing is written when it refuses."""
        return self.record(self.approved(action, subject))

    def approved(self, action: str, subject: str) -> Tally:
        """The tally of an approved, unconsumed proposal for ``action`` on ``subject``, or
        ``QuorumRefused``; writes nothing, so a caller can run its own remaining checks
        before :meth:`record` consumes the proposal."""
        candidates = [p for p in self.proposals() if (p.action, p.subject) == (action, subject)]
        members = ", ".join(self.council.members)
        if not candidates:
            raise QuorumRefused(
                f"refused: {action} {subject} needs the council's approval and no proposal "
                f"for it is in {self.directory}; propose it (`medsilo governance propose`) "
                f"and collect {self.council.threshold} approvals from: {members}"
            )
        executed = self.executed()
        tallies = [self.tally(p, executed) for p in candidates]
        approved = [t for t in tallies if t.met]
        if not approved:
            lines = [f"refused: {action} {subject} lacks the council's quorum:"]
            for t in tallies:
                lines.append(f"  - {t.shortfall()}")
                lines += [f"    refused approval {r.source}: {r.reason}" for r in t.refused]
            raise QuorumRefused("\n".join(lines))
        return approved[0]

    def record(self, chosen: Tally) -> Decision:
        """Consume ``chosen`` (from :meth:`approved`): its approvals and the decision go to
        the governance ledger; refused if it was consumed meanwhile."""
        proposal_id = chosen.proposal.proposal_id()
        if proposal_id in self.executed():
            raise QuorumRefused(f"refused: proposal {proposal_id[:16]} was already executed")
        approvals = chosen.approvals
        council_id = self.council.council_id()
        with self._ledger() as ledger:
            for approval in approvals:
                ledger.append(APPROVAL_KIND, approval.model_dump(mode="json"))
            payload = decision_payload(chosen.proposal, approvals, council_id)
            record = ledger.append(DECISION_KIND, payload)
        return Decision(chosen.proposal, approvals, council_id, record.seq)


def recorded_decisions(records: list[LedgerRecord]) -> list[tuple[LedgerRecord, dict[str, Any]]]:
    """The ``quorum_decision`` records among ``records``, in ledger order, with payloads."""
    return [(r, record_payload(r)) for r in records if r.kind == DECISION_KIND]


def recorded_problems(records: list[LedgerRecord], council: Council) -> list[str]:
    """Re-check every ``quorum_decision`` record against ``council`` (a site's own signed
    copy): each has its quorum (:func:`decision_problems`) and no proposal was executed
    twice. Empty when every recorded decision is sound."""
    repeated = _repeated(records)
    problems: list[str] = []
    for record, payload in recorded_decisions(records):
        problems += [repeated[record.seq]] if record.seq in repeated else []
        problems += decision_problems(payload, council, f"record {record.seq}")
    return problems


def repeated_executions(records: list[LedgerRecord]) -> list[str]:
    """Each ``quorum_decision`` record that executes a proposal a second time."""
    return list(_repeated(records).values())


def _repeated(records: list[LedgerRecord]) -> dict[int, str]:
    found: dict[int, str] = {}
    seen: dict[str, int] = {}
    for record, payload in recorded_decisions(records):
        proposal_id = payload.get("proposal_id")
        if not isinstance(proposal_id, str):
            continue
        if proposal_id in seen:
            found[record.seq] = (
                f"record {record.seq}: proposal {proposal_id[:16]} executed again "
                f"(first at record {seen[proposal_id]})"
            )
        seen.setdefault(proposal_id, record.seq)
    return found


def decision_problems(payload: dict[str, Any], council: Council, where: str) -> list[str]:
    """What is wrong with one decision payload under ``council`` (empty: it had its
    quorum): the proposal must hash to its id and its signatures reach the threshold."""
    try:
        proposal = Proposal.model_validate(payload["proposal"])
        proposal_id = str(payload["proposal_id"])
        votes = [Vote(Approval(proposal=proposal_id, **a), where) for a in payload["approvals"]]
    except (KeyError, TypeError, ValueError) as err:
        return [f"{where}: malformed decision ({err})"]
    if proposal.proposal_id() != proposal_id:
        return [f"{where}: the proposal does not hash to its id"]
    count = tally(council, proposal, votes)
    return [] if count.met else [f"{where}: {count.shortfall()}"]


def latest_decision(directory: Path, action: str, subject: str) -> dict[str, Any] | None:
    """The newest recorded decision for ``action`` on ``subject`` in a decisions folder."""
    found = None
    for record in ledger_records(directory):
        payload = record_payload(record) if record.kind == DECISION_KIND else {}
        proposal = payload.get("proposal") or {}
        if (proposal.get("action"), proposal.get("subject")) == (action, subject):
            found = payload
    return found


def ledger_records(directory: Path) -> list[LedgerRecord]:
    """The governance ledger of a decisions folder (empty when there is none), checked
    first: its hash chain and signatures against the folder's ``ledger.pub``, so a deleted
    or edited record (say, a ``remove_site`` decision taken out to re-admit a site without a
    vote) is refused instead of replayed. A ledger re-signed whole under a new key is not
    caught here; sites and ``medsilo audit verify`` with a pinned key catch that."""
    path = directory / LEDGER_FILE
    if not path.is_file():
        return []
    conn = open_readonly(path)
    try:
        records = list(read_records(conn))
    finally:
        conn.close()
    result = verify_records(records, load_public_key(directory / PUBLIC_KEY_FILE), False)
    if result.problem is not None:
        raise QuorumRefused(f"the governance ledger {path} does not verify: {result.problem}")
    return records
