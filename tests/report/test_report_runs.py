"""Loading run and suite directories, and the errors for broken ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from medsilo.report import (
    ReportError,
    SuiteResult,
    build_report,
    load,
    load_run,
    load_suite,
    results_table,
)

RunWriter = Callable[..., Path]


def test_load_run_parses_rounds_and_summary(make_run: RunWriter) -> None:
    run = load_run(make_run(rounds=5, loho=True, extra=("epsilon",), skip_eval=(2,)))
    assert run.name == "heart-run"
    assert run.summary.algorithm == "fedavg"
    assert run.summary.dataset == "heart_disease"
    assert run.summary.seed == 0
    assert [r.round for r in run.rounds] == [1, 2, 3, 4, 5]
    first = run.rounds[0]
    assert first.sites == ["cleveland", "hungarian", "switzerland", "va"]
    assert first.test is not None and first.test.n == 185
    assert first.per_site is not None and first.per_site["va"].n == 40
    assert first.sim_time_s is None
    assert first.bytes_up == 1234
    assert first.extra == {"epsilon": 0.5}  # the non-numeric "note" is dropped
    assert run.rounds[1].test is None and run.rounds[1].per_site is None
    assert run.rounds[1].mean_site_accuracy is None
    assert run.final_pooled_accuracy == pytest.approx(0.8)
    assert run.summary.loho is not None and set(run.summary.loho) == set(run.site_names)
    assert run.loho_mean_accuracy == pytest.approx((0.7 + 0.68 + 0.66 + 0.64) / 4)
    assert run.extra_keys == ["epsilon"]
    assert not run.has_sim_time
    assert run.config_text is not None and run.config_text.startswith("name: heart-run")


def test_rounds_are_sorted_and_blank_lines_skipped(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x", rounds=3)
    lines = (run_dir / "rounds.jsonl").read_text().splitlines()
    (run_dir / "rounds.jsonl").write_text("\n".join([lines[2], "", lines[0], "   ", lines[1]]))
    assert [r.round for r in load_run(run_dir).rounds] == [1, 2, 3]


def test_mean_site_accuracy_is_computed_when_absent(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x", rounds=1)
    rec = {
        "round": 1,
        "per_site": {"a": {"accuracy": 0.5, "n": 10}, "b": {"accuracy": 0.7, "n": 30}},
    }
    (run_dir / "rounds.jsonl").write_text(json.dumps(rec) + "\n")
    assert load_run(run_dir).rounds[0].mean_site_accuracy == pytest.approx(0.6)


def test_summary_fallbacks_use_last_evaluated_round(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x", rounds=4, skip_eval=(4,))
    (run_dir / "summary.json").write_text(json.dumps({"rounds": 4}))
    run = load_run(run_dir)
    assert run.name == "r"  # folder name when the summary has none
    assert run.final_pooled_accuracy == pytest.approx(0.7)  # round 3 of 4: 0.8 * (0.5 + 3/8)
    assert set(run.final_per_site) == {"cleveland", "hungarian", "switzerland", "va"}
    assert run.wall_s == pytest.approx(4 * 0.12)


def test_missing_summary_raises(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x")
    (run_dir / "summary.json").unlink()
    with pytest.raises(ReportError, match=r"summary\.json") as info:
        load_run(run_dir)
    assert info.value.path == run_dir / "summary.json"


def test_missing_rounds_raises(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x")
    (run_dir / "rounds.jsonl").unlink()
    with pytest.raises(ReportError, match=r"rounds\.jsonl"):
        build_report(run_dir)


def test_missing_config_is_tolerated(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x")
    (run_dir / "config.yaml").unlink()
    assert load_run(run_dir).config_text is None


def test_corrupt_rounds_line_names_file_and_line(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x", rounds=4)
    path = run_dir / "rounds.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:40]  # truncated write
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError) as info:
        build_report(run_dir)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "not JSON" in message
    assert info.value.line == 3
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"train_loss": 0.5}', "round: Field required"),
        ('{"round": 1, "train_loss": "low"}', "train_loss: Input should be a valid number"),
        ('{"round": 1, "test": [0.5]}', "test: Input should be a dictionary"),
        ('{"round": 1, "per_site": {"a": {"accuracy": [1]}}}', "per_site.a.accuracy: Input should"),
    ],
)
def test_malformed_round_names_field_and_line(
    make_run: RunWriter, line: str, fragment: str
) -> None:
    run_dir = make_run("r", name="x", rounds=1)
    path = run_dir / "rounds.jsonl"
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(ReportError, match="line 2") as info:
        load_run(run_dir)
    assert fragment in str(info.value)


def test_corrupt_summary_names_file_and_line(make_run: RunWriter) -> None:
    run_dir = make_run("r", name="x")
    (run_dir / "summary.json").write_text('{\n  "name": "x",\n  oops\n}')
    with pytest.raises(ReportError, match=r"summary\.json, line 3"):
        load_run(run_dir)


def test_neither_run_nor_suite(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ReportError, match="not a run directory") as info:
        build_report(tmp_path / "empty")
    assert "summary.json" in str(info.value)
    with pytest.raises(ReportError, match="no such directory"):
        load(tmp_path / "missing")


def test_suite_order_from_suite_json(make_run: RunWriter, tmp_path: Path) -> None:
    for folder in ["b", "a", "c"]:
        make_run(folder, name=f"run-{folder}", rounds=2)
    (tmp_path / "notes").mkdir()  # not a run: ignored
    suite = load(tmp_path)
    assert isinstance(suite, SuiteResult)
    assert [r.name for r in suite.runs] == ["run-a", "run-b", "run-c"]
    assert suite.title == tmp_path.name

    (tmp_path / "suite.json").write_text(json.dumps({"title": "T", "runs": ["c", "a"]}))
    suite = load_suite(tmp_path)
    assert suite.title == "T"
    assert [r.name for r in suite.runs] == ["run-c", "run-a", "run-b"]  # unlisted last
    assert [row["run"] for row in results_table(tmp_path)] == ["run-c", "run-a", "run-b"]


def test_suite_json_listing_a_missing_run(make_run: RunWriter, tmp_path: Path) -> None:
    make_run("a", name="a", rounds=2)
    (tmp_path / "suite.json").write_text(json.dumps({"runs": ["a", "ghost"]}))
    with pytest.raises(ReportError, match=r"suite\.json.*'ghost'"):
        load(tmp_path)


def test_duplicate_run_names_fall_back_to_folder_names(make_run: RunWriter, tmp_path: Path) -> None:
    make_run("seed0", name="heart", rounds=2)
    make_run("seed1", name="heart", rounds=2)
    suite = load_suite(tmp_path)
    assert [r.name for r in suite.runs] == ["seed0", "seed1"]
