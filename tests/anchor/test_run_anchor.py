"""A run anchored on the in-process chain: every round's model hash and ledger head on chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medsilo.anchor import site_check
from medsilo.anchor.chain import AnchorError
from medsilo.config import ConfigError
from medsilo.experiment import run_experiment
from medsilo.ledger.digest import weights_sha256
from medsilo.ledger.store import open_readonly, read_records
from medsilo.runtime.round_record import read_rounds
from medsilo.types import Weights

from ..conftest import small_config

TRAINING = {"rounds": 3, "local_steps": 3, "batch_size": 8, "lr": 0.1}


def test_every_round_is_anchored_and_every_site_acknowledges_the_final_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final_checks: list[str] = []  # the final model is hashed once for all acknowledgements

    def counted(weights: Weights) -> str:
        final_checks.append(weights_sha256(weights))
        return final_checks[-1]

    monkeypatch.setattr(site_check, "weights_sha256", counted)
    cfg = small_config(training=TRAINING, anchor={"rpc": "in-process"})
    run = run_experiment(cfg, tmp_path / "run").run_dir
    anchor = json.loads((run / "anchor.json").read_text())
    rounds = read_rounds(run / "rounds.jsonl")
    ledger_rounds = [
        r for r in read_records(open_readonly(run / "ledger.sqlite")) if r.kind == "round"
    ]
    assert [a["round"] for a in anchor["anchored"]] == [r.round for r in rounds] == [1, 2, 3]
    assert [a["model_sha256"] for a in anchor["anchored"]] == [
        r.global_model_sha256 for r in rounds
    ]
    assert [a["ledger_head"] for a in anchor["anchored"]] == [r.hash for r in ledger_rounds]
    final = np.load(run / "final_weights.npz")
    final_sha = weights_sha256([final[k] for k in final.files])
    assert final_sha == rounds[-1].global_model_sha256
    assert final_checks == [final_sha]
    sites = ["cleveland", "hungarian", "switzerland", "va"]
    assert sorted(anchor["acknowledged"]) == sorted(anchor["institutions"]) == sites
    assert all(a["round"] == 3 for a in anchor["acknowledged"].values())
    assert anchor["mean_gas_per_round"] > 21_000 and anchor["deploy_gas"] > 0


def test_a_node_that_does_not_answer_stops_the_run_before_anything_is_written(
    tmp_path: Path,
) -> None:
    cfg = small_config(training=TRAINING, anchor={"rpc": "http://127.0.0.1:9"})
    with pytest.raises(AnchorError, match="no Ethereum JSON-RPC node answers"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_institutions_must_be_sites_of_the_federation(tmp_path: Path) -> None:
    cfg = small_config(
        training=TRAINING,
        anchor={"rpc": "in-process", "institutions": {"mayo": "0x" + "22" * 20}},
    )
    with pytest.raises(AnchorError, match=r"unknown site\(s\) \['mayo'\]"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("anchor", "message"),
    [
        ({"rpc": "ganache"}, "http"),
        ({"rpc": "in-process", "contract": "0x1234"}, "not an Ethereum address"),
        ({"rpc": "in-process", "institutions": {"va": "nope"}}, "not an Ethereum address"),
    ],
)
def test_bad_anchor_settings_are_config_errors(anchor: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(anchor=anchor)
