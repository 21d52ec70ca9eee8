"""The one network model every part of medsilo uses to turn bytes into seconds.

A site's link is a :class:`NetworkProfile` (uplink and downlink bandwidth in Mbit/s and a
one-way latency). One transfer of ``n`` bytes takes ``latency + 8 n / bandwidth`` seconds.
A round's simulated communication time is the slowest participating site's
``download + upload`` time: sites work in parallel, the coordinator waits for the last one.

Compute time is **excluded** for now (a later issue adds a simulated clock that also
charges local training); so ``sim_time_s`` is the round's communication wall time only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["up", "down"]


class NetworkProfile(BaseModel):
    """One site's link to the coordinator (Mbit/s = 10^6 bit/s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uplink_mbps: float = Field(100.0, gt=0, description="site -> coordinator, Mbit/s")
    downlink_mbps: float = Field(100.0, gt=0, description="coordinator -> site, Mbit/s")
    latency_ms: float = Field(20.0, ge=0, description="one-way latency per transfer")


def transfer_seconds(num_bytes: int, profile: NetworkProfile, direction: Direction) -> float:
    """Seconds to move ``num_bytes`` over ``profile`` in ``direction`` (one message)."""
    if num_bytes < 0:
        raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
    mbps = profile.uplink_mbps if direction == "up" else profile.downlink_mbps
    return profile.latency_ms / 1000.0 + 8.0 * num_bytes / (mbps * 1e6)


def round_seconds(
    transfers: Mapping[str, tuple[int, int]], profiles: Mapping[str, NetworkProfile]
) -> float:
    """Simulated seconds of one round: max over sites of download + upload time.

    ``transfers`` maps each participating site to ``(bytes_down, bytes_up)``.
    """
    return max(
        (
            transfer_seconds(down, profiles[site], "down")
            + transfer_seconds(up, profiles[site], "up")
            for site, (down, up) in transfers.items()
        ),
        default=0.0,
    )
