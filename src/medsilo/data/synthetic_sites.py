"""Synthetic hospital exports for tests and demos: EHR CSVs in three local dialects, and DICOM
folders. Nothing is downloaded; every file is generated from a seed.

The CSVs follow ``examples/tabular/schema.yaml`` through ``mapping_{a,b,c}.yaml``: the same
patients' quantities are written with each hospital's own column names, units and codes
(hospital B: cholesterol in mmol/L, weight in lb, M/F and yes/no codes; hospital C: blood
pressure in kPa, numeric chest-pain codes, no smoking column). The label is drawn from a
logistic model of the canonical values, so a model trained after mapping can learn it and a
model fed unconverted units cannot.

The DICOM sites hold 2-class images with a visible pattern (class 1: a bright square in the
centre; class 0: a bright bar at the top), written with pydicom as MONOCHROME2 16-bit
ExplicitVRLittleEndian files with rescale and window attributes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CHEST_PAIN = ("typical", "atypical", "non_anginal", "asymptomatic")
_CP_B = {"typical": "TA", "atypical": "ATA", "non_anginal": "NAP", "asymptomatic": "ASY"}
_CP_EFFECT = np.array([-0.8, -0.3, 0.2, 1.0])
KPA_PER_MMHG = 1.0 / 7.50062
LB_PER_KG = 1.0 / 0.45359237
CHOLESTEROL_MG_PER_MMOL = 38.67


def cardio_patients(n: int, seed: int, age_shift: float = 0.0) -> dict[str, NDArray[np.float64]]:
    """Canonical (schema-unit) values and the label for ``n`` patients."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(55 + age_shift, 10, n), 20, 95)
    chol = np.clip(rng.normal(215, 40, n), 100, 420)
    weight = np.clip(rng.normal(80, 14, n), 40, 200)
    sbp = np.clip(rng.normal(132, 16, n), 85, 230)
    sex = (rng.random(n) < 0.55).astype(np.float64)
    cp = rng.integers(0, 4, n).astype(np.float64)
    smoker = (rng.random(n) < 0.3).astype(np.float64)
    risk = (
        0.08 * (age - 55)
        + 0.03 * (chol - 215)
        + 0.05 * (sbp - 132)
        + 0.8 * (sex - 0.5)
        + 2.0 * _CP_EFFECT[cp.astype(int)]
        + 0.6 * (smoker - 0.3)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-2.0 * risk))).astype(np.float64)
    return {
        "age": age,
        "cholesterol": chol,
        "weight": weight,
        "systolic_bp": sbp,
        "sex": sex,
        "chest_pain": cp,
        "smoker": smoker,
        "disease": label,
    }


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_cardio_sites(folder: Path, n_per_site: int = 200, seed: int = 0) -> dict[str, Path]:
    """hospital_a.csv, hospital_b.csv, hospital_c.csv in their own dialects."""
    out: dict[str, Path] = {}
    p = cardio_patients(n_per_site, seed)
    rows = []
    for i in range(n_per_site):
        chol = "" if i % 29 == 3 else f"{p['cholesterol'][i]:.0f}"  # a few gaps
        smoker = "" if i % 7 == 0 else f"{p['smoker'][i]:.0f}"
        rows.append(
            [
                f"{p['age'][i]:.0f}",
                chol,
                f"{p['weight'][i]:.1f}",
                f"{p['systolic_bp'][i]:.0f}",
                f"{p['sex'][i]:.0f}",
                CHEST_PAIN[int(p["chest_pain"][i])],
                smoker,
                f"{p['disease'][i]:.0f}",
            ]
        )
    out["hospital_a"] = _write(
        folder / "hospital_a.csv",
        ["age", "cholesterol", "weight", "systolic_bp", "sex", "chest_pain", "smoker", "disease"],
        rows,
    )
    p = cardio_patients(n_per_site, seed + 1, age_shift=6.0)
    rows = []
    for i in range(n_per_site):
        rows.append(
            [
                f"{p['age'][i]:.0f}",
                f"{p['cholesterol'][i] / CHOLESTEROL_MG_PER_MMOL:.2f}",
                f"{p['weight'][i] * LB_PER_KG:.1f}",
                f"{p['systolic_bp'][i]:.0f}",
                "M" if p["sex"][i] else "F",
                _CP_B[CHEST_PAIN[int(p["chest_pain"][i])]],
                "yes" if p["disease"][i] else "no",
                f"W{i % 5}",
            ]
        )
    out["hospital_b"] = _write(
        folder / "hospital_b.csv",
        ["patient_age", "chol_mmol", "weight_lb", "sbp", "gender", "cp", "dx", "ward"],
        rows,
    )
    p = cardio_patients(n_per_site, seed + 2, age_shift=-4.0)
    rows = []
    for i in range(n_per_site):
        rows.append(
            [
                f"{p['age'][i]:.0f}",
                f"{p['cholesterol'][i]:.0f}",
                f"{p['weight'][i]:.1f}",
                f"{p['systolic_bp'][i] * KPA_PER_MMHG:.2f}",
                f"{p['sex'][i]:.0f}",
                str(int(p["chest_pain"][i]) + 1),
                f"{p['disease'][i]:.0f}",
            ]
        )
    out["hospital_c"] = _write(
        folder / "hospital_c.csv",
        ["AGE_Y", "CHOL", "WEIGHT_KG", "BP_KPA", "SEX", "CP_CODE", "OUTCOME"],
        rows,
    )
    return out


