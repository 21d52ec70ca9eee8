"""FedAsync and FedBuff over Flower (``runtime/flower/asynchronous_server.py``).

The ServerApp drives the engine's :class:`AsyncCoordinator` with push/pull messages. With a
grid that answers every in-flight message at the next pull (a deterministic schedule: all
replies of a batch arrive together), the Flower run takes the engine's steps and ends with
the engine's model and records. With a grid that hands back one reply per pull, in an order
the simulated clock would not give, the run still completes with well-formed records.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from medsilo.config import RunConfig
from medsilo.data.base import FederatedData
from medsilo.runtime.flower import FlowerRun, make_client_app, make_server_app
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation

from ...conftest import small_config, synthetic_federation
from .test_apps_inprocess import one_thread, task_identity  # noqa: F401  (autouse fixtures)


class PushPullGrid(Grid):
    """Each pushed message is answered by its node's ClientApp when it is pulled.

    ``per_pull``: at most this many replies per pull (``None``: every one pulled), taken
    from the *newest* pushed messages first, so later dispatches overtake earlier ones."""

    def __init__(self, client_app: ClientApp, num_nodes: int, per_pull: int | None = None):
        self.client_app = client_app
        self.contexts = {
            1000 + 17 * i: Context(
                run_id=1,
                node_id=1000 + 17 * i,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config={},
            )
            for i in range(num_nodes)
        }
        self.per_pull = per_pull
        self.pending: dict[str, Message] = {}
        self.trained: list[int] = []  # the node of every train message answered, in order

    def set_run(self, run: object) -> None:  # type: ignore[override]
        pass

    @property
    def run(self) -> object:  # type: ignore[override]
        raise NotImplementedError

    def create_message(self, *args: object, **kwargs: object) -> Message:  # type: ignore[override]
        raise NotImplementedError

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        ids = []
        for msg in messages:
            mid = uuid.uuid4().hex
            msg.metadata.__dict__["_message_id"] = mid
            self.pending[mid] = msg
            ids.append(mid)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        wanted = [m for m in reversed(list(self.pending)) if m in set(message_ids)]
        if self.per_pull is not None:
            wanted = wanted[: self.per_pull]
        replies = []
        for mid in wanted:
            msg = self.pending.pop(mid)
            node = msg.metadata.dst_node_id
            if msg.metadata.message_type == "train":
                self.trained.append(node)
            context = pickle.loads(pickle.dumps(self.contexts[node]))
            reply = self.client_app(pickle.loads(pickle.dumps(msg)), context)
            self.contexts[node] = context
            replies.append(pickle.loads(pickle.dumps(reply)))
        return replies

    def send_and_receive(  # type: ignore[override]
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        ids = self.push_messages(messages)
        replies: list[Message] = []
        while len(replies) < len(ids):
            replies += self.pull_messages(ids)
        return replies


def run_flower(
    cfg: RunConfig, fed: FederatedData, per_pull: int | None = None
) -> tuple[FlowerRun, PushPullGrid]:
    out = FlowerRun()
    server = make_server_app(cfg, PreparedFederation.build(cfg, fed), out)
    grid = PushPullGrid(make_client_app(cfg, fed), len(fed.sites), per_pull)
    context = Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={})
    server(grid, context)
    return out, grid


def without_wall(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


ASYNC_TRAIN = {"rounds": 3, "local_steps": 4, "batch_size": 8, "lr": 0.1}


@pytest.mark.parametrize(
    "asynchrony",
    [
        {"mode": "fedbuff", "buffer_size": 4},  # K = n: each buffer is one update per site
        {"mode": "fedbuff", "buffer_size": 3},  # stale updates: K < n
        {"mode": "fedasync", "alpha": 0.5},
    ],
    ids=["fedbuff-k4", "fedbuff-k3", "fedasync"],
)
def test_async_over_flower_takes_the_engines_steps(asynchrony: dict[str, Any]) -> None:
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=ASYNC_TRAIN, asynchrony=asynchrony)
    flower, grid = run_flower(cfg, fed)
    engine = run_federation(cfg, fed)
    assert flower.weights is not None
    for a, b in zip(flower.weights, engine.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert without_wall(flower.rounds) == without_wall(engine.rounds)
    assert len(grid.trained) == engine.rounds[-1]["updates_received"] == 12
    if asynchrony.get("buffer_size") == 3:  # some updates were stale when they landed
        assert any(tau > 0 for r in engine.rounds for tau in r["staleness"])


def test_replies_out_of_order_still_give_a_complete_well_formed_run() -> None:
    """One reply per pull, newest task first: the real order decides, not the clock."""
    fed = synthetic_federation(num_sites=4)
    cfg = small_config(training=ASYNC_TRAIN, asynchrony={"mode": "fedbuff", "buffer_size": 2})
    flower, grid = run_flower(cfg, fed, per_pull=1)
    records = flower.rounds
    assert [r.round for r in records] == list(range(1, len(records) + 1))
    assert records[-1].stop_reason == "updates"
    assert records[-1]["updates_received"] == 12 == len(grid.trained)
    assert all(len(r["staleness"]) == 2 for r in records)
    assert [r["model_version"] for r in records] == list(range(1, 7))
    clocks = [r["sim_clock_s"] for r in records]
    assert clocks == sorted(clocks)
    assert records[-1].test is not None
    assert flower.weights is not None and all(np.isfinite(w).all() for w in flower.weights)
