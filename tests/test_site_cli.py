"""``medsilo site ...`` as a hospital drives it: check, report, compare, dicom, demo-data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from medsilo.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tabular"
runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(
        app, ["site", "demo-data", "--out", str(out), "--rows", "80", "--images", "6"]
    )
    assert result.exit_code == 0, result.output
    return out


def _args(site: str, demo: Path, mapping: Path | None = None) -> list[str]:
    return [
        "--schema",
        str(EXAMPLES / "schema.yaml"),
        "--mapping",
        str(mapping or EXAMPLES / f"mapping_{site[-1]}.yaml"),
        "--data",
        str(demo / "tabular" / f"{site}.csv"),
    ]


def test_check_passes_and_shows_the_conversion(demo: Path) -> None:
    result = runner.invoke(app, ["site", "check", *_args("hospital_b", demo)])
    assert result.exit_code == 0, result.output
    assert "mmol/L -> mg/dL" in result.output and "lb -> kg" in result.output
    assert "ok: the data follows the federation schema" in result.output


def test_check_fails_with_exit_1_and_says_what_to_fix(demo: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((EXAMPLES / "mapping_b.yaml").read_text())
    raw["columns"]["weight_lb"]["unit"] = "kg"  # the export is in pounds
    bad = tmp_path / "b.yaml"
    bad.write_text(yaml.safe_dump(raw))
    out_json = tmp_path / "check.json"
    result = runner.invoke(
        app, ["site", "check", *_args("hospital_b", demo, bad), "--json", str(out_json)]
    )
    assert result.exit_code == 1
    # Pounds read as kg: only the heaviest patients leave the [30, 250] kg range, but every
    # value fits it when read as lb, so the message points at the unit.
    saved = json.loads(out_json.read_text())
    weight = next(c for c in saved["columns"] if c["column"] == "weight")
    assert weight["out_of_range"] > 0 and weight["status"] == "error"
    assert saved["ok"] is False and "set `unit: lb`" in saved["issues"][0]["fix"]
    assert "column 'weight' (local 'weight_lb')" in result.output


def test_report_and_compare(demo: Path, tmp_path: Path) -> None:
    paths = []
    for site in ("hospital_a", "hospital_b", "hospital_c"):
        path = tmp_path / f"{site}.json"
        result = runner.invoke(
            app,
            [
                "site",
                "report",
                *_args(site, demo),
                "--epsilon",
                "2",
                "--seed",
                "0",
                "--out",
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
        rep = json.loads(path.read_text())
        assert rep["privacy"]["epsilon"] == 2.0 and rep["site"] == site
        paths.append(str(path))
    result = runner.invoke(app, ["site", "compare", *paths])
    assert result.exit_code == 0, result.output
    assert "label JS div." in result.output and "age SMD" in result.output
    assert "not exported" in result.output  # smoker: sites b and c do not map it
    for row in ("age SMD", "weight SMD", "cholesterol SMD"):
        assert "not exported" not in next(ln for ln in result.output.splitlines() if row in ln)
    # hospital_c's ages as an empty column releases them: every value missing, mean noise
    rep = json.loads(Path(paths[2]).read_text())
    rep["features"]["age"].update(missing_share=1.0, mean=83.1)
    Path(paths[2]).write_text(json.dumps(rep))
    result = runner.invoke(app, ["site", "compare", *paths, "--out", str(tmp_path / "view.json")])
    assert result.exit_code == 0, result.output
    age_row = next(line for line in result.output.splitlines() if "age SMD" in line)
    assert age_row.count("not exported") == 1
    view = json.loads((tmp_path / "view.json").read_text())
    assert view["features"]["age"]["not_exported"] == ["hospital_c"]


def test_report_refuses_invalid_epsilon(demo: Path) -> None:
    result = runner.invoke(app, ["site", "report", *_args("hospital_a", demo), "--epsilon", "0"])
    assert result.exit_code == 2


def _flat(text: str) -> str:
    return "".join(text.split())


def _dicom_args(site: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "site",
        "dicom",
        "--folder",
        str(site / "images"),
        "--labels",
        str(site / "labels.csv"),
        "--classes",
        "negative,positive",
        "--image-size",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    ]


def test_dicom_ingest_prints_the_report_then_uses_the_cache(demo: Path, tmp_path: Path) -> None:
    site = demo / "dicom" / "site_0"
    (site / "images" / "broken.dcm").write_bytes(b"not dicom")
    args = _dicom_args(site, tmp_path, "--site", "s0")
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "broken.dcm" in first.output and "tensors: (6, 1, 16, 16)" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "(from cache)" in second.output


def test_dicom_binary_labels_file_is_an_error_naming_it(demo: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(demo / "dicom" / "site_1", site)
    (site / "labels.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 30)
    result = runner.invoke(app, _dicom_args(site, tmp_path))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    said = f"labels file {site / 'labels.csv'} is not UTF-8 text"
    assert _flat(said) in _flat(result.output)  # rich wraps long lines


def test_dicom_labels_columns_and_bad_options(demo: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(demo / "dicom" / "site_1", site)
    lines = (site / "labels.csv").read_text().splitlines()
    (site / "labels.csv").write_text("\n".join(["file,finding", *lines[1:]]) + "\n")
    own = ["--path-column", "file", "--label-column", "finding"]
    result = runner.invoke(app, _dicom_args(site, tmp_path, *own))
    assert result.exit_code == 0, result.output
    assert "tensors: (6, 1, 16, 16)" in result.output
    result = runner.invoke(app, _dicom_args(site, tmp_path, *own, "--label-column", ""))
    assert result.exit_code == 2
    assert "invalid options:" in result.output and "sites.0.label_column" in result.output
    assert "pydantic" not in result.output


def _federation_yaml(folder: Path, data: dict[str, object]) -> Path:
    """A run config in ``folder`` whose data paths are relative to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": "from-elsewhere",
        "data": data,
        "training": {"rounds": 2, "local_steps": 3, "batch_size": 16, "lr": 0.1},
    }
    path = folder / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_simulate_reads_a_config_relative_to_its_folder_from_any_cwd(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = tmp_path / "configs" / "cardio"
    fed.mkdir(parents=True)
    for name in ("schema.yaml", "mapping_a.yaml", "mapping_b.yaml", "mapping_c.yaml"):
        shutil.copy(EXAMPLES / name, fed / name)
    csvs = os.path.relpath(demo / "tabular", fed)
    sites = [
        {"name": s, "csv": f"{csvs}/{s}.csv", "mapping": f"mapping_{s[-1]}.yaml"}
        for s in ("hospital_a", "hospital_b", "hospital_c")
    ]
    _federation_yaml(
        fed, {"dataset": "tabular", "tabular": {"schema": "schema.yaml", "sites": sites}}
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["simulate", "../configs/cardio/federation.yaml", "--out", "run", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (elsewhere / "run" / "from-elsewhere" / "data" / "hospital_b_validation.json").is_file()


def test_simulate_names_a_binary_labels_file(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    shutil.copytree(demo / "dicom" / "site_0", site)
    (site / "labels.csv").write_bytes(b"\xff\xfe\x00\x89PNG" * 50)
    dicom = {
        "classes": ["negative", "positive"],
        "image_size": 16,
        "sites": [{"name": "s0", "folder": "../site/images", "labels": "../site/labels.csv"}],
    }
    config = _federation_yaml(tmp_path / "cfg", {"dataset": "dicom", "dicom": dicom})
    monkeypatch.chdir(demo)
    result = runner.invoke(app, ["simulate", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    said = f"site 's0': labels file {tmp_path}/cfg/../site/labels.csv is not UTF-8 text"
    assert _flat(said) in _flat(result.output)  # rich wraps long lines
