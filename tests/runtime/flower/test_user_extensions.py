"""What a user adds without editing medsilo, run end to end through the engine and the
Flower apps (docs/extending.md): a dataset and a metric named by import paths in the config,
and an algorithm class handed to the runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from flwr.app import Context, RecordDict

from medsilo.algorithms.base import ServerState
from medsilo.algorithms.capabilities import Capabilities
from medsilo.algorithms.fedavg import FedAvg
from medsilo.config import ConfigError
from medsilo.data.base import ArrayData, CentralData, DataFormatError, FederatedData
from medsilo.data.registry import build_federation
from medsilo.experiment import run_experiment
from medsilo.imports import ImportPathError
from medsilo.metrics.base import Metric, MetricState, OperatingPoint, Predictions
from medsilo.models.weights import Layout
from medsilo.runtime.flower import FlowerRun, make_client_app, make_server_app
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update, Weights

from ...conftest import small_config, synthetic_federation
from .test_apps_inprocess import (  # noqa: F401  (task_identity, one_thread: fixtures)
    FakeGrid,
    assert_same_run,
    one_thread,
    run_in_process,
    task_identity,
)

HERE = __name__


def hospital_sites() -> FederatedData:
    """A user's own sites, as their loading code would return them."""
    return synthetic_federation(num_sites=3, n=80, d=4, seed=11)


def one_dataset() -> CentralData:
    """A user's single dataset, for medsilo to split over sites."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    train, test = ArrayData(x[:240], y[:240]), ArrayData(x[240:], y[240:])
    return CentralData("mine", train, test, 2, "binary")


def not_data() -> list[int]:
    return [1, 2, 3]


TRAIN = {"rounds": 3, "local_steps": 5, "batch_size": 8, "lr": 0.1}


def test_a_user_dataset_of_sites_trains_in_the_engine_and_the_flower_apps() -> None:
    cfg = small_config(
        data={"dataset": f"{HERE}:hospital_sites", "partition": "natural"}, training=TRAIN
    )
    fed = build_federation(cfg.data, cfg.seed)
    assert fed.site_names == ["h0", "h1", "h2"]
    engine = run_federation(cfg)
    assert engine.rounds[-1]["test"]["n"] == len(fed.test)
    flower, _ = run_in_process(cfg, fed)
    assert_same_run(flower, engine)


def test_a_user_dataset_is_split_by_the_configured_partition() -> None:
    cfg = small_config(
        data={"dataset": f"{HERE}:one_dataset", "partition": "dirichlet", "num_sites": 4},
        training=TRAIN,
    )
    fed = build_federation(cfg.data, cfg.seed)
    assert len(fed.sites) == 4
    assert sum(len(s.train) for s in fed.sites) == 240
    result = run_federation(cfg, fed)
    assert result.rounds[-1]["test"]["accuracy"] > 0.6


@pytest.mark.parametrize(
    ("dataset", "partition", "error", "message"),
    [
        ("no_such_pkg.mod:build", "iid", ImportPathError, "cannot import module 'no_such_pkg"),
        (f"{HERE}:missing", "iid", ImportPathError, "has no attribute 'missing'"),
        (f"{HERE}:not_data", "iid", DataFormatError, "returned list"),
        (f"{HERE}:one_dataset", "natural", DataFormatError, "choose how to split it"),
        (f"{HERE}:hospital_sites", "iid", DataFormatError, "use partition: natural"),
    ],
)
def test_a_bad_user_dataset_is_named_clearly(
    dataset: str, partition: str, error: type[Exception], message: str
) -> None:
    data = {"dataset": dataset, "partition": partition}
    if partition != "natural":
        data["num_sites"] = 2  # type: ignore[assignment]
    cfg = small_config(data=data)
    with pytest.raises(error, match=message):
        build_federation(cfg.data, cfg.seed)


def test_a_dataset_that_is_neither_bundled_nor_an_import_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="dataset"):
        small_config(data={"dataset": "my_data.csv", "partition": "natural"})


class Prevalence(Metric):
    """Share of positive rows: a metric a study adds in its own module."""

    name: ClassVar[str] = "prevalence"

    def state(self, predictions: Predictions) -> MetricState:
        positive = predictions.weights[predictions.labels == 1].sum()
        return {"positive": np.asarray(positive), "rows": np.asarray(predictions.weights.sum())}

    def value(self, state: MetricState, operating_point: OperatingPoint | None = None) -> float:
        rows = float(state["rows"])
        return float(state["positive"]) / rows if rows > 0 else float("nan")


def test_a_user_metric_is_merged_from_site_states_in_the_engine_and_the_flower_apps() -> None:
    cfg = small_config(
        data={"dataset": f"{HERE}:hospital_sites", "partition": "natural"},
        training=TRAIN,
        evaluation={"metrics": ["auroc", f"{HERE}:Prevalence"], "bootstrap_replicates": 10},
    )
    fed = build_federation(cfg.data, cfg.seed)
    engine = run_federation(cfg, fed)
    metrics = engine.rounds[-1].metrics
    assert metrics is not None and metrics["lead"] == "auroc"
    assert metrics["pooled"]["prevalence"] == pytest.approx(float(np.mean(fed.test.y == 1)))
    site = fed.sites[1]
    assert metrics["per_site"][site.name]["prevalence"] == pytest.approx(
        float(np.mean(site.test.y == 1))
    )
    assert "prevalence" in engine.rounds[-1].metric_intervals["pooled"]  # type: ignore[index]
    flower, _ = run_in_process(cfg, fed)
    assert_same_run(flower, engine)


class DampedFedAvg(FedAvg):
    """FedAvg whose coordinator applies half of the mean update: a study's own algorithm."""

    name: ClassVar[str] = "damped_fedavg"
    capabilities: Capabilities = Capabilities(aggregation="custom")

    def aggregate(
        self,
        global_weights: Weights,
        updates: list[Update],
        server_state: ServerState,
        layout: Layout,
        num_sites: int,
    ) -> tuple[Weights, ServerState]:
        delta, state = super().aggregate(global_weights, updates, server_state, layout, num_sites)
        return [(0.5 * d).astype(d.dtype) for d in delta], state


