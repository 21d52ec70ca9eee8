"""One in-process variant of ``medsilo bench large``, measured in a process of its own.

Peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``) is a process's high-water mark,
so each variant needs a fresh interpreter. The parent (:mod:`medsilo.bench.large_updates`)
runs ``python -m medsilo.bench.large_updates_worker MODE PARAMS SITES`` and reads one JSON
line: the round's wall time, the process's peak RSS and its RSS before the round (after
the imports), and the per-role peaks traced by :mod:`medsilo.bench.round_memory`.
``tracemalloc`` slows numpy's allocations a little, so the wall time is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from medsilo.bench.round_memory import RoundMemory, secure_round, synthetic_shapes, topk_round

MODES = ("secagg", "secagg-harary", "topk-ef")


def run(mode: str, params: int, sites: int) -> RoundMemory:
    shapes = synthetic_shapes(params)
    if mode == "secagg":
        return secure_round(shapes, sites)
    if mode == "secagg-harary":
        return secure_round(shapes, sites, graph="harary")
    if mode == "topk-ef":
        return topk_round(shapes, sites)
    raise ValueError(f"unknown mode {mode!r}; one of {MODES}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("params", type=int)
    parser.add_argument("sites", type=int)
    args = parser.parse_args(argv)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    got = run(args.mode, args.params, args.sites)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row = {
        "mode": args.mode,
        "params": args.params,
        "sites": args.sites,
        "model_bytes": got.model_bytes,
        "wall_s": wall,
        "rss_peak_bytes": peak,
        "rss_before_bytes": before,
        "traced_peak_bytes": got.peaks,
    }
    sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
