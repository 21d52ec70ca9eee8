"""The free-rider rules on hand-made updates, and where detection is refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from medsilo.contribution.free_riders import (
    FreeRiderDetector,
    detection_unsupported_reason,
    flagged_sites,
    free_rider_lines,
)
from medsilo.types import Update
from tests.conftest import small_config

DIM = 200


def _update(site: str, x: np.ndarray) -> Update:
    return Update(site, [x[:150].astype(np.float32), x[150:].astype(np.float32)], 10, 1)


Misbehave = Callable[[int, list[dict[str, np.ndarray]], np.random.Generator], np.ndarray]


def _rounds(make: dict[str, Misbehave], rounds: int = 6, seed: int = 0) -> FreeRiderDetector:
    """Honest sites a, b, c drift along a shared direction plus their own; ``make`` maps a
    misbehaving site to a callable ``(round, honest deltas so far) -> delta``."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=DIM)
    own = {s: rng.normal(size=DIM) for s in "abc"}
    detector = FreeRiderDetector()
    history: list[dict[str, np.ndarray]] = []
    for rnd in range(1, rounds + 1):
        honest = {s: shared + own[s] + 0.3 * rng.normal(size=DIM) for s in "abc"}
        history.append(honest)
        updates = [_update(s, x) for s, x in honest.items()]
        for site, fn in make.items():
            updates.append(_update(site, fn(rnd, history, rng)))
        detector.observe(rnd, [np.zeros(150, np.float32), np.zeros(50, np.float32)], updates)
    return detector


def _rules(detector: FreeRiderDetector) -> list[tuple[str, str]]:
    return [(f.site, f.rule) for f in detector.flags()]


def test_honest_updates_raise_no_flag() -> None:
    for seed in range(5):
        assert _rules(_rounds({}, seed=seed)) == []


def test_returning_the_received_model_is_flagged_every_round() -> None:
    detector = _rounds({"z": lambda rnd, h, rng: np.zeros(DIM)})
    (flag,) = detector.flags()
    assert (flag.site, flag.rule, flag.rounds) == (
        "z",
        "returns_received_model",
        [1, 2, 3, 4, 5, 6],
    )
    # a near-zero update (far below the others' norms) counts as no update too
    tiny = _rounds({"z": lambda rnd, h, rng: 1e-6 * rng.normal(size=DIM)})
    assert _rules(tiny) == [("z", "returns_received_model")]


def test_a_replayed_upload_is_stale_and_a_copy_names_its_original() -> None:
    stale = _rounds({"s": lambda rnd, h, rng: h[0]["a"] * 0.5})
    assert _rules(stale) == [("s", "stale")]
    assert stale.flags()[0].rounds == [2, 3, 4, 5, 6]
    copy = _rounds({"k": lambda rnd, h, rng: h[-1]["b"].copy()})
    (flag,) = copy.flags()
    assert (flag.site, flag.rule) == ("k", "copy")  # b, the original, arrived first
    assert flag.detail == "same as b's update"


def test_noise_is_flagged_and_a_consistent_outlier_is_not() -> None:
    noise = _rounds({"n": lambda rnd, h, rng: rng.normal(size=DIM)})
    assert _rules(noise) == [("n", "noise")]
    scores = noise.noise_scores()["n"]
    z_others, z_own = scores["z_others"], scores["z_own"]
    assert z_others is not None and abs(z_others) < 3
    assert z_own is not None and abs(z_own) < 3
    # non-IID: opposite to the others, but the same direction every round: not noise
    direction = np.random.default_rng(9).normal(size=DIM)
    outlier = _rounds({"o": lambda rnd, h, rng: direction + 0.3 * rng.normal(size=DIM)})
    assert _rules(outlier) == []


def test_one_vanishing_update_in_six_rounds_is_not_free_riding() -> None:
    once = _rounds({"v": lambda rnd, h, rng: np.zeros(DIM) if rnd == 1 else h[-1]["a"] + 1.0})
    assert ("v", "returns_received_model") not in _rules(once)
    half = _rounds({"v": lambda rnd, h, rng: np.zeros(DIM) if rnd % 2 else h[-1]["a"] + 1.0})
    assert ("v", "returns_received_model") in _rules(half)


def test_detection_is_refused_where_individual_updates_are_hidden() -> None:
    assert detection_unsupported_reason(small_config()) is None
    secure = small_config(secure_aggregation={"enabled": True})
    reason = detection_unsupported_reason(secure)
    assert reason is not None and "secure aggregation hides the individual updates" in reason
    summary = {"skipped": reason}
    assert flagged_sites(summary) == set()
    assert free_rider_lines(summary).startswith("free-rider detection skipped: secure")
    median = small_config(robust={"rule": "median"})
    assert "replaces the aggregation" in str(detection_unsupported_reason(median))


def test_lines_name_each_flag_and_its_zero_share() -> None:
    summary = _rounds({"z": lambda rnd, h, rng: np.zeros(DIM)}).summary()
    assert flagged_sites(summary) == {"z"}
    assert free_rider_lines(summary) == (
        "free rider: z (returns_received_model, rounds 1..6 (6 rounds)): update norm 0; "
        "reward share 0"
    )
    assert free_rider_lines(_rounds({}).summary()) == "free-rider detection: no site flagged"
    tiny = _rounds({"z": lambda rnd, h, rng: 1e-6 * rng.normal(size=DIM)}).flags()
    assert tiny[0].detail == "update norm at most 0.001 x the others' median"


def test_a_site_seen_once_has_no_noise_verdict() -> None:
    detector = _rounds({"n": lambda rnd, h, rng: rng.normal(size=DIM)}, rounds=1)
    assert detector.noise_scores()["n"]["z_own"] is None
    assert _rules(detector) == []


def test_the_noise_cosine_is_taken_with_the_mean_of_every_other_update_of_the_round() -> None:
    """Each site's leave-one-out mean, derived from the round's total, is the mean of the
    other updates as sent (float32), a zero update and one 10^4 times larger included."""
    rng = np.random.default_rng(3)
    sent = {s: rng.normal(size=DIM) for s in "abcd"}
    sent["big"] = 1e4 * rng.normal(size=DIM)
    sent["zero"] = np.zeros(DIM)
    detector = FreeRiderDetector()
    updates = [_update(s, x) for s, x in sent.items()]
    detector.observe(1, [np.zeros(150, np.float32), np.zeros(50, np.float32)], updates)
    as_sent = {s: x.astype(np.float32).astype(np.float64) for s, x in sent.items()}
    for site, x in as_sent.items():
        if site == "zero":  # no direction: no noise evidence
            assert site not in detector.evidence
            continue
        mean = np.mean([y for other, y in as_sent.items() if other != site], axis=0)
        expected = x @ mean / (np.linalg.norm(x) * np.linalg.norm(mean))
        (cosine,) = detector.evidence[site].others
        assert cosine == pytest.approx(expected, rel=1e-9, abs=1e-12)
    alone = FreeRiderDetector()
    alone.observe(1, [np.zeros(150, np.float32), np.zeros(50, np.float32)], updates[:1])
    assert alone.evidence["a"].others == []
