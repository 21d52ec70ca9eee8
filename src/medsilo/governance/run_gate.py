"""The coordinator's guard before a run starts: the council must have approved its config.

The subject of a ``start_run`` proposal is :func:`approval_hash`: the whole run config
except ``name``, ``output_dir``, ``tracking`` and ``governance.quorum`` (the vote's own
folders). So a run with another algorithm, model, privacy budget, site list, training
setting, governance setting (patient consent, withdrawals, site witnessing) or anchoring is
a different subject and needs its own approved proposal, while renaming a run or moving its
output does not. (Checkpoints use the narrower :func:`~medsilo.governance.checkpoint
.config_hash`, which leaves governance out: a resume may withdraw a site.) The proposal's
``details`` repeat the algorithm, model, rounds and privacy
section so that voters see what they approve.

Two callers, each checking first (:class:`RunApproval`, nothing written) and consuming the
proposal only once the run really begins, so a failure before that leaves it for the next
attempt: :func:`medsilo.experiment.run_experiment` (engine and ``medsilo simulate``), when
the config has ``governance.quorum``, consumes after its last check; ``medsilo coordinator
start KIT``, whenever the coordinator kit holds a council (provisioned with one), whatever
the config says, checks before it starts Flower, and its ServerApp consumes once the sites
have connected, just before it sends them the decision with the enrolment request
(:mod:`medsilo.deploy.coordinator`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medsilo.governance.council import COUNCIL_FILE, Council, load_council
from medsilo.governance.decisions import Decision, DecisionBook, latest_decision
from medsilo.governance.proposal import Proposal
from medsilo.governance.quorum import Tally

if TYPE_CHECKING:
    from medsilo.config import RunConfig

#: The decisions folder of a coordinator kit, unless ``--decisions`` names another.
KIT_DECISIONS_DIR = "decisions"


def approval_hash(cfg: RunConfig) -> str:
    """What a ``start_run`` approval is bound to (module docstring)."""
    data = cfg.model_dump(mode="json", exclude={"name", "output_dir", "tracking"})
    data["governance"].pop("quorum", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def start_run_proposal(cfg: RunConfig, council: Council) -> Proposal:
    """A new proposal to start runs of ``cfg`` (subject: its config hash)."""
    details = {
        "algorithm": cfg.algorithm.name,
        "model": cfg.model.label,
        "rounds": cfg.training.rounds,
        "privacy": cfg.privacy.model_dump(mode="json"),
    }
    return Proposal(
        federation=council.federation,
        action="start_run",
        subject=approval_hash(cfg),
        details=details,
    )


@dataclass(frozen=True)
class RunApproval:
    """An approved ``start_run`` not yet consumed: :meth:`consume` once every other check
    before the run has passed, so a failure there does not cost the council a new vote."""

    book: DecisionBook
    tally: Tally

    def consume(self) -> Decision:
        return self.book.record(self.tally)


def approved_run(cfg: RunConfig) -> RunApproval | None:
    """The engine's guard: ``None`` (nothing to check) without ``governance.quorum``, else
    the approval to consume, or ``QuorumRefused``; writes nothing."""
    settings = cfg.governance.quorum
    if settings is None:
        return None
    book = DecisionBook(settings.decisions, load_council(settings.council, settings.authority))
    return RunApproval(book, book.approved("start_run", approval_hash(cfg)))


def kit_run_approval(kit: Path, cfg: RunConfig) -> RunApproval | None:
    """The deployed coordinator's guard: ``None`` (nothing to check) when its kit has no
    council, else the approval to consume from the kit's decisions folder, or
    ``QuorumRefused``; writes nothing."""
    council = kit_council(kit)
    if council is None:
        return None
    book = DecisionBook(kit / KIT_DECISIONS_DIR, council)
    return RunApproval(book, book.approved("start_run", approval_hash(cfg)))


def kit_council(kit: Path) -> Council | None:
    """The coordinator kit's council, checked against the kit's CA; ``None`` when the
    federation was provisioned without one."""
    path = kit / COUNCIL_FILE
    if not path.exists():
        return None
    return load_council(path, kit / "ca.crt")


def run_decision_json(kit: Path, cfg: RunConfig) -> str:
    """The recorded decision that approved starting ``cfg``, as JSON, for the deployed
    ServerApp to send each site at enrolment (:mod:`medsilo.governance.site_check`); empty
    when the kit has no council or no decision was recorded."""
    if not (kit / COUNCIL_FILE).exists():
        return ""
    found = latest_decision(kit / KIT_DECISIONS_DIR, "start_run", approval_hash(cfg))
    return "" if found is None else json.dumps(found, sort_keys=True)
