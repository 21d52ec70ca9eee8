"""One roster size of ``medsilo bench scale``, measured in a process of its own.

Peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``) is the high-water mark of the
whole process, so each roster size needs a fresh interpreter: a size measured after a larger
one would report the larger one's peak. The parent (:mod:`medsilo.bench.scale`) starts this
module with ``python -m medsilo.bench.scale_worker`` and reads one JSON line from its stdout.

What is timed, for a federation of ``sites`` sites sampling ``cohort`` of them per round:

- the run as ``medsilo simulate`` runs it (:func:`~medsilo.experiment.run_experiment`: the
  run directory, the signed ledger, the sites' witnessing, ``rounds.jsonl``), each round
  from the end of the previous round's record to the end of its own, so the ledger's and
  witnesses' share of a round is counted;
- centralised training of the same optimiser steps (rounds x cohort x local steps, the same
  model, batch size and optimiser) on the pooled training data: the reference each
  federated step is compared with.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from medsilo.config import RunConfig, parse_config
from medsilo.data.registry import load_central
from medsilo.experiment import run_experiment
from medsilo.models.builder import build_model
from medsilo.models.weights import get_weights, set_weights
from medsilo.runtime.factory import site_training
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundRecord
from medsilo.training.local import train_local
from medsilo.training.tensors import TensorData

#: How the bench splits MNIST: two classes per site (shards), so even 10,000 sites of
#: MNIST's 60,000 training images hold at least a batch each.
CLASSES_PER_SITE = 2


def scale_config(
    sites: int, cohort: int, rounds: int, local_steps: int, batch_size: int, evaluated: str
) -> RunConfig:
    """The bench's run: MNIST in shards over ``sites`` sites, ``cohort`` sampled a round."""
    return parse_config(
        {
            "name": f"scale-{sites}",
            "seed": 0,
            "data": {
                "dataset": "mnist",
                "partition": "shards",
                "classes_per_site": CLASSES_PER_SITE,
                "num_sites": sites,
            },
            "model": {"name": "mlp"},
            "algorithm": {"name": "fedavg"},
            "training": {
                "rounds": rounds,
                "local_steps": local_steps,
                "batch_size": batch_size,
                "lr": 0.05,
                "fraction": cohort / sites,
            },
            "evaluation": {"loho": False, "sites": evaluated},
        }
    )


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def centralised_seconds(cfg: RunConfig, steps: int) -> float:
    """Wall time of ``steps`` optimiser steps of ``cfg``'s model on the pooled training data."""
    central = load_central(cfg.data.dataset)
    data = TensorData.of(central.train, "multiclass")
    model = build_model(cfg.model, central.input_shape, central.num_classes, seed=cfg.seed)
    initial = get_weights(model)
    local = site_training(cfg)
    train_local(model, data, local, torch.Generator().manual_seed(1), steps=10)  # warm-up
    set_weights(model, initial)
    start = time.perf_counter()
    train_local(model, data, local, torch.Generator().manual_seed(0), steps=steps)
    return time.perf_counter() - start


def measure(
    sites: int, cohort: int, rounds: int, local_steps: int, batch_size: int, evaluated: str
) -> dict[str, Any]:
    """Every number one row of the bench's table needs (see the module docstring)."""
    torch.set_num_threads(1)
    baseline_mib = peak_rss_mib()  # the interpreter, torch and medsilo imported
    cfg = scale_config(sites, cohort, rounds, local_steps, batch_size, evaluated)
    ends: list[float] = []

    def on_round(_: RoundRecord) -> None:
        ends.append(time.perf_counter())

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medsilo-bench-scale-") as tmp:
        run_experiment(cfg, Path(tmp) / "run", on_round=on_round)
        finished = time.perf_counter()
    later = [b - a for a, b in itertools.pairwise(ends)]
    round_s = statistics.median(later[:-1] or later)  # the last round also bootstraps
    peak_mib = peak_rss_mib()
    steps = cohort * local_steps
    central_s = centralised_seconds(cfg, steps * rounds) / rounds
    sizes = [len(s) for s in PreparedFederation.build(cfg).train.values()]
    return {
        "sites": sites,
        "cohort": cohort,
        "rounds": rounds,
        "local_steps": local_steps,
        "batch_size": batch_size,
        "evaluated": evaluated,
        "first_round_s": ends[0] - start,  # setup (data, model, ledger) and round 1
        "round_s": round_s,  # median of rounds 2..R
        "end_s": finished - ends[-1],
        "peak_rss_mib": peak_mib,
        "baseline_rss_mib": baseline_mib,
        "step_ms": 1000 * round_s / steps,
        "central_step_ms": 1000 * central_s / steps,
        "min_site_examples": min(sizes),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("sites", "cohort", "rounds", "local-steps", "batch-size"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--evaluate-sites", choices=["all", "cohort"], required=True)
    a = parser.parse_args(argv)
    row = measure(a.sites, a.cohort, a.rounds, a.local_steps, a.batch_size, a.evaluate_sites)
    sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
