"""Decode one DICOM file into the model's input: rescale, window, resize, normalise.

The pipeline, per file:

1. ``pydicom.dcmread``; the file must hold ``PixelData`` with a single 2-D grayscale frame
   (PhotometricInterpretation MONOCHROME1 or MONOCHROME2).
2. Modality LUT: ``v = raw * RescaleSlope + RescaleIntercept`` (1 and 0 when absent), e.g.
   Hounsfield units for CT.
3. Window to ``[0, 1]``: ``x = clip((v - (c - w/2)) / w, 0, 1)`` with ``c, w`` from the file's
   WindowCenter/WindowWidth (first value if several; the image's min-max when absent),
   from the config's fixed window, or the image's min-max. MONOCHROME1 is inverted
   (``1 - x``) so that bright means dense for every file. (The simple linear window is used,
   not DICOM's ``c - 0.5, w - 1`` variant; the difference is below one grey level.)
4. Resize to ``image_size x image_size`` with bilinear interpolation (antialiased when
   shrinking), ``torch.nn.functional.interpolate``.
5. Normalise: ``(x - normalize_mean) / normalize_std`` (defaults 0.5, 0.5 give [-1, 1]).

A file that cannot be used comes back as a reason string, never as an exception: corrupt
files are to be listed in the site's ingestion report, not to stop a federation. PNG and JPEG
images are recognised by their signature and told how to become usable (``dataset: images``,
or converted to DICOM). ``dataset: images`` decodes its DICOM files here too (its own
:class:`DicomDecoding` settings, no normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from medsilo.data.sources import WindowConfig

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
#: Leading bytes of image formats a site is likely to drop into its folder instead of DICOM.
IMAGE_SIGNATURES: dict[str, bytes] = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}


class DicomDecoding(Protocol):
    """The settings :func:`decode_file` reads: ``data.dicom``'s (:class:`DicomSourceConfig`)
    or those ``dataset: images`` decodes its DICOM files with (no normalisation there)."""

    @property
    def image_size(self) -> int: ...

    @property
    def window(self) -> Literal["file", "minmax"] | WindowConfig: ...

    @property
    def normalize_mean(self) -> float: ...

    @property
    def normalize_std(self) -> float: ...


@dataclass(frozen=True)
class DecodedImage:
    pixels: NDArray[np.float32]  # (image_size, image_size)
    modality: str
    sop_instance_uid: str
    original_shape: tuple[int, int]


def _first(value: Any) -> float:
    """WindowCenter/Width may be multi-valued (several presets): the first is the default."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0]
    return float(value)


def _window(values: NDArray[np.float64], ds: Any, cfg: DicomDecoding) -> NDArray[np.float64]:
    window = cfg.window
    lo = hi = 0.0
    if isinstance(window, WindowConfig):
        lo, hi = window.center - window.width / 2, window.center + window.width / 2
    elif window == "file" and "WindowCenter" in ds and "WindowWidth" in ds:
        c, w = _first(ds.WindowCenter), _first(ds.WindowWidth)
        if w > 0:
            lo, hi = c - w / 2, c + w / 2
    if hi <= lo:  # minmax, or a file without a usable window
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            return np.zeros_like(values)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def resize(image: NDArray[np.float64], size: int) -> NDArray[np.float32]:
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    shrinking = t.shape[-1] > size or t.shape[-2] > size
    out = F.interpolate(
        t, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
    )
    return out[0, 0].numpy()


def _other_image(path: Path) -> str | None:
    """How to use a PNG/JPEG file found among the DICOM files, or None for anything else."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    for kind, signature in IMAGE_SIGNATURES.items():
        if head.startswith(signature):
            return (
                f"a {kind} image, not DICOM: dataset dicom reads only DICOM files; use dataset "
                "images for a folder of PNG/JPEG images (docs/bring-your-own.md), or convert it "
                "to a grayscale DICOM file (e.g. with dcmtk's img2dcm or pydicom)"
            )
    return None


def decode_file(path: Path, cfg: DicomDecoding) -> DecodedImage | str:
    """The preprocessed image, or why the file cannot be used."""
    import pydicom  # deferred: only DICOM federations need it

    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises many types on corrupt input; all mean "unusable"
        return _other_image(path) or f"not a readable DICOM file ({type(err).__name__}: {err})"
    if "PixelData" not in ds:
        return "no pixel data (PixelData element missing)"
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in GRAYSCALE:
        return f"PhotometricInterpretation {photometric!r}: only grayscale {GRAYSCALE} is supported"
    try:
        raw = np.asarray(ds.pixel_array)
    except Exception as err:  # truncated pixel data, unsupported compression, ...
        return f"pixel data cannot be decoded ({type(err).__name__}: {err})"
    if raw.ndim != 2:
        return f"pixel array has shape {raw.shape}; expected one 2-D grayscale frame"
    if min(raw.shape) < 2:
        return f"image of shape {raw.shape} is too small"
    try:
        slope = float(ds.get("RescaleSlope", 1.0))
        intercept = float(ds.get("RescaleIntercept", 0.0))
    except (TypeError, ValueError) as err:
        return f"invalid RescaleSlope/RescaleIntercept ({err})"
    values = raw.astype(np.float64) * slope + intercept
    try:
        x = _window(values, ds, cfg)
    except (TypeError, ValueError, IndexError) as err:
        return f"invalid WindowCenter/WindowWidth ({err})"
    if photometric == "MONOCHROME1":
        x = 1.0 - x
    pixels = (resize(x, cfg.image_size) - cfg.normalize_mean) / cfg.normalize_std
    return DecodedImage(
        pixels=pixels.astype(np.float32),
        modality=str(ds.get("Modality", "")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        original_shape=(int(raw.shape[0]), int(raw.shape[1])),
    )
