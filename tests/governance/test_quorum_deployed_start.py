"""The deployed coordinator uses up a ``start_run`` approval only when the run begins, and
each site accepts a decision for one run only (push/pull fake Grid, the real ClientApps,
real decision files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from medsilo.config import load_config
from medsilo.governance.decisions import DecisionBook
from medsilo.governance.run_gate import KIT_DECISIONS_DIR, start_run_proposal
from medsilo.runtime.flower.server_app import FlowerRunError
from tests.governance.quorum_fixtures import coordinator_kit, council_of
from tests.governance.test_quorum_membership import (
    council_federation,
    propose_and_vote,
    run_deployed,
)
from tests.runtime.flower.test_apps_inprocess import one_thread, task_identity  # noqa: F401
from tests.runtime.flower.test_deployed_apps import SITES, experiment, rounds


def test_the_approval_is_used_when_the_run_begins_and_never_for_another_run(
    tmp_path: Path,
) -> None:
    """No site connects: the run fails before it began and the approval is still there; the
    retry in the same folder uses it up and trains. The recorded decision then sent to the
    sites for another run (``--resume`` into a new folder skips the coordinator's own check)
    is refused by every site as a replay, naming the proposal: no site is admitted."""
    kits = council_federation(tmp_path)
    council = council_of(kits)
    book = DecisionBook(coordinator_kit(kits) / KIT_DECISIONS_DIR, council)
    experiment_path = tmp_path / "experiment.yaml"
    experiment_path.write_text(yaml.safe_dump(experiment(rounds=1)))
    start = start_run_proposal(load_config(experiment_path), council)
    propose_and_vote(book.directory, kits, start, "cleveland", "va")

    with pytest.raises(FlowerRunError, match="only 0 of 3 sites connected"):
        run_deployed(kits, experiment_path, tmp_path / "run", sites=[])
    assert book.executed() == {}
    assert book.approved("start_run", start.subject).proposal == start

    run_dir = run_deployed(kits, experiment_path, tmp_path / "run")
    assert list(book.executed()) == [start.proposal_id()]
    assert [r["round"] for r in rounds(run_dir)] == [1]

    replay = tmp_path / "replay"
    with pytest.raises(FlowerRunError, match=r"only 0 site\(s\) admitted"):
        run_deployed(kits, experiment_path, replay, resume=True)
    refusals = json.loads((replay / "enrolment.json").read_text()).values()
    assert len(refusals) == len(SITES) and not any(r["accepted"] for r in refusals)
    for refusal in refusals:
        assert f"replayed council decision {start.proposal_id()[:16]}" in refusal["reason"]
