"""A deployed federation on 127.0.0.1 whose kits carry a council: the coordinator refuses to
start the run until two of the three sites approved its config, then runs it; and sites
refuse a coordinator that dropped the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsilo.config import load_config
from medsilo.deploy.kit_files import load_attest_private_key
from medsilo.deploy.loopback import SITES, Loopback, heart_experiment
from medsilo.governance.council import COUNCIL_FILE
from medsilo.governance.decisions import APPROVALS_DIR, DecisionBook, recorded_problems
from medsilo.governance.proposal import sign_approval, write_json
from medsilo.governance.run_gate import KIT_DECISIONS_DIR, kit_council, start_run_proposal
from medsilo.ledger.keys import load_public_key
from medsilo.ledger.store import open_readonly, read_records
from medsilo.ledger.verify import verify_ledger

from ..markers import FEDERATION_PROCESSES

pytestmark = [pytest.mark.slow, FEDERATION_PROCESSES]

COUNCIL = {"members": SITES, "threshold": 2}


def test_a_deployed_run_starts_only_with_its_quorum(tmp_path: Path) -> None:
    lb = Loopback(tmp_path, heart_experiment(2), council=COUNCIL)
    try:
        refused = lb.start_coordinator("refused")
        assert lb.wait(refused, 300) == 2, lb.all_logs()
        assert "needs the council's approval" in " ".join(lb.log("coordinator-refused").split())
        assert not (tmp_path / "refused").exists()

        council = kit_council(lb.coordinator_kit)
        assert council is not None
        book = DecisionBook(lb.coordinator_kit / KIT_DECISIONS_DIR, council)
        proposal = start_run_proposal(load_config(lb.exp_path), council)
        book.propose(proposal)
        for member in ("cleveland", "va"):  # each signs with its own kit's key
            key = load_attest_private_key(lb.site_kit(member) / "attest.key")
            approval = sign_approval(key, proposal, member, council)
            write_json(book.directory / APPROVALS_DIR / f"{member}.json", approval)

        coordinator = lb.start_coordinator()
        for site in lb.sites:
            lb.start_site(site)
        assert lb.wait(coordinator, 600) == 0, lb.all_logs()
        assert [r["round"] for r in lb.rounds()] == [1, 2]
        run = tmp_path / "run"
        assert verify_ledger(run / "ledger.sqlite", load_public_key(run / "ledger.pub")).ok
        conn = open_readonly(run / "ledger.sqlite")
        run_records = list(read_records(conn))
        conn.close()
        assert [r.kind for r in run_records].count("quorum_decision") == 1
        assert recorded_problems(run_records, council) == []
        governance = book.directory / "ledger.sqlite"
        assert verify_ledger(governance, load_public_key(book.directory / "ledger.pub")).ok
        assert book.executed() == {proposal.proposal_id(): book.records()[-1].seq}
        assert recorded_problems(book.records(), council) == []
    finally:
        lb.stop_all()


def test_sites_refuse_a_coordinator_that_dropped_the_council(tmp_path: Path) -> None:
    """The operator deletes council.json from the coordinator kit, so the coordinator starts
    the run unchecked; each site, holding its own signed council copy, refuses to enrol."""
    lb = Loopback(tmp_path, heart_experiment(2), council=COUNCIL)
    try:
        (lb.coordinator_kit / COUNCIL_FILE).unlink()
        coordinator = lb.start_coordinator("rogue")
        for site in lb.sites:
            lb.start_site(site)
        assert lb.wait(coordinator, 600) != 0
        assert "sent no council decision" in " ".join(lb.all_logs().split()), lb.all_logs()
        assert lb.rounds("rogue") == []
    finally:
        lb.stop_all()
