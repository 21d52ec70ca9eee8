import json
from pathlib import Path

from medsilo.dashboard.reader import RunTail


def _line(rnd: int) -> bytes:
    return (json.dumps({"round": rnd}) + "\n").encode()


def test_waits_for_the_file_then_reads_growth_and_partial_lines(tmp_path: Path) -> None:
    tail = RunTail(tmp_path)
    assert tail.poll() == ([], False)
    path = tmp_path / "rounds.jsonl"
    with path.open("wb") as fh:
        fh.write(_line(1) + _line(2)[:5])  # round 2 half written
        fh.flush()
        records, _ = tail.poll()
        assert [r["round"] for r in records] == [1]
        fh.write(_line(2)[5:])
        fh.flush()
        assert [r["round"] for r in tail.poll()[0]] == [2]
        assert tail.poll() == ([], False)
        fh.write(_line(3) + _line(4))
        fh.flush()
        assert [r["round"] for r in tail.poll()[0]] == [3, 4]


def test_a_rewritten_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "rounds.jsonl"
    path.write_bytes(_line(1) + _line(2) + _line(3))
    tail = RunTail(tmp_path)
    assert len(tail.poll()[0]) == 3
    path.write_bytes(_line(1))
    records, restarted = tail.poll()
    assert restarted and [r["round"] for r in records] == [1]


def test_follows_a_run_inside_a_suite_directory_and_reads_its_summary(tmp_path: Path) -> None:
    run = tmp_path / "heart-fedavg"
    run.mkdir()
    (run / "rounds.jsonl").write_bytes(_line(1))
    tail = RunTail(tmp_path)
    assert [r["round"] for r in tail.poll()[0]] == [1]
    assert tail.summary() is None
    (run / "summary.json").write_text('{"name": "x"')  # half written
    assert tail.summary() is None
    (run / "summary.json").write_text('{"name": "x"}')
    assert tail.summary() == {"name": "x"}
