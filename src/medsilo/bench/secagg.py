"""``medsilo bench secagg``: what secure aggregation costs a site and the coordinator.

Masking (Bonawitz et al. 2017, :mod:`medsilo.secure`; the run is
:mod:`medsilo.bench.secagg_masking`): ``sites`` sites each hold ``params`` float32 values
(uniform in ``[-1, 1]``), encoded mod ``2**32`` (clip 1). Every
site runs the full protocol through its state machine; a seeded ``dropout`` share of them
falls silent after sharing keys, before sending its masked input, which is the expensive
case for the coordinator (it reconstructs each dropped site's mask key and regenerates its
pairwise masks with every survivor). Reported: per-site time of each phase (mean and max
over all sites), the coordinator's unmasking time (share reconstruction, mask regeneration
and the sum), bytes each site sends, and the largest error of the decoded sum against the
plain float sum (it must be within the fixed-point resolution).
:mod:`medsilo.bench.secagg_graphs` then sets SecAgg+ and the complete graph side by side.

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
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from medsilo.bench.secagg_graphs import check_sizes, compare_graphs, report_graphs
from medsilo.bench.secagg_masking import MaskingResult, Tick, last_cpu, run_masking, timed
from medsilo.secure.ckks import (
    CKKSKeys,
    chunks_for,
    decrypt_sum,
    encrypt_vector,
    load_context,
    sum_ciphertexts,
)

SITE_GOAL_S = 1.0
COORDINATOR_GOAL_S = 10.0


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


def run_ckks(sites: int, params: int, seed: int = 0, tick: Tick | None = None) -> CKKSResult:
    keys = CKKSKeys.generate()
    public, secret = load_context(keys.public), load_context(keys.secret)
    res = CKKSResult(sites, params, keys.slots)
    plain = np.zeros(params, dtype=np.float64)
    ciphertexts = []
    for i in range(sites):
        x = np.random.default_rng([seed, i]).uniform(-1, 1, params)
        plain += x
        chunks, dt = timed(lambda x=x: encrypt_vector(public, x, keys.slots))  # type: ignore[misc]
        res.encrypt_s.append(dt)
        res.encrypt_cpu_s.append(last_cpu[0])
        ciphertexts.append(chunks)
        if tick is not None:
            tick()
    res.bytes_per_site = sum(len(c) for c in ciphertexts[0])
    summed, res.sum_s = timed(lambda: sum_ciphertexts(public, ciphertexts))
    res.sum_cpu_s = last_cpu[0]
    decrypted, res.decrypt_s = timed(lambda: decrypt_sum(secret, summed, params))
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
    #: SecAgg+ vs complete graph (:mod:`medsilo.bench.secagg_graphs`): cohort sizes,
    #: parameters a site, and the largest size the complete graph is run at (extrapolated
    #: above).
    compare_sites: tuple[int, ...] = (100, 300)
    compare_params: int = 100_000
    complete_max_sites: int = 300


FULL = BenchSize(sites=100, params=1_000_000, dropout=0.1, ckks_sites=4, ckks_params=200_000)
QUICK = BenchSize(
    sites=10,
    params=10_000,
    dropout=0.1,
    ckks_sites=3,
    ckks_params=8192,
    compare_sites=(10, 30),
    compare_params=2_000,
    complete_max_sites=10,
)


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"100,500,1000"`` as cohort sizes; ``ValueError`` unless each is an int >= 2."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"--compare-sites takes comma-separated site counts, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 2:
        raise ValueError(f"--compare-sites needs sizes of at least 2 sites, got {text!r}")
    return sizes


def run_secagg_benchmark(
    size: BenchSize = FULL,
    console: Console | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    console = console or Console()
    check_sizes(size.compare_sites)  # before anything runs or prints
    tasks = {}
    if progress is not None:
        tasks["mask"] = progress.add_task("masking sites", total=size.sites, status="")
        tasks["ckks"] = progress.add_task("CKKS sites", total=size.ckks_sites, status="")
        compared = sum(size.compare_sites) + sum(
            n for n in size.compare_sites if n <= size.complete_max_sites
        )
        tasks["graphs"] = progress.add_task("graph comparison sites", total=compared, status="")

    def ticker(key: str) -> Tick | None:
        if progress is None:
            return None
        return lambda: progress.advance(tasks[key])

    m = run_masking(size.sites, size.params, size.dropout, tick=ticker("mask"))
    c = run_ckks(size.ckks_sites, size.ckks_params, tick=ticker("ckks"))
    report(m, c, console)
    rows = compare_graphs(
        size.compare_sites,
        size.compare_params,
        size.dropout,
        size.complete_max_sites,
        tick=ticker("graphs"),
    )
    report_graphs(rows, size.compare_params, console)
    return {
        "masking": asdict(m),
        "ckks": asdict(c),
        "ckks_scaled": c.scaled(m.sites, m.params),
        "graphs": [asdict(r) for r in rows],
    }


__all__ = ["FULL", "QUICK", "BenchSize", "run_ckks", "run_masking", "run_secagg_benchmark"]
