"""Exact unlearning by retraining: withdraw a site (or one of its cohorts) from a finished run.

Definition (docs/governance.md). The federation's roster is fixed: a withdrawn site keeps its
place (its index, and so every seed of ``site_seed``/``sample_sites``) but is *absent*: it is
filtered out of each round's sampled sites, never trains, never sends. "The model trained
from scratch without the site" is the same config with the site in
``governance.withdrawn_sites`` from round 1.

Exactness. Let ``r0`` be the first round whose record lists the site in ``sites``. In rounds
``1..r0-1`` the site was not sampled, so the original run and the from-scratch run computed
exactly the same things (same sampled sites, same seeds, the site's own state still empty):
their states after round ``r0-1`` are bit-identical. Resuming from the original run's
checkpoint of round ``r' <= r0-1`` (or from the initial weights) with the site absent
therefore replays the from-scratch run from ``r'+1`` on, operation for operation.
:meth:`~medsilo.governance.checkpoint.Checkpoint.check_absent` refuses any checkpoint taken
after the site contributed, so a wrong checkpoint cannot silently break this.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medsilo.config import ConfigError, RunConfig, load_config
from medsilo.experiment import ExperimentResult, run_experiment
from medsilo.governance.checkpoint import checkpoint_path, checkpoint_rounds, latest_before
from medsilo.governance.engine import refuse_unsupported
from medsilo.governance.retire import retire, retirement
from medsilo.ledger.keys import load_or_create_private_key
from medsilo.ledger.run_ledger import LEDGER_FILE
from medsilo.ledger.store import Ledger
from medsilo.runtime.round_record import RoundCallback, RoundRecord
from medsilo.runtime.round_record import read_rounds as read_rounds_file

GOVERNANCE_LOG = "governance.jsonl"
UNLEARN_KIND = "unlearn"  # the audit-ledger record kind (medsilo.ledger.verify.KINDS)


@dataclass(frozen=True)
class Withdrawal:
    site: str
    cohort: str | None = None  # a cohort version; None withdraws the whole site

    @classmethod
    def parse(cls, site: str | None, cohort: str | None) -> Withdrawal:
        if (site is None) == (cohort is None):
            raise ConfigError("withdraw exactly one of --site NAME or --cohort SITE:VERSION")
        if site is not None:
            return cls(site)
        assert cohort is not None
        name, sep, version = cohort.partition(":")
        if not (name and sep and version):
            raise ConfigError(f"--cohort {cohort!r} is not SITE:VERSION")
        return cls(name, version)

    @property
    def label(self) -> str:
        return self.site if self.cohort is None else f"{self.site}:{self.cohort}"

    def applied_to(self, cfg: RunConfig) -> RunConfig:
        gov = cfg.governance
        if self.cohort is None:
            changed = {"withdrawn_sites": [*gov.withdrawn_sites, self.site]}
        else:
            changed = {"withdrawn_cohorts": [*gov.withdrawn_cohorts, self.label]}
        return cfg.model_copy(update={"governance": gov.model_copy(update=changed)})


@dataclass
class UnlearnOutcome:
    message: str
    first_round: int | None = None  # None: the site/cohort never contributed (no-op)
    resumed_after: int = 0  # 0: retrained from the initial weights
    new_run: Path | None = None
    result: ExperimentResult | None = None


def read_rounds(run_dir: Path) -> list[RoundRecord]:
    path = run_dir / "rounds.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no rounds.jsonl: not a run directory")
    return read_rounds_file(path)


def first_contribution(records: list[RoundRecord], w: Withdrawal) -> int | None:
    for rec in records:
        if w.site not in rec.sites:
            continue
        cohort = rec.get("cohorts", {}).get(w.site)
        if w.cohort is None or cohort == w.cohort:
            return int(rec["round"])
    return None


def record_event(run_dir: Path, event: dict[str, Any]) -> Path:
    """Append a governance event to ``RUN/governance.jsonl`` (one JSON object a line) and, when
    the run has an audit ledger (docs/audit-ledger.md), as a signed ``unlearn`` record."""
    path = run_dir / GOVERNANCE_LOG
    with path.open("a") as log:
        log.write(json.dumps(event) + "\n")
    ledger_path = run_dir / LEDGER_FILE
    if ledger_path.is_file():
        with Ledger(ledger_path, load_or_create_private_key()) as ledger:
            ledger.append(UNLEARN_KIND, event)
    return path


def finished_run(run_dir: Path) -> tuple[RunConfig, list[RoundRecord]]:
    """The config and round records of a finished, unretired run that can be resumed."""
    cfg = load_config(run_dir / "config.yaml")
    refuse_unsupported(cfg, checkpointing=True)
    notice = retirement(run_dir)
    if notice is not None:
        raise ConfigError(
            f"{run_dir} is already retired ({notice['reason']}); unlearn from its "
            f"replacement {notice['replacement']}"
        )
    records = read_rounds(run_dir)
    if len(records) < cfg.training.rounds:
        raise ConfigError(f"{run_dir} did not finish ({len(records)} of {cfg.training.rounds})")
    return cfg, records


@dataclass(frozen=True)
class Retraining:
    """What to retrain: ``new_cfg`` (the run's config with the data withdrawn) from before
    round ``first``, the data's first contribution. ``label`` names what was withdrawn (in
    messages, the retirement notice and the default output folder); ``details`` join the
    recorded event."""

    new_cfg: RunConfig
    first: int
    label: str
    details: dict[str, Any]


def retrain(
    run_dir: Path,
    records: list[RoundRecord],
    plan: Retraining,
    out: Path | None = None,
    on_round: RoundCallback | None = None,
) -> UnlearnOutcome:
    """Resume from the newest checkpoint before ``plan.first`` with ``plan.new_cfg``, retire
    ``run_dir`` and record the event in both runs (see the module docstring for exactness)."""
    ckpt_dir = run_dir / "checkpoints"
    target = out or run_dir.parent / f"{run_dir.name}-unlearned-{plan.label.replace(':', '-')}"
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --out")
    resume = latest_before(ckpt_dir, plan.first)
    after = 0 if resume is None else resume.round
    result = run_experiment(
        plan.new_cfg, target, on_round, resume=resume, prior_rounds=records[:after]
    )
    _copy_checkpoints(ckpt_dir, target / "checkpoints", after)
    retire(run_dir, f"{plan.label} withdrawn; it contributed from round {plan.first}", target)
    event = {
        "event": "unlearn",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": str(run_dir),
        "withdrawn": plan.label,
        **plan.details,
        "first_contribution_round": plan.first,
        "resumed_after_round": after,
        "replacement": str(target),
    }
    record_event(run_dir, event)
    record_event(target, event)
    message = (
        f"{plan.label} first contributed in round {plan.first}; retrained rounds "
        f"{after + 1}-{plan.new_cfg.training.rounds} without it into {target}; "
        f"{run_dir} is retired"
    )
    return UnlearnOutcome(message, plan.first, after, target, result)


def unlearn(
    run_dir: Path,
    withdrawal: Withdrawal,
    out: Path | None = None,
    on_round: RoundCallback | None = None,
) -> UnlearnOutcome:
    """Retrain ``run_dir`` with ``withdrawal`` applied from its first contribution on."""
    cfg, records = finished_run(run_dir)
    roster = json.loads((run_dir / "summary.json").read_text())["sites"]
    if withdrawal.site not in roster:
        raise ConfigError(f"{run_dir} has no site {withdrawal.site!r}; its sites are {roster}")
    first = first_contribution(records, withdrawal)
    if first is None:
        return UnlearnOutcome(
            f"{withdrawal.label} never contributed to {run_dir} (rounds 1-{len(records)}): "
            "nothing to unlearn, the model stays in service"
        )
    plan = Retraining(withdrawal.applied_to(cfg), first, withdrawal.label, {})
    return retrain(run_dir, records, plan, out, on_round)


def _copy_checkpoints(source: Path, target: Path, up_to: int) -> None:
    """The original run's checkpoints up to ``up_to`` are valid for the new run as well (its
    state is identical up to there), so the new run can itself be unlearned later."""
    for rnd in checkpoint_rounds(source):
        if rnd > up_to:
            continue
        manifest = checkpoint_path(source, rnd)
        target.mkdir(parents=True, exist_ok=True)
        for path in (manifest.with_suffix(".npz"), manifest):  # the manifest last
            shutil.copy2(path, target / path.name)
