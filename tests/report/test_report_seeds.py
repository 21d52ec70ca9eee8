"""A suite of configs x seeds: configs compared by mean ± std, seeds folded, warnings shown,
data-quality reports included."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from medsilo.report import build_report, load_suite, plots
from medsilo.report.plots import mean_band, site_bars
from medsilo.report.seeds import group_by_config
from tests.report.conftest import write_run
from tests.report.test_report_html import parse

# config -> per-seed final accuracy. "lucky" has the single best seed (0.90) but the worse
# mean (0.70); "steady" has the better mean (0.80): the report must favour "steady".
ACCURACIES = {"lucky": [0.90, 0.60, 0.60], "steady": [0.80, 0.79, 0.81]}


def _patch_summary(run_dir: Path, **fields: Any) -> None:
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps(summary | fields))


@pytest.fixture
def seeds_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite"
    folders = []
    for name, accs in ACCURACIES.items():
        for seed, acc in enumerate(accs):
            folder = f"{name}-s{seed}"
            write_run(suite / folder, name=name, final_acc=acc, wall_s=2.0 + seed)
            _patch_summary(suite / folder, seed=seed)
            folders.append(folder)
    _patch_summary(suite / "lucky-s1", updates_rejected=45, updates_sent=60)
    _patch_summary(suite / "lucky-s2", complete=False, rounds=10)
    _patch_summary(suite / "steady-s2", failed="site va unreachable")
    title = "Lucky vs steady on heart_disease"
    (suite / "suite.json").write_text(json.dumps({"title": title, "runs": folders}))
    # Data-quality reports as run_experiment writes them (identical for every seed of a
    # config, so listed once).
    for seed in range(3):
        data = suite / f"lucky-s{seed}" / "data"
        data.mkdir()
        validation = {
            "site": "cleveland",
            "rows": 303,
            "unlabelled_rows": 2,
            "issues": [],
            "warnings": ["chol: 23 values are 0 (treated as missing)"],
            "columns": [],
        }
        (data / "cleveland_validation.json").write_text(json.dumps(validation))
        ingestion = {"site": "va", "files_seen": 12, "usable": 10, "rejected": [{}, {}]}
        (data / "va_ingestion_report.json").write_text(json.dumps(ingestion))
        (data / "va_ingestion_report.md").write_text("# Ingestion report: site `va`\n")
    return suite


def _cells(row: list[tuple[str, bool]]) -> list[str]:
    return [text for text, _ in row]


def test_configs_are_rows_with_mean_and_std_and_the_best_mean_is_bold(seeds_suite: Path) -> None:
    page = parse(build_report(seeds_suite))
    header, *rows = page.tables["results"]
    labels = _cells(header)
    assert labels[:2] == ["Config", "Seeds"]
    assert [row[0][0] for row in rows] == ["lucky", "steady"]  # one row per config
    pooled = labels.index("Pooled test acc. (n=185)")
    for row, accs in zip(rows, ACCURACIES.values(), strict=True):
        assert row[1][0] == "3"
        mean, std = statistics.fmean(accs), statistics.pstdev(accs)
        assert row[pooled][0] == f"{mean:.3f} ± {std:.3f}"
    bold = {labels[j] for j, (_, b) in enumerate(rows[1]) if b}
    assert "Pooled test acc. (n=185)" in bold and "va (n=40)" in bold
    assert not any(b for _, b in rows[0][: labels.index("Wall time (s)")])  # lucky: no bold


def test_seeds_are_folded_per_config_without_a_best_seed(seeds_suite: Path) -> None:
    html = build_report(seeds_suite)
    text = html.read_text()
    summaries = re.findall(r'<details class="seeds"><summary>([^<]*)</summary>', text)
    assert summaries == ["lucky: 3 seeds", "steady: 3 seeds"]
    seed_rows = [r for r in parse(html).tables["seeds"] if r[0][0] != "Run"]
    # one <table class="seeds"> per config; the parser keeps the last one (steady)
    assert [r[0][0] for r in seed_rows] == ["steady-s0", "steady-s1", "steady-s2"]
    assert not any(b for r in seed_rows for _, b in r)  # no "best seed" bolding


def test_warnings_of_a_run_are_on_its_rows(seeds_suite: Path) -> None:
    html = build_report(seeds_suite)
    header, *rows = parse(html).tables["results"]
    warnings = _cells(header).index("Warnings")
    lucky, steady = rows
    assert lucky[warnings][0] == (
        "lucky-s1: rejected 45/60 updates; lucky-s2: incomplete (6/10 rounds)"
    )
    assert steady[warnings][0] == "steady-s2: FAILED: site va unreachable"
    assert html.read_text().count('<tr class="flagged">') == 2 + 3  # configs + seed rows


def test_single_run_flags_and_title(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", name="heart_fedavg")
    _patch_summary(run, failed=True, complete=False, updates_rejected=3, updates_sent=8)
    html = build_report(run)
    header, row = parse(html).tables["results"]
    assert row[_cells(header).index("Warnings")][0] == (
        "FAILED; incomplete (6/6 rounds); rejected 3/8 updates"
    )
    assert "<title>heart_fedavg: fedavg on heart_disease</title>" in html.read_text()


def test_data_quality_reports_are_listed_once(seeds_suite: Path) -> None:
    text = build_report(seeds_suite).read_text()
    section = text[text.index('<section id="data-quality">') :]
    section = section[: section.index("</section>")]
    assert section.count('<details class="data-report">') == 2
    assert (
        "cleveland_validation: validation of site cleveland: 303 rows (2 unlabelled), "
        "0 issues, 1 warnings" in section
    )
    assert (
        "va_ingestion_report: image ingestion of site va: 12 files seen, 10 usable, "
        "2 left out" in section
    )
    assert "chol: 23 values are 0" in section  # the file itself, folded
    assert "# Ingestion report: site `va`" in section  # the markdown twin, not the JSON
    assert "Runs: lucky-s0, lucky-s1, lucky-s2" in section


def test_unreadable_data_report_is_named_not_fatal(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", name="x")
    (run / "data").mkdir()
    (run / "data" / "cleveland_validation.json").write_text("{not json")
    text = build_report(run).read_text()
    assert "cleveland_validation: unreadable:" in text


def test_plots_draw_each_configs_mean_over_seeds(
    seeds_suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = load_suite(seeds_suite).runs
    lucky, steady = group_by_config(runs)
    band = mean_band(lucky.runs, lambda r: float(r.round), lambda r: r.test and r.test.accuracy)
    assert band.xs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # the x of a round: the seeds' mean
    assert band.mean[-1] == pytest.approx(statistics.fmean(ACCURACIES["lucky"]))
    assert band.std[-1] == pytest.approx(statistics.pstdev(ACCURACIES["lucky"]))
    bars = site_bars(steady, ["cleveland", "va"], lambda run: run.final_per_site)
    va = [acc - 0.09 for acc in ACCURACIES["steady"]]  # the fixture's va: final - 3 x 0.03
    assert bars.values[1] == pytest.approx(statistics.fmean(va))
    assert bars.errors is not None and bars.errors[1] == pytest.approx(statistics.pstdev(va))

    figures: list[Figure] = []
    close = plots.plt.close
    monkeypatch.setattr(plots.plt, "close", lambda fig: (figures.append(fig), close(fig)))
    plots.plot_accuracy(runs, seeds_suite / "accuracy.png")
    (figure,) = figures
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    one_axes = ["lucky (mean ± std of 3 seeds)", "steady (mean ± std of 3 seeds)"]
    assert labels == one_axes * 2  # pooled and mean per-site panels: one line per config
