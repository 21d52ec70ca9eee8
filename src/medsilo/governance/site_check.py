"""A site's own check, at enrolment, that the council approved the run it is asked to train.

The coordinator's check (:mod:`medsilo.governance.run_gate`) runs on the coordinator, whose
operator could turn it off. So when a site's kit holds a ``council.json`` (its own copy,
verified with its own ``ca.crt``), the site also refuses to enrol unless the coordinator's
enrolment request carries the ``quorum_decision`` of a ``start_run`` proposal whose subject
is the config hash of the very config it was sent, with the signatures of the threshold of
council members. The site needs nothing from the coordinator to verify this but the decision
itself: the members' keys are in its own signed council file. And the site accepts each
decision for one run only (:mod:`medsilo.governance.run_starts`): an old decision replayed to
start another run is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from medsilo.governance.council import COUNCIL_FILE, load_council
from medsilo.governance.decisions import QuorumRefused, decision_problems
from medsilo.governance.run_gate import approval_hash
from medsilo.governance.run_starts import claim_run_start

if TYPE_CHECKING:
    from medsilo.config import RunConfig


def check_run_approved(site_kit: Path, cfg: RunConfig, decision_json: str, run_key: str) -> None:
    """Raise ``QuorumRefused`` unless ``decision_json`` approves starting ``cfg`` under the
    council of ``site_kit`` and this site has not used it for a run other than ``run_key``
    (then it is recorded as used for ``run_key``); nothing to check for a kit provisioned
    without a council."""
    path = site_kit / COUNCIL_FILE
    if not path.exists():
        return
    council = load_council(path, site_kit / "ca.crt")
    subject = approval_hash(cfg)
    if not decision_json:
        raise QuorumRefused(
            f"this site's council requires an approved start_run for config {subject[:16]}, "
            "and the coordinator sent no council decision: refusing to train"
        )
    try:
        payload = json.loads(decision_json)
    except json.JSONDecodeError as err:
        raise QuorumRefused(f"the coordinator's council decision is not JSON: {err}") from None
    proposal = payload.get("proposal") if isinstance(payload, dict) else None
    proposal = proposal if isinstance(proposal, dict) else {}
    if (proposal.get("action"), proposal.get("subject")) != ("start_run", subject):
        raise QuorumRefused(
            f"the coordinator's council decision approves {proposal.get('action')} "
            f"{str(proposal.get('subject'))[:16]}, not start_run of this config "
            f"{subject[:16]}: refusing to train"
        )
    problems = decision_problems(payload, council, "the coordinator's council decision")
    if problems:
        raise QuorumRefused("; ".join(problems) + ": refusing to train")
    claim_run_start(site_kit, str(payload["proposal_id"]), run_key)
