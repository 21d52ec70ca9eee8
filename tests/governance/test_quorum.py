"""Quorum decisions: the provisioned council, and forged, replayed and duplicate approvals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.config import ConfigError
from medsilo.deploy.spec import parse_federation
from medsilo.governance.council import COUNCIL_FILE, CouncilError, council_document, load_council
from medsilo.governance.decisions import (
    APPROVALS_DIR,
    DecisionBook,
    QuorumRefused,
    decision_payload,
    recorded_problems,
)
from medsilo.governance.proposal import (
    Approval,
    Proposal,
    ProposalError,
    approval_message,
    sign_approval,
    write_json,
)
from medsilo.governance.quorum import Vote, tally
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.ledger.keys import load_or_create_private_key, load_public_key, raw_public
from medsilo.ledger.store import Ledger
from medsilo.ledger.verify import verify_ledger
from tests.governance.quorum_fixtures import (
    MEMBERS,
    RAW,
    coordinator_kit,
    council_of,
    member_key,
    provision_council,
    site_kit,
)


@pytest.fixture(scope="module")
def kits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return provision_council(tmp_path_factory.mktemp("council-kits"))


def retire(council_federation: str, subject: str = "ab" * 32) -> Proposal:
    return Proposal(federation=council_federation, action="retire_model", subject=subject)


def vote(kits: Path, member: str, proposal: Proposal, source: str = "") -> Vote:
    approval = sign_approval(member_key(kits, member), proposal, member, council_of(kits))
    return Vote(approval, source or f"{member}.json")


def test_provisioning_gives_every_kit_the_council_signed_by_the_authority(kits: Path) -> None:
    council = council_of(kits)
    assert (council.federation, council.threshold) == ("quorumfed", 2)
    for member in MEMBERS:  # a member votes with its kit's attestation key
        public = member_key(kits, member).public_key()
        assert council.members[member] == raw_public(public).hex()
        site_copy = site_kit(kits, member) / COUNCIL_FILE
        assert site_copy.read_bytes() == (coordinator_kit(kits) / COUNCIL_FILE).read_bytes()
        assert load_council(site_copy, site_kit(kits, member) / "ca.crt") == council


def test_a_council_changed_after_provisioning_is_refused(kits: Path, tmp_path: Path) -> None:
    authority = coordinator_kit(kits) / "ca.crt"
    document = json.loads((coordinator_kit(kits) / COUNCIL_FILE).read_text())
    document["council"]["threshold"] = 1  # the coordinator's operator lowers the bar alone
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    with pytest.raises(CouncilError, match="not signed by the certificate authority"):
        load_council(edited, authority)
    # ... or re-signs it with a CA of its own: still not the federation's authority
    lowered = council_of(kits).model_copy(update={"threshold": 1})
    resigned = tmp_path / "resigned.json"
    resigned.write_text(council_document(lowered, ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(CouncilError, match="not signed by the certificate authority"):
        load_council(resigned, authority)
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(council_document(lowered, None))
    with pytest.raises(CouncilError, match="no authority signature"):
        load_council(unsigned, authority)


@pytest.mark.parametrize(
    ("council", "message"),
    [
        ({"members": ["a", "zz"], "threshold": 1}, "not sites: zz"),
        ({"members": ["a", "b"], "threshold": 3}, "exceeds its 2 members"),
        ({"members": ["a", "a"], "threshold": 1}, "must be unique"),
    ],
)
def test_the_provisioning_spec_refuses_an_impossible_council(
    council: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_federation({**RAW, "council": council})


def test_quorum_is_met_by_threshold_valid_approvals(kits: Path) -> None:
    council, proposal = council_of(kits), retire("quorumfed")
    one = tally(council, proposal, [vote(kits, "a", proposal)])
    assert not one.met and one.counted == ["a"] and one.missing == ["b", "c"]
    two = tally(council, proposal, [vote(kits, "a", proposal), vote(kits, "c", proposal)])
    assert two.met and two.counted == ["a", "c"] and not two.refused


def test_forged_approvals_are_refused(kits: Path) -> None:
    council, proposal = council_of(kits), retire("quorumfed")
    pid = proposal.proposal_id()
    stranger = Ed25519PrivateKey.generate()
    wrong_key = stranger.sign(approval_message(pid, "a", council)).hex()  # claims to be a
    good_b = vote(kits, "b", proposal).approval.signature
    flipped = ("0" if good_b[0] != "0" else "1") + good_b[1:]  # one altered byte
    votes = [
        Vote(Approval(proposal=pid, member="a", signature=wrong_key), "a-forged.json"),
        Vote(Approval(proposal=pid, member="b", signature=flipped), "b-flipped.json"),
        Vote(  # a non-member with a valid signature of its own
            Approval(
                proposal=pid,
                member="mallory",
                signature=stranger.sign(approval_message(pid, "mallory", council)).hex(),
            ),
            "mallory.json",
        ),
    ]
    result = tally(council, proposal, votes)
    assert not result.met and result.counted == []
    reasons = {r.source: r.reason for r in result.refused}
    assert "does not verify with 'a'" in reasons["a-forged.json"]
    assert "does not verify with 'b'" in reasons["b-flipped.json"]
    assert "not a council member" in reasons["mallory.json"]
    # signing with a key that is not the member's is refused before any file is written
    with pytest.raises(ProposalError, match="not the key 'a' was provisioned with"):
        sign_approval(stranger, proposal, "a", council)


def test_duplicate_approvals_count_once(kits: Path) -> None:
    council, proposal = council_of(kits), retire("quorumfed")
    twice = [vote(kits, "a", proposal, "a-1.json"), vote(kits, "a", proposal, "a-2.json")]
    result = tally(council, proposal, twice)
    assert not result.met and result.counted == ["a"]
    assert [r.source for r in result.refused] == ["a-2.json"]
    assert "duplicate" in result.refused[0].reason
    assert "1 of 2 approvals; 1 more needed from: b, c" in result.shortfall()


def test_replayed_approvals_are_refused(kits: Path) -> None:
    council = council_of(kits)
    first, second = retire("quorumfed"), retire("quorumfed")  # same subject, new nonce
    assert first.proposal_id() != second.proposal_id()
    old = [vote(kits, "a", first), vote(kits, "b", first)]
    # an approval of one proposal presented for another
    result = tally(council, second, old)
    assert result.counted == [] and all("replayed" in r.reason for r in result.refused)
    # ... with its proposal id rewritten: the signature no longer verifies
    rewritten = [
        Vote(v.approval.model_copy(update={"proposal": second.proposal_id()}), v.source)
        for v in old
    ]
    result = tally(council, second, rewritten)
    assert result.counted == [] and all("does not verify" in r.reason for r in result.refused)
    # ... under another council (the vote is bound to the council it was cast under)
    other = council.model_copy(update={"threshold": 1})
    assert tally(other, first, old).counted == []


def _approve(book: DecisionBook, kits: Path, proposal: Proposal, member: str, name: str) -> None:
    approval = sign_approval(member_key(kits, member), proposal, member, book.council)
    write_json(book.directory / APPROVALS_DIR / name, approval)


def test_an_executed_proposal_cannot_authorise_a_second_action(kits: Path, tmp_path: Path) -> None:
    book = DecisionBook(tmp_path / "decisions", council_of(kits))
    subject = "cd" * 32
    with pytest.raises(QuorumRefused, match="no proposal for it"):
        book.authorize("retire_model", subject)
    proposal = retire("quorumfed", subject)
    book.propose(proposal)
    _approve(book, kits, proposal, "b", "b.json")
    _approve(book, kits, proposal, "b", "b-again.json")  # duplicate: still one vote
    with pytest.raises(QuorumRefused) as refused:
        book.authorize("retire_model", subject)
    assert "1 of 2 approvals; 1 more needed from: a, c" in str(refused.value)
    assert "refused approval b.json: duplicate" in str(refused.value)  # sorted: b-again first
    forged = Approval(proposal=proposal.proposal_id(), member="c", signature="ab" * 64)
    write_json(book.directory / APPROVALS_DIR / "c-0.json", forged)  # read before c.json
    _approve(book, kits, proposal, "c", "c.json")
    decision = book.authorize("retire_model", subject)
    assert [a.member for a in decision.approvals] == ["b", "c"]
    assert forged not in decision.approvals  # the decision records the votes that counted
    with pytest.raises(QuorumRefused, match="already executed"):  # replaying the decision
        book.authorize("retire_model", subject)
    ledger = book.directory / "ledger.sqlite"
    kinds = [r.kind for r in book.records()]
    assert kinds == [
        "genesis",
        "quorum_proposal",
        "quorum_approval",
        "quorum_approval",
        "quorum_decision",
    ]
    verified = verify_ledger(ledger, load_public_key(book.directory / "ledger.pub"))
    assert verified.ok, verified.problem
    assert recorded_problems(book.records(), council_of(kits)) == []


def test_a_decision_the_coordinator_records_alone_is_caught(kits: Path, tmp_path: Path) -> None:
    """The coordinator can sign any ledger record; a site re-checking the recorded decisions
    with its own council copy finds one without its quorum."""
    council = council_of(kits)
    proposal = retire("quorumfed")
    lone = sign_approval(member_key(kits, "a"), proposal, "a", council)
    with Ledger(tmp_path / "ledger.sqlite", load_or_create_private_key()) as ledger:
        payload = decision_payload(proposal, [lone], council.council_id())
        ledger.append(DECISION_KIND, payload)
        ledger.append(DECISION_KIND, payload)  # the same decision executed twice
        ledger.append(DECISION_KIND, {"proposal_id": proposal.proposal_id()})
        records = ledger.records()
    problems = recorded_problems(records, council)
    assert problems == [
        f"record 2: {tally(council, proposal, [Vote(lone, '')]).shortfall()}",
        f"record 3: proposal {proposal.proposal_id()[:16]} executed again (first at record 2)",
        f"record 3: {tally(council, proposal, [Vote(lone, '')]).shortfall()}",
        f"record 4: proposal {proposal.proposal_id()[:16]} executed again (first at record 2)",
        "record 4: malformed decision ('proposal')",
    ]
    assert "1 of 2 approvals" in problems[0]


def test_a_proposal_for_another_federation_is_refused(kits: Path, tmp_path: Path) -> None:
    council = council_of(kits)
    foreign = retire("otherfed")
    with pytest.raises(ProposalError, match="federation 'otherfed'"):
        sign_approval(member_key(kits, "a"), foreign, "a", council)
    with pytest.raises(ProposalError, match="federation 'otherfed'"):
        DecisionBook(tmp_path, council).propose(foreign)
