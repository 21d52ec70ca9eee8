"""DICOM ingestion: decoding (rescale, window, resize), the ingestion report for unusable
files, the decoded-tensor cache, and a DICOM federation through the in-process engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from medsilo.data import dicom_site
from medsilo.data.base import DataFormatError
from medsilo.data.dicom import DecodedImage, decode_file
from medsilo.data.dicom_site import build_dicom_federation, ingest_site
from medsilo.data.sources import DicomSourceConfig
from medsilo.data.spec import DataConfig
from medsilo.data.synthetic_sites import pattern_image, write_dicom, write_dicom_sites

CLASSES = ["negative", "positive"]


def _cfg(sites: dict[str, tuple[Path, Path]], cache: Path, **kw: Any) -> DicomSourceConfig:
    return DicomSourceConfig.model_validate(
        {
            "sites": [{"name": s, "folder": f, "labels": lab} for s, (f, lab) in sites.items()],
            "classes": CLASSES,
            "image_size": 16,
            "cache_dir": cache,
        }
        | kw
    )


def _decode(path: Path, **kw: Any) -> DecodedImage:
    cfg = _cfg(
        {"s": (path.parent, path)},
        path.parent,
        normalize_mean=0.0,
        normalize_std=1.0,
        image_size=8,
        **kw,
    )
    out = decode_file(path, cfg)
    assert isinstance(out, DecodedImage), out
    return out


def test_rescale_and_file_window(tmp_path: Path) -> None:
    raw = np.arange(64, dtype=np.uint16).reshape(8, 8) * 30  # 0 .. 1890
    img = _decode(write_dicom(tmp_path / "a.dcm", raw, "1.2.3.1", window=(700.0, 1600.0)))
    # v = raw - 100 (intercept); window [700 - 800, 700 + 800] = [-100, 1500] -> x = raw / 1600
    assert np.allclose(img.pixels, np.clip(raw / 1600.0, 0, 1), atol=1e-5)
    assert img.modality == "CR" and img.sop_instance_uid == "1.2.3.1"


def test_config_window_and_minmax(tmp_path: Path) -> None:
    raw = np.arange(64, dtype=np.uint16).reshape(8, 8) * 10
    path = write_dicom(tmp_path / "a.dcm", raw, "1.2.3.2", window=None)
    fixed = _decode(path, window={"center": 100.0, "width": 200.0})
    assert np.allclose(fixed.pixels, np.clip((raw - 100.0) / 200.0, 0, 1), atol=1e-5)
    no_window = _decode(path)  # "file" without a window falls back to min-max
    assert np.allclose(no_window.pixels, raw / 630.0, atol=1e-5)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    import pydicom

    raw = np.arange(64, dtype=np.uint16).reshape(8, 8) * 30
    path = write_dicom(tmp_path / "a.dcm", raw, "1.2.3.3")
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    assert np.allclose(_decode(path).pixels, 1 - np.clip(raw / 1600.0, 0, 1), atol=1e-5)


def test_resize_to_model_input(tmp_path: Path) -> None:
    raw = pattern_image(1, 40, np.random.default_rng(0))
    cfg = _cfg({"s": (tmp_path, tmp_path / "l.csv")}, tmp_path, image_size=16)
    out = decode_file(write_dicom(tmp_path / "a.dcm", raw, "1.2.3.4"), cfg)
    assert isinstance(out, DecodedImage)
    assert out.pixels.shape == (16, 16) and out.original_shape == (40, 40)
    assert out.pixels[8, 8] > out.pixels[0, 8]  # the bright centre square survives


def _site_with_problems(root: Path) -> tuple[Path, Path]:
    """10 good images + every kind of problem the report must list."""
    import pydicom

    folder, rng = root / "images", np.random.default_rng(1)
    rows = ["path,label"]
    for i in range(10):
        write_dicom(folder / f"ok_{i}.dcm", pattern_image(i % 2, 24, rng), f"1.2.9.{i + 1}")
        rows.append(f"ok_{i}.dcm,{CLASSES[i % 2]}")
    (folder / "garbage.dcm").write_bytes(b"this is not a DICOM file" * 20)
    rows.append("garbage.dcm,positive")
    good = (folder / "ok_0.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(good[: len(good) - 600])
    rows.append("truncated.dcm,negative")
    ds = pydicom.dcmread(folder / "ok_1.dcm")
    del ds.PixelData
    ds.save_as(folder / "no_pixels.dcm")
    rows.append("no_pixels.dcm,positive")
    rgb = pydicom.dcmread(folder / "ok_2.dcm")
    rgb.PhotometricInterpretation, rgb.SamplesPerPixel, rgb.PlanarConfiguration = "RGB", 3, 0
    rgb.BitsAllocated, rgb.BitsStored, rgb.HighBit = 8, 8, 7
    rgb.PixelData = bytes(24 * 24 * 3)
    rgb.save_as(folder / "colour.dcm")
    rows.append("colour.dcm,negative")
    frames = pydicom.dcmread(folder / "ok_3.dcm")
    frames.NumberOfFrames = 2
    frames.PixelData = frames.PixelData * 2
    frames.save_as(folder / "two_frames.dcm")
    rows.append("two_frames.dcm,positive")
    write_dicom(folder / "ct.dcm", pattern_image(1, 24, rng), "1.2.9.99", modality="CT")
    rows.append("ct.dcm,positive")
    write_dicom(folder / "sub" / "unlabelled.dcm", pattern_image(0, 24, rng), "1.2.9.98")
    write_dicom(folder / "bad_label.dcm", pattern_image(0, 24, rng), "1.2.9.97")
    rows.append("bad_label.dcm,maybe")
    rows.append("gone.dcm,negative")
    labels = root / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels


def test_ingestion_report_lists_every_unusable_file(tmp_path: Path) -> None:
    folder, labels = _site_with_problems(tmp_path / "site")
    cfg = _cfg({"h1": (folder, labels)}, tmp_path / "cache")
    data, report = ingest_site(cfg.sites[0], cfg)
    assert data.x.shape == (10, 1, 16, 16) and report.usable == 10
    reasons = {r.path: r.reason for r in report.rejected}
    assert set(reasons) == {
        "garbage.dcm",
        "truncated.dcm",
        "no_pixels.dcm",
        "ct.dcm",
        "sub/unlabelled.dcm",
        "bad_label.dcm",
        "gone.dcm",
        "colour.dcm",
        "two_frames.dcm",
    }
    assert reasons["colour.dcm"].startswith("PhotometricInterpretation 'RGB': only grayscale")
    assert reasons["two_frames.dcm"] == (
        "pixel array has shape (2, 24, 24); expected one 2-D grayscale frame"
    )
    assert reasons["garbage.dcm"].startswith("not a readable DICOM file")
    assert "pixel data" in reasons["truncated.dcm"] or "readable" in reasons["truncated.dcm"]
    assert reasons["no_pixels.dcm"] == "no pixel data (PixelData element missing)"
    assert reasons["ct.dcm"] == "modality 'CT' differs from the site's 'CR'"
    assert reasons["sub/unlabelled.dcm"].startswith("no label for this file")
    assert "label 'maybe' is not one of the classes" in reasons["bad_label.dcm"]
    assert reasons["gone.dcm"].startswith("listed in")
    md = (tmp_path / "cache" / "h1" / "ingestion_report.md").read_text()
    assert "`sub/unlabelled.dcm`" in md and "usable images: 10" in md
    assert report.class_counts == {"negative": 5, "positive": 5}


def test_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sites = write_dicom_sites(tmp_path / "d", sites=1, per_site=6, size=20)
    cfg = _cfg(sites, tmp_path / "cache")
    first, rep1 = ingest_site(cfg.sites[0], cfg)
    assert not rep1.from_cache

    def no_decoding(*_: Any) -> None:
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(dicom_site, "decode_file", no_decoding)
    second, rep2 = ingest_site(cfg.sites[0], cfg)
    assert rep2.from_cache and np.array_equal(first.x, second.x)
    assert np.array_equal(first.y, second.y)
    # Other preprocessing settings or a changed file give another key: decoding again.
    with pytest.raises(AssertionError, match="decoded although"):
        ingest_site(cfg.sites[0], cfg.model_copy(update={"image_size": 8}))
    folder = sites["site_0"][0]
    changed = next(folder.rglob("*.dcm"))
    changed.write_bytes(changed.read_bytes() + b"\0\0")
    with pytest.raises(AssertionError, match="decoded although"):
        ingest_site(cfg.sites[0], cfg)


def test_site_without_usable_images_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    (folder / "x.dcm").write_bytes(b"junk")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nx.dcm,positive\n")
    cfg = _cfg({"empty_site": (folder, labels)}, tmp_path / "cache")
    with pytest.raises(DataFormatError, match=r"site 'empty_site': none of the 1 file\(s\)"):
        ingest_site(cfg.sites[0], cfg)


def test_labels_by_sop_instance_uid(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "img"
    for i in range(4):
        write_dicom(folder / f"{i}.dcm", pattern_image(i % 2, 16, rng), f"1.2.7.{i + 1}")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "sop_instance_uid,label\n"
        + "".join(f"1.2.7.{i + 1},{i % 2}\n" for i in range(4))
        + "1.2.7.77,1\n"
    )
    cfg = _cfg({"s": (folder, labels)}, tmp_path / "cache")
    data, report = ingest_site(cfg.sites[0], cfg)
    assert data.y.tolist() == [0, 1, 0, 1]
    assert [r.path for r in report.rejected] == ["1.2.7.77"]


def test_labels_file_needs_its_columns(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("file,diagnosis\n")
    cfg = _cfg({"s": (tmp_path, labels)}, tmp_path / "cache")
    with pytest.raises(DataFormatError, match="needs a header with 'label' and either 'path'"):
        ingest_site(cfg.sites[0], cfg)


def _labelled_site(root: Path, header: str = "path,label") -> tuple[Path, Path, list[str]]:
    """Four good images and the rows of their labels CSV (header given, rows path,label)."""
    folder, rng = root / "img", np.random.default_rng(3)
    rows = []
    for i in range(4):
        write_dicom(folder / f"{i}.dcm", pattern_image(i % 2, 16, rng), f"1.2.8.{i + 1}")
        rows.append(f"{i}.dcm,{CLASSES[i % 2]}")
    labels = root / "labels.csv"
    labels.write_text("\n".join([header, *rows]) + "\n")
    return folder, labels, rows


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01" * 40, b"path,label\x00\x01\x02\n" * 5],
    ids=["not-utf8", "nul-bytes"],
)
def test_binary_labels_file_is_refused_naming_the_file(tmp_path: Path, content: bytes) -> None:
    folder, labels, _ = _labelled_site(tmp_path)
    labels.write_bytes(content)
    cfg = _cfg({"s": (folder, labels)}, tmp_path / "cache")
    with pytest.raises(DataFormatError, match=f"site 's': labels file {labels} "):
        ingest_site(cfg.sites[0], cfg)
    assert not (tmp_path / "cache").exists()  # refused before anything was decoded or written


def test_labels_rows_with_extra_fields_or_repeats_are_refused(tmp_path: Path) -> None:
    folder, labels, rows = _labelled_site(tmp_path)
    rows[1] = "1.dcm,positive,extra"  # line 3
    rows.append("0.dcm,positive")  # line 6 repeats line 2 with another label
    rows.append(",negative")  # line 7: no path
    labels.write_text("\n".join(["path,label", *rows]) + "\n")
    cfg = _cfg({"s": (folder, labels)}, tmp_path / "cache")
    with pytest.raises(DataFormatError) as err:
        ingest_site(cfg.sites[0], cfg)
    assert str(err.value).splitlines() == [
        f"site 's': labels file {labels} has 3 malformed row(s) (quote a field that contains "
        "a comma; list each file once):",
        "  - line 3 has 3 fields, the header 2",
        "  - path '0.dcm' is listed on lines 2 and 6",
        "  - line 7 has an empty 'path'",
    ]


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        ("file_name,diagnosis", {"path_column": "file_name", "label_column": "diagnosis"}),
        ("uid,finding", {"uid_column": "uid", "label_column": "finding"}),
    ],
    ids=["path", "uid"],
)
def test_labels_columns_are_named_in_the_config(
    tmp_path: Path, header: str, columns: dict[str, str]
) -> None:
    folder, labels, rows = _labelled_site(tmp_path, header)
    if "uid_column" in columns:
        rows = [f"1.2.8.{i + 1},{row.split(',')[1]}" for i, row in enumerate(rows)]
        labels.write_text("\n".join([header, *rows]) + "\n")
    entry = {"name": "s", "folder": folder, "labels": labels}
    cfg = DicomSourceConfig.model_validate(
        {"sites": [entry | columns], "classes": CLASSES, "image_size": 16, "cache_dir": tmp_path}
    )
    data, report = ingest_site(cfg.sites[0], cfg)
    assert data.y.tolist() == [0, 1, 0, 1] and not report.rejected
    default = _cfg({"s": (folder, labels)}, tmp_path / "other")
    with pytest.raises(DataFormatError, match="set per site with label_column, path_column"):
        ingest_site(default.sites[0], default)


def test_png_and_jpeg_files_say_how_to_use_them(tmp_path: Path) -> None:
    folder, labels, rows = _labelled_site(tmp_path)
    (folder / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    labels.write_text("\n".join(["path,label", *rows, "scan.png,positive"]) + "\n")
    cfg = _cfg({"s": (folder, labels)}, tmp_path / "cache")
    _, report = ingest_site(cfg.sites[0], cfg)
    reasons = {r.path: r.reason for r in report.rejected}
    assert set(reasons) == {"scan.png", "scan.jpg"}
    for name, kind in (("scan.png", "PNG"), ("scan.jpg", "JPEG")):
        assert reasons[name].startswith(
            f"a {kind} image, not DICOM: dataset dicom reads only DICOM files; use dataset "
            "images for a folder of PNG/JPEG images"
        )


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"needs a data\.dicom section"):
        DataConfig.model_validate({"dataset": "dicom"})
    with pytest.raises(ValidationError, match="classes has duplicates"):
        _cfg({"s": (tmp_path, tmp_path)}, tmp_path, classes=["a", "a"])
    with pytest.raises(ValidationError, match=r"num_sites=2 but data\.dicom\.sites lists 1"):
        DataConfig.model_validate(
            {
                "dataset": "dicom",
                "num_sites": 2,
                "dicom": {
                    "sites": [{"name": "s", "folder": "f", "labels": "l"}],
                    "classes": CLASSES,
                },
            }
        )


@pytest.mark.slow
def test_dicom_federation_trains_through_the_engine(tmp_path: Path) -> None:
    from medsilo.config import RunConfig
    from medsilo.experiment import run_experiment

    sites = write_dicom_sites(tmp_path / "d", sites=3, per_site=16, size=24)
    folder0 = sites["site_0"][0]
    (folder0 / "corrupt_1.dcm").write_bytes(b"\x00" * 300)
    (folder0 / "negative" / "corrupt_2.dcm").write_bytes(b"DICM broken")
    write_dicom(
        folder0 / "unlabelled.dcm", pattern_image(1, 24, np.random.default_rng(0)), "1.2.5.5"
    )
    raw = {
        "name": "dicom-e2e",
        "data": {
            "dataset": "dicom",
            "dicom": {
                "sites": [
                    {"name": s, "folder": str(f), "labels": str(lab)}
                    for s, (f, lab) in sites.items()
                ],
                "classes": CLASSES,
                "image_size": 16,
                "cache_dir": str(tmp_path / "cache"),
            },
        },
        "model": {"name": "cnn"},
        "training": {"rounds": 3, "local_steps": 5, "batch_size": 8, "lr": 0.05},
    }
    cfg = RunConfig.model_validate(raw)
    run = run_experiment(cfg, run_dir=tmp_path / "run")  # the in-process engine
    res = run.result
    assert res.rounds[-1]["test"]["accuracy"] >= 0.9  # the pattern is plain to see
    # The run directory shows what ingestion left out.
    md = (tmp_path / "run" / "data" / "site_0_ingestion_report.md").read_text()
    assert "`corrupt_1.dcm`" in md and "not a readable DICOM file" in md
    assert res.rounds[-1]["test"]["n"] == 3 * 4  # 2 of 8 per class and site held out
    assert cfg.data.dicom is not None
    fed, reports = build_dicom_federation(cfg.data.dicom)
    assert [r.from_cache for r in reports] == [True, True, True]
    assert {r.path for r in reports[0].rejected} == {
        "corrupt_1.dcm",
        "negative/corrupt_2.dcm",
        "unlabelled.dcm",
    }
    assert fed.input_shape == (1, 16, 16) and [len(s.train) for s in fed.sites] == [12] * 3
