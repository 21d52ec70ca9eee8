"""The masking half of ``medsilo bench secagg``: one full protocol run, timed per party.

``sites`` sites each hold ``params`` float32 values (uniform in ``[-1, 1]``), encoded mod
``2**32`` (clip 1); so that a thousand sites of a million values fit in memory, site ``i``'s
input is the window ``base[i : i + params]`` of one random vector, encoded once, and each
masked input reaches the coordinator as it is made (the coordinator adds it to its running
sum). Every site runs the full protocol through its state machine; a seeded ``dropout``
share of them falls silent after sharing keys, before sending its masked input, which is
the expensive case for the coordinator (it reconstructs each dropped site's mask key and
regenerates its pairwise masks with every surviving peer). With ``shape = (k, t)`` the run
is SecAgg+ with ``k`` neighbours a site and threshold ``t``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsilo.secure.config import resolve_threshold
from medsilo.secure.coordinator import SecAggCoordinator
from medsilo.secure.fixed_point import FixedPoint
from medsilo.secure.prg import MaskPRG
from medsilo.secure.protocol import SecAggParams
from medsilo.secure.site import SecAggSite


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
    #: SecAgg+'s neighbours per site; 0: complete graph.
    neighbours: int = 0
    #: Wall and CPU seconds of all four coordinator phases (relaying, summing, unmasking).
    coordinator_all_s: float = 0.0
    coordinator_all_cpu_s: float = 0.0

    def site_total_s(self, cpu: bool = False) -> list[float]:
        """Per-site compute over all phases (sites that dropped are left out)."""
        phases = list((self.site_phase_cpu_s if cpu else self.site_phase_s).values())
        n = min(len(p) for p in phases)
        return [sum(p[i] for p in phases) for i in range(n)]


Tick = Callable[[], None]


#: CPU seconds of the last :func:`timed` call (process time: on a shared machine the wall
#: time also counts other jobs' slices; every step here runs on one thread).
last_cpu = [0.0]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(result, wall seconds)``; the CPU seconds are left in ``last_cpu[0]``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    last_cpu[0] = time.process_time() - c0
    return out, wall


class _Inbox(Mapping[int, bytes]):
    """What the coordinator receives in one phase, made by each site when it is read (so
    that only one masked vector exists at a time); times every site's call."""

    def __init__(self, make: Callable[[int], bytes], senders: list[int]) -> None:
        self.make = make
        self.senders = senders
        self.site_s = 0.0
        self.site_cpu_s = 0.0

    def __getitem__(self, sender: int) -> bytes:
        c0, t0 = time.process_time(), time.perf_counter()
        out = self.make(sender)
        self.site_s += time.perf_counter() - t0
        self.site_cpu_s += time.process_time() - c0
        return out

    def __iter__(self) -> Iterator[int]:
        return iter(self.senders)

    def __len__(self) -> int:
        return len(self.senders)


def run_masking(
    sites: int,
    params: int,
    dropout: float,
    threshold: float = 0.6,
    seed: int = 0,
    tick: Tick | None = None,
    shape: tuple[int, int] | None = None,
) -> MaskingResult:
    """The full protocol for ``sites`` x ``params`` with ``floor(dropout * sites)`` dropouts:
    on the complete graph with the default threshold (60% of the sites), or SecAgg+ with
    ``shape = (k, t)``: ``k`` neighbours a site, threshold ``t`` per neighbourhood."""
    k, t = shape if shape is not None else (0, resolve_threshold(threshold, sites))
    fp = FixedPoint(32, clip=1.0, num_sites=sites)
    params_ = SecAggParams(t, 32, params, b"bench/1", neighbours=k, cohort=sites)
    prg = MaskPRG(params, 32)
    rng = np.random.default_rng(seed)
    dropped = {int(i) + 1 for i in rng.choice(sites, size=int(dropout * sites), replace=False)}
    res = MaskingResult(sites, params, t, len(dropped), neighbours=k)
    steps = ("encode", "keys", "shares", "mask", "unmask")
    phase: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    sent = dict.fromkeys(range(1, sites + 1), 0)
    base = rng.uniform(-1, 1, params + sites).astype(np.float32)
    encoded_base, _ = fp.encode(base)
    windows = np.lib.stride_tricks.sliding_window_view(base, params)
    plain = np.zeros(params, dtype=np.float64)
    machines: dict[int, SecAggSite] = {}
    for i in range(1, sites + 1):
        if i not in dropped:
            plain += windows[i]
        # What encoding costs a site (the result is the window of the encoded base).
        _, dt = timed(lambda i=i: fp.encode(windows[i]))  # type: ignore[misc]
        phase["encode"].append(dt)
        cpu["encode"].append(last_cpu[0])
        machines[i] = SecAggSite(i, encoded_base[i : i + params], params_, prg)
    coordinator = SecAggCoordinator(params_, prg)
    coordinator_s, coordinator_cpu_s = 0.0, 0.0

    def step(name: str, who: list[int], call: Callable[[SecAggSite], Any]) -> _Inbox:
        def make(i: int) -> bytes:
            msg, dt = timed(lambda: call(machines[i]).encode())
            phase[name].append(dt)
            cpu[name].append(last_cpu[0])
            sent[i] += len(msg)
            if name == "mask":
                res.masked_bytes = len(msg)
                if tick is not None:
                    tick()
            return bytes(msg)

        return _Inbox(make, who)

    def coordinate(work: Callable[[], Any], inbox: _Inbox) -> Any:
        nonlocal coordinator_s, coordinator_cpu_s
        out, dt = timed(work)
        coordinator_s += dt - inbox.site_s
        coordinator_cpu_s += last_cpu[0] - inbox.site_cpu_s
        return out

    everyone = list(machines)
    inbox = step("keys", everyone, lambda s: s.advertise())
    keys = coordinate(lambda: coordinator.collect_keys(inbox), inbox)
    inbox = step("shares", everyone, lambda s: s.share_keys(keys))
    relayed = coordinate(lambda: coordinator.relay_shares(inbox), inbox)
    survivors_ = [i for i in everyone if i not in dropped]
    inbox = step("mask", survivors_, lambda s: s.masked_input(relayed[s.site]))
    survivors = coordinate(lambda: coordinator.collect_masked(inbox), inbox)
    inbox = step("unmask", survivors_, lambda s: s.unmask(survivors))
    responses = {i: inbox[i] for i in inbox}  # the sites' time, not the coordinator's
    total, res.coordinator_s = timed(lambda: coordinator.unmask(responses))
    res.coordinator_cpu_s = last_cpu[0]
    res.coordinator_all_s = coordinator_s + res.coordinator_s
    res.coordinator_all_cpu_s = coordinator_cpu_s + res.coordinator_cpu_s
    res.site_phase_s, res.site_phase_cpu_s = phase, cpu
    res.bytes_per_site = statistics.mean(sent[i] for i in survivors_)
    res.max_error = float(np.abs(fp.decode(total) - plain).max())
    res.error_bound = sites * 0.5 * fp.resolution
    return res
