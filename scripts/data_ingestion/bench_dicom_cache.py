"""DICOM ingestion: first load (decode) vs second load (cache hit), side by side in one run.

Usage: .venv/bin/python scripts/data_ingestion/bench_dicom_cache.py [--files 200] [--size 128]
Writes generated files to a temporary folder only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medsilo.data.dicom_site import ingest_site
from medsilo.data.sources import DicomSourceConfig
from medsilo.data.synthetic_sites import write_dicom_sites


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, labels = write_dicom_sites(root / "d", 1, args.files, args.size)["site_0"]
        cfg = DicomSourceConfig.model_validate(
            {
                "sites": [{"name": "s", "folder": folder, "labels": labels}],
                "classes": ["negative", "positive"],
                "image_size": args.image_size,
                "cache_dir": root / "cache",
            }
        )
        t0 = time.perf_counter()
        ingest_site(cfg.sites[0], cfg)
        t1 = time.perf_counter()
        _, report = ingest_site(cfg.sites[0], cfg)
        t2 = time.perf_counter()
    print(
        f"{args.files} files {args.size}x{args.size} -> {args.image_size}x{args.image_size}: "
        f"decode {t1 - t0:.3f} s, cache hit {t2 - t1:.3f} s ({(t1 - t0) / (t2 - t1):.1f}x), "
        f"from_cache={report.from_cache}"
    )


if __name__ == "__main__":
    main()
