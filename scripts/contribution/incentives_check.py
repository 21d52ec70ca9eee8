"""Free-rider detection rate, false positives, reward shares and reputation on heart disease.

The bundled ``heart_fedavg`` (4 hospitals, FedAvg, logistic model, 15 rounds x 100 local
steps), seeds 0-9:

1. detection: for each simulated free rider (docs/contribution.md) in how many of the 10
   seeds it is flagged by its rule, and how many other sites are flagged; honest runs: how
   many sites are flagged (false positives), and the smallest ``|z_own|`` of an honest site
   (the noise rule's margin, threshold 3);
2. reward shares (GTG-Shapley, neg_loss) per hospital over the 10 honest seeds, and the
   reputation after folding the 10 runs in order (alpha 0.3); then one more run with VA as a
   free rider and its effect on VA's reputation. Run:

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python scripts/contribution/incentives_check.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsilo.bundled import resolve_config
from medsilo.config import RunConfig
from medsilo.contribution.free_riders import FreeRiderDetector
from medsilo.contribution.observed import run_observed
from medsilo.contribution.reputation import Reputation
from medsilo.contribution.scores import contribution_scores
from medsilo.runtime.prepared import PreparedFederation

SEEDS = range(10)
SITES = ["cleveland", "hungarian", "switzerland", "va"]
BEHAVIOURS: dict[str, tuple[dict[str, Any] | None, str | None, str | None]] = {
    "honest": (None, None, None),
    "free_ride (va)": ({"kind": "free_ride", "sites": ["va"]}, "va", "returns_received_model"),
    "gaussian noise (switzerland)": (
        {"kind": "gaussian", "sites": ["switzerland"]},
        "switzerland",
        "noise",
    ),
    "stale (hungarian)": ({"kind": "stale", "sites": ["hungarian"]}, "hungarian", "stale"),
    "copy of cleveland (va)": (
        {"kind": "copy", "sites": ["va"], "source": "cleveland"},
        "va",
        "copy",
    ),
}


def config(seed: int, attack: dict[str, Any] | None) -> RunConfig:
    cfg = resolve_config("heart_fedavg", [f"seed={seed}", "evaluation.loho=false"])
    return (
        cfg if attack is None else RunConfig.model_validate(cfg.model_dump() | {"attack": attack})
    )


def detection() -> None:
    print("| behaviour | flagged by its rule | other sites flagged | min honest abs(z_own) |")
    print("|---|---:|---:|---:|")
    for name, (attack, site, rule) in BEHAVIOURS.items():
        hits, others, margin = 0, 0, float("inf")
        for seed in SEEDS:
            cfg = config(seed, attack)
            det = FreeRiderDetector()
            run_observed(cfg, PreparedFederation.build(cfg), [det.observe])
            flags = det.flags()
            hits += any(f.site == site and f.rule == rule for f in flags)
            others += sum(f.site != site for f in flags)
            for s, z in det.noise_scores().items():
                z_own = z["z_own"]
                if s != site and z_own is not None:
                    margin = min(margin, abs(z_own))
        rate = "-" if site is None else f"{hits}/{len(SEEDS)}"
        print(f"| {name} | {rate} | {others} | {margin:.2f} |", flush=True)


def shares_and_reputation() -> None:
    rep = Reputation(alpha=0.3)
    table = []
    for seed in SEEDS:
        s = contribution_scores(config(seed, None), "shapley", "neg_loss")
        shares = s["shares"]["values"]
        table.append([shares[n] for n in SITES])
        rep.update(f"seed {seed}", shares)
    mean, std = np.mean(table, axis=0), np.std(table, axis=0, ddof=1)
    print(
        "\n| hospital | share seed 0 | share mean (std) over 10 seeds | reputation after 10 runs |"
    )
    print("|---|---:|---:|---:|")
    for k, n in enumerate(SITES):
        print(
            f"| {n} | {table[0][k]:.3f} | {mean[k]:.3f} ({std[k]:.3f}) | "
            f"{rep.sites[n].reputation:.3f} |"
        )
    s = contribution_scores(config(10, BEHAVIOURS["free_ride (va)"][0]), "shapley", "neg_loss")
    before = rep.sites["va"].reputation
    rep.update("seed 10, va free rides", s["shares"]["values"])
    print(
        f"\nseed 10 with va free riding: shares {s['shares']['values']}, flags "
        f"{[(f['site'], f['rule']) for f in s['free_riders']['flags']]}; va reputation "
        f"{before:.3f} -> {rep.sites['va'].reputation:.3f}"
    )


if __name__ == "__main__":
    detection()
    shares_and_reputation()
