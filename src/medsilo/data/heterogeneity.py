"""The coordinator's heterogeneity (non-IID) view, built only from sites' DP data reports.

Everything here is post-processing of already-private numbers, so it costs no privacy.

- Label skew: Jensen-Shannon divergence (base 2, in [0, 1]) between each site's label
  distribution and the federation's, the latter being the count-weighted mixture of the sites'.
- Feature shift, numeric: standardised mean difference ``(mean_site - mean_fed) / std_fed``,
  with the federation's mean and std combined from the sites' (count-weighted; law of total
  variance). |SMD| > 0.2 is conventionally a small, > 0.5 a medium shift.
- Feature shift, categorical: Jensen-Shannon divergence of each site's code distribution to
  the federation's.
- A column a site does not export (all values missing) still gets a released mean, std or
  distribution: pure noise around an empty sum. Such a site is listed as ``not_exported`` for
  the column, gets ``None`` instead of an SMD or JS divergence, and is left out of the
  federation's mean, std and mixture, which are weighted by each site's observed values
  (``count * (1 - missing_share)``) rather than its rows. "Not exported" means the released
  estimate of observed values is within ``EMPTY_NOISE_STDS`` (3) noise standard deviations of
  what an empty column's noise gives (:func:`is_exported`); a column with so few values that
  they cannot be told from noise is shown the same, its statistics being noise as well.
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


EMPTY_NOISE_STDS = 3.0


def observed_values(feature: dict[str, Any], count: float) -> float:
    """The released estimate of how many values a site has for a column."""
    return max(count * (1.0 - float(feature.get("missing_share", 0.0))), 0.0)


def is_exported(feature: dict[str, Any], count: float) -> bool:
    """Whether the site's values for a column can be told from the noise of an empty one.

    For an empty column the observed-value estimate is noise only. Numeric: one released
    count ``0 + Lap(b)``, std ``sqrt(2) b``. Categorical: the code bins, each ``Lap(b)``
    clipped at 0 (mean ``b / 2``, variance ``3 b^2 / 4``), summed over the codes. A column
    is exported when its estimate is above that noise's mean plus ``EMPTY_NOISE_STDS`` std."""
    scale = feature.get("noise_scale")
    if isinstance(scale, dict):  # numeric or binary
        b = float(scale["observed"])
        mean, std = 0.0, math.sqrt(2.0) * b
    else:
        b, codes = float(scale or 0.0), max(len(feature.get("distribution", {})), 1)
        mean, std = codes * b / 2, math.sqrt(0.75 * codes) * b
    return observed_values(feature, count) > mean + EMPTY_NOISE_STDS * std


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
        exported = [is_exported(f, c) for f, c in zip(feats, counts.tolist(), strict=True)]
        missing = [s for s, e in zip(sites, exported, strict=True) if not e]
        observed = np.array(
            [
                observed_values(f, float(c)) * e
                for f, c, e in zip(feats, counts, exported, strict=True)
            ]
        )
        if not any(exported):
            statistic = "js_divergence" if first["type"] == "categorical" else "smd"
            nothing = {"not_exported": missing, statistic: dict.fromkeys(sites)}
            out["features"][name] = {"type": first["type"], **nothing}
            continue
        if first["type"] == "categorical":
            codes = list(first["distribution"])
            dists = [np.array([f["distribution"][c] for c in codes]) for f in feats]
            pooled = _mixture(dists, observed)
            out["features"][name] = {
                "type": "categorical",
                "not_exported": missing,
                "js_divergence": {
                    s: round(js_divergence(d, pooled), 4) if e else None
                    for s, d, e in zip(sites, dists, exported, strict=True)
                },
            }
            continue
        means = np.array([f["mean"] for f in feats])
        stds = np.array([f["std"] for f in feats])
        w = observed / observed.sum()  # > 0: an exported column has observed values
        mean = float(np.sum(w * means))
        var = float(np.sum(w * (stds**2 + (means - mean) ** 2)))
        std = math.sqrt(var) if var > 0 else 1.0
        out["features"][name] = {
            "type": first["type"],
            "unit": first.get("unit"),
            "not_exported": missing,
            "federation_mean": round(mean, 4),
            "federation_std": round(std, 4),
            "site_means": {
                s: round(m, 4) if e else None
                for s, m, e in zip(sites, means.tolist(), exported, strict=True)
            },
            "smd": {
                s: round((m - mean) / std, 3) if e else None
                for s, m, e in zip(sites, means.tolist(), exported, strict=True)
            },
        }
    return out
