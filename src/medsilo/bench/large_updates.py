"""``medsilo bench large``: one round with a model of millions of parameters, side by side.

For each ``--params`` size (e.g. ``25M``, ``100M``) and ``--sites`` sites (3 by default) it
measures one round of (a) masking secure aggregation (the complete graph and SecAgg+'s
``graph: harary``) and (b) top-k (1 %) with error feedback:

* **in-process**: a synthetic model of exactly that many float32 parameters, the round
  driven step by step by :mod:`medsilo.bench.round_memory` in a fresh process
  (:mod:`medsilo.bench.large_updates_worker`): peak traced bytes of the worst site's steps
  and of the coordinator's, as multiples of the model's size, the process's peak RSS above
  its RSS after the imports (all sites and the coordinator share that process), and wall
  time;
* **deployed on loopback** (``--deployed``, :class:`~medsilo.deploy.loopback.Loopback`:
  ``medsilo coordinator start`` and one ``medsilo site start`` per site, TLS, SuperNode
  authentication): heart disease with the MLP whose hidden width makes about that many
  parameters (the exact count is read from the run's final weights), one round of
  ``local_steps`` SGD steps; each process's peak RSS (``VmHWM`` from ``/proc``, polled
  every half second over the coordinator's and each site's process tree): the largest
  single process and the tree's sum, for the coordinator and the worst site; wall time
  from the coordinator's start to its exit, and the round's ``wall_s``; whether the round
  completed with every site.

Nothing is asserted: the rows are printed and written to ``OUT/large-updates.json``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from medsilo.bench.large_updates_worker import MODES
from medsilo.deploy.loopback import SITES, Loopback, heart_experiment

#: Deployed variants: the experiment sections they add to the heart-disease run.
DEPLOYED: dict[str, dict[str, Any]] = {
    "secagg": {"secure_aggregation": {"enabled": True}},
    "topk-ef": {"compression": {"codec": "topk", "k": 0.01, "error_feedback": True}},
}
SUFFIXES = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_params(text: str) -> int:
    """``"25M"`` -> 25,000,000; plain integers too. ``ValueError`` below 4,000."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    scale = SUFFIXES.get(raw[-1:], 1)
    digits = raw[:-1] if raw[-1:] in SUFFIXES else raw
    try:
        value = round(float(digits) * scale)
    except ValueError:
        raise ValueError(f"--params takes a count such as 25M or 1500000, got {text!r}") from None
    if value < 4_000:
        raise ValueError(f"--params needs at least 4,000 parameters, got {text!r}")
    return value


@dataclass
class Row:
    """One measured variant (in-process or deployed)."""

    where: str
    mode: str
    params: int
    sites: int
    wall_s: float | None = None
    site_peak_bytes: int | None = None
    coordinator_peak_bytes: int | None = None
    #: in-process: the process's RSS peak above its imports; deployed: per-tree sums
    rss_bytes: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def model_bytes(self) -> int:
        return 4 * self.params


