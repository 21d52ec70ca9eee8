"""A run needs its council's quorum: refused without it, started with it, never twice."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medsilo.anchor.chain import AnchorError
from medsilo.anchor.config import AnchorConfig
from medsilo.cli import app
from medsilo.config import RunConfig, dump_config, load_config
from medsilo.deploy import coordinator, processes
from medsilo.deploy.coordinator import start_coordinator
from medsilo.experiment import run_experiment
from medsilo.governance import retire_gate
from medsilo.governance.checkpoint import config_hash
from medsilo.governance.council import COUNCIL_FILE
from medsilo.governance.decisions import DecisionBook, QuorumRefused, decision_payload
from medsilo.governance.proposal import sign_approval
from medsilo.governance.retire import retire, retirement
from medsilo.governance.retire_gate import retire_proposal, retire_with_quorum
from medsilo.governance.run_gate import (
    KIT_DECISIONS_DIR,
    approval_hash,
    run_decision_json,
    start_run_proposal,
)
from medsilo.governance.site_check import check_run_approved
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.run_ledger import LEDGER_FILE, PUBLIC_KEY_FILE
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger
from tests.conftest import small_config
from tests.governance.quorum_fixtures import (
    coordinator_kit,
    council_of,
    member_key,
    provision_council,
    site_kit,
)

runner = CliRunner()
RUN_KEY = "0123456789abcdef"  # the run a site is asked to enrol in (deployed_server.run_key)


@pytest.fixture
def kits(tmp_path: Path) -> Path:
    return provision_council(tmp_path / "kits")


def quorum_config(kits: Path, tmp_path: Path) -> RunConfig:
    kit = coordinator_kit(kits)
    quorum = {"council": kit / COUNCIL_FILE, "decisions": tmp_path / "decisions"}
    return small_config(
        governance={"quorum": {**quorum, "authority": kit / "ca.crt"}},
        output_dir=str(tmp_path / "runs"),
    )


def approve(decisions: Path, proposal_id: str, kits: Path, member: str) -> None:
    result = runner.invoke(
        app,
        [
            "governance",
            "approve",
            str(decisions),
            proposal_id[:12],
            "--kit",
            str(site_kit(kits, member)),
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_run_is_refused_without_quorum_then_starts_with_it(kits: Path, tmp_path: Path) -> None:
    cfg = quorum_config(kits, tmp_path)
    decisions = tmp_path / "decisions"
    with pytest.raises(QuorumRefused, match="no proposal for it"):
        run_experiment(cfg, tmp_path / "run1")
    book = DecisionBook(decisions, council_of(kits))
    proposal = start_run_proposal(cfg, book.council)
    assert proposal.subject == approval_hash(cfg)
    book.propose(proposal)
    approve(decisions, proposal.proposal_id(), kits, "b")
    with pytest.raises(QuorumRefused, match=r"1 of 2 approvals; 1 more needed from: a, c"):
        run_experiment(cfg, tmp_path / "run1")
    assert not (tmp_path / "run1").exists()  # refused before anything was written
    approve(decisions, proposal.proposal_id(), kits, "a")
    run = run_experiment(cfg, tmp_path / "run1").run_dir
    assert (run / "final_weights.npz").is_file()
    key = load_public_key(run / PUBLIC_KEY_FILE)
    assert verify_ledger(run / LEDGER_FILE, key).ok
    conn = open_readonly(run / LEDGER_FILE)
    kinds = [r.kind for r in read_records(conn)]
    conn.close()
    assert kinds[:3] == ["genesis", "run_start", "quorum_decision"]
    # the approval was consumed: the same config needs a new proposal and new votes
    with pytest.raises(QuorumRefused, match="already executed"):
        run_experiment(cfg, tmp_path / "run2")
    # a changed config (here: more rounds) is another subject, not covered by the approval
    longer = cfg.model_copy(update={"training": cfg.training.model_copy(update={"rounds": 4})})
    with pytest.raises(QuorumRefused, match="no proposal for it"):
        run_experiment(longer, tmp_path / "run3")


def test_an_approval_does_not_cover_changed_governance_or_anchoring(
    kits: Path, tmp_path: Path
) -> None:
    """Changing a governance setting (switching site witnessing on here) or adding anchoring
    under an approval given for the config without that change is refused: they are in the
    subject. The vote's own folders (governance.quorum) are not."""
    cfg = quorum_config(kits, tmp_path)
    book = DecisionBook(tmp_path / "decisions", council_of(kits))
    proposal = start_run_proposal(cfg, book.council)
    book.propose(proposal)
    for member in ("a", "b"):
        approve(tmp_path / "decisions", proposal.proposal_id(), kits, member)
    witnessed = cfg.model_copy(
        update={"governance": cfg.governance.model_copy(update={"site_witness": True})}
    )
    anchored = cfg.model_copy(update={"anchor": AnchorConfig(rpc="in-process")})
    for changed in (witnessed, anchored):
        assert approval_hash(changed) != proposal.subject
        assert config_hash(changed) == config_hash(cfg)  # checkpoints still resume
        with pytest.raises(QuorumRefused, match="no proposal for it"):
            run_experiment(changed, tmp_path / "refused")
    assert quorum_config(kits, tmp_path / "elsewhere").governance.quorum != cfg.governance.quorum
    assert approval_hash(quorum_config(kits, tmp_path / "elsewhere")) == proposal.subject


