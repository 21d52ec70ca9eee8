"""Write three small hospital image folders for examples/bring-your-own/config.yaml.

Each hospital gets ``images/img_NNN.png`` (8-bit grayscale, a class-dependent pattern under
noise: ``positive`` a bright centre square, ``negative`` a bright top bar; each hospital's
images a different size) and ``labels.csv`` with the columns ``file,label``. Everything is
generated from a seed; nothing is downloaded. hospital_c also lists ``images/broken.png``,
which is not an image, so the run's ingestion report has something to show.

    .venv/bin/python examples/bring-your-own/make_images.py   # into examples/bring-your-own/sites/
    .venv/bin/python examples/bring-your-own/make_images.py --out DIR --per-site 100 --seed 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medsilo.data.synthetic_sites import write_image_sites

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "sites", help="folder to write into")
    parser.add_argument("--per-site", type=int, default=60, help="images per hospital")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for site, folder in write_image_sites(args.out, per_site=args.per_site, seed=args.seed).items():
        print(f"{site}: {folder}")


if __name__ == "__main__":
    main()
