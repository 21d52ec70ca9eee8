"""``medsilo bench secagg``'s side-by-side: SecAgg+ (Bell et al. 2020) vs the complete graph.

For each cohort size the full protocol runs (:func:`medsilo.bench.secagg_masking.run_masking`) with
the same inputs and the same ``dropout`` share of sites falling silent before their masked
input: once on the complete graph (threshold 60% of the cohort, Bonawitz et al. 2017) and
once as SecAgg+ with ``k`` and ``t`` chosen as a run would choose them
(:meth:`~medsilo.secure.config.SecureAggregationConfig.shape_for` with the default
``corrupt_fraction`` 0.1, ``dropout_fraction`` 0.1, ``security_bits`` 40 and
``correctness_bits`` 30).

The complete graph costs every site ``O(n)`` masks and ``O(n t)`` Shamir work and the
coordinator ``O(n^2)`` regenerated masks, so above ``complete_max_sites`` it is not run:
its row is **extrapolated** from the largest measured complete size ``n0`` and labelled so:
a site's key sharing (Shamir, ``t``-of-``n`` over ``n`` points) by ``(n / n0)^2``, its
masking and unmasking by ``n / n0``, the rest unchanged; the coordinator by the ratio of
pairwise and self masks it regenerates, ``|U3| (1 + |D|)``; bytes exactly (each extra peer
adds one sealed share pair and one unmasking share).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from medsilo.bench.secagg_masking import MaskingResult, run_masking
from medsilo.secure.config import SecureAggregationConfig
from medsilo.secure.messages import SEALED_SHARE_BYTES
from medsilo.secure.shamir import SHARE_BYTES

SITE_GOAL_S = 1.0
COORDINATOR_GOAL_S = 60.0
#: Bytes one more peer adds to a site's messages: a sealed share pair, an unmasking share.
PER_PEER_BYTES = (4 + SEALED_SHARE_BYTES) + (4 + SHARE_BYTES)


@dataclass
class GraphRow:
    sites: int
    graph: str
    neighbours: int
    threshold: int
    dropped: int
    site_mean_s: float
    site_max_s: float | None
    site_cpu_mean_s: float
    bytes_per_site: float
    coordinator_s: float
    coordinator_cpu_s: float
    max_error: float | None = None
    error_bound: float | None = None
    #: ``None``: measured; else the measured size the row was extrapolated from.
    extrapolated_from: int | None = None


def measured_row(graph: str, m: MaskingResult) -> GraphRow:
    total, cpu = m.site_total_s(), m.site_total_s(cpu=True)
    return GraphRow(
        sites=m.sites,
        graph=graph,
        neighbours=m.neighbours or m.sites - 1,
        threshold=m.threshold,
        dropped=m.dropped,
        site_mean_s=statistics.mean(total),
        site_max_s=max(total),
        site_cpu_mean_s=statistics.mean(cpu),
        bytes_per_site=m.bytes_per_site,
        coordinator_s=m.coordinator_all_s,
        coordinator_cpu_s=m.coordinator_all_cpu_s,
        max_error=m.max_error,
        error_bound=m.error_bound,
    )


def extrapolate_complete(m: MaskingResult, sites: int, dropout: float) -> GraphRow:
    """The complete graph at ``sites`` from its measurement ``m`` (see the module doc)."""
    ratio = sites / m.sites
    scale = {"shares": ratio**2, "mask": ratio, "unmask": ratio}

    def site_s(table: dict[str, list[float]]) -> float:
        return sum(statistics.mean(v) * scale.get(name, 1.0) for name, v in table.items())

    dropped = int(dropout * sites)
    masks = (sites - dropped) * (1 + dropped)
    measured_masks = (m.sites - m.dropped) * (1 + m.dropped)
    return GraphRow(
        sites=sites,
        graph="complete",
        neighbours=sites - 1,
        threshold=SecureAggregationConfig().threshold_for(sites),
        dropped=dropped,
        site_mean_s=site_s(m.site_phase_s),
        site_max_s=None,
        site_cpu_mean_s=site_s(m.site_phase_cpu_s),
        bytes_per_site=m.bytes_per_site + (sites - m.sites) * PER_PEER_BYTES,
        coordinator_s=m.coordinator_all_s * masks / measured_masks,
        coordinator_cpu_s=m.coordinator_all_cpu_s * masks / measured_masks,
        extrapolated_from=m.sites,
    )


def check_sizes(sites: tuple[int, ...]) -> None:
    """``ValueError`` for a cohort size SecAgg+ cannot be configured for."""
    plus = SecureAggregationConfig(graph="harary")
    for n in sites:
        plus.shape_for(n)


def compare_graphs(
    sites: tuple[int, ...],
    params: int,
    dropout: float,
    complete_max_sites: int,
    tick: Callable[[], None] | None = None,
) -> list[GraphRow]:
    """Rows for SecAgg+ and the complete graph at every size in ``sites`` (see module doc)."""
    plus = SecureAggregationConfig(graph="harary")
    rows: list[GraphRow] = []
    last_complete: MaskingResult | None = None
    for n in sorted(sites):
        if n <= complete_max_sites:
            last_complete = run_masking(n, params, dropout, tick=tick)
            rows.append(measured_row("complete", last_complete))
        elif last_complete is not None:
            rows.append(extrapolate_complete(last_complete, n, dropout))
        m = run_masking(n, params, dropout, tick=tick, shape=plus.shape_for(n))
        rows.append(measured_row("SecAgg+ (harary)", m))
    return rows


def report_graphs(rows: list[GraphRow], params: int, console: Console) -> None:
    dropped = ", ".join(f"{r.dropped} of {r.sites}" for r in rows if r.graph == "complete")
    table = Table(
        title=f"SecAgg+ vs complete graph, {params:,} float32 parameters a site, dropouts "
        f"before the masked input: {dropped}"
    )
    columns = (
        "sites",
        "graph",
        "k",
        "t",
        "site wall mean / max (s)",
        "site CPU mean (s)",
        "bytes / site",
        "coordinator wall / CPU (s)",
        "max error (bound)",
        "",
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("graph", "") else "right")
    for r in rows:
        worst = "-" if r.site_max_s is None else f"{r.site_max_s:.3f}"
        error = "-" if r.max_error is None else f"{r.max_error:.1e} ({r.error_bound:.1e})"
        source = (
            "measured"
            if r.extrapolated_from is None
            else (f"extrapolated from {r.extrapolated_from}")
        )
        table.add_row(
            str(r.sites),
            r.graph,
            str(r.neighbours),
            str(r.threshold),
            f"{r.site_mean_s:.3f} / {worst}",
            f"{r.site_cpu_mean_s:.3f}",
            f"{r.bytes_per_site / 1e6:.2f} MB",
            f"{r.coordinator_s:.2f} / {r.coordinator_cpu_s:.2f}",
            error,
            source,
        )
    console.print(table)
    console.print(
        f"goals at the largest size: site < {SITE_GOAL_S:.0f} s, coordinator < "
        f"{COORDINATOR_GOAL_S:.0f} s (wall times include other jobs' slices on a shared "
        "machine; CPU times are single-threaded work)"
    )