def test_a_run_that_fails_its_own_checks_does_not_use_up_the_approval(
    kits: Path, tmp_path: Path
) -> None:
    """The approval is consumed last: a run stopped by a later check (here the anchoring
    node does not answer) leaves the proposal for the next attempt."""
    cfg = quorum_config(kits, tmp_path).model_copy(
        update={"anchor": AnchorConfig(rpc="http://127.0.0.1:9")}
    )
    book = DecisionBook(tmp_path / "decisions", council_of(kits))
    proposal = start_run_proposal(cfg, book.council)
    book.propose(proposal)
    for member in ("a", "b"):
        approve(tmp_path / "decisions", proposal.proposal_id(), kits, member)
    with pytest.raises(AnchorError, match="no Ethereum JSON-RPC node answers"):
        run_experiment(cfg, tmp_path / "run")
    assert book.executed() == {}
    assert book.approved("start_run", approval_hash(cfg)).proposal == proposal


def test_simulate_refuses_then_runs_through_the_cli(kits: Path, tmp_path: Path) -> None:
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(dump_config(quorum_config(kits, tmp_path)))
    decisions = tmp_path / "decisions"
    council = coordinator_kit(kits) / COUNCIL_FILE
    ca = str(coordinator_kit(kits) / "ca.crt")
    simulate = ["simulate", str(experiment), "--no-progress"]
    refused = runner.invoke(app, [*simulate, "--out", str(tmp_path / "suite1")])
    assert refused.exit_code == 2
    assert "needs the council's approval" in " ".join(refused.output.split())
    proposed = runner.invoke(
        app,
        [
            "governance",
            "propose",
            str(decisions),
            "--council",
            str(council),
            "--config",
            str(experiment),
            "--authority",
            str(coordinator_kit(kits) / "ca.crt"),
        ],
    )
    assert proposed.exit_code == 0, proposed.output
    match = re.search(r"proposal ([0-9a-f]{64}): start_run", proposed.output)
    assert match is not None
    proposal_id = match.group(1)
    approve(decisions, proposal_id, kits, "c")
    status = runner.invoke(
        app,
        ["governance", "status", str(decisions), "--council", str(council), "--authority", ca],
    )
    assert status.exit_code == 0
    assert "pending  1/2  approved by: c  missing: a, b" in status.output
    again = runner.invoke(
        app,
        ["governance", "approve", str(decisions), proposal_id, "--kit", str(site_kit(kits, "c"))],
    )
    assert again.exit_code == 2 and "already approved" in " ".join(again.output.split())
    approve(decisions, proposal_id, kits, "a")
    ran = runner.invoke(app, [*simulate, "--out", str(tmp_path / "suite2")])
    assert ran.exit_code == 0, ran.output
    status = runner.invoke(
        app,
        ["governance", "status", str(decisions), "--council", str(council), "--authority", ca],
    )
    assert "executed  2/2  approved by: a, c" in status.output


