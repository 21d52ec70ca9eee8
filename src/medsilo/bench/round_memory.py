"""Peak memory of one round's site and coordinator steps, for large updates, in one process.

A round is driven step by step with the functions the runtimes use (secure aggregation:
:func:`~medsilo.secure.aggregation.encode_site_input`, :class:`~medsilo.secure.site.SecAggSite`,
:class:`~medsilo.secure.coordinator.SecAggCoordinator` and
:func:`~medsilo.secure.aggregation.secure_outcome`; compression:
:func:`~medsilo.compression.feedback.compress` and the engine's decoding and FedAvg mean), and
each step is metered by :class:`RoleMeter` under ``tracemalloc`` (which sees numpy's
buffers; it cannot see PyTorch's, and none are used here). A role's peak is, over its
steps, what it holds going into the step (counted from the arrays and messages it keeps:
see each driver) plus the most the step allocated above the memory at its start. Sites are
all metered under one role, ``site``: the peak is that of the worst site.

Used by ``medsilo bench large`` (:mod:`medsilo.bench.large_updates`) and by the memory
bound tests (tests/bench/test_round_memory.py), which check the peaks against the multiples
of the model's size stated in docs/scale.md ("Large updates").
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np

from medsilo.algorithms.base import weighted_delta
from medsilo.algorithms.fedavg import FedAvg
from medsilo.compression.codecs import TopK
from medsilo.compression.feedback import compress
from medsilo.models.weights import Layout
from medsilo.secure.aggregation import SecureAggregation, encode_site_input, secure_outcome
from medsilo.secure.config import SecureAggregationConfig
from medsilo.secure.coordinator import SecAggCoordinator
from medsilo.secure.prg import MaskPRG
from medsilo.secure.result import SecureRound
from medsilo.secure.site import SecAggSite
from medsilo.types import Update, Weights, nbytes

T = TypeVar("T")

#: The synthetic model's tensors: a few large matrices, like a network's layers.
TENSORS = 4


def synthetic_shapes(params: int) -> list[tuple[int, ...]]:
    """Shapes of ``params`` float32 values: :data:`TENSORS` matrices of 1,000 columns and a
    vector for the remainder."""
    if params < TENSORS * 1000:
        raise ValueError(f"a synthetic model needs at least {TENSORS * 1000} parameters")
    rows = params // (TENSORS * 1000)
    shapes: list[tuple[int, ...]] = [(rows, 1000)] * TENSORS
    rest = params - TENSORS * rows * 1000
    return shapes + ([(rest,)] if rest else [])


def synthetic_delta(shapes: list[tuple[int, ...]], seed: int) -> Weights:
    """A site's update: small normal values (well inside secure aggregation's clip)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) * np.float32(1e-3) for s in shapes]


@dataclass
class RoleMeter:
    """Peak bytes per role, from ``tracemalloc`` (started by :meth:`call` if need be)."""

    peaks: dict[str, int] = field(default_factory=dict)

    def call(self, role: str, held: int, step: Callable[[], T]) -> T:
        """Run ``step`` for ``role``, which holds ``held`` bytes going into it."""
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        out = step()
        _, peak = tracemalloc.get_traced_memory()
        self.peaks[role] = max(self.peaks.get(role, 0), held + peak - start)
        return out


@dataclass
class RoundMemory:
    """One metered round: peak bytes per role and the model's size in bytes."""

    model_bytes: int
    peaks: dict[str, int]
    global_delta: Weights

    def multiple(self, role: str) -> float:
        """A role's peak as a multiple of the model's size."""
        return self.peaks[role] / self.model_bytes


def _layout(shapes: list[tuple[int, ...]]) -> Layout:
    n = len(shapes)
    return Layout(tuple(str(i) for i in range(n)), (True,) * n, (False,) * n)


