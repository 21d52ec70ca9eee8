"""Train-with-evaluation in the round loop: a round's evaluation rides on the next round's
training exchange (a deployed coordinator's one exchange per round), and the records, their
order and the checkpoints are exactly those of evaluating in an exchange of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medsilo.algorithms.base import SiteState
from medsilo.governance.checkpoint import CheckpointWriter, checkpoint_path, load_checkpoint
from medsilo.governance.config import CheckpointConfig
from medsilo.runtime.factory import build_run_algorithm
from medsilo.runtime.federation import RoundLoop, TrainingExchange
from medsilo.runtime.inprocess import InProcessSites
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundFields, RoundRecord
from medsilo.types import Weights

from ..conftest import small_config, synthetic_federation


def run_loop(overrides: dict[str, Any], merged: bool, directory: Path) -> tuple[list[Any], int]:
    """Records (without ``wall_s``) and how many evaluation exchanges the loop asked for;
    each record is checked to be handed over before its round's checkpoint exists."""
    cfg = small_config(**overrides)
    prep = PreparedFederation.build(cfg, synthetic_federation())
    algorithm = build_run_algorithm(cfg, len(prep.fed.sites))
    sites = InProcessSites(cfg, prep, algorithm)
    evaluations = 0  # exchanges of their own

    class Counted:
        def train(self, *args: Any, **kwargs: Any) -> TrainingExchange:
            return sites.train(*args, **kwargs)

        def evaluate(self, rnd: int, weights: Weights, last: bool) -> RoundFields:
            nonlocal evaluations
            evaluations += 1
            return sites.evaluate(rnd, weights, last)

        def site_states(self) -> dict[str, SiteState]:
            return sites.site_states()

        def restore(self, states: dict[str, SiteState]) -> None:
            sites.restore(states)

    seen: list[dict[str, Any]] = []

    def on_round(record: RoundRecord) -> None:
        assert not checkpoint_path(directory, record.round).exists()  # record first
        if record.round > 1:
            assert checkpoint_path(directory, record.round - 1).exists()
        seen.append({k: v for k, v in record.to_json().items() if k != "wall_s"})

    loop = RoundLoop(
        cfg,
        algorithm,
        sites.names,
        prep.layout,
        prep.initial_weights,
        sites.train_sizes,
        on_round,
        CheckpointWriter(directory, cfg, CheckpointConfig(every=1, keep="all")),
        train_with_evaluation=merged,
    )
    _, records = loop.run(Counted())
    assert [r.round for r in records] == [r["round"] for r in seen]
    return seen, evaluations


@pytest.mark.parametrize(
    ("overrides", "evaluated", "separate", "merged"),
    [
        # Ditto: each site evaluates its personal model, which its training changes, so
        # evaluating after the next round's training would give other numbers.
        ({"algorithm": {"name": "ditto", "lam": 0.1}}, [1, 2, 3, 4], 4, 1),
        # A cohort of 2 of 3 (the third site evaluates only) and evaluation every 2 rounds.
        (
            {
                "training": {
                    "rounds": 4,
                    "local_steps": 5,
                    "batch_size": 8,
                    "lr": 0.1,
                    "fraction": 0.5,
                    "min_sites": 2,
                },
                "evaluation": {"every": 2, "bootstrap_replicates": 20},
            },
            [2, 4],
            2,
            1,
        ),
    ],
)
def test_evaluation_in_the_next_training_exchange_gives_the_same_records(
    tmp_path: Path, overrides: dict[str, Any], evaluated: list[int], separate: int, merged: int
) -> None:
    overrides = {"training": {"rounds": 4, "local_steps": 5, "batch_size": 8, "lr": 0.1}} | (
        overrides
    )
    plain, plain_evaluations = run_loop(overrides, False, tmp_path / "plain")
    folded, folded_evaluations = run_loop(overrides, True, tmp_path / "merged")
    assert folded == plain
    assert [r["round"] for r in plain if r.get("test") is not None] == evaluated
    assert (plain_evaluations, folded_evaluations) == (separate, merged)
    for rnd in range(1, 5):
        a = load_checkpoint(checkpoint_path(tmp_path / "plain", rnd))
        b = load_checkpoint(checkpoint_path(tmp_path / "merged", rnd))
        assert (a.round, a.sim_clock_s, a.contributed) == (b.round, b.sim_clock_s, b.contributed)
        for x, y in zip(a.weights, b.weights, strict=True):
            assert np.array_equal(x, y)
        assert a.site_states.keys() == b.site_states.keys()
        for site, state in a.site_states.items():
            assert state.keys() == b.site_states[site].keys()
            for name, arrays in state.items():
                for x, y in zip(arrays, b.site_states[site][name], strict=True):
                    assert np.array_equal(x, y)
