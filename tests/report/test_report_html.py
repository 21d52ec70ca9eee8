"""The HTML page and the results table."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from medsilo.report import build_report, load_table, results_table

RunWriter = Callable[..., Path]
SuiteRuns = dict[str, tuple[str, str, float, float, bool]]


class _Tables(HTMLParser):
    """Collects every table as rows of (text, bold) cells, and every <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, bool]]]] = {}
        self.images: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._bold = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") or "table"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell, self._bold = [], False
        elif tag == "b" and self._cell is not None:
            self._bold = True
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(("".join(self._cell).strip(), self._bold))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_suite_html_table(suite_report: Path, suite_runs: SuiteRuns) -> None:
    page = parse(suite_report)
    header, *rows = page.tables["results"]
    labels = [text for text, _ in header]
    assert labels == [
        "Config",
        "Seeds",
        "Algorithm",
        "Rounds",
        "Pooled test acc. (n=185)",
        "Mean per-site acc.",
        "cleveland (n=61)",  # each site's test-set size, from the records' per-site n
        "hungarian (n=59)",
        "switzerland (n=25)",
        "va (n=40)",
        "LOHO mean acc.",
        "Simulated time (s)",  # two of the runs have a simulated clock
        "Wall time (s)",
    ]
    by_run = {row[0][0]: row for row in rows}
    # suite.json order first (fedavg, fedadam, pooled), then the unlisted run.
    assert list(by_run) == ["heart-fedavg", "heart-fedadam", "heart-pooled", "heart-local"]
    for _, (name, algo, acc, wall, loho) in suite_runs.items():
        cells = [text for text, _ in by_run[name]]
        assert cells[1] == "1"  # one seed each: plain values, no spread
        assert cells[2] == algo
        assert cells[3] == "6"
        assert cells[4] == f"{acc:.3f}"
        site_accs = [acc - 0.03 * i for i in range(4)]
        assert cells[5] == f"{sum(site_accs) / 4:.3f}"
        assert cells[6:10] == [f"{a:.3f}" for a in site_accs]
        loho_mean = sum(acc - 0.1 - 0.02 * i for i in range(4)) / 4
        assert cells[10] == (f"{loho_mean:.3f}" if loho else "–")
        clock = sum(10.0 * r for r in range(1, 7))  # running sum of sim_time_s = 10 r
        assert cells[11] == (f"{clock:.2f}" if name in ("heart-fedavg", "heart-fedadam") else "–")
        assert cells[12] == f"{wall:.2f}"

    bold = {labels[j]: row[0][0] for row in rows for j, (_, b) in enumerate(row) if b}
    assert bold == {
        "Pooled test acc. (n=185)": "heart-pooled",
        "Mean per-site acc.": "heart-pooled",
        "cleveland (n=61)": "heart-pooled",
        "hungarian (n=59)": "heart-pooled",
        "switzerland (n=25)": "heart-pooled",
        "va (n=40)": "heart-pooled",
        "LOHO mean acc.": "heart-fedadam",
        "Simulated time (s)": "heart-fedadam",  # a tie with heart-fedavg; the later row wins
        "Wall time (s)": "heart-pooled",
    }


def test_suite_html_references_every_png(suite_report: Path) -> None:
    page = parse(suite_report)
    pngs = sorted(p.name for p in suite_report.parent.glob("*.png"))
    assert pngs
    assert sorted(page.images) == pngs  # relative names, each exactly once


def test_suite_html_title_and_configs(suite_report: Path, suite_runs: SuiteRuns) -> None:
    text = suite_report.read_text(encoding="utf-8")
    assert "<title>Heart disease: FL vs baselines</title>" in text
    assert text.count("<pre>") == len(suite_runs)
    assert "<pre>name: heart-fedadam\nalgorithm:\n  name: fedadam\nrounds: 6\n</pre>" in text
    assert "<style>" in text and 'rel="stylesheet"' not in text  # self-contained


def test_results_table_rows(suite_dir: Path, suite_report: Path) -> None:
    rows = results_table(suite_dir)  # the report folder inside the suite is not a run
    assert [r["run"] for r in rows] == [
        "heart-fedavg",
        "heart-fedadam",
        "heart-pooled",
        "heart-local",
    ]
    assert all(list(r) == list(rows[0]) for r in rows)
    fedavg = rows[0]
    assert fedavg["pooled_accuracy"] == pytest.approx(0.812)
    assert fedavg["site_accuracy.va"] == pytest.approx(0.812 - 0.09)
    assert fedavg["loho_mean_accuracy"] == pytest.approx(0.812 - 0.13)
    assert fedavg["wall_s"] == pytest.approx(3.5)
    assert rows[3]["loho_mean_accuracy"] is None
    table = load_table(suite_dir)
    assert table.best_rows("pooled_accuracy") == {2}
    assert table.best_rows("wall_s") == {2}
    assert table.best_rows("run") == set()


def test_single_run_html(make_run: RunWriter) -> None:
    config = "name: heart <fedavg> & co\nrounds: 6\n"
    run_dir = make_run(loho=True, extra=("epsilon",), config=config)
    html = build_report(run_dir, run_dir / "custom")
    assert html == run_dir / "custom" / "report.html"
    text = html.read_text(encoding="utf-8")
    assert "<pre>name: heart &lt;fedavg&gt; &amp; co\nrounds: 6\n</pre>" in text

    page = parse(html)
    header, row = page.tables["results"]
    assert row[0][0] == "heart-run"
    assert row[3][0] == "0.800"
    assert not any(bold for _, bold in row)  # nothing to compare a single run with
    assert "LOHO mean acc." in [t for t, _ in header]

    site_header, *site_rows = page.tables["sites"]
    assert [t for t, _ in site_header] == [
        "Site",
        "Test n",
        "Final loss",
        "Final accuracy",
        "LOHO accuracy",
        "LOHO loss",
    ]
    assert [c for c, _ in site_rows[3]] == ["va", "40", "0.2300", "0.710", "0.640", "0.6000"]
    assert sorted(page.images) == sorted(p.name for p in html.parent.glob("*.png"))
    assert "extra_epsilon.png" in page.images


def test_rebuild_is_idempotent_and_drops_stale_charts(make_run: RunWriter) -> None:
    run_dir = make_run(rounds=3, extra=("epsilon",))
    out = run_dir / "report"
    first = build_report(run_dir).read_text()
    assert (out / "extra_epsilon.png").is_file()
    assert build_report(run_dir).read_text() == first
    assert re.search(r"medsilo \d+\.\d+", first)

    (out / "logo.png").write_bytes(b"not ours")
    make_run(rounds=3)  # rewritten without the extra metric
    page = parse(build_report(run_dir))
    assert not (out / "extra_epsilon.png").exists()
    assert (out / "logo.png").exists()  # files the report does not own are left alone
    assert "extra_epsilon.png" not in page.images
