"""The PNG charts: written, valid, non-trivial, and only when there is data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np

from medsilo.report import build_report, load_run
from medsilo.report.plots import plot_accuracy, write_plots

RunWriter = Callable[..., Path]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"
    image = mpimg.imread(path)
    assert image.ndim in (2, 3)
    height, width = image.shape[:2]
    assert height >= 200 and width >= 300, image.shape
    pixels = image.reshape(height * width, -1)
    assert bool(np.any(pixels != pixels[0])), f"{path} is a single colour"


def test_single_run_plots(make_run: RunWriter) -> None:
    run_dir = make_run(loho=True, extra=("epsilon", "clip norm"), sim_time=True, skip_eval=(2,))
    html = build_report(run_dir)
    out = run_dir / "report"
    assert html == out / "report.html"
    names = {p.name for p in out.glob("*.png")}
    assert names == {
        "accuracy.png",
        "loss.png",
        "site_accuracy.png",
        "accuracy_vs_time.png",
        "extra_epsilon.png",
        "extra_clip_norm.png",
    }
    for png in out.glob("*.png"):
        assert_valid_png(png)
    assert plt.get_fignums() == []  # every figure was closed


def test_suite_plots(suite_dir: Path, suite_report: Path) -> None:
    out = suite_report.parent
    names = {p.name for p in out.glob("*.png")}
    assert names == {
        "accuracy.png",
        "loss.png",
        "site_accuracy.png",
        "loho_accuracy.png",
        "accuracy_vs_time.png",
        "extra_epsilon.png",
    }
    for png in out.glob("*.png"):
        assert_valid_png(png)
    assert plt.get_fignums() == []


def test_no_sim_time_no_extra_no_loho_means_no_such_plots(make_run: RunWriter) -> None:
    run_dir = make_run()
    build_report(run_dir, run_dir / "out")
    names = {p.name for p in (run_dir / "out").glob("*.png")}
    assert names == {"accuracy.png", "loss.png", "site_accuracy.png"}


def test_rounds_without_evaluation_are_skipped(make_run: RunWriter, tmp_path: Path) -> None:
    run = load_run(make_run(rounds=6, skip_eval=(1, 3), null_eval=(4, 5)))
    assert plot_accuracy([run], tmp_path / "acc.png") is not None
    assert_valid_png(tmp_path / "acc.png")

    # No round evaluated at all: no accuracy curve, but loss (train) and final bars still come.
    run = load_run(make_run("bare", rounds=3, skip_eval=(1, 2, 3)))
    plots = write_plots([run], tmp_path / "bare")
    assert [p.filename for p in plots] == ["loss.png", "site_accuracy.png"]


def test_empty_rounds_file(make_run: RunWriter) -> None:
    run_dir = make_run()
    (run_dir / "rounds.jsonl").write_text("")
    html = build_report(run_dir)
    assert [p.name for p in html.parent.glob("*.png")] == ["site_accuracy.png"]
    assert "heart-run" in html.read_text()


def test_local_only_run_without_pooled_test(make_run: RunWriter) -> None:
    run_dir = make_run(rounds=3)
    path = run_dir / "rounds.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in recs:
        del rec["test"]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    build_report(run_dir)
    assert_valid_png(run_dir / "report" / "accuracy.png")
