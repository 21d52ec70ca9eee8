"""The typed, versioned round record: what every runtime writes and every reader reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsilo.runtime.round_record import (
    SCHEMA_VERSION,
    RoundRecord,
    RoundRecordError,
    json_line,
    parse_rounds,
    read_rounds,
)
from medsilo.runtime.simulation import run_federation
from tests.conftest import small_config, synthetic_federation


def engine_records() -> list[RoundRecord]:
    cfg = small_config(training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.1})
    return run_federation(cfg, synthetic_federation()).rounds


def test_every_round_is_a_typed_record_that_round_trips_through_its_json_line() -> None:
    records = engine_records()
    assert all(isinstance(r, RoundRecord) for r in records)
    last = records[-1]
    assert last.test is not None and last.test.n == last["test"]["n"]
    assert last.schema_version == SCHEMA_VERSION
    text = "".join(json_line(r) for r in records)
    assert parse_rounds(text) == records


def test_a_mistyped_or_unknown_field_is_refused_by_name() -> None:
    fields = dict(engine_records()[0].to_json())
    with pytest.raises(RoundRecordError, match="round 1: bytes_upp: Unexpected keyword argument"):
        RoundRecord.from_fields(fields | {"bytes_upp": 3})
    with pytest.raises(RoundRecordError, match="train_loss: Input should be a valid number"):
        RoundRecord.from_fields(fields | {"train_loss": "low"})


def test_unversioned_lines_load_and_newer_versions_are_refused(tmp_path: Path) -> None:
    old = {"round": 1, "sites": ["a"], "train_loss": 0.5, "bytes_up": 10, "bytes_down": 20}
    path = tmp_path / "rounds.jsonl"
    path.write_text(json.dumps(old) + "\n")
    (record,) = read_rounds(path)
    assert record.round == 1 and record.bytes_up == 10 and record.schema_version == 2
    path.write_text(json.dumps(old | {"schema_version": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(RoundRecordError, match=r"line 1: .*schema version 3.* versions 1 to 2"):
        read_rounds(path)


def test_a_torn_last_line_is_dropped_and_a_bad_middle_line_is_named(tmp_path: Path) -> None:
    lines = [json_line(r) for r in engine_records()]
    assert len(parse_rounds(lines[0] + lines[1][:25])) == 1  # a crash mid-write
    with pytest.raises(RoundRecordError) as info:
        parse_rounds(lines[0][:25] + "\n" + lines[1], tmp_path / "rounds.jsonl")
    assert info.value.line == 1 and "not JSON" in str(info.value)
