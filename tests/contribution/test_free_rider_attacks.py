"""The simulated free riders (attack kinds ``free_ride``, ``stale``, ``copy``) and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.attacks.updates import STALE_UPDATE_KEY, RoundUploads, free_rider_delta
from medsilo.config import ConfigError, CopyAttack
from medsilo.runtime.rounds import SiteSteps
from medsilo.types import Update
from tests.conftest import small_config

SITES = ["cleveland", "hungarian", "switzerland", "va"]


def _delta(value: float) -> list[np.ndarray]:
    return [np.full((2, 3), value, np.float32), np.full(2, value, np.float32)]


def _steps(attack: dict[str, object]) -> SiteSteps:
    return SiteSteps(small_config(attack=attack), SITES, 2)


def test_free_ride_sends_a_zero_delta() -> None:
    steps = _steps({"kind": "free_ride", "sites": ["va"]})
    sent = steps.upload(Update("va", _delta(0.5), 10, 1), {}, 1, 3)
    assert all(not d.any() for d in sent.delta)
    honest = steps.upload(Update("cleveland", _delta(0.5), 10, 1), {}, 1, 0)
    assert all((d == 0.5).all() for d in honest.delta)


def test_stale_resends_its_first_upload_from_its_site_state() -> None:
    steps = _steps({"kind": "stale", "sites": ["hungarian"]})
    state: dict[str, list[np.ndarray]] = {}
    first = steps.upload(Update("hungarian", _delta(1.0), 10, 1), state, 1, 1)
    later = steps.upload(Update("hungarian", _delta(7.0), 10, 1), state, 2, 1)
    assert all((d == 1.0).all() for d in first.delta + later.delta)
    assert STALE_UPDATE_KEY in state


def test_copy_sends_its_sources_update_of_the_round() -> None:
    steps = _steps({"kind": "copy", "sites": ["va"], "source": "cleveland"})
    steps.upload(Update("cleveland", _delta(2.0), 10, 1), {}, 4, 0)
    copied = steps.upload(Update("va", _delta(9.0), 10, 1), {}, 4, 3)
    assert all((d == 2.0).all() for d in copied.delta)
    # nothing from the source this round (it was dropped): the copier returns the model
    attack = steps.cfg.attack
    assert isinstance(attack, CopyAttack)
    nothing = free_rider_delta(_delta(9.0), attack, {}, RoundUploads(), 5)
    assert all(not d.any() for d in nothing)


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        ({"source": "nowhere", "sites": ["va"]}, "attack.source 'nowhere' is not a site"),
        ({"source": "va", "sites": ["va"]}, "cannot also be a copying site"),
        ({"source": "va", "sites": ["cleveland"]}, "come before attack.source 'va'"),
    ],
)
def test_copy_source_must_be_another_site_that_trains_first(
    attack: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _steps({"kind": "copy", **attack})


def test_copy_needs_a_source() -> None:
    with pytest.raises(ConfigError, match="source"):
        small_config(attack={"kind": "copy", "sites": ["va"]})
