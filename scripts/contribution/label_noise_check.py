"""Does each contribution method single out a site that trains on pure label noise?

Synthetic 4-site federations (5 seeds x noisy site h0 or h2 = 10 federations), FedAvg with a
logistic model, 4 rounds x 15 local steps; prints, per metric and method, in how many of the
10 the noisy site gets the lowest score and in how many its score is negative. Run:

    OMP_NUM_THREADS=1 .venv/bin/python scripts/contribution/label_noise_check.py
"""

from __future__ import annotations

import numpy as np

from medsilo.config import parse_config
from medsilo.contribution.scores import contribution_scores
from medsilo.data.base import ArrayData, FederatedData, SiteData


def federation(
    seed: int, noisy: str, num_sites: int = 4, n: int = 200, d: int = 5
) -> FederatedData:
    """Shifted Gaussian features, a shared linear labelling rule, one site with random labels."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=(d, 2))
    sites = []
    for i in range(num_sites):
        x = (rng.normal(size=(n, d)) + rng.normal(size=d) * (i + 1) / num_sites).astype(np.float32)
        y = (x @ w_true + rng.normal(scale=0.3, size=(n, 2))).argmax(axis=1).astype(np.int64)
        cut = int(0.75 * n)
        train_y = y[:cut] if f"h{i}" != noisy else rng.integers(0, 2, size=cut).astype(np.int64)
        sites.append(SiteData(f"h{i}", ArrayData(x[:cut], train_y), ArrayData(x[cut:], y[cut:])))
    return FederatedData("synthetic", sites, ArrayData.concat([s.test for s in sites]), 2, "binary")


CONFIG = parse_config(
    {
        "name": "label-noise",
        "seed": 0,
        "data": {"dataset": "heart_disease", "partition": "natural"},  # replaced by `fed`
        "model": {"name": "logistic"},
        "algorithm": {"name": "fedavg"},
        "training": {"rounds": 4, "local_steps": 15, "batch_size": 16, "lr": 0.1},
    }
)


def main() -> None:
    cases = [(seed, noisy) for seed in range(5) for noisy in ("h0", "h2")]
    for metric in ("neg_loss", "accuracy"):
        lowest = {"loo": 0, "shapley": 0}
        negative = {"loo": 0, "shapley": 0}
        for seed, noisy in cases:
            s = contribution_scores(CONFIG, "both", metric, fed=federation(seed, noisy))
            per_method = {
                "loo": {k: v["score"] for k, v in s["loo"].items()},
                "shapley": s["shapley"]["values"],
            }
            for method, values in per_method.items():
                lowest[method] += min(values, key=values.__getitem__) == noisy
                negative[method] += values[noisy] < 0
        for method in ("loo", "shapley"):
            print(
                f"{metric:9s} {method:8s} noisy site lowest {lowest[method]}/{len(cases)}, "
                f"negative {negative[method]}/{len(cases)}"
            )


if __name__ == "__main__":
    main()
