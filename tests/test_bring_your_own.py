"""examples/bring-your-own end to end: the image folders its script writes train through
``medsilo simulate``; a run with loader workers repeats exactly; a user's own torch Dataset
trains through the engine; a deployed site reads only its own folder (docs/bring-your-own.md)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import Dataset
from typer.testing import CliRunner

from medsilo.cli import app
from medsilo.config import load_config
from medsilo.data.base import FederatedData, SiteData, StreamedSplit, concat_splits
from medsilo.data.own_site import load_own_site
from medsilo.data.registry import build_federation
from medsilo.runtime.flower.deployed_site import OWN_DATA, cache_own_data
from medsilo.runtime.simulation import run_federation

from .conftest import small_config
from .data.image_fixtures import striped_site

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bring-your-own"


def _make_images() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_images", EXAMPLE / "make_images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example(tmp_path: Path, per_site: int = 40) -> Path:
    """The example's config and image folders, in ``tmp_path``."""
    _make_images().main(["--out", str(tmp_path / "sites"), "--per-site", str(per_site)])
    shutil.copy(EXAMPLE / "config.yaml", tmp_path / "config.yaml")
    return tmp_path / "config.yaml"


def test_the_example_trains_through_medsilo_simulate(tmp_path: Path) -> None:
    config = _example(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            str(config),
            "--rounds",
            "2",
            "--out",
            str(tmp_path / "suite"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    (summary,) = (tmp_path / "suite").rglob("summary.json")
    run = summary.parent
    for name in ("config.yaml", "rounds.jsonl", "final_weights.npz", "ledger.sqlite"):
        assert (run / name).is_file(), name
    rounds = [json.loads(x) for x in (run / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[-1]["test"]["accuracy"] > 0.75  # two classes: chance is 0.5
    result = json.loads(summary.read_text())
    assert result["complete"] is True and result["sites"] == [
        "hospital_a",
        "hospital_b",
        "hospital_c",
    ]
    report = (run / "data" / "hospital_c_ingestion_report.md").read_text()
    assert "| `images/broken.png` | not a readable pillow file" in report
    assert "left out: 0" in (run / "data" / "hospital_a_ingestion_report.md").read_text()


def test_a_run_with_loader_workers_repeats_exactly(tmp_path: Path) -> None:
    cfg = load_config(_example(tmp_path, per_site=16))
    cfg = cfg.model_copy(
        update={
            "training": cfg.training.model_copy(
                update={"rounds": 2, "local_steps": 2, "loader_workers": 2}
            )
        }
    )
    first, again = run_federation(cfg), run_federation(cfg)
    for a, b in zip(first.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    other = run_federation(cfg.model_copy(update={"seed": 1}))
    assert not all(np.array_equal(a, b) for a, b in zip(first.weights, other.weights, strict=True))


class NoisyStripes(Dataset[tuple[torch.Tensor, int]]):
    """A user's own torch Dataset: 1x8x8 images, class 1 with a bright middle column,
    each item made on request (as if read from the user's storage)."""

    def __init__(self, n: int, seed: int) -> None:
        self.labels = np.random.default_rng(seed).integers(0, 2, n)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(self.seed * 10_000 + index)
        x = 0.3 * torch.randn(1, 8, 8, generator=g)
        label = int(self.labels[index])
        if label:
            x[0, :, 3:5] += 1.0
        return x, label


def torch_dataset_sites() -> FederatedData:
    """The factory a user names in the config (``dataset: "pkg.mod:torch_dataset_sites"``)."""
    sites = []
    for k in range(3):
        train, test = NoisyStripes(48, seed=2 * k), NoisyStripes(16, seed=2 * k + 1)
        sites.append(
            SiteData(
                f"site_{k}",
                StreamedSplit(train, labels=train.labels.astype(np.int64)),
                StreamedSplit(test, labels=test.labels.astype(np.int64)),
            )
        )
    return FederatedData("stripes", sites, concat_splits([s.test for s in sites]), 2, "binary")


def test_a_user_torch_dataset_trains_through_the_engine() -> None:
    cfg = small_config(
        data={"dataset": f"{__name__}:torch_dataset_sites", "partition": "natural"},
        model={"name": "cnn"},
        training={"rounds": 3, "local_steps": 20, "batch_size": 8, "lr": 0.05},
    )
    result = run_federation(cfg)
    assert result.rounds[-1]["test"]["n"] == 48
    assert result.rounds[-1]["test"]["accuracy"] > 0.75


def test_a_deployed_site_reads_only_its_own_folder(tmp_path: Path) -> None:
    cfg = load_config(_example(tmp_path, per_site=12))
    engine = {s.name: s for s in build_federation(cfg.data, cfg.seed).sites}
    x_engine, _ = engine["hospital_b"].test.items[0]  # type: ignore[union-attr]
    own_folder = tmp_path / "at_hospital_b"
    shutil.move(tmp_path / "sites" / "hospital_b", own_folder)
    shutil.rmtree(tmp_path / "sites" / "hospital_a")  # the other hospitals' data is elsewhere
    own = load_own_site(cfg.data, "hospital_b", own_folder, cfg.seed)
    assert own.site_names == ["hospital_b"] and own.streamed and own.input_shape == (1, 32, 32)
    site = own.sites[0]
    assert np.array_equal(site.train.labels, engine["hospital_b"].train.labels)  # type: ignore[union-attr]
    x, _ = site.test.items[0]  # type: ignore[union-attr]
    assert torch.equal(x, x_engine)
    state = tmp_path / "state"
    state.mkdir()
    (state / OWN_DATA).write_bytes(b"an earlier run's arrays")
    cache_own_data(state, own)
    assert not (state / OWN_DATA).exists()  # streamed data is read from the folder, not cached


def test_the_example_config_is_valid_as_shipped() -> None:
    raw = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    assert raw["data"]["dataset"] == "images" and raw["model"] == {"name": "cnn"}
    cfg = load_config(EXAMPLE / "config.yaml")
    assert cfg.data.images is not None
    assert cfg.data.images.sites[0].folder == EXAMPLE / "sites" / "hospital_a"


def test_a_bad_labels_csv_is_refused_by_simulate_before_anything_is_written(
    tmp_path: Path,
) -> None:
    config = _example(tmp_path, per_site=4)
    (tmp_path / "sites" / "hospital_b" / "labels.csv").write_text("file,diagnosis\nx.png,1\n")
    shutil.rmtree(tmp_path / "sites" / "reports", ignore_errors=True)
    res = CliRunner().invoke(
        app, ["simulate", str(config), "--out", str(tmp_path / "suite"), "--no-progress"]
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    message = " ".join(res.output.split())
    assert "site 'hospital_b'" in message and "lacks column(s) ['label'] (task binary)" in message
    assert not (tmp_path / "suite").exists() and not (tmp_path / "sites" / "reports").exists()


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_multilabel_and_regression_folders_train_through_the_engine(
    tmp_path: Path, task: str
) -> None:
    sites = [
        {"name": f"s{k}", "folder": str(striped_site(tmp_path / f"s{k}", task, seed=k))}
        for k in range(2)
    ]
    images = {"sites": sites, "task": task, "image_size": [16, 16]}
    images |= {"report_dir": str(tmp_path / "reports")}
    if task == "multilabel":
        images["classes"] = ["l0", "l1", "l2"]
    cfg = small_config(
        data={"dataset": "images", "images": images},
        model={"name": "cnn"},
        training={"rounds": 4, "local_steps": 10, "batch_size": 8, "lr": 0.05},
        evaluation={"loho": False},
    )
    losses = [r["test"]["loss"] for r in run_federation(cfg).rounds]
    assert losses[-1] < losses[0], losses
