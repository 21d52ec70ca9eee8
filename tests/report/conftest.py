"""Synthetic run and suite directories in the format the runtimes write."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

SITES = ["cleveland", "hungarian", "switzerland", "va"]
SITE_N = {"cleveland": 61, "hungarian": 59, "switzerland": 25, "va": 40}

RunWriter = Callable[..., Path]


def _site_metrics(acc: float) -> dict[str, dict[str, Any]]:
    return {
        site: {"loss": round(1.0 - acc + 0.01 * i, 4), "accuracy": round(acc - 0.03 * i, 4), "n": n}
        for i, (site, n) in enumerate(SITE_N.items())
    }


def write_run(
    path: Path,
    *,
    name: str,
    algorithm: str = "fedavg",
    rounds: int = 6,
    final_acc: float = 0.8,
    wall_s: float = 3.25,
    loho: bool = False,
    sim_time: bool = False,
    extra: Sequence[str] = (),
    skip_eval: Sequence[int] = (),
    null_eval: Sequence[int] = (),
    config: str | None = None,
) -> Path:
    """Write one run directory. Round ``r`` has pooled accuracy ``final_acc * (0.5 + r/2R)``;
    rounds in ``skip_eval`` lack test/per_site keys, rounds in ``null_eval`` have them null."""
    path.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in range(1, rounds + 1):
        acc = round(final_acc * (0.5 + r / (2 * rounds)), 4)
        rec: dict[str, Any] = {
            "round": r,
            "wall_s": 0.12,
            "sim_time_s": 10.0 * r if sim_time else None,
            "sites": list(SITES),
            "train_loss": round(1.2 / r, 4),
            "bytes_up": 1234 * r,
            "bytes_down": 1234 * r,
            "extra": {key: 0.5 * r for key in extra} | {"note": "not a number"},
        }
        if r in null_eval:
            rec |= {"test": None, "per_site": None, "mean_site_accuracy": None}
        elif r not in skip_eval:
            per_site = _site_metrics(acc)
            rec |= {
                "test": {"loss": round(1.0 - acc, 4), "accuracy": acc, "n": 185},
                "per_site": per_site,
                "mean_site_accuracy": round(
                    sum(m["accuracy"] for m in per_site.values()) / len(per_site), 4
                ),
            }
        lines.append(json.dumps(rec))
    (path / "rounds.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    per_site = _site_metrics(final_acc)
    summary: dict[str, Any] = {
        "name": name,
        "algorithm": algorithm,
        "dataset": "heart_disease",
        "seed": 0,
        "rounds": rounds,
        "wall_s": wall_s,
        "final": {
            "test": {"loss": round(1.0 - final_acc, 4), "accuracy": final_acc, "n": 185},
            "per_site": per_site,
            "mean_site_accuracy": round(
                sum(m["accuracy"] for m in per_site.values()) / len(per_site), 4
            ),
        },
    }
    if loho:
        summary["loho"] = {
            site: {"loss": 0.6, "accuracy": round(final_acc - 0.1 - 0.02 * i, 4), "n": n}
            for i, (site, n) in enumerate(SITE_N.items())
        }
    (path / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if config is None:
        config = f"name: {name}\nalgorithm:\n  name: {algorithm}\nrounds: {rounds}\n"
    (path / "config.yaml").write_text(config, encoding="utf-8")
    return path


SUITE_RUNS = {
    # folder: (summary name, algorithm, final accuracy, wall_s, loho)
    "fedavg": ("heart-fedavg", "fedavg", 0.812, 3.5, True),
    "fedadam": ("heart-fedadam", "fedadam", 0.834, 4.25, True),
    "pooled": ("heart-pooled", "pooled", 0.856, 1.75, False),
    "local": ("heart-local", "local", 0.701, 2.5, False),
}


def write_suite(path: Path, *, with_suite_json: bool = True) -> Path:
    for folder, (name, algo, acc, wall, loho) in SUITE_RUNS.items():
        write_run(
            path / folder,
            name=name,
            algorithm=algo,
            final_acc=acc,
            wall_s=wall,
            loho=loho,
            extra=("epsilon",) if folder == "fedavg" else (),
            sim_time=folder in ("fedavg", "fedadam"),
            skip_eval=(3,),
        )
    if with_suite_json:
        suite = {"title": "Heart disease: FL vs baselines", "runs": ["fedavg", "fedadam", "pooled"]}
        (path / "suite.json").write_text(json.dumps(suite), encoding="utf-8")
    return path


@pytest.fixture
def make_run(tmp_path: Path) -> RunWriter:
    def make(folder: str = "run", **kwargs: Any) -> Path:
        kwargs.setdefault("name", f"heart-{folder}")
        return write_run(tmp_path / folder, **kwargs)

    return make


@pytest.fixture(scope="session")
def suite_runs() -> dict[str, tuple[str, str, float, float, bool]]:
    """The synthetic suite: folder -> (summary name, algorithm, final acc., wall_s, has LOHO)."""
    return dict(SUITE_RUNS)


@pytest.fixture(scope="session")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="session")
def suite_report(suite_dir: Path) -> Path:
    """The suite's report, built once per session (default out dir: suite/report)."""
    from medsilo.report import build_report

    return build_report(suite_dir)