def test_a_user_algorithm_runs_in_the_engine_and_the_flower_apps() -> None:
    cfg = small_config(training=TRAIN)
    fed = synthetic_federation(num_sites=3)
    engine = run_federation(cfg, fed, algorithm=DampedFedAvg())
    fedavg = run_federation(cfg, fed)
    assert not np.array_equal(engine.weights[0], fedavg.weights[0])
    out = FlowerRun()
    server = make_server_app(cfg, PreparedFederation.build(cfg, fed), out, algorithm=DampedFedAvg())
    grid = FakeGrid(make_client_app(cfg, fed, algorithm=DampedFedAvg()), len(fed.sites))
    server(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    assert_same_run(out, engine)
    median = small_config(training=TRAIN, robust={"rule": "median"})
    with pytest.raises(ValueError, match="'damped_fedavg' aggregates its own way"):
        run_federation(median, fed, algorithm=DampedFedAvg())


STEP_CALLS: list[int] = []


def smoothed_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A user's own loss: BCE against labels smoothed towards 0.5."""
    STEP_CALLS.append(int(y.shape[0]))
    target = y * 0.8 + 0.1
    return torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), target)


def not_a_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return 0.5


def test_a_user_training_step_trains_with_the_algorithm_hooks_in_engine_and_flower() -> None:
    fed = synthetic_federation(num_sites=3)
    step = {**TRAIN, "step": f"{HERE}:smoothed_step"}
    STEP_CALLS.clear()
    engine = run_federation(small_config(training=step), fed)
    assert sum(STEP_CALLS) == 3 * 3 * 5 * 8  # rounds x sites x steps x batch
    plain = run_federation(small_config(training=TRAIN), fed)
    assert not np.array_equal(engine.weights[0], plain.weights[0])
    assert engine.rounds[-1]["test"]["accuracy"] > 0.7
    # FedProx's proximal term is added to the user's loss: a large mu holds sites back.
    prox = run_federation(
        small_config(training=step, algorithm={"name": "fedprox", "mu": 5.0}), fed
    )
    assert not np.array_equal(prox.weights[0], engine.weights[0])
    flower, _ = run_in_process(small_config(training=step), fed)
    assert_same_run(flower, engine)


def test_a_bad_training_step_is_named_clearly() -> None:
    fed = synthetic_federation(num_sites=2)
    with pytest.raises(ImportPathError, match="has no attribute 'nothing'"):
        run_federation(small_config(training={**TRAIN, "step": f"{HERE}:nothing"}), fed)
    with pytest.raises(ValueError, match="scalar tensor that requires grad; it returned float"):
        run_federation(small_config(training={**TRAIN, "step": f"{HERE}:not_a_loss"}), fed)


def test_a_missing_training_step_is_refused_before_the_run_folder_exists(tmp_path: Path) -> None:
    cfg = small_config(training={**TRAIN, "step": f"{HERE}:nothing"})
    with pytest.raises(ConfigError, match=r"training.step .* has no attribute 'nothing'"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
