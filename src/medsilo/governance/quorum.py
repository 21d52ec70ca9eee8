"""Count a proposal's approvals against the council: which votes count, which are refused.

A vote counts once it passes, in this order (the first failure is its reason):

1. it approves *this* proposal (an approval of another proposal, copied over, is a replay);
2. its member is on the council (a non-member's vote is refused whatever it signs);
3. its signature verifies with that member's provisioned key over this proposal id, this
   member name and this council (:func:`~medsilo.governance.proposal.approval_message`):
   a forged signature, or one made for another proposal or council, fails here;
4. the member has not already been counted (a duplicate counts once).

The quorum is met when at least ``threshold`` members are counted and the proposal was not
executed before (a consumed proposal cannot authorise a second action: that would be a
replay of the whole decision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature

from medsilo.governance.council import Council
from medsilo.governance.proposal import Approval, Proposal, approval_message


@dataclass(frozen=True)
class Vote:
    """An approval and where it came from (a file name or a ledger record), for messages."""

    approval: Approval
    source: str


@dataclass(frozen=True)
class Refused:
    source: str
    member: str
    reason: str


@dataclass
class Tally:
    proposal: Proposal
    proposal_id: str
    threshold: int
    counted: list[str] = field(default_factory=list)  # members, in the order counted
    approvals: list[Approval] = field(default_factory=list)  # the approvals that counted
    refused: list[Refused] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    executed_seq: int | None = None  # the governance ledger record that consumed it

    @property
    def met(self) -> bool:
        return self.executed_seq is None and len(self.counted) >= self.threshold

    def shortfall(self) -> str:
        """Why the quorum is not met: consumed, or the approvals still missing."""
        if self.executed_seq is not None:
            return (
                f"proposal {self.proposal_id[:16]} ({self.proposal.describe()}) was already "
                f"executed (governance ledger record {self.executed_seq}); a new action needs "
                "a new proposal and new approvals"
            )
        need = self.threshold - len(self.counted)
        return (
            f"proposal {self.proposal_id[:16]} ({self.proposal.describe()}) has "
            f"{len(self.counted)} of {self.threshold} approvals; {need} more needed from: "
            f"{', '.join(self.missing)}"
        )


def _refusal(vote: Vote, proposal_id: str, council: Council, counted: list[str]) -> str | None:
    approval = vote.approval
    if approval.proposal != proposal_id:
        return f"approves proposal {approval.proposal[:16]}, not this one (replayed)"
    if approval.member not in council.members:
        return f"{approval.member!r} is not a council member"
    message = approval_message(proposal_id, approval.member, council)
    try:
        council.public_key(approval.member).verify(bytes.fromhex(approval.signature), message)
    except (InvalidSignature, ValueError):
        return (
            f"signature does not verify with {approval.member!r}'s provisioned key for this "
            "proposal and council (forged, or signed for something else)"
        )
    if approval.member in counted:
        return f"duplicate: {approval.member!r} already approved; a member counts once"
    return None


def tally(
    council: Council, proposal: Proposal, votes: list[Vote], executed_seq: int | None = None
) -> Tally:
    """The count of ``votes`` for ``proposal`` (rules in the module docstring)."""
    proposal_id = proposal.proposal_id()
    result = Tally(proposal, proposal_id, council.threshold, executed_seq=executed_seq)
    if proposal.federation != council.federation:
        result.refused = [
            Refused(v.source, v.approval.member, "the proposal is for another federation")
            for v in votes
        ]
    else:
        for vote in sorted(votes, key=lambda v: v.source):
            reason = _refusal(vote, proposal_id, council, result.counted)
            if reason is None:
                result.counted.append(vote.approval.member)
                result.approvals.append(vote.approval)
            else:
                result.refused.append(Refused(vote.source, vote.approval.member, reason))
    result.missing = [member for member in council.members if member not in result.counted]
    return result
