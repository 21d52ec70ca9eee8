"""``dataset: images``: the config section, the labels CSV, the file checks and their
ingestion report, and items read from PNG, NIfTI and DICOM files (docs/bring-your-own.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from medsilo.data.base import DataFormatError, StreamedSplit
from medsilo.data.image_items import ImageItems
from medsilo.data.image_site import build_image_federation
from medsilo.data.spec import DataConfig
from medsilo.data.synthetic_sites import pattern_image, write_dicom

from .image_fixtures import gray_site, image_section, write_csv, write_png


def _items(split: object) -> ImageItems:
    assert isinstance(split, StreamedSplit) and isinstance(split.items, ImageItems)
    return split.items


def test_sites_become_streamed_splits_holding_paths_not_pixels(tmp_path: Path) -> None:
    cfg = image_section(
        {"a": gray_site(tmp_path / "a"), "b": gray_site(tmp_path / "b", n=8, seed=1)}, tmp_path
    )
    fed = build_image_federation(cfg)
    assert fed.site_names == ["a", "b"] and fed.task == "binary" and fed.num_classes == 2
    assert fed.streamed and fed.input_shape == (1, 8, 8)
    for site, n in zip(fed.sites, (6, 8), strict=True):
        assert len(site.train) + len(site.test) == n
        assert all(isinstance(p, Path) for p in (i.image for i in _items(site.train).items))
        labels = np.concatenate([site.train.labels, site.test.labels])  # type: ignore[union-attr]
        assert sorted(labels.tolist()) == [0] * (n // 2) + [1] * (n // 2)
    assert len(fed.test) == sum(len(s.test) for s in fed.sites)
    x, y = fed.sites[0].train.items[0]  # type: ignore[union-attr]
    assert x.dtype == torch.float32 and x.shape == (1, 8, 8) and y in (0, 1)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_every_unusable_file_is_listed_in_the_ingestion_report(tmp_path: Path) -> None:
    site = gray_site(tmp_path / "a", n=4)
    (site / "broken.png").write_bytes(b"not an image")
    write_png(site / "extra.png", np.zeros((10, 10), dtype=np.uint8))  # not in the CSV
    write_png(site / "volume_slice.png", np.zeros((10, 10), dtype=np.uint8))
    rows = [["img_0.png", "negative"], ["img_1.png", "positive"], ["img_2.png", 1]]
    rows += [["img_3.png", "maybe"], ["gone.png", 0], ["broken.png", 1], ["notes.txt", 0]]
    write_csv(site / "labels.csv", ["file", "label"], rows)
    (site / "notes.txt").write_text("hello")
    fed = build_image_federation(image_section({"a": site}, tmp_path))
    assert len(fed.sites[0].train) + len(fed.sites[0].test) == 3
    report = (tmp_path / "reports" / "a" / "ingestion_report.md").read_text()
    reasons = {
        "img_3.png": "label 'maybe' is not one of the classes",
        "gone.png": "listed in the labels CSV but no such file",
        "broken.png": "not a readable pillow file",
        "notes.txt": "unknown image format '.txt'",
        "extra.png": "not listed in",
        "volume_slice.png": "not listed in",
    }
    for name, reason in reasons.items():
        line = next(x for x in report.splitlines() if f"`{name}`" in x)
        assert reason in line, line
    assert "files seen: 9; usable images: 3; left out: 6" in report


def test_a_mask_whose_shape_differs_from_its_image_is_left_out(tmp_path: Path) -> None:
    site = tmp_path / "a"
    rows = []
    for i, mask_shape in enumerate([(10, 10), (10, 12), (10, 10), (10, 10)]):
        write_png(site / f"img_{i}.png", np.full((10, 10), 100, dtype=np.uint8))
        mask = np.zeros(mask_shape, dtype=np.uint8)
        mask[2:5, 2:5] = 3 if i == 2 else 1
        write_png(site / "masks" / f"img_{i}.png", mask)
        rows.append([f"img_{i}.png"])
    write_png(site / "img_4.png", np.zeros((10, 10), dtype=np.uint8))
    rows.append(["img_4.png"])  # no mask
    write_csv(site / "labels.csv", ["file"], rows)
    cfg = image_section(
        {"a": site}, tmp_path, task="segmentation", classes=["background", "lesion"]
    )
    fed = build_image_federation(cfg)
    report = (tmp_path / "reports" / "a" / "ingestion_report.md").read_text()
    assert "| `img_1.png` | mask masks/img_1.png has shape (10, 12), its image (10, 10) |" in report
    assert "mask masks/img_2.png holds values 0..3; the classes" in report
    assert "| `img_4.png` | mask masks/img_4.png: no such mask file |" in report
    site_data = fed.sites[0]
    assert len(site_data.train) + len(site_data.test) == 2 and site_data.train.labels is None
    x, y = site_data.train.items[0]  # type: ignore[union-attr]
    assert x.shape == (1, 8, 8) and y.dtype == torch.int64 and y.shape == (1, 8, 8)
    assert set(y.unique().tolist()) == {0, 1}


def test_a_site_without_usable_images_is_refused_naming_the_reason(tmp_path: Path) -> None:
    site = tmp_path / "a"
    site.mkdir()
    write_csv(site / "labels.csv", ["file", "label"], [["gone.png", 0]])
    with pytest.raises(DataFormatError, match=r"none of the 1 file.*no such file"):
        build_image_federation(image_section({"a": site}, tmp_path))


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["path", "label"], [["img_0.png", 0]], r"lacks column\(s\) \['file'\]"),
        (["file"], [["img_0.png"]], r"lacks column\(s\) \['label'\] \(task binary\)"),
        (["file", "label"], [["img_0.png", 0], ["img_0.png", 1]], "listed on lines 2 and 3"),
        (["file", "label"], [["../b/img_0.png", 0]], "must be a path inside the site's folder"),
        (["file", "label", "split"], [["img_0.png", 0, "val"]], "split 'val' must be one of"),
        (["file", "label"], [["img_0.png", 0, 1]], "line 2 has 3 fields, the header 2"),
    ],
)
def test_a_bad_labels_csv_fails_before_anything_is_written(
    tmp_path: Path, header: list[str], rows: list[list[object]], message: str
) -> None:
    good = gray_site(tmp_path / "a")
    bad = gray_site(tmp_path / "b")
    write_csv(bad / "labels.csv", header, rows)
    with pytest.raises(DataFormatError, match=message) as err:
        build_image_federation(image_section({"a": good, "b": bad}, tmp_path))
    assert "site 'b'" in str(err.value) and str(bad / "labels.csv") in str(err.value)
    assert not (tmp_path / "reports").exists()  # site a's report is not written either


def test_missing_folders_and_labels_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"image folder not found: .*nowhere"):
        build_image_federation(image_section({"a": tmp_path / "nowhere"}, tmp_path))
    site = gray_site(tmp_path / "a")
    (site / "labels.csv").unlink()
    with pytest.raises(DataFormatError, match=r"labels file not found: .*labels.csv"):
        build_image_federation(image_section({"a": site}, tmp_path))
    seg = image_section({"a": gray_site(site)}, tmp_path, task="segmentation")
    with pytest.raises(DataFormatError, match=r"mask folder not found: .*masks"):
        build_image_federation(seg)
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "detection"}, "task"),
        ({"classes": ["a", "b", "c"]}, "needs exactly 2 classes"),
        ({"classes": None}, "needs classes: the names every site shares"),
        ({"task": "regression"}, "name the value columns in targets, not classes"),
        ({"targets": ["age"]}, "targets are the value columns of task regression only"),
        ({"image_size": [8]}, r"image_size must be \[H, W\] or \[D, H, W\]"),
        ({"channels": 2}, "channels"),
        ({"augment": ["blur"]}, "augment"),
        ({"augment": [{"rotate": 0}]}, "rotate"),
        ({"group_columns": ["split"]}, r"columns \['split'\] are repeated or reserved"),
        ({"colour": "rgb"}, "colour"),
    ],
)
def test_config_section_is_strict(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        image_section({"a": tmp_path}, tmp_path, **change)


def test_data_section_refuses_what_streamed_images_cannot_do(tmp_path: Path) -> None:
    images = image_section({"a": tmp_path}, tmp_path).model_dump(mode="json")
    DataConfig.model_validate({"dataset": "images", "images": images})
    with pytest.raises(ValidationError, match="standardize: federated needs every training"):
        DataConfig.model_validate(
            {"dataset": "images", "images": images, "standardize": "federated"}
        )
    with pytest.raises(ValidationError, match=r"needs a data\.images section"):
        DataConfig.model_validate({"dataset": "images"})
    with pytest.raises(ValidationError, match="partition must be 'natural'"):
        DataConfig.model_validate(
            {"dataset": "images", "images": images, "partition": "iid", "num_sites": 1}
        )


def test_split_column_subgroups_and_seeded_split(tmp_path: Path) -> None:
    site = gray_site(tmp_path / "a", n=8)
    rows = [
        [f"img_{i}.png", i % 2, "test" if i < 2 else "train", "F" if i % 3 else "M"]
        for i in range(8)
    ]
    write_csv(site / "labels.csv", ["file", "label", "split", "sex"], rows)
    cfg = image_section({"a": site}, tmp_path, group_columns=["sex"])
    s = build_image_federation(cfg).sites[0]
    assert [i.image.name for i in _items(s.test).items] == ["img_0.png", "img_1.png"]
    assert s.train.groups["sex"].tolist() == ["F", "M", "F", "F", "M", "F"]
    other = gray_site(tmp_path / "b", n=12)
    seeded = [build_image_federation(image_section({"b": other}, tmp_path)) for _ in range(2)]
    names = [[i.image.name for i in _items(f.sites[0].test).items] for f in seeded]
    assert names[0] == names[1] and len(names[0]) == 4  # 12 * 0.25, stratified
    moved = image_section({"b": other}, tmp_path, split_seed=5)
    assert [
        i.image.name for i in _items(build_image_federation(moved).sites[0].test).items
    ] != names[0]


def test_multilabel_and_regression_labels(tmp_path: Path) -> None:
    site = gray_site(tmp_path / "a", n=4)
    write_csv(
        site / "labels.csv",
        ["file", "effusion", "nodule", "age"],
        [
            ["img_0.png", 1, 0, 61.5],
            ["img_1.png", 0, 1, 40],
            ["img_2.png", 2, 1, 3],
            ["img_3.png", 1, 1, "n/a"],
        ],
    )
    common = {"split_seed": 0, "test_fraction": 0.25}
    multi = image_section(
        {"a": site}, tmp_path, task="multilabel", classes=["effusion", "nodule"], **common
    )
    fed = build_image_federation(multi)
    assert fed.num_classes == 2 and fed.sites[0].train.labels is None
    got = {tuple(fed.sites[0].train.items[i][1].tolist()) for i in range(len(fed.sites[0].train))}  # type: ignore[union-attr]
    got |= {tuple(fed.sites[0].test.items[i][1].tolist()) for i in range(len(fed.sites[0].test))}  # type: ignore[union-attr]
    assert got == {(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)}
    report = (tmp_path / "reports" / "a" / "ingestion_report.md").read_text()
    assert "labels ['effusion'] must be 0 or 1, got ['2']" in report
    assert "class counts: {'effusion': 2, 'nodule': 2}" in report
    reg = image_section({"a": site}, tmp_path, task="regression", classes=None, targets=["age"])
    fed = build_image_federation(reg)
    values = [fed.sites[0].train.items[i][1] for i in range(len(fed.sites[0].train))]  # type: ignore[union-attr]
    values += [fed.sites[0].test.items[i][1] for i in range(len(fed.sites[0].test))]  # type: ignore[union-attr]
    assert sorted(float(v) for v in values) == [3.0, 40.0, 61.5] and fed.num_classes == 1
    report = (tmp_path / "reports" / "a" / "ingestion_report.md").read_text()
    assert "age 'n/a' is not a finite number" in report


def test_rgb_16_bit_and_standardised_items(tmp_path: Path) -> None:
    site = tmp_path / "a"
    rgb = np.zeros((12, 12, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    write_png(site / "rgb.png", rgb)
    write_png(site / "deep.png", np.full((12, 12), 65535, dtype=np.uint16))
    write_csv(
        site / "labels.csv",
        ["file", "label", "split"],
        [["rgb.png", 0, "train"], ["deep.png", 1, "train"]],
    )
    items = _items(
        build_image_federation(image_section({"a": site}, tmp_path, channels=3)).sites[0].train
    )
    x_rgb, _ = items[0]
    x_deep, _ = items[1]
    assert x_rgb.shape == (3, 8, 8) and torch.allclose(x_rgb[0], torch.ones(8, 8))
    assert torch.allclose(x_rgb[1:], torch.zeros(2, 8, 8))
    assert x_deep.shape == (3, 8, 8) and torch.allclose(x_deep, torch.ones(3, 8, 8))
    gray = image_section({"a": site}, tmp_path, intensity="standardize", image_size=[6, 4])
    x, _ = _items(build_image_federation(gray).sites[0].train)[0]
    assert x.shape == (1, 6, 4) and abs(float(x.mean())) < 1e-5


def test_nifti_volumes_and_dicom_files(tmp_path: Path) -> None:
    site = tmp_path / "a"
    site.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        volume = rng.normal(size=(10, 12, 9)).astype(np.float32)
        nib.save(nib.Nifti1Image(volume, np.eye(4)), site / f"v{i}.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((10, 12), np.float32), np.eye(4)), site / "flat.nii")
    write_csv(
        site / "labels.csv",
        ["file", "label", "split"],
        [[f"v{i}.nii.gz", i % 2, "train"] for i in range(3)] + [["flat.nii", 0, "train"]],
    )
    cfg = image_section({"a": site}, tmp_path, image_size=[4, 6, 6])
    fed = build_image_federation(cfg)
    assert fed.input_shape == (1, 4, 6, 6) and len(fed.sites[0].train) == 3
    x, _ = fed.sites[0].train.items[0]  # type: ignore[union-attr]
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    report = (tmp_path / "reports" / "a" / "ingestion_report.md").read_text()
    assert "| `flat.nii` | has 2 dimension(s) (shape (10, 12)) but image_size has 3 |" in report

    dicom = tmp_path / "d"
    for i in range(2):
        write_dicom(dicom / f"x{i}.dcm", pattern_image(i, 16, rng), f"1.2.3.{i + 1}")
    (dicom / "bad.dcm").write_bytes(b"\0" * 10)
    write_csv(
        dicom / "labels.csv",
        ["file", "label", "split"],
        [["x0.dcm", 0, "train"], ["x1.dcm", 1, "train"], ["bad.dcm", 1, "train"]],
    )
    fed = build_image_federation(image_section({"d": dicom}, tmp_path))
    x, y = fed.sites[0].train.items[1]  # type: ignore[union-attr]
    assert x.shape == (1, 8, 8) and y == 1 and float(x[0, 4, 4]) > float(x[0, 0, 4])
    report = (tmp_path / "reports" / "d" / "ingestion_report.md").read_text()
    assert "| `bad.dcm` | not a readable DICOM file" in report


def test_a_file_changed_during_the_run_is_named(tmp_path: Path) -> None:
    site = gray_site(tmp_path / "a", n=2)
    write_csv(
        site / "labels.csv",
        ["file", "label", "split"],
        [["img_0.png", 0, "train"], ["img_1.png", 1, "train"]],
    )
    items = _items(build_image_federation(image_section({"a": site}, tmp_path)).sites[0].train)
    (site / "img_0.png").write_bytes(b"truncated")
    with pytest.raises(DataFormatError, match=r"img_0.png: can no longer be read"):
        items[0]
