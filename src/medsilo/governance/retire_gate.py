"""Retiring a run's model by the council's decision (``medsilo governance retire RUN``).

The subject of a ``retire_model`` proposal is the SHA-256 of the run's final model
(:func:`medsilo.ledger.digest.weights_sha256` of ``final_weights.npz``, the hash its
ledger's ``run_end`` names), so an approval retires that model and no other. Once the quorum
is met, ``RUN/RETIRED.json`` is written (:mod:`medsilo.governance.retire`), and only then is
the proposal consumed: the decision is recorded in the decisions folder's ledger and in the
run's own ledger. So a retirement that fails (the notice cannot be written) leaves the
approval for the next attempt, and one whose proposal was consumed meanwhile takes its
notice back.

The retirement that ``medsilo unlearn`` performs after a data withdrawal is not put to a
vote: withdrawing consent is a site's (or a patient's) right, not the federation's decision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsilo.config import ConfigError
from medsilo.governance.council import Council
from medsilo.governance.decisions import Decision, DecisionBook
from medsilo.governance.proposal import Proposal
from medsilo.governance.record_kinds import DECISION_KIND
from medsilo.governance.retire import retire, retirement
from medsilo.ledger.digest import weights_sha256
from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.run_ledger import LEDGER_FILE
from medsilo.ledger.store import Ledger

FINAL_WEIGHTS = "final_weights.npz"


def final_model_sha256(run_dir: Path) -> str:
    path = run_dir / FINAL_WEIGHTS
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no {FINAL_WEIGHTS}: not a finished run")
    with np.load(path) as npz:
        return weights_sha256([npz[name] for name in npz.files])


def retire_proposal(run_dir: Path, council: Council) -> Proposal:
    """A new proposal to retire ``run_dir``'s final model."""
    return Proposal(
        federation=council.federation,
        action="retire_model",
        subject=final_model_sha256(run_dir),
        details={"run": run_dir.name},
    )


def retire_with_quorum(
    run_dir: Path, council: Council, decisions: Path, reason: str, replacement: Path | None
) -> Decision:
    """Retire ``run_dir``'s model once the council approved it (module docstring); raise
    ``QuorumRefused`` (nothing written) otherwise."""
    if retirement(run_dir) is not None:
        raise ConfigError(f"{run_dir} is already retired")
    subject = final_model_sha256(run_dir)
    if not (run_dir / LEDGER_FILE).is_file():
        raise ConfigError(f"{run_dir} has no {LEDGER_FILE} to record the decision in")
    with Ledger(run_dir / LEDGER_FILE, load_or_create_private_key()) as ledger:  # key checked
        book = DecisionBook(decisions, council)
        approved = book.approved("retire_model", subject)
        try:
            notice = retire(run_dir, reason, replacement)
        except OSError as err:
            raise ConfigError(
                f"could not retire {run_dir} ({err}); the council's approval was not used"
            ) from None
        try:
            decision = book.record(approved)
        except BaseException:
            notice.unlink()  # not retired after all: the approval went elsewhere
            raise
        ledger.append(DECISION_KIND, decision.payload())
    return decision
