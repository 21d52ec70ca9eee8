"""The one timing model every part of medsilo uses to turn bytes and local work into seconds.

A site's link is a :class:`NetworkProfile` (uplink and downlink bandwidth in Mbit/s and a
one-way latency). One transfer of ``n`` bytes takes ``latency + 8 n / bandwidth`` seconds.

A site's local work is a :class:`ComputeProfile`: ``examples_per_s`` at the reference speed
and a ``slowdown`` factor (a shared or older GPU), so training on ``e`` examples (local steps
x batch size) takes ``slowdown * e / examples_per_s`` seconds. ``examples_per_s: null`` (the
default) charges no compute, which keeps the communication-only clock of earlier runs.

A site's :class:`Availability` says when it can work and whether a dispatch comes back:
periodic windows (``on_s`` seconds available out of every ``period_s``, shifted by
``offset_s``; work outside a window pauses until the next one opens) and a ``dropout``
probability that a dispatch (a synchronous round, or one asynchronous task) never returns.

One dispatch at a site costs ``download + compute + upload`` seconds of busy time, laid out
over its availability windows (:func:`finish_time`). A synchronous round lasts until the last
participating site's update arrives, or until the round timeout when a site dropped out or is
too late (:mod:`medsilo.runtime.clock`); the asynchronous engine
(:mod:`medsilo.runtime.asynchronous`) orders site completions by the same arithmetic. CC-PGD's
communication accounting, the engine's ``sim_time_s`` / ``sim_clock_s`` and the
asynchronous engine all use these functions: one timing model, not several.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["up", "down"]


class NetworkProfile(BaseModel):
    """One site's link to the coordinator (Mbit/s = 10^6 bit/s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uplink_mbps: float = Field(100.0, gt=0, description="site -> coordinator, Mbit/s")
    downlink_mbps: float = Field(100.0, gt=0, description="coordinator -> site, Mbit/s")
    latency_ms: float = Field(20.0, ge=0, description="one-way latency per transfer")


class ComputeProfile(BaseModel):
    """How fast one site trains: examples per second at the reference speed, and a slowdown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples_per_s: float | None = Field(
        None,
        gt=0,
        description="training examples processed per second at the reference speed "
        "(null: local work costs no simulated time)",
    )
    slowdown: float = Field(
        1.0, gt=0, description="multiplies local work time (10: a site ten times slower)"
    )

    @model_validator(mode="after")
    def _slowdown_needs_speed(self) -> ComputeProfile:
        if self.slowdown != 1.0 and self.examples_per_s is None:
            raise ValueError(
                "compute.slowdown scales compute.examples_per_s, which is null (no compute "
                "charged); set compute.examples_per_s, e.g. in sites.default"
            )
        return self


class Availability(BaseModel):
    """When a site can work (periodic windows) and how often a dispatch never comes back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dropout: float = Field(0.0, ge=0, le=1, description="probability that a dispatch never returns")
    period_s: float | None = Field(None, gt=0, description="length of one on/off cycle")
    on_s: float | None = Field(None, gt=0, description="available seconds per cycle")
    offset_s: float = Field(0.0, ge=0, description="the first window opens at offset_s")

    @model_validator(mode="after")
    def _window(self) -> Availability:
        if (self.period_s is None) != (self.on_s is None):
            raise ValueError("availability needs both period_s and on_s (or neither)")
        if self.period_s is not None and self.on_s is not None and self.on_s > self.period_s:
            raise ValueError(
                f"availability.on_s ({self.on_s}) cannot exceed period_s ({self.period_s})"
            )
        return self

    @property
    def always(self) -> bool:
        return self.period_s is None or self.on_s == self.period_s


def transfer_seconds(num_bytes: int, profile: NetworkProfile, direction: Direction) -> float:
    """Seconds to move ``num_bytes`` over ``profile`` in ``direction`` (one message)."""
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
    mbps = profile.uplink_mbps if direction == "up" else profile.downlink_mbps
    return profile.latency_ms / 1000.0 + 8.0 * num_bytes / (mbps * 1e6)


def compute_seconds(examples: int, profile: ComputeProfile) -> float:
    """Seconds of local work to process ``examples`` training examples (0 when not charged)."""
    if examples < 0:
        raise ValueError(f"examples must be >= 0, got {examples}")
    if profile.examples_per_s is None:
        return 0.0
    return profile.slowdown * examples / profile.examples_per_s


def _cycle(t: float, av: Availability) -> tuple[float, float, float]:
    """``(start of the cycle holding t, period, on)`` for a windowed availability."""
    assert av.period_s is not None and av.on_s is not None
    period, on = av.period_s, av.on_s
    k = math.floor((t - av.offset_s) / period)
    return av.offset_s + k * period, period, on


def next_available(t: float, av: Availability) -> float:
    """The earliest time ``>= t`` at which the site is available."""
    if av.always:
        return t
    if t < av.offset_s:
        return av.offset_s
    start, period, on = _cycle(t, av)
    return t if t < start + on else start + period


def finish_time(start: float, busy_s: float, av: Availability) -> float:
    """When ``busy_s`` seconds of work starting at ``start`` end, pausing outside windows."""
    if busy_s < 0:
        raise ValueError(f"busy_s must be >= 0, got {busy_s}")
    t = next_available(start, av)
    if av.always:
        return t + busy_s
    remaining = busy_s
    while True:
        cycle, period, on = _cycle(t, av)
        window_end = cycle + on
        if t + remaining <= window_end:
            return t + remaining
        remaining -= window_end - t
        t = cycle + period


def round_seconds(
    transfers: Mapping[str, tuple[int, int]], profiles: Mapping[str, NetworkProfile]
) -> float:
    """Simulated communication seconds of one round: max over sites of download + upload.

    ``transfers`` maps each participating site to ``(bytes_down, bytes_up)``. The full
    round time with compute, availability and dropouts is
    :meth:`medsilo.runtime.clock.SimClock.sync_round`, which uses the same arithmetic.
    """
    return max(
        (
            transfer_seconds(down, profiles[site], "down")
            + transfer_seconds(up, profiles[site], "up")
            for site, (down, up) in transfers.items()
        ),
        default=0.0,
    )
