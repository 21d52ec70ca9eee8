"""``medsilo bench medmnist``: a ResNet-18 federation against the MedMNIST v2 paper.

PneumoniaMNIST and BreastMNIST (bundled, 28x28), a ResNet-18 over four sites with a
Dirichlet (non-IID) label split, FedAvg, against (1) the centralised ResNet-18 (28) figures
of the MedMNIST v2 paper (Yang et al., Sci Data 2023, table 3) and (2) our own pooled run of
the same model for the same number of epochs. Test AUC and accuracy (at 0.5), mean and
spread over seeds. The paper trains 100 epochs with Adam (lr 1e-3, batch 128); the defaults
here train fewer epochs (a CPU budget) in batches of 32 (a site of BreastMNIST holds about
150 images: batches of 128 would leave it one or two steps an epoch), so the table says how
far that gets.

A benchmark to read, not a test: it asserts nothing.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from medsilo.config import RunConfig, parse_config
from medsilo.runtime.simulation import run_federation

#: Centralised ResNet-18 (28) of the MedMNIST v2 paper: (test AUC, test ACC).
PAPER: dict[str, tuple[float, float]] = {
    "pneumoniamnist": (0.944, 0.854),
    "breastmnist": (0.901, 0.863),
}
GOAL_AUC_GAP = 0.01


def medmnist_config(
    dataset: str,
    algorithm: str,
    seed: int,
    rounds: int,
    model: str = "resnet18",
    sites: int = 4,
    alpha: float = 0.5,
    batch_size: int = 32,
    max_train: int | None = None,
) -> RunConfig:
    """FedAvg over ``sites`` Dirichlet sites, one local epoch a round (``pooled``: the same
    epochs on the union); Adam at the paper's learning rate."""
    data: dict[str, object] = {
        "dataset": dataset,
        "partition": "dirichlet",
        "alpha": alpha,
        "num_sites": sites,
    }
    if max_train is not None:
        data["max_train_samples"] = max_train
    return parse_config(
        {
            "name": f"{dataset}-{model}-{algorithm}-s{seed}",
            "seed": seed,
            "data": data,
            "model": {"name": model},
            "algorithm": {"name": algorithm},
            "training": {
                "rounds": rounds,
                "local_epochs": 1.0,
                "batch_size": batch_size,
                "optimizer": "adam",
                "lr": 1e-3,
            },
            "evaluation": {
                "every": rounds,
                "metrics": ["auroc", "accuracy"],
                "bootstrap_replicates": 0,
            },
        }
    )


@dataclass(frozen=True)
class Outcome:
    auc: float
    accuracy: float
    seconds: float


def run_one(cfg: RunConfig) -> Outcome:
    t0 = time.perf_counter()
    result = run_federation(cfg)
    last = result.rounds[-1]
    return Outcome(
        float(last["metrics"]["pooled"]["auroc"]),
        float(last["test"]["accuracy"]),
        time.perf_counter() - t0,
    )


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def run_medmnist_benchmark(
    console: Console,
    datasets: tuple[str, ...] = ("breastmnist", "pneumoniamnist"),
    seeds: tuple[int, ...] = (0, 1, 2),
    rounds: int = 20,
    model: str = "resnet18",
    max_train: int | None = None,
    batch_size: int = 32,
) -> dict[str, dict[str, list[Outcome]]]:
    """Run every (dataset, algorithm, seed) and print the comparison table."""
    unknown = sorted(set(datasets) - set(PAPER))
    if unknown:
        raise ValueError(f"no paper figures for {unknown}; choose from {sorted(PAPER)}")
    results: dict[str, dict[str, list[Outcome]]] = {}
    for dataset in datasets:
        results[dataset] = {}
        for algorithm in ("fedavg", "pooled"):
            outcomes = []
            for seed in seeds:
                cfg = medmnist_config(
                    dataset,
                    algorithm,
                    seed,
                    rounds,
                    model,
                    batch_size=batch_size,
                    max_train=max_train,
                )
                outcome = run_one(cfg)
                console.print(
                    f"{dataset} {algorithm} seed {seed}: AUC {outcome.auc:.3f}, "
                    f"ACC {outcome.accuracy:.3f} ({outcome.seconds:.0f} s)"
                )
                outcomes.append(outcome)
            results[dataset][algorithm] = outcomes
    table = Table(
        "dataset",
        "paper AUC / ACC",
        "pooled AUC",
        "FedAvg AUC",
        "FedAvg ACC",
        "FedAvg - paper",
        "FedAvg - pooled",
        title=f"{model}, 4 non-IID sites, {rounds} epochs of batches of {batch_size}, "
        f"seeds {list(seeds)}",
    )
    for dataset, runs in results.items():
        fed = [o.auc for o in runs["fedavg"]]
        pooled = [o.auc for o in runs["pooled"]]
        paper_auc, paper_acc = PAPER[dataset]
        table.add_row(
            dataset,
            f"{paper_auc:.3f} / {paper_acc:.3f}",
            _spread(pooled),
            _spread(fed),
            _spread([o.accuracy for o in runs["fedavg"]]),
            f"{statistics.mean(fed) - paper_auc:+.3f}",
            f"{statistics.mean(fed) - statistics.mean(pooled):+.3f}",
        )
    console.print(table)
    console.print(f"goal: FedAvg AUC within {GOAL_AUC_GAP} of the paper and of pooled")
    return results
