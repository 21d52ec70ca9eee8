"""Gradient-inversion PSNR/SSIM side by side for several defences (docs/privacy-audits.md).

MNIST Dirichlet(0.5), 10 sites, CNN, the victim site ``site-00`` at the initial global
weights, the same victim images for every row. Each row's observed update comes from the
site's own code path (:func:`medsilo.audit.observed.observe_update`). Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/privacy_audit/inversion_table.py \
        --images 4 --iterations 300
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from medsilo.audit.inversion import InversionSettings
from medsilo.audit.inversion_audit import InversionAuditSettings, run_inversion_audit
from medsilo.config import parse_config
from medsilo.runtime.prepared import PreparedFederation

DATA = {
    "dataset": "mnist",
    "partition": "dirichlet",
    "num_sites": 10,
    "alpha": 0.5,
    "max_train_samples": 5000,
    "max_test_samples": 2000,
}
ROWS: dict[str, dict[str, Any]] = {
    "fedavg (no defence)": {"algorithm": {"name": "fedavg"}},
    "dp_fedavg central z=4": {
        "algorithm": {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 4.0}
    },
    "dp_fedavg local z=1": {
        "algorithm": {"name": "dp_fedavg", "clip": 1.0, "noise_multiplier": 1.0, "noise": "local"}
    },
    "dp_sgd eps=8 (auto)": {
        "algorithm": {"name": "fedavg"},
        "privacy": {
            "target_epsilon": 8.0,
            "dp_sgd": {"noise_multiplier": "auto", "max_grad_norm": 1.0},
        },
    },
    "ccpgd lam=0.05 mu=0.005": {"algorithm": {"name": "ccpgd", "lam": 0.05, "mu": 0.005}},
    "ccpgd lam=0.3 mu=0.02": {"algorithm": {"name": "ccpgd", "lam": 0.3, "mu": 0.02}},
    "topk 1% (no error feedback)": {
        "algorithm": {"name": "fedavg"},
        "compression": {"codec": "topk", "k": 0.01, "error_feedback": False},
    },
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--settings", default="1x1,4x5", help="batch x local steps, comma-separated")
    ap.add_argument("--out", type=Path, default=Path("runs/privacy-audit/inversion_table.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    results: list[dict[str, Any]] = []
    for setting in args.settings.split(","):
        batch, steps = (int(v) for v in setting.split("x"))
        for label, extra in ROWS.items():
            cfg = parse_config(
                {
                    "name": "inversion-table",
                    "seed": 0,
                    "data": DATA,
                    "model": {"name": "cnn"},
                    "training": {"rounds": 20, "local_epochs": 2, "batch_size": 32, "lr": 0.05},
                    **extra,
                }
            )
            prep = PreparedFederation.build(cfg)
            settings = InversionAuditSettings(
                images=args.images,
                batch_size=batch,
                local_steps=steps,
                attack=InversionSettings(iterations=args.iterations),
            )
            t0 = time.perf_counter()
            audit = run_inversion_audit(cfg, prep, "site-00", prep.initial_weights, settings)
            s = audit.summary()
            row = {
                "defence": label,
                "batch": batch,
                "local_steps": steps,
                "psnr_mean": s["psnr_mean"],
                "ssim_mean": s["ssim_mean"],
                "baseline_psnr_mean": s["baseline_psnr_mean"],
                "cosine_mean": s["cosine_mean"],
                "per_image_psnr": [round(p["psnr"], 2) for p in s["per_image"]],
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            results.append(row)
            print(
                f"{label:30s} batch {batch} steps {steps}: PSNR {row['psnr_mean']:.2f} dB "
                f"SSIM {row['ssim_mean']:.3f} (mean-image guess {row['baseline_psnr_mean']:.2f} "
                f"dB) cos {row['cosine_mean']:.3f}  [{row['wall_s']} s]",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
