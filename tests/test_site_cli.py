"""``medsilo site ...`` as a hospital drives it: check, report, compare, dicom, demo-data."""

from __future__ import annotations

import json
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


def test_dicom_ingest_prints_the_report_then_uses_the_cache(demo: Path, tmp_path: Path) -> None:
    site = demo / "dicom" / "site_0"
    (site / "images" / "broken.dcm").write_bytes(b"not dicom")
    args = [
        "site",
        "dicom",
        "--folder",
        str(site / "images"),
        "--labels",
        str(site / "labels.csv"),
        "--classes",
        "negative,positive",
        "--site",
        "s0",
        "--image-size",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "broken.dcm" in first.output and "tensors: (6, 1, 16, 16)" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "(from cache)" in second.output