def pattern_image(label: int, size: int, rng: np.random.Generator) -> NDArray[np.uint16]:
    """Raw 16-bit pixels: noise plus a bright centre square (1) or top bar (0)."""
    img = rng.normal(400, 60, (size, size))
    q = size // 4
    if label == 1:
        img[q : 3 * q, q : 3 * q] += 900
    else:
        img[:q, :] += 900
    return np.clip(img, 0, 4095).astype(np.uint16)


def write_dicom(
    path: Path,
    pixels: NDArray[np.uint16],
    sop_uid: str,
    modality: str = "CR",
    window: tuple[float, float] | None = (700.0, 1600.0),
) -> Path:
    """One MONOCHROME2 file; stored values map to intensity by slope 1, intercept -100."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleSlope = 1
    ds.RescaleIntercept = -100
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_dicom_sites(
    folder: Path, sites: int = 3, per_site: int = 24, size: int = 48, seed: int = 0
) -> dict[str, tuple[Path, Path]]:
    """``site_k/images/<class>/img_NNN.dcm`` + ``site_k/labels.csv`` (path,label), image sizes
    differing by site (so resizing matters). Returns site -> (folder, labels CSV)."""
    out = {}
    for k in range(sites):
        rng = np.random.default_rng([seed, k])
        root = folder / f"site_{k}"
        rows = []
        side = size + 8 * k
        for i in range(per_site):
            label = i % 2
            rel = f"{'positive' if label else 'negative'}/img_{i:03d}.dcm"
            write_dicom(
                root / "images" / rel,
                pattern_image(label, side, rng),
                f"1.2.826.0.1.3680043.10.543.{k}.{i + 1}",
            )
            rows.append([rel, "positive" if label else "negative"])
        out[f"site_{k}"] = (root / "images", _write(root / "labels.csv", ["path", "label"], rows))
    return out


IMAGE_CLASSES = ("negative", "positive")


def write_image_sites(
    folder: Path, sites: int = 3, per_site: int = 60, size: int = 32, seed: int = 0
) -> dict[str, Path]:
    """``hospital_<a,b,...>/images/img_NNN.png`` + ``labels.csv`` (file,label) per site: 8-bit
    grayscale PNGs with :func:`pattern_image`'s class pattern (class ``positive``: a bright
    centre square; ``negative``: a bright top bar), each site's images a different size (so
    resizing matters). The last site also lists ``images/broken.png``, a file that is not an
    image, to show how the ingestion report lists it. Returns site -> folder."""
    from PIL import Image

    out = {}
    for k in range(sites):
        rng = np.random.default_rng([seed, k])
        root = folder / f"hospital_{chr(ord('a') + k)}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(per_site):
            label = int(rng.integers(0, 2))
            raw = pattern_image(label, size + 8 * k, rng).astype(np.float64)
            pixels = np.clip(raw / 4095.0 * 255.0 * 2.0, 0, 255).astype(np.uint8)
            rel = f"images/img_{i:03d}.png"
            Image.fromarray(pixels).save(root / rel)
            rows.append([rel, IMAGE_CLASSES[label]])
        if k == sites - 1:
            (root / "images" / "broken.png").write_bytes(b"not a PNG: an export that failed\n")
            rows.append(["images/broken.png", IMAGE_CLASSES[1]])
        _write(root / "labels.csv", ["file", "label"], rows)
        out[root.name] = root
    return out
