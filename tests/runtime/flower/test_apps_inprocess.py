"""ServerApp + ClientApp driven in-process through a fake Grid (fast, no Ray).

The fake Grid pickles every message and context on the way, as Flower's Ray transport does,
so state that only lives in a worker's memory would be lost here too.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from medsilo.config import RunConfig
from medsilo.data.base import ArrayData, FederatedData, SiteData
from medsilo.runtime.flower import (
    FlowerRun,
    FlowerRunError,
    make_client_app,
    make_server_app,
    run_flower_simulation,
)
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import FederationResult, run_federation

from ...conftest import small_config, synthetic_federation
from ..test_rounds import Malformed


@pytest.fixture(autouse=True)
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages take their run and sender from here; run_simulation sets it the same way."""
    for attr, value in [("_run_id", 1), ("_task_id", 1), ("_node_id", 0)]:
        monkeypatch.setattr(TaskIdentity, attr, value)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: extra intra-op threads only add scheduling waits on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeGrid(Grid):
    """Delivers each message to the ClientApp of its node, like the simulation runtime."""

    def __init__(
        self, client_app: ClientApp, num_nodes: int, drop: set[tuple[int, str]] | None = None
    ):
        self.client_app = client_app
        self.node_ids = [1000 + 17 * i for i in range(num_nodes)]  # not 0..n-1 on purpose
        self.contexts = {
            node: Context(
                run_id=1,
                node_id=node,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config={},
            )
            for i, node in enumerate(self.node_ids)
        }
        self.drop = drop or set()
        self.sent: list[str] = []

    def set_run(self, run: object) -> None:  # type: ignore[override]
        pass

    @property
    def run(self) -> object:  # type: ignore[override]
        raise NotImplementedError

    def create_message(  # type: ignore[override]
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl=None
    ) -> Message:
        return Message(content, dst_node_id=dst_node_id, message_type=message_type)

    def get_node_ids(self) -> list[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        replies = []
        # Serve in reverse order: the server must not depend on reply order.
        for msg in reversed(list(messages)):
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            node = msg.metadata.dst_node_id
            self.sent.append(f"{msg.metadata.message_type}->{node}")
            if (node, msg.metadata.message_type) in self.drop:
                continue
            context = pickle.loads(pickle.dumps(self.contexts[node]))
            reply = self.client_app(pickle.loads(pickle.dumps(msg)), context)
            self.contexts[node] = context
            replies.append(pickle.loads(pickle.dumps(reply)))
        return replies


def run_in_process(
    cfg: RunConfig, fed: FederatedData, drop: set[tuple[int, str]] | None = None
) -> tuple[FlowerRun, FakeGrid]:
    out = FlowerRun()
    server = make_server_app(cfg, PreparedFederation.build(cfg, fed), out)
    grid = FakeGrid(make_client_app(cfg, fed), len(fed.sites), drop)
    server(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    return out, grid


def assert_same_run(flower: FlowerRun, engine: FederationResult, tol: float = 0.0) -> None:
    assert flower.weights is not None
    for a, b in zip(flower.weights, engine.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in engine.rounds]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in flower.rounds] == strip
    assert set(flower.site_states) == set(engine.site_states)
    for site, state in engine.site_states.items():
        assert set(flower.site_states[site]) == set(state)
        for key, arrays in state.items():
            for a, b in zip(flower.site_states[site][key], arrays, strict=True):
                np.testing.assert_array_equal(a, b)
    for site, weights in engine.site_weights.items():
        for a, b in zip(flower.site_weights[site], weights, strict=True):
            np.testing.assert_array_equal(a, b)


TRAIN = {"rounds": 4, "local_steps": 6, "batch_size": 8, "lr": 0.1}
# One site on a slow link and on an SGX platform with a known exploitable CVE.
SITES = {
    "overrides": {
        "h2": {
            "network": {"uplink_mbps": 1.0, "latency_ms": 200.0},
            "platform": {"kind": "sgx", "known_vulnerabilities": ["CVE-2018-3615"]},
        }
    }
}


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithm": {"name": "fedavg"}},
        {"algorithm": {"name": "fedprox", "mu": 0.1}},
        {"algorithm": {"name": "scaffold"}, "training": TRAIN | {"fraction": 0.5}},
        {"algorithm": {"name": "fednova"}, "evaluation": {"every": 2}},
        {"algorithm": {"name": "ditto", "lam": 0.1}, "training": TRAIN | {"fraction": 0.5}},
        {
            "server_optimizer": {"name": "adam", "lr": 0.05},
            "training": TRAIN | {"optimizer": "adam"},
        },
        {"algorithm": {"name": "ccpgd", "lam": 0.05, "mu": 0.01, "kappa": 2.0}, "sites": SITES},
        {"algorithm": {"name": "dp_fedavg", "clip": 0.5, "noise_multiplier": 0.3}},
        {
            "algorithm": {
                "name": "dp_fedavg",
                "noise_multiplier": "auto",
                "noise": "local",
                "adaptive_clip": {"count_stddev": 2.0},
            },
            "privacy": {"target_epsilon": 5.0},
        },
        {
            "algorithm": {"name": "fedprox", "mu": 0.1},
            "privacy": {"dp_sgd": {"noise_multiplier": 1.0}, "target_epsilon": 3.5},
            "evaluation": {"every": 3},
        },
        {
            "robust": {"rule": "trimmed_mean", "trim": 0.25},
            "attack": {"kind": "sign_flip", "sites": ["h3"], "scale": 10.0},
        },
        {
            "robust": {"rule": "multi_krum", "f": 0, "m": 3},
            "attack": {"kind": "label_flip", "sites": ["h2"]},
            "compression": {"codec": "topk", "k": 0.5},
        },
        {
            "attack": {"kind": "gaussian", "sites": ["h1"], "std": 0.1},
            "compression": {"codec": "qsgd", "levels": 2},
            "robust": {"rule": "norm_bound", "max_norm": 0.5},
        },
        {
            "attack": {"kind": "backdoor", "sites": ["h0"], "trigger_size": 2, "boost": 2.0},
            "compression": {"codec": "int8"},
        },
        {
            "algorithm": {"name": "scaffold"},
            "robust": {"rule": "krum", "f": 0},
            "compression": {"codec": "fp16"},
        },
    ],
    ids=[
        "fedavg",
        "fedprox",
        "scaffold-partial",
        "fednova",
        "ditto-partial",
        "fedadam",
        "ccpgd-exposed-site",
        "dp-fedavg",
        "dp-fedavg-adaptive-local-auto",
        "dp-sgd-fedprox-budget-stop",
        "trimmed-mean-vs-sign-flip",
        "multi-krum-topk-vs-label-flip",
        "qsgd-norm-bound-vs-gaussian",
        "int8-backdoor",
        "scaffold-krum-fp16",
    ],
)
def test_flower_apps_reproduce_the_engine_exactly(overrides: dict) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(**({"training": TRAIN} | overrides))
    flower, _ = run_in_process(cfg, fed)
    assert_same_run(flower, run_federation(cfg, fed))
    assert flower.ready_at is not None and flower.finished_at is not None


