"""Free-rider detection on the four heart-disease hospitals, ten seeds per behaviour.

Detection rate: the simulated free rider is flagged, by its rule, in 10 of 10 seeds, and
nobody else is. False positives: in 10 honest federations no site is flagged.
"""

from __future__ import annotations

import pytest

from medsilo.contribution.free_riders import FreeRiderDetector
from tests.contribution.heart_free_riders import BEHAVIOURS, SEEDS, SITES, detect, heart_config


@pytest.fixture(scope="module")
def honest() -> list[FreeRiderDetector]:
    return [detect(heart_config(seed)) for seed in SEEDS]


def test_no_honest_hospital_is_flagged_in_ten_seeds(honest: list[FreeRiderDetector]) -> None:
    flagged = [
        (seed, f.site, f.rule) for seed, d in zip(SEEDS, honest, strict=True) for f in d.flags()
    ]
    assert flagged == []
    for detector in honest:
        scores = detector.noise_scores()
        assert sorted(scores) == SITES
        # every honest hospital's updates keep a direction from round to round
        z_own = [s["z_own"] for s in scores.values()]
        assert all(z is not None and abs(z) > 2 * detector.settings.noise_z for z in z_own)


@pytest.mark.parametrize("behaviour", ["returns_received_model", "noise"])
def test_free_rider_and_noise_site_detected_in_ten_of_ten_seeds(behaviour: str) -> None:
    attack, site, rule = BEHAVIOURS[behaviour]
    detected = 0
    for seed in SEEDS:
        flags = detect(heart_config(seed, attack)).flags()
        assert {f.site for f in flags} <= {site}, (seed, flags)  # nobody else
        detected += any(f.site == site and f.rule == rule for f in flags)
    assert detected == len(SEEDS)


@pytest.mark.parametrize("behaviour", ["stale", "copy"])
def test_stale_and_copying_sites_are_flagged_and_the_copied_site_is_not(behaviour: str) -> None:
    attack, site, rule = BEHAVIOURS[behaviour]
    for seed in range(3):
        flags = detect(heart_config(seed, attack)).flags()
        assert [(f.site, f.rule) for f in flags] == [(site, rule)], (seed, flags)
        # a stale site trains honestly once (round 1), then re-sends that upload
        assert flags[0].rounds == ([2, 3, 4, 5] if behaviour == "stale" else [1, 2, 3, 4, 5])
