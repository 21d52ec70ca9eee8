"""What both parties of a secure-aggregation round agree on, and how a round fails.

:class:`SecAggParams` is public: the threshold ``t``, the ring ``Z_{2**bits}``, the vector
length and a label unique to the round (run name, round number) that every derived key is
bound to. :class:`SecAggAbort` is raised when fewer than ``t`` sites remain at some phase:
the sum cannot (and must not) be recovered, so the caller skips the round and applies
nothing. :class:`SecAggError` is a protocol violation (a forged relay, a tampered share).
"""

from __future__ import annotations

from dataclasses import dataclass


class SecAggError(RuntimeError):
    """A protocol violation seen by a site or the coordinator (tampering, inconsistency)."""


class SecAggAbort(SecAggError):
    """Too few sites remain to finish the round safely; nothing may be applied."""


@dataclass(frozen=True)
class SecAggParams:
    threshold: int
    bits: int
    length: int
    label: bytes = b""

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.length < 1:
            raise ValueError(f"need threshold >= 1 and length >= 1, got {self}")

    def info(self, purpose: str) -> bytes:
        return b"medsilo-secagg/" + purpose.encode() + b"/" + self.label


def check_quorum(phase: str, present: int, expected: int, threshold: int) -> None:
    """Raise :class:`SecAggAbort` when fewer than ``threshold`` sites remain."""
    if present < threshold:
        raise SecAggAbort(
            f"secure aggregation aborted at {phase}: {present} of {expected} sites remain, "
            f"below the threshold of {threshold}; the round's sum cannot be recovered and "
            "nothing is applied"
        )
