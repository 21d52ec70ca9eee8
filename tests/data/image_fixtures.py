"""Small image folders and ``data.images`` sections for the image-folder tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from medsilo.data.image_config import ImageSourceConfig


def write_png(path: Path, pixels: NDArray[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def image_section(sites: dict[str, Path], tmp: Path, **kw: Any) -> ImageSourceConfig:
    raw: dict[str, Any] = {
        "sites": [{"name": name, "folder": folder} for name, folder in sites.items()],
        "task": "binary",
        "classes": ["negative", "positive"],
        "image_size": [8, 8],
        "report_dir": tmp / "reports",
    }
    return ImageSourceConfig.model_validate(raw | kw)


def gray_site(folder: Path, n: int = 6, size: int = 10, seed: int = 0) -> Path:
    """``n`` 8-bit PNGs ``img_i.png`` (labels alternate 0/1) and their labels.csv."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for i in range(n):
        write_png(folder / f"img_{i}.png", rng.integers(0, 256, (size, size), dtype=np.uint8))
        rows.append([f"img_{i}.png", i % 2])
    write_csv(folder / "labels.csv", ["file", "label"], rows)
    return folder


def striped_site(folder: Path, task: str, n: int = 24, seed: int = 0) -> Path:
    """16x16 PNGs with up to three bright bands (label ``l<j>``: band ``j`` present): a
    multilabel CSV (``file,l0,l1,l2``) or a regression CSV (``file,value``: the bands' count)."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for i in range(n):
        image = rng.integers(0, 60, (16, 16)).astype(np.uint8)
        bands = rng.integers(0, 2, 3)
        for j in np.flatnonzero(bands):
            image[4 * j : 4 * j + 3, :] += 150
        write_png(folder / f"i{i}.png", image)
        labels = bands.tolist() if task == "multilabel" else [float(bands.sum())]
        rows.append([f"i{i}.png", *labels])
    header = ["file", "l0", "l1", "l2"] if task == "multilabel" else ["file", "value"]
    write_csv(folder / "labels.csv", header, rows)
    return folder
