"""Removing and re-admitting a site needs the council's quorum; the coordinator enforces it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from flwr.app import Context, RecordDict
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import load_config
from medsilo.deploy.kit_files import load_roster
from medsilo.deploy.kits import provision
from medsilo.deploy.spec import parse_federation
from medsilo.governance.council import COUNCIL_FILE, Council
from medsilo.governance.decisions import (
    APPROVALS_DIR,
    LEDGER_FILE,
    PROPOSALS_DIR,
    DecisionBook,
    QuorumRefused,
    ledger_records,
)
from medsilo.governance.membership import (
    change_membership,
    kit_removals,
    membership_proposal,
    removed_sites,
)
from medsilo.governance.proposal import Proposal, sign_approval, write_json
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.governance.run_gate import KIT_DECISIONS_DIR, start_run_proposal
from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.run_ledger import LEDGER_FILE as RUN_LEDGER_FILE
from medsilo.ledger.store import Ledger, open_readonly, read_records
from medsilo.runtime.flower.deployed_server import DeployedRunConfig, server_app
from tests.governance.quorum_fixtures import (
    coordinator_kit,
    council_of,
    member_key,
    provision_council,
)
from tests.ledger.conftest import tamper
from tests.runtime.flower.test_apps_inprocess import one_thread, task_identity  # noqa: F401
from tests.runtime.flower.test_deployed_apps import (
    HEART,
    SITES,
    PushPullGrid,
    experiment,
    rounds,
)

runner = CliRunner()


@pytest.fixture
def kits(tmp_path: Path) -> Path:
    return provision_council(tmp_path / "kits")


def council_args(kits: Path) -> list[str]:
    kit = coordinator_kit(kits)
    return ["--council", str(kit / COUNCIL_FILE), "--authority", str(kit / "ca.crt")]


def vote(decisions: Path, proposal: Proposal, council: Council, kits: Path, member: str) -> None:
    approval = sign_approval(member_key(kits, member), proposal, member, council)
    name = f"{proposal.proposal_id()[:16]}.{member}.json"
    write_json(decisions / APPROVALS_DIR / name, approval)


def propose_and_vote(decisions: Path, kits: Path, proposal: Proposal, *members: str) -> None:
    council = council_of(kits)
    DecisionBook(decisions, council).propose(proposal)
    for member in members:
        vote(decisions, proposal, council, kits, member)


def roster_of(kits: Path) -> tuple[str, ...]:
    return load_roster(coordinator_kit(kits)).sites


def test_removal_is_refused_without_quorum_then_recorded_with_it(
    kits: Path, tmp_path: Path
) -> None:
    decisions = tmp_path / "decisions"
    proposed = runner.invoke(
        app, ["governance", "propose", str(decisions), "--remove-site", "c", *council_args(kits)]
    )
    assert proposed.exit_code == 0, proposed.output
    assert "remove_site c" in proposed.output
    (proposal,) = DecisionBook(decisions, council_of(kits)).proposals()
    vote(decisions, proposal, council_of(kits), kits, "b")
    before = len(ledger_records(decisions))
    command = ["governance", "remove-site", str(decisions), "c", *council_args(kits)]
    refused = runner.invoke(app, command)
    assert refused.exit_code == 2
    assert "1 of 2 approvals; 1 more needed from: a, c" in " ".join(refused.output.split())
    assert len(ledger_records(decisions)) == before  # nothing written
    assert removed_sites(ledger_records(decisions), roster_of(kits), council_of(kits)) == {}
    vote(decisions, proposal, council_of(kits), kits, "a")
    done = runner.invoke(app, command)
    assert done.exit_code == 0, done.output
    assert "site c removed from the federation (approved by a, b" in done.output
    removed = removed_sites(ledger_records(decisions), roster_of(kits), council_of(kits))
    assert list(removed) == ["c"] and removed["c"].proposal_id == proposal.proposal_id()
    again = runner.invoke(app, command)  # the decision is consumed, and c is already out
    assert again.exit_code == 2 and "already out" in again.output


def test_forged_and_duplicate_approvals_do_not_count(kits: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "decisions"
    council = council_of(kits)
    proposal = membership_proposal(council, roster_of(kits), "remove_site", "b")
    propose_and_vote(decisions, kits, proposal, "b")
    approvals = decisions / APPROVALS_DIR
    (original,) = approvals.glob("*.json")
    shutil.copy(original, approvals / "copy.json")  # b twice
    forged = sign_approval(member_key(kits, "b"), proposal, "b", council)  # b's key, a's name
    write_json(approvals / "forged.json", forged.model_copy(update={"member": "a"}))
    with pytest.raises(QuorumRefused) as refused:
        change_membership(decisions, council, roster_of(kits), "remove_site", "b")
    message = str(refused.value)
    assert "1 of 2 approvals; 1 more needed from: a, c" in message
    assert "duplicate" in message and "does not verify with 'a'" in message
    assert removed_sites(ledger_records(decisions), roster_of(kits), council) == {}


def test_a_site_off_the_roster_is_refused_at_propose(kits: Path, tmp_path: Path) -> None:
    """Removing needs a site of the roster; admitting may name a new site (valid name),
    which only `medsilo provision add-site` executes (tests/deploy/test_add_site.py)."""
    decisions = tmp_path / "decisions"
    result = runner.invoke(
        app, ["governance", "propose", str(decisions), "--remove-site", "zed", *council_args(kits)]
    )
    assert result.exit_code == 2
    assert "'zed' is not a site of this federation (a, b, c)" in " ".join(result.output.split())
    assert not (decisions / PROPOSALS_DIR).exists()
    result = runner.invoke(
        app, ["governance", "propose", str(decisions), "--admit-site", "z d", *council_args(kits)]
    )
    assert result.exit_code == 2 and "is not a valid site name" in result.output
    assert not (decisions / PROPOSALS_DIR).exists()
    result = runner.invoke(
        app, ["governance", "propose", str(decisions), "--admit-site", "zed", *council_args(kits)]
    )
    assert result.exit_code == 0, result.output
    (proposal,) = DecisionBook(decisions, council_of(kits)).proposals()
    for member in ("a", "b"):
        vote(decisions, proposal, council_of(kits), kits, member)
    command = ["governance", "admit-site", str(decisions), "zed", *council_args(kits)]
    result = runner.invoke(app, command)  # approved, but a new site needs its kit issued
    assert result.exit_code == 2
    assert "`medsilo provision add-site`" in " ".join(result.output.split())
    both = ["--remove-site", "a", "--admit-site", "a"]
    result = runner.invoke(
        app, ["governance", "propose", str(decisions), *both, *council_args(kits)]
    )
    assert result.exit_code == 2 and "give exactly one of" in result.output
    site = kits / "sites" / "a"
    site_council = ["--council", str(site / COUNCIL_FILE), "--authority", str(site / "ca.crt")]
    command = ["governance", "remove-site", str(decisions), "b", *site_council]
    result = runner.invoke(app, command)  # a site kit has no roster
    assert result.exit_code == 2
    assert "coordinator kit's council.json" in " ".join(result.output.split())


def test_admission_needs_a_removed_site_and_re_admits_it(kits: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "decisions"
    council, roster = council_of(kits), roster_of(kits)
    admit = membership_proposal(council, roster, "admit_site", "a")
    propose_and_vote(decisions, kits, admit, "a", "b")
    with pytest.raises(QuorumRefused, match="'a' is not removed, so there is nothing to admit"):
        change_membership(decisions, council, roster, "admit_site", "a")
    remove = membership_proposal(council, roster, "remove_site", "a")
    propose_and_vote(decisions, kits, remove, "b", "c")
    change_membership(decisions, council, roster, "remove_site", "a")
    assert list(removed_sites(ledger_records(decisions), roster, council)) == ["a"]
    decision = change_membership(decisions, council, roster, "admit_site", "a")
    assert decision.proposal.proposal_id() == admit.proposal_id()
    assert removed_sites(ledger_records(decisions), roster, council) == {}


def test_a_recorded_removal_without_quorum_is_not_obeyed(kits: Path, tmp_path: Path) -> None:
    """A decision record an operator wrote without the votes stops the replay."""
    decisions = tmp_path / "decisions"
    council = council_of(kits)
    proposal = membership_proposal(council, roster_of(kits), "remove_site", "c")
    DecisionBook(decisions, council).propose(proposal)
    payload = {
        "proposal_id": proposal.proposal_id(),
        "proposal": proposal.model_dump(mode="json"),
        "council": council.council_id(),
        "approvals": [],
    }
    with Ledger(decisions / LEDGER_FILE, load_or_create_private_key()) as ledger:
        ledger.append(DECISION_KIND, payload)
    with pytest.raises(QuorumRefused, match="0 of 2 approvals"):
        removed_sites(ledger_records(decisions), roster_of(kits), council)


def _removed_then_readmitted(kits: Path, decisions: Path) -> None:
    council, roster = council_of(kits), roster_of(kits)
    remove = membership_proposal(council, roster, "remove_site", "a")
    propose_and_vote(decisions, kits, remove, "b", "c")
    change_membership(decisions, council, roster, "remove_site", "a")
    admit = membership_proposal(council, roster, "admit_site", "a")
    propose_and_vote(decisions, kits, admit, "a", "b")
    change_membership(decisions, council, roster, "admit_site", "a")


def test_a_deleted_decision_record_is_refused_not_replayed(kits: Path, tmp_path: Path) -> None:
    """Taking a remove_site decision out of the governance ledger (to re-admit the site
    without a vote) breaks its hash chain: the ledger is refused, not replayed. (Cutting
    the ledger's tail is not caught by the chain alone: docs/governance.md.)"""
    decisions = tmp_path / "decisions"
    council, roster = council_of(kits), roster_of(kits)
    remove = membership_proposal(council, roster, "remove_site", "a")
    propose_and_vote(decisions, kits, remove, "b", "c")
    change_membership(decisions, council, roster, "remove_site", "a")
    later = membership_proposal(council, roster, "remove_site", "b")
    propose_and_vote(decisions, kits, later, "a", "c")
    change_membership(decisions, council, roster, "remove_site", "b")
    (decision, _) = [r for r in ledger_records(decisions) if r.kind == DECISION_KIND]
    tamper(decisions / LEDGER_FILE, "DELETE FROM records WHERE seq = ?", (decision.seq,))
    with pytest.raises(QuorumRefused, match="does not verify"):
        ledger_records(decisions)


def test_an_old_admission_copied_in_again_is_refused(kits: Path, tmp_path: Path) -> None:
    """Re-appending an executed admit_site decision (signed with the coordinator's key, so
    the chain verifies) after a second removal must not re-admit the site."""
    decisions = tmp_path / "decisions"
    _removed_then_readmitted(kits, decisions)
    council, roster = council_of(kits), roster_of(kits)
    (_, admitted) = [r for r in ledger_records(decisions) if r.kind == DECISION_KIND]
    again = membership_proposal(council, roster, "remove_site", "a")
    propose_and_vote(decisions, kits, again, "b", "c")
    change_membership(decisions, council, roster, "remove_site", "a")
    with Ledger(decisions / LEDGER_FILE, load_or_create_private_key()) as ledger:
        ledger.append(DECISION_KIND, json.loads(admitted.payload))
    with pytest.raises(QuorumRefused, match="executed again"):
        removed_sites(ledger_records(decisions), roster, council)


def council_federation(root: Path) -> Path:
    """The deployed tests' three heart-disease sites, provisioned with a 2-of-3 council."""
    spec = {
        "federation": "inprocess",
        "coordinator": {"address": "127.0.0.1", "port": 9999},
        "sites": [{"name": s} for s in SITES],
        "enrolment": {"allowed_backends": ["software"]},
        "council": {"members": SITES, "threshold": 2},
    }
    provision(parse_federation(spec), root / "kits")
    return root / "kits"


def run_deployed(
    kits: Path,
    experiment_path: Path,
    run_dir: Path,
    *,
    sites: list[str] | None = None,
    resume: bool = False,
) -> Path:
    """The deployed ServerApp over a push/pull fake Grid to the real ClientApps of ``sites``
    (default: all; ``[]``: no site ever connects)."""
    grid = PushPullGrid(
        {
            100 + 7 * i: {"site": site, "kit": str(kits / "sites" / site), "data": str(HEART)}
            for i, site in enumerate(SITES if sites is None else sites)
        }
    )
    settings = DeployedRunConfig(
        experiment=experiment_path,
        kit=coordinator_kit(kits),
        run_dir=run_dir,
        resume=resume,
        round_timeout_s=2.0,
        connect_timeout_s=1.0,
        poll_interval_s=0.001,
    )
    context = Context(run_id=7, node_id=0, node_config={}, state=RecordDict(), run_config={})
    context.run_config.update(settings.as_run_config())
    server_app(grid, context)
    return run_dir


def test_the_deployed_coordinator_refuses_a_removed_site_at_enrolment(tmp_path: Path) -> None:
    """The whole deployed path (push/pull fake Grid, the real ClientApps, real decision
    files): va, removed by decision, is refused at enrolment with the decision named and
    ledgered, and the run goes on with the two others (the floor counts members only)."""
    kits = council_federation(tmp_path)
    council, roster = council_of(kits), roster_of(kits)
    decisions = coordinator_kit(kits) / KIT_DECISIONS_DIR
    experiment_path = tmp_path / "experiment.yaml"
    experiment_path.write_text(yaml.safe_dump(experiment()))
    start = start_run_proposal(load_config(experiment_path), council)
    propose_and_vote(decisions, kits, start, "cleveland", "hungarian")  # the app consumes it
    remove = membership_proposal(council, roster, "remove_site", "va")
    propose_and_vote(decisions, kits, remove, "cleveland", "hungarian")
    change_membership(decisions, council, roster, "remove_site", "va")
    assert list(kit_removals(coordinator_kit(kits))) == ["va"]

    run_dir = run_deployed(kits, experiment_path, tmp_path / "run")
    enrolment = json.loads((run_dir / "enrolment.json").read_text())
    assert enrolment["va"]["accepted"] is False
    assert (
        f"removed from the federation by council decision {remove.proposal_id()[:16]}"
        in (enrolment["va"]["reason"])
    )
    assert enrolment["cleveland"]["accepted"] and enrolment["hungarian"]["accepted"]
    assert all("va" in r["dropped"] for r in rounds(run_dir))
    conn = open_readonly(run_dir / RUN_LEDGER_FILE)
    try:
        records = list(read_records(conn))
    finally:
        conn.close()
    revoked = [
        json.loads(r.payload)
        for r in records
        if r.kind == "enrolment" and json.loads(r.payload)["action"] == "revoked"
    ]
    assert [(r["site"], r["details"]["quorum_decision"]) for r in revoked] == [
        ("va", remove.proposal_id())
    ]
    enrolled = [json.loads(r.payload)["site"] for r in records if r.kind == "enrolment"]
    assert sorted(enrolled) == ["cleveland", "hungarian", "va"]  # va only as revoked

    admit = membership_proposal(council, roster, "admit_site", "va")
    propose_and_vote(decisions, kits, admit, "hungarian", "va")
    change_membership(decisions, council, roster, "admit_site", "va")
    assert kit_removals(coordinator_kit(kits)) == {}


def test_without_a_council_no_site_is_removed(tmp_path: Path) -> None:
    kits = tmp_path / "kits"
    spec = {
        "federation": "plain",
        "coordinator": {"address": "127.0.0.1", "port": 9999},
        "sites": [{"name": "a"}, {"name": "b"}],
        "enrolment": {"allowed_backends": ["software"]},
    }
    provision(parse_federation(spec), kits)
    assert kit_removals(coordinator_kit(kits)) == {}
