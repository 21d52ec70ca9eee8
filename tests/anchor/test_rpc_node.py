"""Anchoring through a real JSON-RPC node (ganache on loopback), as a consortium chain would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medsilo.anchor.chain import AnchorError, connect
from medsilo.anchor.registry import FederationRegistry
from medsilo.experiment import run_experiment
from medsilo.runtime.round_record import read_rounds

from ..conftest import small_config
from .rpc_node import ganache_node

TRAINING = {"rounds": 3, "local_steps": 3, "batch_size": 8, "lr": 0.1}
SITES = ["cleveland", "hungarian", "switzerland", "va"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ganache_node(tmp_path_factory.mktemp("ganache") / "ganache.log") as url:
        yield url


@pytest.mark.slow
def test_a_run_anchors_on_a_node_that_outlives_it(node: str, tmp_path: Path) -> None:
    w3 = connect(node)
    accounts = w3.eth.accounts
    institutions = {site: accounts[i + 1] for i, site in enumerate(SITES)}
    anchor = {"rpc": node, "institutions": institutions}
    run = run_experiment(small_config(training=TRAINING, anchor=anchor), tmp_path / "a").run_dir
    report = json.loads((run / "anchor.json").read_text())
    # the chain outlives the run: read it afresh, as any site or auditor would
    registry = FederationRegistry.at(connect(node), report["contract"], accounts[5])
    rounds = read_rounds(run / "rounds.jsonl")
    assert registry.round_count == 3
    for record in rounds:
        anchored = registry.anchored(record.round)
        assert anchored is not None and anchored.model_sha256 == record.global_model_sha256
    for site, account in institutions.items():
        assert registry.institution(account) == site
        assert registry.acknowledged(3, account)

    # the same registry cannot take a second run, nor a coordinator that is not its own
    again = {**anchor, "contract": report["contract"]}
    with pytest.raises(AnchorError, match="already holds 3 rounds"):
        run_experiment(small_config(training=TRAINING, anchor=again), tmp_path / "b")
    fresh, _ = FederationRegistry.deploy(w3, accounts[0], "ab" * 32)
    other = {"rpc": node, "contract": fresh.address, "account": accounts[1]}
    with pytest.raises(AnchorError, match="not by this coordinator's account"):
        run_experiment(small_config(training=TRAINING, anchor=other), tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
