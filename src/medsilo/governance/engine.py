"""What the governance features need from a runtime, and the runs they refuse.

Checkpoint/resume and absent sites are implemented in the synchronous in-process engine
(:mod:`medsilo.runtime.simulation`). Refused, with the reason:

* asynchronous runs: their event queue (in-flight updates, staleness) is not checkpointed;
* the ``pooled``/``local`` baselines: they have no federated rounds;
* patient-level consent with DP-SGD or federated standardisation
  (:func:`~medsilo.governance.patient_consent.patient_consent_problem`);
* checkpoint/resume of an algorithm whose capabilities say its state does not survive a
  checkpoint.

Differential privacy is not refused: a checkpoint holds the accountant's state, and every
noise stream is keyed by the seed, the round and the site, so the checkpoint's round restores
it (docs/privacy.md, "Checkpoints and resume").
"""

from __future__ import annotations

from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, ConfigError, RunConfig
from medsilo.governance.patient_consent import patient_consent_problem


def uses_absent_sites(cfg: RunConfig) -> bool:
    gov = cfg.governance
    return bool(
        gov.withdrawn_sites
        or gov.withdrawn_cohorts
        or gov.consent is not None
        or gov.patient_consent is not None
    )


def governance_problem(cfg: RunConfig, checkpointing: bool) -> str | None:
    features = [
        name
        for name, on in (
            ("checkpoints/resume", checkpointing or cfg.governance.checkpoint is not None),
            ("withdrawn sites or consent (window, patients)", uses_absent_sites(cfg)),
        )
        if on
    ]
    if not features:
        return None
    what = " and ".join(features)
    if cfg.algorithm.name in BASELINES:
        return f"baseline {cfg.algorithm.name!r} has no federated rounds; {what} need them"
    if not isinstance(cfg.asynchrony, SyncConfig):
        return (
            f"{what} are supported by the synchronous engine only; asynchronous runs keep "
            "in-flight updates that a checkpoint does not hold (set asynchrony.mode: sync)"
        )
    consent = patient_consent_problem(cfg)
    if consent is not None:
        return consent
    if not (checkpointing or cfg.governance.checkpoint is not None):
        return None
    if not cfg.capabilities().checkpoints:
        return f"checkpoints/resume: algorithm {cfg.algorithm.name!r} cannot be checkpointed"
    return None


def refuse_unsupported(cfg: RunConfig, checkpointing: bool) -> None:
    problem = governance_problem(cfg, checkpointing)
    if problem is not None:
        raise ConfigError(problem)
