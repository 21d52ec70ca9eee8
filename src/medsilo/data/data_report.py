"""A site's privacy-safe data report: counts, label balance and feature summaries under
epsilon-differential privacy, so the coordinator sees how sites differ without seeing rows.

Mechanism: Laplace, pure epsilon-DP, neighbouring datasets differ by adding or removing one
patient row. The report is a fixed list of ``k`` queries, each answered with Laplace noise of
scale ``sensitivity / (epsilon / k)``; by sequential composition the whole report is
epsilon-DP (the budget is split equally; each query's epsilon and scale are in the JSON).

Queries, with their L1 sensitivity (one row changes them by at most this much):
- label histogram (one count per class): 1 (a row sits in exactly one bin);
- per numeric or binary column: the number of observed values (1); the sum of
  ``d = clip(x, lo, hi) - mid`` (``w / 2``); the sum of ``d^2`` (``(w / 2)^2``), with
  ``[lo, hi]`` the schema's allowed range ([0, 1] for binary), ``mid = (lo + hi) / 2`` and
  ``w = hi - lo``. Clipping to the public range is what bounds the sensitivity; centring on
  the midpoint halves it (``|d| <= w / 2``) and keeps ``sum d^2`` close to ``n * variance``,
  so the variance is not a small difference of two large noisy numbers;
- per categorical column: a histogram over the schema codes plus a "missing" bin (1).

So ``k = 1 + 3 * (numeric + binary columns) + categorical columns``. Released values are
post-processed (no privacy cost): ``count = sum of label counts``, ``mean = mid + sum / observed``
clipped to the range, ``std = sqrt(sumsq / observed - (mean - mid)^2)`` clipped to
``[0, w / 2]``, missing share ``= 1 - observed / count`` clipped to [0, 1].

Small sites and many columns mean noisy summaries (``k`` grows with the schema): every released
number carries the noise scale it was answered with, so the coordinator can tell signal from
noise. ``seed`` makes a report reproducible for tests; a real release must leave it unset
(fresh OS entropy), as anyone who knows the seed can subtract the noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from medsilo.data.schema import FederationSchema
from medsilo.data.site_validation import SiteCheck

MECHANISM = "laplace"
REPORT_VERSION = 1


def query_count(schema: FederationSchema) -> int:
    numeric = sum(c.type != "categorical" for c in schema.columns)
    categorical = len(schema.columns) - numeric
    return 1 + 3 * numeric + categorical


class _Releaser:
    def __init__(self, epsilon: float, queries: int, seed: int | None) -> None:
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.eps_q = epsilon / queries
        self.rng = np.random.default_rng(seed)

    def release(self, value: NDArray[np.float64] | float, sensitivity: float) -> tuple[Any, float]:
        scale = sensitivity / self.eps_q
        noisy = np.asarray(value, dtype=np.float64) + self.rng.laplace(0.0, scale, np.shape(value))
        return noisy, scale


def private_report(
    schema: FederationSchema, check: SiteCheck, epsilon: float = 1.0, seed: int | None = None
) -> dict[str, Any]:
    """The epsilon-DP report of one validated site (``check.ok`` must hold)."""
    if check.values is None or check.labels is None:
        raise ValueError(f"site {check.site!r} failed validation; fix it before reporting")
    k = query_count(schema)
    rel = _Releaser(epsilon, k, seed)
    y = check.labels
    counts, count_scale = rel.release(
        np.bincount(y, minlength=len(schema.label.classes)).astype(np.float64), 1.0
    )
    counts = np.maximum(counts, 0.0)
    n = float(counts.sum())
    total = max(n, 1.0)
    features: dict[str, Any] = {}
    for col in schema.columns:
        v = check.values[col.name]
        seen = v[~np.isnan(v)]
        if col.type == "categorical":
            assert col.codes is not None
            hist = np.append(
                np.bincount(seen.astype(np.int64), minlength=len(col.codes)).astype(np.float64),
                float(len(v) - len(seen)),
            )
            noisy, scale = rel.release(hist, 1.0)
            noisy = np.maximum(noisy, 0.0)
            share = noisy / max(float(noisy.sum()), 1.0)
            features[col.name] = {
                "type": col.type,
                "distribution": dict(zip(col.codes, share[:-1].round(4).tolist(), strict=True)),
                "missing_share": round(float(share[-1]), 4),
                "noise_scale": scale,
            }
            continue
        lo, hi = col.bounds
        half = (hi - lo) / 2
        mid = lo + half
        centred = np.clip(seen, lo, hi) - mid
        observed, s_count = rel.release(float(len(seen)), 1.0)
        total_sum, s_sum = rel.release(float(centred.sum()), half)
        total_sq, s_sq = rel.release(float((centred**2).sum()), half**2)
        obs = max(float(observed), 1.0)
        mean_d = float(np.clip(total_sum / obs, -half, half))
        var = float(total_sq) / obs - mean_d**2
        features[col.name] = {
            "type": col.type,
            "unit": col.unit,
            "range": [lo, hi],
            "mean": round(mid + mean_d, 4),
            "std": round(float(np.clip(math.sqrt(max(var, 0.0)), 0.0, half)), 4),
            "missing_share": round(float(np.clip(1.0 - float(observed) / total, 0.0, 1.0)), 4),
            "noise_scale": {"observed": s_count, "sum": s_sum, "sum_of_squares": s_sq},
        }
    return {
        "report_version": REPORT_VERSION,
        "site": check.site,
        "schema": schema.name,
        "schema_version": schema.version,
        "privacy": {
            "mechanism": MECHANISM,
            "epsilon": epsilon,
            "queries": k,
            "epsilon_per_query": epsilon / k,
            "neighbouring": "add or remove one row",
            "seeded": seed is not None,
        },
        "count": round(n, 2),
        "label_counts": dict(zip(schema.label.classes, counts.round(2).tolist(), strict=True)),
        "label_distribution": dict(
            zip(schema.label.classes, (counts / total).round(4).tolist(), strict=True)
        ),
        "label_noise_scale": count_scale,
        "features": features,
    }