def test_the_deployed_coordinator_refuses_a_run_without_quorum(kits: Path, tmp_path: Path) -> None:
    """A kit provisioned with a council gates ``medsilo coordinator start`` whatever the
    experiment says (no ``governance.quorum`` here), before any Flower process starts."""
    experiment = tmp_path / "experiment.yaml"
    cfg = small_config()
    experiment.write_text(dump_config(cfg))
    kit = coordinator_kit(kits)
    with pytest.raises(QuorumRefused, match="needs the council's approval"):
        start_coordinator(kit, experiment, tmp_path / "run")
    book = DecisionBook(kit / KIT_DECISIONS_DIR, council_of(kits))
    proposal = start_run_proposal(cfg, book.council)
    book.propose(proposal)
    approve(book.directory, proposal.proposal_id(), kits, "a")
    with pytest.raises(QuorumRefused, match="more needed from: b, c"):
        start_coordinator(kit, experiment, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_coordinator_start_that_fails_after_the_quorum_check_keeps_the_approval(
    kits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator only checks the approval: a SuperLink that cannot start (here the
    program exits at once) fails the start and leaves the proposal for the next attempt."""
    experiment = tmp_path / "experiment.yaml"
    cfg = small_config()
    experiment.write_text(dump_config(cfg))
    kit = coordinator_kit(kits)
    book = DecisionBook(kit / KIT_DECISIONS_DIR, council_of(kits))
    proposal = start_run_proposal(cfg, book.council)
    book.propose(proposal)
    for member in ("a", "c"):
        approve(book.directory, proposal.proposal_id(), kits, member)
    monkeypatch.setattr(coordinator, "superlink_program", lambda: [shutil.which("false")])
    with pytest.raises(processes.DeploymentError, match="exited with code 1 before listening"):
        start_coordinator(kit, experiment, tmp_path / "run")
    assert book.executed() == {}
    assert book.approved("start_run", approval_hash(cfg)).proposal == proposal


def test_retiring_a_model_needs_quorum(kits: Path, tmp_path: Path) -> None:
    witnessed = small_config(governance={"site_witness": True})  # a decision after their heads
    run = run_experiment(witnessed, tmp_path / "run").run_dir
    decisions = tmp_path / "decisions"
    kit = coordinator_kit(kits)
    council = ["--council", str(kit / COUNCIL_FILE), "--authority", str(kit / "ca.crt")]
    retire = ["governance", "retire", str(run), "--decisions", str(decisions), *council]
    refused = runner.invoke(app, [*retire, "--reason", "superseded"])
    assert refused.exit_code == 2
    assert "retire_model" in refused.output and not (run / "RETIRED.json").exists()
    proposed = runner.invoke(
        app, ["governance", "propose", str(decisions), *council, "--run", str(run)]
    )
    assert proposed.exit_code == 0, proposed.output
    proposal_id = proposed.output.split()[1].rstrip(":")
    approve(decisions, proposal_id, kits, "a")
    approve(decisions, proposal_id, kits, "b")
    retired = runner.invoke(app, [*retire, "--reason", "superseded"])
    assert retired.exit_code == 0, retired.output
    assert retirement(run) == {**retirement(run), "reason": "superseded", "replacement": None}
    key = load_public_key(run / PUBLIC_KEY_FILE)
    assert verify_ledger(run / LEDGER_FILE, key).ok
    conn = open_readonly(run / LEDGER_FILE)
    kinds = [r.kind for r in read_records(conn)]
    conn.close()
    # after run_end only the sites' witnesses of the final head, then the decision
    after_end = kinds[kinds.index("run_end") + 1 :]
    assert after_end[-1] == "quorum_decision"
    assert set(after_end[:-1]) == {"witness"}
    again = runner.invoke(app, [*retire, "--reason", "superseded"])
    assert again.exit_code == 2 and "already retired" in again.output


def test_a_site_refuses_to_train_without_its_councils_approval(kits: Path, tmp_path: Path) -> None:
    """The site's own check at enrolment, with its own signed council copy: no decision, a
    decision the coordinator made alone, a decision for another config are refused."""
    cfg, site = small_config(), site_kit(kits, "a")
    with pytest.raises(QuorumRefused, match="sent no council decision"):
        check_run_approved(site, cfg, "", RUN_KEY)
    council = council_of(kits)
    book = DecisionBook(coordinator_kit(kits) / KIT_DECISIONS_DIR, council)
    assert run_decision_json(coordinator_kit(kits), cfg) == ""
    proposal = start_run_proposal(cfg, council)
    book.propose(proposal)
    lone = sign_approval(member_key(kits, "a"), proposal, "a", council)
    alone = decision_payload(proposal, [lone], council.council_id())
    with pytest.raises(QuorumRefused, match="1 of 2 approvals"):
        check_run_approved(site, cfg, json.dumps(alone), RUN_KEY)
    approve(book.directory, proposal.proposal_id(), kits, "a")
    approve(book.directory, proposal.proposal_id(), kits, "b")
    book.authorize("start_run", approval_hash(cfg))
    decision = run_decision_json(coordinator_kit(kits), cfg)
    check_run_approved(site, cfg, decision, RUN_KEY)  # approved: no error
    other = cfg.model_copy(update={"seed": 1})
    with pytest.raises(QuorumRefused, match="not start_run of this config"):
        check_run_approved(site, other, decision, RUN_KEY)
    plain = tmp_path / "plain-site"  # a kit provisioned without a council checks nothing
    shutil.copytree(site, plain)
    (plain / COUNCIL_FILE).unlink()
    check_run_approved(plain, other, "", RUN_KEY)


def test_a_retirement_that_fails_keeps_the_approval(kits: Path, tmp_path: Path) -> None:
    """The approval is used only once the model is retired: a notice that cannot be written
    (here a folder stands in its way) is a clear error, and the same approvals then retire."""
    run = run_experiment(small_config(), tmp_path / "run").run_dir
    decisions = tmp_path / "decisions"
    kit = coordinator_kit(kits)
    council = ["--council", str(kit / COUNCIL_FILE), "--authority", str(kit / "ca.crt")]
    book = DecisionBook(decisions, council_of(kits))
    proposal = retire_proposal(run, book.council)
    book.propose(proposal)
    for member in ("b", "c"):
        approve(decisions, proposal.proposal_id(), kits, member)
    (run / "RETIRED.json").mkdir()
    retire = ["governance", "retire", str(run), "--decisions", str(decisions), *council]
    failed = runner.invoke(app, [*retire, "--reason", "superseded"])
    assert failed.exit_code == 2
    assert "the council's approval was not used" in " ".join(failed.output.split())
    assert book.executed() == {}
    (run / "RETIRED.json").rmdir()
    retired = runner.invoke(app, [*retire, "--reason", "superseded"])
    assert retired.exit_code == 0, retired.output
    assert list(book.executed()) == [proposal.proposal_id()]
    assert retirement(run) is not None


def test_a_retirement_whose_approval_was_used_meanwhile_takes_its_notice_back(
    kits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process consumes the proposal while the notice is being written: the notice
    is removed again and the retirement refused."""
    run = run_experiment(small_config(), tmp_path / "run").run_dir
    book = DecisionBook(tmp_path / "decisions", council_of(kits))
    proposal = retire_proposal(run, book.council)
    book.propose(proposal)
    for member in ("a", "b"):
        approve(book.directory, proposal.proposal_id(), kits, member)

    def retire_while_another_uses_it(run_dir: Path, reason: str, instead: Path | None) -> Path:
        book.authorize("retire_model", proposal.subject)
        return retire(run_dir, reason, instead)

    monkeypatch.setattr(retire_gate, "retire", retire_while_another_uses_it)
    with pytest.raises(QuorumRefused, match="already executed"):
        retire_with_quorum(run, book.council, book.directory, "superseded", None)
    assert retirement(run) is None


def test_a_site_refuses_a_replayed_decision_for_another_run(kits: Path) -> None:
    """A site accepts a start_run decision for one run: the same run again (a resume, a
    retried start) is accepted, the decision replayed for another run is refused naming the
    proposal, and a new proposal for the same config starts that run."""
    cfg, site = small_config(), site_kit(kits, "a")
    council = council_of(kits)
    book = DecisionBook(coordinator_kit(kits) / KIT_DECISIONS_DIR, council)
    first = start_run_proposal(cfg, council)
    book.propose(first)
    for member in ("a", "b"):
        approve(book.directory, first.proposal_id(), kits, member)
    book.authorize("start_run", approval_hash(cfg))
    decision = run_decision_json(coordinator_kit(kits), cfg)
    check_run_approved(site, cfg, decision, RUN_KEY)
    check_run_approved(site, cfg, decision, RUN_KEY)  # the same run enrols again
    another_run = "fedcba9876543210"
    replayed = f"replayed council decision {first.proposal_id()[:16]}.*start run {RUN_KEY}"
    with pytest.raises(QuorumRefused, match=replayed):
        check_run_approved(site, cfg, decision, another_run)
    second = start_run_proposal(cfg, council)
    book.propose(second)
    for member in ("b", "c"):
        approve(book.directory, second.proposal_id(), kits, member)
    book.authorize("start_run", approval_hash(cfg))
    check_run_approved(site, cfg, run_decision_json(coordinator_kit(kits), cfg), another_run)
    with pytest.raises(QuorumRefused, match=replayed):  # the old one stays used
        check_run_approved(site, cfg, decision, another_run)


def test_quorum_paths_are_read_from_the_config_files_folder(tmp_path: Path) -> None:
    quorum = {"council": "kits/council.json", "decisions": "decisions", "authority": "ca.crt"}
    folder = tmp_path / "experiments"
    folder.mkdir()
    experiment = folder / "experiment.yaml"
    experiment.write_text(dump_config(small_config(governance={"quorum": quorum})))
    settings = load_config(experiment).governance.quorum
    assert settings is not None
    assert settings.council == folder / "kits" / "council.json"
    assert settings.decisions == folder / "decisions"
    assert settings.authority == folder / "ca.crt"