def test_flower_rejects_a_malformed_update_exactly_like_the_engine() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN | {"min_sites": 4})
    algo = Malformed("nan", bad="h1", rounds={2})
    out = FlowerRun()
    server = make_server_app(cfg, PreparedFederation.build(cfg, fed), out, algorithm=algo)
    grid = FakeGrid(make_client_app(cfg, fed, algorithm=algo), len(fed.sites))
    server(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    assert_same_run(out, run_federation(cfg, fed, algorithm=algo))
    assert [r["skipped"] for r in out.rounds] == [False, True, False, False]
    assert out.rounds[1]["rejected"][0]["site"] == "h1"


def image_federation(num_sites: int = 3, n: int = 40) -> FederatedData:
    rng = np.random.default_rng(1)
    sites = []
    for i in range(num_sites):
        x = (rng.normal(size=(n, 1, 8, 8)) + 0.5 * i).astype(np.float32)
        y = (x.mean(axis=(1, 2, 3)) > 0.5 * i).astype(np.int64)
        sites.append(SiteData(f"s{i}", ArrayData(x[:30], y[:30]), ArrayData(x[30:], y[30:])))
    return FederatedData("img", sites, ArrayData.concat([s.test for s in sites]), 2, "binary")


def test_fedbn_keeps_norm_layers_per_site() -> None:
    fed = image_federation()
    cfg = small_config(
        algorithm={"name": "fedbn"},
        model={"name": "cnn_bn"},
        training={"rounds": 2, "local_steps": 3, "batch_size": 8, "lr": 0.05},
    )
    flower, _ = run_in_process(cfg, fed)
    engine = run_federation(cfg, fed)
    assert_same_run(flower, engine, tol=1e-6)
    assert all("norm" in state for state in flower.site_states.values())


def test_a_failing_site_is_named_in_the_error() -> None:
    fed = synthetic_federation()
    bad = fed.sites[1]
    broken = SiteData(bad.name, ArrayData(bad.train.x[:, :4].copy(), bad.train.y), bad.test)
    fed = FederatedData(fed.name, [fed.sites[0], broken, fed.sites[2]], fed.test, 2, "binary")
    with pytest.raises(FlowerRunError, match=r"round 1 \(train\): site 'h1' failed: RuntimeError"):
        run_in_process(small_config(), fed)


@pytest.mark.parametrize(
    ("message_type", "expected"),
    [
        ("train", r"round 1 \(train\): site\(s\) \['h2'\] did not reply"),
        ("query", r"no node answered for site\(s\) \['h2'\]"),
    ],
)
def test_a_silent_site_is_named_in_the_error(message_type: str, expected: str) -> None:
    fed = synthetic_federation()
    cfg = small_config()
    silent = FakeGrid(make_client_app(cfg, fed), 3).node_ids[2]
    with pytest.raises(FlowerRunError, match=expected):
        run_in_process(cfg, fed, drop={(silent, message_type)})


def test_every_site_is_asked_who_it_is_once_then_only_sampled_sites_train() -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=TRAIN | {"fraction": 0.5}, evaluation={"every": 10})
    flower, grid = run_in_process(cfg, fed)
    kinds = [s.split("->")[0] for s in grid.sent]
    assert kinds.count("query") == 4
    assert kinds.count("train") == sum(len(r["sites"]) for r in flower.rounds) == 8
    assert kinds.count("evaluate") == 4  # only the last round evaluates


