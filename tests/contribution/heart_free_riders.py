"""Heart-disease federations with one simulated free rider, observed by the detector.

The bundled ``heart_fedavg`` setup (standardised features, logistic model, batch 4,
lr 0.01) cut to 5 rounds x 20 local steps so ten seeds per behaviour stay cheap.
"""

from __future__ import annotations

from typing import Any

from medsilo.bundled import resolve_config
from medsilo.config import RunConfig
from medsilo.contribution.free_riders import FreeRiderDetector
from medsilo.contribution.observed import run_observed
from medsilo.runtime.prepared import PreparedFederation

SEEDS = range(10)
SITES = ["cleveland", "hungarian", "switzerland", "va"]

#: The simulated free riders: the ``attack`` section, and the site and rule to flag.
BEHAVIOURS: dict[str, tuple[dict[str, Any], str, str]] = {
    "returns_received_model": (
        {"kind": "free_ride", "sites": ["va"]},
        "va",
        "returns_received_model",
    ),
    "noise": ({"kind": "gaussian", "sites": ["switzerland"]}, "switzerland", "noise"),
    "stale": ({"kind": "stale", "sites": ["hungarian"]}, "hungarian", "stale"),
    "copy": ({"kind": "copy", "sites": ["va"], "source": "cleveland"}, "va", "copy"),
}


def heart_config(seed: int, attack: dict[str, Any] | None = None) -> RunConfig:
    overrides = [
        f"seed={seed}",
        "training.rounds=5",
        "training.local_steps=20",
        "evaluation.loho=false",
        "evaluation.every=5",
        "evaluation.bootstrap_replicates=20",
    ]
    cfg = resolve_config("heart_fedavg", overrides)
    if attack is None:
        return cfg
    return RunConfig.model_validate(cfg.model_dump() | {"attack": attack})


def detect(cfg: RunConfig) -> FreeRiderDetector:
    detector = FreeRiderDetector()
    run_observed(cfg, PreparedFederation.build(cfg), [detector.observe])
    return detector
