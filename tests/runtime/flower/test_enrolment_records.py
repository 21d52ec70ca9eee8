"""The deployed set-up exchanges survive Flower's records intact, and malformed ones are
refused with :class:`RecordFormatError` (never a KeyError deep inside a site)."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from medsilo.runtime.flower import enrolment_records as wire
from medsilo.runtime.flower.records import RecordFormatError


def test_enrol_round_trip() -> None:
    request = wire.EnrolRequest(
        nonce="ab" * 32,
        config_json='{"name": "t", "seed": 3}',
        roster=["site_a", "site-b", "c"],
        run_key="0123456789abcdef",
        resume_round=7,
    )
    back = wire.read_enrol(wire.enrol_content(request))
    assert back == request
    assert isinstance(back.resume_round, int)


def test_enrolled_round_trip_keeps_types() -> None:
    reply = wire.Enrolled(
        site="site-b",
        index=1,
        evidence_json='{"site": "site-b"}',
        n_train=212,
        n_test=54,
        input_shape=(1, 28, 28),
        num_classes=10,
        task="multiclass",
    )
    back = wire.read_enrolled(wire.enrolled_content(reply))
    assert back == reply
    assert isinstance(back.input_shape, tuple)
    assert all(isinstance(d, int) for d in back.input_shape)


def test_moments_round_trip() -> None:
    rng = np.random.default_rng(0)
    total = rng.normal(size=13)
    total_sq = rng.random(13) * 100
    count, t, sq = wire.read_moments(wire.moments_content(42, total, total_sq))
    assert count == 42
    assert t.dtype == total.dtype and np.array_equal(t, total)
    assert sq.dtype == total_sq.dtype and np.array_equal(sq, total_sq)


@pytest.mark.parametrize("accepted", [True, False])
def test_admission_round_trip_without_standardize(accepted: bool) -> None:
    admission = wire.Admission(accepted=accepted, reason="policy says so", exploit_indicator=1)
    back, stats = wire.read_admission(wire.admission_content(admission, None))
    assert back == admission
    assert isinstance(back.accepted, bool) and isinstance(back.exploit_indicator, int)
    assert stats is None


def test_admission_round_trip_with_standardize() -> None:
    mean = np.linspace(-1.0, 1.0, 5)
    std = np.linspace(0.5, 2.0, 5).astype(np.float32)
    admission = wire.Admission(accepted=True, reason="ok", exploit_indicator=0)
    back, stats = wire.read_admission(wire.admission_content(admission, (mean, std)))
    assert back == admission
    assert stats is not None
    assert stats[0].dtype == mean.dtype and np.array_equal(stats[0], mean)
    assert stats[1].dtype == std.dtype and np.array_equal(stats[1], std)


@pytest.mark.parametrize(
    "read", [wire.read_enrol, wire.read_enrolled, wire.read_admission, wire.read_moments]
)
def test_missing_record_is_refused(read: object) -> None:
    assert callable(read)
    other = RecordDict({"something-else": ConfigRecord({"x": 1})})
    with pytest.raises(RecordFormatError, match="record"):
        read(other)


def test_moments_without_count_is_refused() -> None:
    content = RecordDict({wire.MOMENTS: ArrayRecord([np.zeros(2), np.ones(2)])})
    with pytest.raises(RecordFormatError, match="count"):
        wire.read_moments(content)


def _enrol_with_roster(roster: object) -> RecordDict:
    content = wire.enrol_content(wire.EnrolRequest("n", "{}", ["a"], "k", 0))
    content.config_records[wire.ENROL]["roster"] = roster  # type: ignore[assignment]
    return content


@pytest.mark.parametrize("roster", ["site_a", [1, 2], 3])
def test_roster_must_be_a_list_of_names(roster: object) -> None:
    with pytest.raises(RecordFormatError, match="roster"):
        wire.read_enrol(_enrol_with_roster(roster))


@pytest.mark.parametrize("shape", [28, "1,28,28"])
def test_input_shape_must_be_a_list(shape: object) -> None:
    content = wire.enrolled_content(wire.Enrolled("a", 0, "{}", 1, 1, (3,), 2, "binary"))
    content.config_records[wire.ENROLLED]["input_shape"] = shape  # type: ignore[assignment]
    with pytest.raises(RecordFormatError, match="input_shape"):
        wire.read_enrolled(content)
