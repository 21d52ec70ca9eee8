"""Which provisioned sites the council removed from the federation, from its recorded decisions.

Every site on the roster (``federation.json``, written at provisioning) is admitted by the
consortium that provisioned it; a site added later with ``medsilo provision add-site``
needs, in a federation with a council, an executed ``admit_site`` decision naming it. The
council can then remove a site (a ``remove_site`` decision) and later re-admit it
(``admit_site``); the subject of both is the site name. The state is the replay, in ledger
order, of the ``quorum_decision`` records of the decisions folder: nothing else (no file an
operator could edit) says who is removed, and each decision is re-checked against the
council before it counts, so a record without its quorum stops the replay instead of
changing the membership.

The coordinator executes a decision with ``medsilo governance remove-site | admit-site``
(:func:`change_membership`), and the deployed coordinator refuses a removed site at
enrolment (:func:`kit_removals`, recorded with :func:`record_removal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.deploy.kit_files import load_roster
from medsilo.deploy.spec import SiteSpec
from medsilo.governance.council import Council
from medsilo.governance.decisions import (
    Decision,
    DecisionBook,
    QuorumRefused,
    decision_problems,
    ledger_records,
    recorded_decisions,
    repeated_executions,
)
from medsilo.governance.proposal import Proposal
from medsilo.governance.run_gate import KIT_DECISIONS_DIR, kit_council
from medsilo.ledger.chain import LedgerRecord
from medsilo.ledger.events import Enrolment, record_enrolment
from medsilo.ledger.keys import fingerprint
from medsilo.ledger.store import Ledger

MembershipAction = Literal["remove_site", "admit_site"]
MEMBERSHIP_ACTIONS: tuple[MembershipAction, ...] = ("remove_site", "admit_site")


@dataclass(frozen=True)
class Removal:
    """A site out of the federation, and the decision that removed it."""

    site: str
    proposal_id: str
    record_seq: int  # the governance ledger's quorum_decision record

    def reason(self) -> str:
        return (
            f"site {self.site!r} was removed from the federation by council decision "
            f"{self.proposal_id[:16]} (governance ledger record {self.record_seq}); an "
            "admit_site decision re-admits it"
        )


def check_roster_site(site: str, roster: tuple[str, ...]) -> None:
    """Only a provisioned site can be removed or re-admitted here; a new one is admitted by
    ``medsilo provision add-site``, which issues its kit (:mod:`medsilo.deploy.add_site`)."""
    if site not in roster:
        raise ConfigError(
            f"{site!r} is not a site of this federation ({', '.join(roster)}); a site that "
            "was not provisioned is admitted by `medsilo provision add-site`, which executes "
            "the council's admit_site decision and issues its kit"
        )


def membership_proposal(
    council: Council, roster: tuple[str, ...], action: MembershipAction, site: str
) -> Proposal:
    """A new proposal to remove or re-admit ``site``. Removing needs a site of the roster;
    admitting may name a new site (a valid name), whose admission ``medsilo provision
    add-site`` executes when it issues the kit."""
    if action == "remove_site" or site in roster:
        check_roster_site(site, roster)
    else:
        try:
            SiteSpec(name=site)
        except ValidationError as err:
            raise ConfigError("; ".join(problem_lines(err))) from None
    return Proposal(federation=council.federation, action=action, subject=site)


def removed_sites(
    records: list[LedgerRecord], roster: tuple[str, ...], council: Council
) -> dict[str, Removal]:
    """Replay the membership decisions among ``records`` (ledger order): site -> removal.

    Raises ``QuorumRefused`` when a recorded membership decision lacks its quorum under
    ``council`` or names a site off the roster (a tampered or foreign governance ledger)."""
    repeated = repeated_executions(records)  # an old admit_site copied in again, say
    if repeated:
        raise QuorumRefused(
            f"the governance ledger's membership decisions are unsound: {'; '.join(repeated)}"
        )
    removed: dict[str, Removal] = {}
    for record, payload in recorded_decisions(records):
        proposal = payload.get("proposal")
        proposal = proposal if isinstance(proposal, dict) else {}
        action, site = proposal.get("action"), str(proposal.get("subject"))
        if action not in MEMBERSHIP_ACTIONS:
            continue
        problems = decision_problems(payload, council, f"record {record.seq}")
        if problems or site not in roster:
            why = "; ".join(problems) or f"{site!r} is not on the roster"
            raise QuorumRefused(f"the governance ledger's membership decisions are unsound: {why}")
        if action == "remove_site":
            removed[site] = Removal(site, str(payload["proposal_id"]), record.seq)
        else:
            removed.pop(site, None)
    return removed


def change_membership(
    decisions: Path, council: Council, roster: tuple[str, ...], action: MembershipAction, site: str
) -> Decision:
    """Execute an approved ``remove_site`` / ``admit_site`` of ``site``: the decision is
    recorded in the governance ledger, which is what removes or re-admits it. Refused (nothing
    written) for a site off the roster, a change that changes nothing (removing a removed
    site, admitting one that is not removed) or a proposal without its quorum."""
    check_roster_site(site, roster)
    book = DecisionBook(decisions, council)
    removal = removed_sites(book.records(), roster, council).get(site)
    if action == "remove_site" and removal is not None:
        raise QuorumRefused(f"refused: {removal.reason()}; it is already out")
    if action == "admit_site" and removal is None:
        raise QuorumRefused(
            f"refused: site {site!r} is not removed, so there is nothing to admit (every "
            "provisioned site is admitted by the consortium that provisioned it)"
        )
    return book.authorize(action, site)


def kit_removals(kit: Path) -> dict[str, Removal]:
    """The sites a coordinator kit's deployed coordinator must refuse at enrolment, from the
    kit's decisions folder; none when the federation was provisioned without a council."""
    council = kit_council(kit)
    if council is None:
        return {}
    records = ledger_records(kit / KIT_DECISIONS_DIR)
    return removed_sites(records, load_roster(kit).sites, council)


def record_removal(ledger: Ledger, removal: Removal, key: Ed25519PublicKey | None) -> None:
    """The enrolment refusal of a removed site, in the run's audit ledger: an ``enrolment``
    record with action ``revoked`` naming the council decision."""
    details = {
        "reason": removal.reason(),
        "quorum_decision": removal.proposal_id,
        "governance_record": removal.record_seq,
    }
    record_enrolment(
        ledger,
        Enrolment(
            site=removal.site,
            public_key_sha256=fingerprint(key) if key is not None else "",
            action="revoked",
            details=details,
        ),
    )
