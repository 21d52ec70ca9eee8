"""``medsilo audit privacy RUN``: run the empirical attacks against a finished run directory.

Reads ``RUN/config.yaml`` and ``RUN/final_weights.npz``, rebuilds the federation exactly as
the run did (:class:`~medsilo.runtime.prepared.PreparedFederation`, same seed, same split),
and writes ``RUN/audit/privacy.json`` plus ``inversion.png`` and ``membership_roc.png``.

* Gradient inversion attacks one site's transmitted update in a round with the run's own
  batch size and local steps (unless overridden) at the run's *initial* global weights by
  default (``weights_at="final"`` attacks a round at the
  trained model instead); see :mod:`medsilo.audit.inversion_audit` for what is observed.
* Membership inference attacks the *final* global model (:mod:`medsilo.audit.membership`,
  :mod:`medsilo.audit.lira`).

The JSON states the threat model, what the coordinator actually saw under the run's config,
and any epsilon the run recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medsilo.audit.figures import inversion_figure, roc_figure
from medsilo.audit.inversion_audit import (
    InversionAuditSettings,
    data_bounds,
    run_inversion_audit,
)
from medsilo.audit.lira import LiraSettings, lira_attack
from medsilo.audit.membership import AttackScores, loss_threshold_attack, membership_split
from medsilo.config import BASELINES, ConfigError, RunConfig, load_config
from medsilo.experiment import json_default
from medsilo.governance.retire import warn_if_retired
from medsilo.models.weights import shape_mismatch
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import read_rounds
from medsilo.types import Weights

AttackChoice = Literal["inversion", "membership", "all"]
#: Callback ``(step name, done, total)`` for progress bars.
Progress = Callable[[str, int, int], None]


class AuditError(ValueError):
    """The run directory cannot be audited; the message says why."""


@dataclass(frozen=True)
class LoadedRun:
    run_dir: Path
    cfg: RunConfig
    final_weights: Weights


@dataclass(frozen=True)
class PrivacyAuditOptions:
    attack: AttackChoice = "all"
    site: str | None = None
    weights_at: Literal["initial", "final"] = "initial"
    inversion: InversionAuditSettings = field(default_factory=InversionAuditSettings)
    members_per_side: int = 1000
    lira: LiraSettings | None = field(default_factory=LiraSettings)


@dataclass
class PrivacyAuditResult:
    report: dict[str, Any]
    out_dir: Path
    figures: list[Path] = field(default_factory=list)


def load_run(run_dir: Path) -> LoadedRun:
    if not run_dir.is_dir():
        raise AuditError(f"run directory not found: {run_dir}")
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        hint = ""
        if (run_dir / "suite.json").is_file():
            runs = json.loads((run_dir / "suite.json").read_text()).get("runs", [])
            hint = f"; it is a suite directory, audit one of its runs: {', '.join(runs)}"
        raise AuditError(f"{run_dir} is not a run directory (no config.yaml){hint}")
    try:
        cfg = load_config(cfg_path)
    except ConfigError as err:
        raise AuditError(str(err)) from None
    weights_path = run_dir / "final_weights.npz"
    if not weights_path.is_file():
        raise AuditError(
            f"{run_dir} has no final_weights.npz: the run did not finish, nothing to audit"
        )
    with np.load(weights_path) as npz:
        weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    warn_if_retired(run_dir)  # replaced after a data withdrawal (docs/governance.md)
    return LoadedRun(run_dir, cfg, weights)


def _check_weights(loaded: LoadedRun, prep: PreparedFederation) -> None:
    mismatch = shape_mismatch(prep.initial_weights, loaded.final_weights)
    if mismatch is not None:
        raise AuditError(f"final_weights.npz does not fit the model of config.yaml: {mismatch}")


def observed_update_note(cfg: RunConfig) -> str:
    """What the coordinator sees of one site's update under ``cfg`` (plain words)."""
    parts: list[str] = []
    algo = cfg.algorithm
    client = cfg.client_dp()
    if client is not None:
        clip, noise = client.clip, client.noise
        if algo.name != "dp_fedavg":
            parts.append(f"the {algo.name} update inside client-level DP")
        if noise == "local":
            parts.append(
                f"clipped to l2 norm {clip} and noised by the site with its share of the "
                "noise (local/distributed DP: one update in the clear carries noise "
                "multiplier z/sqrt(m) for m sites a round)"
            )
        else:
            parts.append(
                f"clipped to l2 norm {clip} but NOT noised: DP-FedAvg's Gaussian noise is "
                "added by the coordinator after aggregation, so it does not hide an "
                "individual update from the coordinator"
            )
    elif algo.name == "ccpgd":
        parts.append("CC-PGD's proximal local steps (soft-threshold, l2-ball projection)")
    else:
        parts.append(f"the plain {algo.name} update")
    dp_sgd = cfg.privacy.dp_sgd
    if dp_sgd is not None:
        parts.append(
            f"trained with sample-level DP-SGD (per-example clip {dp_sgd.max_grad_norm}, noise "
            f"multiplier {dp_sgd.noise_multiplier}): noised at the site, before transmission"
        )
    if cfg.compression.codec != "none":
        parts.append(f"after {cfg.compression.codec} compression and decoding")
    secure = getattr(cfg, "secure_aggregation", None)
    if secure is not None and getattr(secure, "enabled", False):
        parts.append(
            "BUT secure aggregation is on: the coordinator really holds only masked payloads "
            "and their sum, so this inversion is an upper bound (a coordinator that sees one "
            "update in the clear, e.g. by colluding with all other sites of the round)"
        )
    return "; ".join(parts)


