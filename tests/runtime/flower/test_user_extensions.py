"""What a user adds without editing medsilo, run end to end through the engine and the
Flower apps (docs/extending.md): a dataset named by an import path in the config."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.config import ConfigError
from medsilo.data.base import ArrayData, CentralData, DataFormatError, FederatedData
from medsilo.data.registry import build_federation
from medsilo.imports import ImportPathError
from medsilo.runtime.simulation import run_federation

from ...conftest import small_config, synthetic_federation
from .test_apps_inprocess import (  # noqa: F401  (task_identity, one_thread: fixtures)
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
