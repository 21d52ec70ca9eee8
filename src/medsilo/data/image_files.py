"""Reading one image, volume or mask file: PNG/JPEG (Pillow), NIfTI (nibabel), DICOM.

Two levels, so that a site is checked without holding its pixels: :func:`probe` opens a file
and returns its spatial shape (Pillow and nibabel read only the header; a DICOM file goes
through the DICOM pipeline, :func:`medsilo.data.dicom.decode_file`, whose checks say why a
file is unusable, and its pixels are dropped), and :func:`read_image` / :func:`read_mask`
read the pixels when an item is needed. A file that cannot be used gives a reason string
(listed in the site's ingestion report), never an exception.

Images come back as ``(C, *spatial)`` float arrays at their own size, in ``[0, 1]`` when
intensity scaling applies: 8-bit and 16-bit files by their range (255, 65535), DICOM by the
window of the DICOM pipeline, anything else (NIfTI, float images) by its own min-max.
NIfTI arrays keep nibabel's axis order; trailing axes of size 1 are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from medsilo.data.dicom import DecodedImage, decode_file
from medsilo.data.sources import WindowConfig

FileKind = Literal["pillow", "nifti", "dicom"]
SUFFIXES: dict[str, FileKind] = {
    ".png": "pillow",
    ".jpg": "pillow",
    ".jpeg": "pillow",
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".dcm": "dicom",
}
#: Pillow modes read as one channel at their own depth (others are converted to L or RGB).
GRAY_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F")


def file_kind(path: Path) -> FileKind | None:
    """The reader of ``path`` by its suffix (``.nii.gz`` included), None if unknown."""
    name = path.name.lower()
    for suffix, kind in sorted(SUFFIXES.items(), key=lambda s: -len(s[0])):
        if name.endswith(suffix):
            return kind
    return None


def unknown_format(path: Path) -> str:
    return f"unknown image format {path.suffix or '(no suffix)'!r}: use {', '.join(SUFFIXES)} files"


@dataclass(frozen=True)
class DicomReading:
    """How ``dataset: images`` decodes a DICOM file: the DICOM pipeline's window and resize,
    no normalisation (intensity scaling comes after, as for every format)."""

    image_size: int
    window: Literal["file", "minmax"] | WindowConfig = "file"
    normalize_mean: float = 0.0
    normalize_std: float = 1.0


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _shape_problem(shape: tuple[int, ...], dims: int) -> str | None:
    if len(shape) != dims:
        return f"has {len(shape)} dimension(s) (shape {shape}) but image_size has {dims}"
    if min(shape) < 2:
        return f"shape {shape} is too small"
    return None


def probe(path: Path, dims: int, dicom: DicomReading) -> tuple[int, ...] | str:
    """The spatial shape of image ``path`` (``dims`` axes), or why it cannot be used."""
    kind = file_kind(path)
    if not path.is_file():
        return "listed in the labels CSV but no such file"
    try:
        if kind == "pillow":
            from PIL import Image

            with Image.open(path) as im:
                shape: tuple[int, ...] = (int(im.size[1]), int(im.size[0]))
        elif kind == "nifti":
            import nibabel as nib

            shape = _squeezed(tuple(int(s) for s in nib.load(path).shape))  # type: ignore[attr-defined]
        elif kind == "dicom":
            decoded = decode_file(path, dicom)
            if isinstance(decoded, str):
                return decoded
            shape = decoded.original_shape
        else:
            return unknown_format(path)
    except Exception as err:  # each library raises its own types on corrupt input
        return f"not a readable {kind} file ({type(err).__name__}: {err})"
    return _shape_problem(shape, dims) or shape


def _scaled(array: NDArray[Any]) -> NDArray[np.float32]:
    values = array.astype(np.float32)
    if array.dtype == np.uint8:
        return values / np.float32(255.0)
    if array.dtype == np.uint16:
        return values / np.float32(65535.0)
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def read_image(path: Path, channels: int, dicom: DicomReading) -> NDArray[np.float32]:
    """The pixels of ``path`` as ``(C, *spatial)`` in ``[0, 1]``, C = ``channels``.

    Raises ``OSError`` or ``ValueError`` if the file changed since it was probed."""
    kind = file_kind(path)
    if kind == "pillow":
        from PIL import Image

        with Image.open(path) as im:
            if channels == 3 and im.mode not in GRAY_MODES[1:]:
                pixels = np.moveaxis(np.asarray(im.convert("RGB")), -1, 0)
            else:
                pixels = np.asarray(im if im.mode in GRAY_MODES else im.convert("L"))[None]
        image = _scaled(pixels)
    elif kind == "nifti":
        image = _scaled(_nifti_array(path))[None]
    elif kind == "dicom":
        decoded: DecodedImage | str = decode_file(path, dicom)
        if isinstance(decoded, str):
            raise ValueError(decoded)
        image = decoded.pixels.astype(np.float32)[None]
    else:
        raise ValueError(unknown_format(path))
    if image.shape[0] != channels:
        image = np.repeat(image.mean(axis=0, keepdims=True), channels, axis=0)
    return image


def _nifti_array(path: Path) -> NDArray[np.float32]:
    import nibabel as nib

    data = np.asarray(nib.load(path).get_fdata(dtype=np.float32))  # type: ignore[attr-defined]
    return data.reshape(_squeezed(data.shape))


def read_mask(path: Path) -> NDArray[np.int64] | str:
    """The integer label map of mask ``path`` (spatial axes only), or why it is unusable."""
    kind = file_kind(path)
    if not path.is_file():
        return "no such mask file"
    try:
        if kind == "pillow":
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                    return f"a mask must be one channel of class indices, got Pillow mode {im.mode}"
                return np.asarray(im).astype(np.int64)
        elif kind == "nifti":
            values = _nifti_array(path)
        else:
            return f"masks are PNG or NIfTI files, not {path.name!r}"
    except Exception as err:  # each library raises its own types on corrupt input
        return f"not a readable mask ({type(err).__name__}: {err})"
    rounded = np.rint(values)
    if not np.array_equal(rounded, values):
        return "mask values must be whole class indices"
    return rounded.astype(np.int64)