def secure_round(
    shapes: list[tuple[int, ...]], sites: int, graph: str = "complete", seed: int = 0
) -> RoundMemory:
    """One round of masking secure aggregation over ``sites`` sites (no dropouts).

    Held going into a site step: its delta and, once made, its encoded input (kept until
    it has sent its masked input). Held going into a coordinator step: the messages of that
    phase (all of them arrive before it runs, as Flower delivers them) and, from the masked
    phase on, the masked inputs (kept as the round's payloads) and their running sum."""
    meter = RoleMeter()
    extra = {"neighbours": 2} if graph == "harary" else {}
    cfg = SecureAggregationConfig(enabled=True, graph=graph, **extra)
    secure = SecureAggregation(cfg, equal_weights=False, run_name="bench", seed=seed, cohort=sites)
    encoder = secure.encoder(sites)
    length = sum(int(np.prod(s)) for s in shapes) + 2
    params = secure.params(1, sites, length)
    deltas = {i: synthetic_delta(shapes, seed + i) for i in range(1, sites + 1)}
    model_bytes = nbytes(deltas[1])
    members: dict[int, SecAggSite] = {}
    for i, delta in deltas.items():
        update = Update(f"site{i}", delta, num_examples=10 * i, num_steps=1)
        x, _ = meter.call("site", model_bytes, partial(encode_site_input, update, 10 * i, encoder))
        members[i] = SecAggSite(i, x, params, MaskPRG(length, params.bits))
    held = model_bytes + 4 * length  # the delta and its encoding
    coordinator = SecAggCoordinator(params, cohort=sites)

    def site_step(name: str, i: int) -> bytes:
        site = members[i]
        if name == "keys":
            return site.advertise().encode()
        if name == "shares":
            return site.share_keys(coordinator.key_list_for(i)).encode()
        if name == "masked":
            return site.masked_input(relayed[i]).encode()
        return site.unmask(survivors).encode()

    def phase(name: str) -> dict[int, bytes]:
        return {i: meter.call("site", held, partial(site_step, name, i)) for i in members}

    adverts = phase("keys")
    meter.call("coordinator", _size(adverts), partial(coordinator.collect_keys, adverts))
    shares = phase("shares")
    relayed = meter.call("coordinator", _size(shares), partial(coordinator.relay_shares, shares))
    masked = phase("masked")
    kept = _size(masked) + 4 * length  # the payloads and the running sum
    survivors = meter.call("coordinator", kept, partial(coordinator.collect_masked, masked))
    held = model_bytes  # the encoded input is no longer needed after the masked phase
    answers = phase("unmask")
    total = meter.call("coordinator", kept, partial(coordinator.unmask, answers))
    result = SecureRound([], [f"site{i}" for i in members], params.threshold, encoder)
    result.total, result.survivors = total, list(result.sites)
    weights = [np.zeros(s, dtype=np.float32) for s in shapes]
    outcome = partial(secure_outcome, result, FedAvg(), weights, {}, _layout(shapes), sites, sites)
    mean, _, _ = meter.call(
        "coordinator", _size(masked) + int(total.nbytes) + model_bytes, outcome
    )  # held: the payloads, the sum and the global weights
    if mean is None:
        raise RuntimeError(f"the metered secure round aborted: {result.abort_reason}")
    return RoundMemory(model_bytes, meter.peaks, mean)


def topk_round(
    shapes: list[tuple[int, ...]], sites: int, fraction: float = 0.01, seed: int = 0
) -> RoundMemory:
    """One round of top-k with error feedback, each site carrying a residual from an earlier
    round (as from round 2 on). Held going into a site step: its delta and its residual.
    Held going into the coordinator's step: the payloads; the step decodes them and takes
    FedAvg's weighted mean (the engine's :meth:`RoundRunner.decode` and aggregation)."""
    meter = RoleMeter()
    codec = TopK(fraction)
    payloads: list[Update] = []
    model_bytes = 0
    for i in range(1, sites + 1):
        delta = synthetic_delta(shapes, seed + i)
        residual = synthetic_delta(shapes, seed + 100 + i)
        model_bytes = nbytes(delta)
        payload, _ = meter.call("site", 2 * model_bytes, partial(compress, codec, delta, residual))
        payloads.append(Update(f"site{i}", [], 10 * i, 1, encoded_delta=payload))
        del delta, residual

    def aggregate() -> Weights:
        decoded = [
            Update(u.site, codec.decode(u.encoded_delta or b"", shapes), u.num_examples, 1)
            for u in payloads
        ]
        return weighted_delta(decoded)

    held = sum(len(u.encoded_delta or b"") for u in payloads)
    delta = meter.call("coordinator", held, aggregate)
    return RoundMemory(model_bytes, meter.peaks, delta)


def _size(messages: dict[int, bytes]) -> int:
    return sum(len(m) for m in messages.values())
