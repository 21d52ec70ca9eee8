"""The straggler deadline: stop waiting for the last sites soon after enough have answered.

A site that dies mid-exchange is noticed by Flower's SuperLink only when its heartbeat
expires (about a minute), and a silent one only at the round timeout; until then every
other site's work waits. With a straggler timeout ``S`` (``medsilo coordinator start
--straggler-timeout S``), once ``quorum`` of the exchange's counted sites have replied the
coordinator waits at most ``S`` more seconds, then drops the rest exactly as the round
timeout would (logged, listed in the round record's ``dropped``); the deployed
coordinator's final witness exchange uses it too. Set-up exchanges
(enrolment, admission) and secure aggregation's phases never use it: secure aggregation's
dropout recovery has its own rules, so the option is refused with it
(:func:`straggler_problem`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medsilo.config import RunConfig


@dataclass
class StragglerDeadline:
    """When to stop waiting in one exchange; the clock is passed in, so it can be faked.

    ``counted``: the nodes whose replies count toward ``quorum`` (a round's trainers: the
    sites that only evaluate in the same exchange must not start the clock on them).
    """

    grace_s: float
    quorum: int
    counted: frozenset[int]
    armed_at: float | None = field(default=None, init=False)
    #: Set once the deadline has passed (the exchange was cut short by it).
    fired: bool = field(default=False, init=False)

    def expired(self, replied: Iterable[int], now: float) -> bool:
        """Whether to stop waiting at ``now``, given the nodes that have ``replied`` so far;
        the deadline starts at the first call that sees the quorum."""
        if self.armed_at is None:
            if sum(1 for node in set(replied) if node in self.counted) < self.quorum:
                return False
            self.armed_at = now
        self.fired = now >= self.armed_at + self.grace_s
        return self.fired

    def describe(self) -> str:
        """Why the missing sites were dropped, for the log line."""
        return f"within the straggler timeout ({self.grace_s:g}s after {self.quorum} replied)"


def straggler_problem(cfg: RunConfig, straggler_timeout_s: float | None) -> str | None:
    """Why ``straggler_timeout_s`` cannot be used with ``cfg`` (``None``: it can)."""
    if straggler_timeout_s is None:
        return None
    if not straggler_timeout_s >= 0:  # also refuses NaN
        return f"the straggler timeout must be 0 or more seconds, got {straggler_timeout_s}"
    if cfg.secure_aggregation.enabled:
        return (
            "--straggler-timeout is not supported with secure aggregation (its dropout "
            "recovery decides itself which sites are dropped); leave it out"
        )
    return None