def recorded_privacy(run_dir: Path) -> dict[str, Any]:
    """Any epsilon/delta the run recorded in its last round or its summary."""
    found: dict[str, Any] = {}
    rounds = run_dir / "rounds.jsonl"
    if rounds.is_file():
        records = read_rounds(rounds)
        if records and records[-1].privacy is not None:
            found.update(records[-1].privacy)
    summary = run_dir / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        found.update({k: v for k, v in s.items() if "epsilon" in k})
        if isinstance(s.get("privacy"), dict):
            found.update(s["privacy"])
    return found


def audit_privacy(
    loaded: LoadedRun, options: PrivacyAuditOptions, progress: Progress | None = None
) -> PrivacyAuditResult:
    cfg = loaded.cfg
    if cfg.algorithm.name in BASELINES and options.attack == "inversion":
        raise AuditError(f"baseline {cfg.algorithm.name!r} transmits no updates to invert")
    torch.set_num_threads(cfg.threads)
    prep = PreparedFederation.build(cfg)
    _check_weights(loaded, prep)
    names = prep.fed.site_names
    if options.site is not None and options.site not in names:
        raise AuditError(f"no site named {options.site!r}; the run's sites are {names}")
    if options.attack in ("inversion", "all") and cfg.algorithm.name not in BASELINES:
        site = options.site or names[0]
        options.inversion.victim_round(cfg, len(prep.train[site]))  # refuse before writing
    out_dir = loaded.run_dir / "audit"
    out_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    report: dict[str, Any] = {
        "run": str(loaded.run_dir),
        "config": {
            "name": cfg.name,
            "dataset": cfg.data.dataset,
            "partition": cfg.data.partition,
            "model": cfg.model.source,
            "algorithm": cfg.algorithm.model_dump(mode="json"),
            "compression": cfg.compression.codec,
            "seed": cfg.seed,
        },
        "recorded_privacy": recorded_privacy(loaded.run_dir),
    }
    result = PrivacyAuditResult(report, out_dir)
    run_inversion = options.attack in ("inversion", "all") and cfg.algorithm.name not in BASELINES
    if run_inversion:
        report["inversion"] = _inversion(loaded, prep, options, result, progress)
    elif options.attack == "all":
        report["inversion"] = {"skipped": f"baseline {cfg.algorithm.name!r} sends no updates"}
    if options.attack in ("membership", "all"):
        report["membership"] = _membership(loaded, prep, options, result, progress)
    report["wall_s"] = time.perf_counter() - start
    (out_dir / "privacy.json").write_text(json.dumps(report, indent=2, default=json_default))
    return result


def _inversion(
    loaded: LoadedRun,
    prep: PreparedFederation,
    options: PrivacyAuditOptions,
    result: PrivacyAuditResult,
    progress: Progress | None,
) -> dict[str, Any]:
    cfg = loaded.cfg
    site = options.site or prep.fed.site_names[0]
    weights = prep.initial_weights if options.weights_at == "initial" else loaded.final_weights
    total = options.inversion.victim_round(cfg, len(prep.train[site])).images

    def on_batch(done: int) -> None:
        if progress is not None:
            progress("gradient inversion", done, total)

    audit = run_inversion_audit(cfg, prep, site, weights, options.inversion, on_batch)
    summary = audit.summary()
    summary["weights_at"] = options.weights_at
    summary["observed_update"] = observed_update_note(cfg)
    summary["threat_model"] = (
        "honest-but-curious coordinator; knows the global weights, the site's local "
        "learning rate, weight decay and step count, and the batch labels "
        f"({'inferred with iDLG' if options.inversion.labels == 'idlg' else 'given'}); "
        "sees the site's transmitted update for one round in which the site trained only "
        f"on the victim batch for the round's local steps ({summary['setting_source']})"
    )
    summary["attack"] = asdict(options.inversion.attack)
    png = result.out_dir / "inversion.png"
    if inversion_figure(audit, data_bounds(prep), png):
        result.figures.append(png)
    return summary


def _membership(
    loaded: LoadedRun,
    prep: PreparedFederation,
    options: PrivacyAuditOptions,
    result: PrivacyAuditResult,
    progress: Progress | None,
) -> dict[str, Any]:
    cfg = loaded.cfg
    split = membership_split(prep, options.site, options.members_per_side, cfg.seed)
    attacks: dict[str, AttackScores] = {
        "loss_threshold": loss_threshold_attack(prep.model, loaded.final_weights, split)
    }
    if progress is not None:
        progress("membership: loss threshold", 1, 1)
    lira_settings = options.lira
    if lira_settings is not None:

        def on_shadow(done: int) -> None:
            if progress is not None:
                progress("membership: LiRA shadows", done, lira_settings.shadows)

        attacks["lira_offline"] = lira_attack(
            cfg, prep, loaded.final_weights, split, lira_settings, on_shadow
        )
    out: dict[str, Any] = {
        "target": options.site or "all sites",
        "members": len(split.members),
        "non_members": len(split.non_members),
        "attacker_pool": len(split.pool),
        "note": (
            "members: training rows of the target site(s); non-members: a random half of the "
            "held-out test rows; the other half is the attacker's shadow pool"
        ),
    }
    for name, scores in attacks.items():
        out[name] = scores.roc.as_dict()
        if scores.roc.resolution_limited:
            out[name]["resolution_note"] = (
                f"only {scores.roc.non_members} non-members: the smallest measurable non-zero "
                f"FPR is {1 / scores.roc.non_members:.4f} > {scores.roc.low_fpr}, so "
                "TPR@0.1%FPR is interpolated, not measured"
            )
    if lira_settings is not None:
        out["lira_offline"]["settings"] = asdict(lira_settings)
    png = result.out_dir / "membership_roc.png"
    roc_figure(attacks, png)
    result.figures.append(png)
    return out
