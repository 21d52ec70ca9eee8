"""Error of the DP data report vs epsilon: site means, label shares and the coordinator's
standardised mean differences, against the noise-free values.

Usage (after `medsilo site demo-data --out runs/site-demo`):
  .venv/bin/python scripts/data_ingestion/dp_report_error.py [--draws 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from medsilo.data.data_report import private_report
from medsilo.data.heterogeneity import heterogeneity
from medsilo.data.schema import load_schema
from medsilo.data.site_mapping import load_mapping
from medsilo.data.site_validation import check_site

EXAMPLES = Path("examples/tabular")
SITES = ("hospital_a", "hospital_b", "hospital_c")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("runs/site-demo/tabular"))
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args()
    schema = load_schema(EXAMPLES / "schema.yaml")
    checks = {
        s: check_site(
            schema, load_mapping(EXAMPLES / f"mapping_{s[-1]}.yaml"), args.data / f"{s}.csv", s
        )
        for s in SITES
    }
    exact = heterogeneity([private_report(schema, checks[s], 1e12, seed=0) for s in SITES])
    smd = exact["features"]["age"]["smd"]
    print(f"noise-free age SMD {smd}")
    for eps in (0.5, 1.0, 4.0, 10.0):
        e_mean, e_label, e_smd = [], [], []
        for d in range(args.draws):
            reps = [
                private_report(schema, checks[s], eps, seed=1000 * d + i)
                for i, s in enumerate(SITES)
            ]
            view = heterogeneity(reps)
            for r in reps:
                c = checks[r["site"]]
                assert c.values is not None and c.labels is not None
                e_mean.append(abs(r["features"]["age"]["mean"] - np.nanmean(c.values["age"])))
                e_label.append(abs(r["label_distribution"]["1"] - c.labels.mean()))
            e_smd += [abs(view["features"]["age"]["smd"][s] - smd[s]) for s in SITES]
        print(
            f"epsilon={eps}: mean |error| age mean {np.mean(e_mean):.2f} years, "
            f"positive share {np.mean(e_label):.3f}, age SMD {np.mean(e_smd):.3f}"
        )


if __name__ == "__main__":
    main()