def in_process(mode: str, params: int, sites: int) -> Row:
    """One variant in a fresh interpreter (its peak RSS is its own)."""
    done = subprocess.run(
        [sys.executable, "-m", "medsilo.bench.large_updates_worker", mode, str(params), str(sites)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = "killed (out of memory?)" if done.returncode < 0 else done.stderr[-300:]
        return Row("in-process", mode, params, sites, note=f"exit {done.returncode}: {why}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    traced = got["traced_peak_bytes"]
    return Row(
        "in-process",
        mode,
        params,
        sites,
        wall_s=got["wall_s"],
        site_peak_bytes=traced["site"],
        coordinator_peak_bytes=traced["coordinator"],
        rss_bytes={"process above imports": got["rss_peak_bytes"] - got["rss_before_bytes"]},
        note="peaks: traced bytes of one role's steps",
    )


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        kids: list[int] = []
        for task in tasks:
            text = (task / "children").read_text()
            kids += [int(k) for k in text.split()]
        return kids
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _hwm(pid: int) -> int:
    """The process's peak resident set (``VmHWM``) in bytes, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _mlp_hidden(params: int) -> int:
    """The MLP width whose ``hidden x hidden`` layer holds about ``params`` values."""
    return max(8, math.isqrt(params))


def deployed(mode: str, params: int, sites: int, root: Path, local_steps: int) -> Row:
    """One round deployed on 127.0.0.1 with the heart-disease MLP of about ``params``."""
    experiment = heart_experiment(1, local_steps=local_steps, batch_size=8) | {
        "model": {"name": "mlp", "kwargs": {"hidden": _mlp_hidden(params)}},
        **DEPLOYED[mode],
    }
    lb = Loopback(root, experiment, sites=SITES[:sites])
    peaks: dict[str, dict[int, int]] = {}
    start = time.perf_counter()
    try:
        roles = {"coordinator": lb.start_coordinator(round_timeout=1800)}
        for site in lb.sites:
            roles[site] = lb.start_site(site)
        coordinator = roles["coordinator"]
        while coordinator.poll() is None and time.perf_counter() - start < 3600:
            for role, process in roles.items():
                seen = peaks.setdefault(role, {})
                for pid in _tree(process.pid):
                    seen[pid] = max(seen.get(pid, 0), _hwm(pid))
            time.sleep(0.5)
        wall = time.perf_counter() - start
        code = coordinator.poll()
    finally:
        lb.stop_all()
    rounds = lb.rounds()
    record = rounds[0] if rounds else None
    weights = root / "run" / "final_weights.npz"
    if weights.exists():
        with np.load(weights) as npz:
            params = int(sum(npz[k].size for k in npz.files))
    note = f"coordinator exit {code}"
    if record is not None:
        survivors = (record.secure_aggregation or {}).get("survivors", record.sites)
        note += f"; round skipped: {record.skip_reason}" if record.skipped else ""
        note += f"; {len(survivors)} of {sites} sites in the sum"
    site_roles = [r for r in peaks if r != "coordinator"]
    worst = max(site_roles, key=lambda r: sum(peaks[r].values()), default=None)
    return Row(
        "deployed",
        mode,
        params,
        sites,
        wall_s=record.wall_s if record is not None and record.wall_s else wall,
        site_peak_bytes=max(peaks[worst].values()) if worst else None,
        coordinator_peak_bytes=max(peaks.get("coordinator", {0: 0}).values()),
        rss_bytes={
            "coordinator tree": sum(peaks.get("coordinator", {}).values()),
            "worst site tree": sum(peaks[worst].values()) if worst else 0,
            "run wall (ms)": round(1000 * wall),
        },
        note=note + "; peaks: largest process RSS (VmHWM)",
    )


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:,.0f}"


def _x(n: int | None, model: int) -> str:
    return "" if n is None else f"{n / model:.1f}x"


def report(rows: list[Row], console: Console) -> None:
    table = Table(title="One round with large updates (peaks in MiB and as multiples of the model)")
    for col in (
        "where",
        "mode",
        "params",
        "model MiB",
        "wall s",
        "site peak",
        "site x",
        "coordinator peak",
        "coordinator x",
        "RSS (MiB)",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("where", "mode", "note") else "right")
    for r in rows:
        rss = ", ".join(
            f"{k} {v / 1000:.1f} s" if k == "run wall (ms)" else f"{k} {_mib(v)}"
            for k, v in r.rss_bytes.items()
        )
        table.add_row(
            r.where,
            r.mode,
            f"{r.params:,}",
            _mib(r.model_bytes),
            "" if r.wall_s is None else f"{r.wall_s:.1f}",
            _mib(r.site_peak_bytes),
            _x(r.site_peak_bytes, r.model_bytes),
            _mib(r.coordinator_peak_bytes),
            _x(r.coordinator_peak_bytes, r.model_bytes),
            rss,
            r.note,
        )
    console.print(table)


def run_large_updates_benchmark(
    sizes: list[int],
    sites: int,
    deploy: bool,
    local_steps: int,
    out_dir: Path,
    console: Console | None = None,
) -> list[Row]:
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    rows: list[Row] = []
    for params in sizes:
        for mode in MODES:
            rows.append(in_process(mode, params, sites))
            console.print(f"in-process {mode} {params:,}: done")
        if not deploy:
            continue
        if sites > len(SITES):
            raise ValueError(f"deployed runs have at most {len(SITES)} sites (heart disease)")
        for mode in DEPLOYED:
            with tempfile.TemporaryDirectory(prefix="medsilo-large-") as tmp:
                rows.append(deployed(mode, params, sites, Path(tmp), local_steps))
            console.print(f"deployed {mode} {params:,}: done")
    report(rows, console)
    after = os.getloadavg()
    console.print(f"load average (1 min) at start {load[0]:.1f}, at end {after[0]:.1f}")
    payload = {"rows": [asdict(r) for r in rows], "load_start": load, "load_end": after}
    (out_dir / "large-updates.json").write_text(json.dumps(payload, indent=2))
    return rows
