"""``medsilo bench secagg``: what secure aggregation costs a site and the coordinator.

Masking (Bonawitz et al. 2017, :mod:`medsilo.secure`): ``sites`` sites each hold
``params`` float32 values (uniform in ``[-1, 1]``), encoded mod ``2**32`` (clip 1). Every
site runs the full protocol through its state machine; a seeded ``dropout`` share of them
falls silent after sharing keys, before sending its masked input, which is the expensive
case for the coordinator (it reconstructs each dropped site's mask key and regenerates its
pairwise masks with every survivor). Reported: per-site time of each phase (mean and max
over all sites), the coordinator's unmasking time (share reconstruction, mask regeneration
and the sum), bytes each site sends, and the largest error of the decoded sum against the
plain float sum (it must be within the fixed-point resolution).

CKKS (:mod:`medsilo.secure.ckks`): ``ckks_sites`` sites encrypt ``ckks_params`` values each
(fewer than the masking run: it is much slower); the coordinator sums the ciphertexts and
the key holder decrypts. Per-site encryption time and bytes scale linearly with the number
of parameters and the coordinator's sum with sites x parameters, so the table also shows
these costs extrapolated linearly to ``sites x params``, labelled as such.

Nothing here asserts a timing; read the numbers against the goals (site < 1 s, coordinator
< 10 s for 100 sites x 1M parameters with 10% dropouts).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from medsilo.secure.ckks import (
    CKKSKeys,
    chunks_for,
    decrypt_sum,
    encrypt_vector,
    load_context,
    sum_ciphertexts,
)
from medsilo.secure.config import resolve_threshold
from medsilo.secure.coordinator import SecAggCoordinator
from medsilo.secure.fixed_point import FixedPoint
from medsilo.secure.prg import MaskPRG
from medsilo.secure.protocol import SecAggParams
from medsilo.secure.site import SecAggSite

SITE_GOAL_S = 1.0
COORDINATOR_GOAL_S = 10.0


@dataclass
class MaskingResult:
    sites: int
    params: int
    threshold: int
    dropped: int
    site_phase_s: dict[str, list[float]] = field(default_factory=dict)
    site_phase_cpu_s: dict[str, list[float]] = field(default_factory=dict)
    coordinator_s: float = 0.0
    coordinator_cpu_s: float = 0.0
    bytes_per_site: float = 0.0
    masked_bytes: int = 0
    max_error: float = 0.0
    error_bound: float = 0.0

    def site_total_s(self, cpu: bool = False) -> list[float]:
        """Per-site compute over all phases (sites that dropped are left out)."""
        phases = list((self.site_phase_cpu_s if cpu else self.site_phase_s).values())
        n = min(len(p) for p in phases)
        return [sum(p[i] for p in phases) for i in range(n)]


@dataclass
class CKKSResult:
    sites: int
    params: int
    slots: int
    encrypt_s: list[float] = field(default_factory=list)
    encrypt_cpu_s: list[float] = field(default_factory=list)
    sum_s: float = 0.0
    sum_cpu_s: float = 0.0
    decrypt_s: float = 0.0
    bytes_per_site: int = 0
    max_error: float = 0.0

    def scaled(self, sites: int, params: int) -> dict[str, float]:
        """Linear extrapolation to ``sites x params`` in ciphertexts: encryption, bytes and
        decryption per ciphertext, the coordinator's sum per site-ciphertext (it
        deserializes and adds every one)."""
        c = chunks_for(params, self.slots) / chunks_for(self.params, self.slots)
        return {
            "encrypt_s": statistics.mean(self.encrypt_s) * c,
            "encrypt_cpu_s": statistics.mean(self.encrypt_cpu_s) * c,
            "sum_s": self.sum_s * c * sites / self.sites,
            "sum_cpu_s": self.sum_cpu_s * c * sites / self.sites,
            "decrypt_s": self.decrypt_s * c,
            "bytes_per_site": self.bytes_per_site * c,
        }


Tick = Callable[[], None]


#: CPU seconds of the last :func:`_timed` call (process time: on a shared machine the wall
#: time also counts other jobs' slices; every step here runs on one thread).
_last_cpu = [0.0]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(result, wall seconds)``; the CPU seconds are left in ``_last_cpu[0]``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    _last_cpu[0] = time.process_time() - c0
    return out, wall


def run_masking(
    sites: int,
    params: int,
    dropout: float,
    threshold: float = 0.6,
    seed: int = 0,
    tick: Tick | None = None,
) -> MaskingResult:
    """The full protocol for ``sites`` x ``params`` with ``floor(dropout * sites)`` dropouts
    and the default threshold (60% of the sites)."""
    t = resolve_threshold(threshold, sites)
    fp = FixedPoint(32, clip=1.0, num_sites=sites)
    params_ = SecAggParams(threshold=t, bits=32, length=params, label=b"bench/1")
    prg = MaskPRG(params, 32)
    rng = np.random.default_rng(seed)
    dropped = {int(i) + 1 for i in rng.choice(sites, size=int(dropout * sites), replace=False)}
    res = MaskingResult(sites, params, t, len(dropped))
    steps = ("encode", "keys", "shares", "mask", "unmask")
    phase: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    sent = dict.fromkeys(range(1, sites + 1), 0)
    plain = np.zeros(params, dtype=np.float64)
    machines: dict[int, SecAggSite] = {}
    for i in range(1, sites + 1):
        x = np.random.default_rng([seed, i]).uniform(-1, 1, params).astype(np.float32)
        if i not in dropped:
            plain += x
        (enc, _), dt = _timed(lambda x=x: fp.encode(x))  # type: ignore[misc]
        phase["encode"].append(dt)
        cpu["encode"].append(_last_cpu[0])
        machines[i] = SecAggSite(i, enc, params_, prg)
    coordinator = SecAggCoordinator(params_, prg)

    def step(name: str, who: list[int], call: Callable[[SecAggSite], Any]) -> dict[int, bytes]:
        out = {}
        for i in who:
            msg, dt = _timed(lambda i=i: call(machines[i]).encode())  # type: ignore[misc]
            phase[name].append(dt)
            cpu[name].append(_last_cpu[0])
            sent[i] += len(msg)
            out[i] = msg
            if tick is not None and name == "mask":
                tick()
        return out

    everyone = list(machines)
    keys = coordinator.collect_keys(step("keys", everyone, lambda s: s.advertise()))
    relayed = coordinator.relay_shares(step("shares", everyone, lambda s: s.share_keys(keys)))
    survivors_ = [i for i in everyone if i not in dropped]
    masked = step("mask", survivors_, lambda s: s.masked_input(relayed[s.site]))
    res.masked_bytes = len(next(iter(masked.values())))
    survivors = coordinator.collect_masked(masked)
    del masked
    responses = step("unmask", survivors_, lambda s: s.unmask(survivors))
    total, res.coordinator_s = _timed(lambda: coordinator.unmask(responses))
    res.coordinator_cpu_s = _last_cpu[0]
    res.site_phase_s, res.site_phase_cpu_s = phase, cpu
    res.bytes_per_site = statistics.mean(sent[i] for i in survivors_)
    res.max_error = float(np.abs(fp.decode(total) - plain).max())
    res.error_bound = sites * 0.5 * fp.resolution
    return res


def run_ckks(sites: int, params: int, seed: int = 0, tick: Tick | None = None) -> CKKSResult:
    keys = CKKSKeys.generate()
    public, secret = load_context(keys.public), load_context(keys.secret)
    res = CKKSResult(sites, params, keys.slots)
    plain = np.zeros(params, dtype=np.float64)
    ciphertexts = []
    for i in range(sites):
        x = np.random.default_rng([seed, i]).uniform(-1, 1, params)
        plain += x
        chunks, dt = _timed(lambda x=x: encrypt_vector(public, x, keys.slots))  # type: ignore[misc]
        res.encrypt_s.append(dt)
        res.encrypt_cpu_s.append(_last_cpu[0])
        ciphertexts.append(chunks)
        if tick is not None:
            tick()
    res.bytes_per_site = sum(len(c) for c in ciphertexts[0])
    summed, res.sum_s = _timed(lambda: sum_ciphertexts(public, ciphertexts))
    res.sum_cpu_s = _last_cpu[0]
    decrypted, res.decrypt_s = _timed(lambda: decrypt_sum(secret, summed, params))
    res.max_error = float(np.abs(decrypted - plain).max())
    return res


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def _ms(values: list[float]) -> str:
    return f"{1e3 * statistics.mean(values):.1f} / {1e3 * max(values):.1f}"


def report(m: MaskingResult, c: CKKSResult, console: Console) -> None:
    title = (
        f"Secure aggregation, {m.sites} sites x {m.params:,} float32 parameters, "
        f"{m.dropped} dropouts after key sharing (threshold t={m.threshold})"
    )
    table = Table(title=title)
    for col in ("masking: step", "wall, mean / max (ms)", "CPU, mean / max (ms)"):
        table.add_column(col, justify="left" if "step" in col else "right")
    for name, values in m.site_phase_s.items():
        table.add_row(name, _ms(values), _ms(m.site_phase_cpu_s[name]))
    total, total_cpu = m.site_total_s(), m.site_total_s(cpu=True)
    table.add_row("[bold]site total[/]", _ms(total), _ms(total_cpu))
    console.print(table)
    console.print(
        f"masking: site total mean {statistics.mean(total):.3f} s wall / "
        f"{statistics.mean(total_cpu):.3f} s CPU, max {max(total):.3f} s wall "
        f"(goal < {SITE_GOAL_S:.0f} s); coordinator unmasking {m.coordinator_s:.3f} s wall / "
        f"{m.coordinator_cpu_s:.3f} s CPU (goal < {COORDINATOR_GOAL_S:.0f} s); bytes sent per "
        f"site {_mb(m.bytes_per_site)} (masked vector {_mb(m.masked_bytes)}, plain float32 "
        f"{_mb(4 * m.params)}); max error of the sum {m.max_error:.2e} "
        f"(bound {m.error_bound:.2e})"
    )
    scaled = c.scaled(m.sites, m.params)
    ct = Table(title=f"CKKS (N=8192, scale 2^40), measured on {c.sites} sites x {c.params:,}")
    for col in ("", "measured", f"extrapolated linearly to {m.sites} x {m.params:,}"):
        ct.add_column(col, justify="right")
    ct.add_row(
        "site encryption (s), mean",
        f"{statistics.mean(c.encrypt_s):.3f}",
        f"{scaled['encrypt_s']:.2f}",
    )
    ct.add_row(
        "site encryption (s), mean CPU",
        f"{statistics.mean(c.encrypt_cpu_s):.3f}",
        f"{scaled['encrypt_cpu_s']:.2f}",
    )
    ct.add_row("coordinator sum (s)", f"{c.sum_s:.3f}", f"{scaled['sum_s']:.3f}")
    ct.add_row("coordinator sum (s), CPU", f"{c.sum_cpu_s:.3f}", f"{scaled['sum_cpu_s']:.3f}")
    ct.add_row("key holder decryption (s)", f"{c.decrypt_s:.3f}", f"{scaled['decrypt_s']:.2f}")
    ct.add_row("bytes per site", _mb(c.bytes_per_site), _mb(scaled["bytes_per_site"]))
    ct.add_row("max error of the sum", f"{c.max_error:.2e}", "")
    console.print(ct)
    ratio_site = scaled["encrypt_cpu_s"] / statistics.mean(total_cpu)
    ratio_bytes = scaled["bytes_per_site"] / m.bytes_per_site
    console.print(
        f"CKKS vs masking at {m.sites} x {m.params:,}: site CPU time x{ratio_site:.1f}, "
        f"bytes per site x{ratio_bytes:.1f}, coordinator CPU time "
        f"x{scaled['sum_cpu_s'] / m.coordinator_cpu_s:.1f} (CKKS figures extrapolated)"
    )


@dataclass(frozen=True)
class BenchSize:
    sites: int
    params: int
    dropout: float
    ckks_sites: int
    ckks_params: int


FULL = BenchSize(sites=100, params=1_000_000, dropout=0.1, ckks_sites=4, ckks_params=200_000)
QUICK = BenchSize(sites=10, params=10_000, dropout=0.1, ckks_sites=3, ckks_params=8192)


def run_secagg_benchmark(
    size: BenchSize = FULL,
    console: Console | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    console = console or Console()
    tasks = {}
    if progress is not None:
        tasks["mask"] = progress.add_task("masking sites", total=size.sites, status="")
        tasks["ckks"] = progress.add_task("CKKS sites", total=size.ckks_sites, status="")

    def ticker(key: str) -> Tick | None:
        if progress is None:
            return None
        return lambda: progress.advance(tasks[key])

    m = run_masking(size.sites, size.params, size.dropout, tick=ticker("mask"))
    c = run_ckks(size.ckks_sites, size.ckks_params, tick=ticker("ckks"))
    report(m, c, console)
    return {"masking": asdict(m), "ckks": asdict(c), "ckks_scaled": c.scaled(m.sites, m.params)}


__all__ = ["FULL", "QUICK", "BenchSize", "run_ckks", "run_masking", "run_secagg_benchmark"]