@pytest.mark.parametrize("baseline", ["pooled", "local"])
def test_baselines_are_refused(baseline: str) -> None:
    cfg = small_config(algorithm={"name": baseline})
    with pytest.raises(ValueError, match="baseline"):
        run_flower_simulation(cfg, synthetic_federation())
    with pytest.raises(ValueError, match="baseline"):
        make_server_app(cfg, PreparedFederation.build(cfg, synthetic_federation()), FlowerRun())


@pytest.mark.parametrize(
    "overrides",
    [
        {"training": TRAIN | {"fraction": 0.75}},  # the site left out evaluates only
        {"algorithm": {"name": "ditto", "lam": 0.1}},  # personal models, state returned last
        {"secure_aggregation": {"enabled": True}},  # keeps its own evaluation exchange
    ],
    ids=["partial-cohort", "ditto", "secure-aggregation"],
)
def test_train_with_evaluation_over_flower_is_the_engines_run(overrides: dict[str, Any]) -> None:
    from medsilo.runtime.factory import build_run_algorithm
    from medsilo.runtime.flower.server_app import (
        CoordinatorOptions,
        CoordinatorView,
        run_coordinator,
    )

    fed = synthetic_federation(num_sites=4)
    cfg = small_config(**({"training": TRAIN} | overrides))
    prep = PreparedFederation.build(cfg, fed)
    out = FlowerRun()
    grid = FakeGrid(make_client_app(cfg, fed), len(fed.sites), None)
    options = CoordinatorOptions(train_with_evaluation=True)
    algorithm = build_run_algorithm(cfg, len(fed.sites))
    run_coordinator(grid, cfg, CoordinatorView.of(prep), algorithm, out, None, options)
    assert_same_run(out, run_federation(cfg, fed))
