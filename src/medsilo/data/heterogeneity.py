"""The coordinator's heterogeneity (non-IID) view, built only from sites' DP data reports.

Everything here is post-processing of already-private numbers, so it costs no privacy.

- Label skew: Jensen-Shannon divergence (base 2, in [0, 1]) between each site's label
  distribution and the federation's, the latter being the count-weighted mixture of the sites'.
- Feature shift, numeric: standardised mean difference ``(mean_site - mean_fed) / std_fed``,
  with the federation's mean and std combined from the sites' (count-weighted; law of total
  variance). |SMD| > 0.2 is conventionally a small, > 0.5 a medium shift.
- Feature shift, categorical: Jensen-Shannon divergence of each site's code distribution to
  the federation's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray


def js_divergence(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1.0 / len(p))
    q = q / q.sum() if q.sum() > 0 else np.full_like(q, 1.0 / len(q))
    m = (p + q) / 2

    def kl(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


def _mixture(dists: list[NDArray[np.float64]], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    w = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1 / len(weights))
    return np.asarray(np.stack(dists).T @ w, dtype=np.float64)


def heterogeneity(reports: list[dict[str, Any]]) -> dict[str, Any]:
    if not reports:
        raise ValueError("no site reports given")
    schemas = {(r["schema"], r["schema_version"]) for r in reports}
    if len(schemas) != 1:
        raise ValueError(f"reports follow different schemas {sorted(schemas)}; cannot combine")
    sites = [r["site"] for r in reports]
    counts = np.array([max(float(r["count"]), 0.0) for r in reports])
    classes = list(reports[0]["label_distribution"])
    label = [np.array([r["label_distribution"][c] for c in classes]) for r in reports]
    pooled_label = _mixture(label, counts)
    out: dict[str, Any] = {
        "schema": reports[0]["schema"],
        "sites": sites,
        "counts": dict(zip(sites, counts.round(1).tolist(), strict=True)),
        "epsilon": {r["site"]: r["privacy"]["epsilon"] for r in reports},
        "label": {
            "federation": dict(zip(classes, pooled_label.round(4).tolist(), strict=True)),
            "js_divergence": {
                s: round(js_divergence(d, pooled_label), 4)
                for s, d in zip(sites, label, strict=True)
            },
        },
        "features": {},
    }
    for name, first in reports[0]["features"].items():
        feats = [r["features"][name] for r in reports]
        if first["type"] == "categorical":
            codes = list(first["distribution"])
            dists = [np.array([f["distribution"][c] for c in codes]) for f in feats]
            pooled = _mixture(dists, counts)
            out["features"][name] = {
                "type": "categorical",
                "js_divergence": {
                    s: round(js_divergence(d, pooled), 4) for s, d in zip(sites, dists, strict=True)
                },
            }
            continue
        means = np.array([f["mean"] for f in feats])
        stds = np.array([f["std"] for f in feats])
        w = counts / counts.sum() if counts.sum() > 0 else np.full(len(counts), 1 / len(counts))
        mean = float(np.sum(w * means))
        var = float(np.sum(w * (stds**2 + (means - mean) ** 2)))
        std = math.sqrt(var) if var > 0 else 1.0
        out["features"][name] = {
            "type": first["type"],
            "unit": first.get("unit"),
            "federation_mean": round(mean, 4),
            "federation_std": round(std, 4),
            "site_means": dict(zip(sites, means.round(4).tolist(), strict=True)),
            "smd": {
                s: round((m - mean) / std, 3) for s, m in zip(sites, means.tolist(), strict=True)
            },
        }
    return out
