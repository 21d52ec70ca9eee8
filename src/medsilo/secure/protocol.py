"""What both parties of a secure-aggregation round agree on, and how a round fails.

:class:`SecAggParams` is public: the threshold ``t``, the ring ``Z_{2**bits}``, the vector
length and a label unique to the round (run name, round number) that every derived key is
bound to. With ``neighbours = k > 0`` (SecAgg+, Bell et al. 2020) each site masks with and
shares its secrets among only its ``k`` neighbours in the round's graph over the ``cohort``
sites (:mod:`medsilo.secure.neighbour_graph`), and ``t`` applies to each neighbourhood (the
site and its neighbours); ``k = 0`` is Bonawitz et al.'s complete graph.
:class:`SecAggAbort` is raised when fewer than ``t`` sites remain at some phase (in the
round, or in one site's neighbourhood): the sum cannot (and must not) be recovered, so the
caller skips the round and applies nothing. :class:`SecAggError` is a protocol violation
(a forged relay, a tampered share).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from medsilo.secure.neighbour_graph import harary_neighbours


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
    #: SecAgg+'s ``k`` (neighbours per site); 0: every pair of sites shares a mask.
    neighbours: int = 0
    #: Sites invited to the round (ids ``1..cohort``): the graph's vertices when ``k > 0``.
    cohort: int = 0

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.length < 1:
            raise ValueError(f"need threshold >= 1 and length >= 1, got {self}")
        if self.neighbours:
            harary_neighbours(self.cohort, self.neighbours, self.label)  # refuses bad shapes
            if self.threshold > min(self.neighbours, self.cohort - 1) + 1:
                raise ValueError(
                    f"threshold {self.threshold} exceeds a neighbourhood of "
                    f"{min(self.neighbours, self.cohort - 1) + 1} sites"
                )

    def neighbourhood(self, site: int) -> frozenset[int] | None:
        """Site ``site``'s neighbours (itself excluded); ``None``: everyone (complete graph)."""
        if not self.neighbours:
            return None
        graph = harary_neighbours(self.cohort, self.neighbours, self.label)
        if not 1 <= site <= self.cohort:
            raise SecAggError(f"site id {site} is outside the round's cohort 1..{self.cohort}")
        return graph[site - 1]

    def peers(self, site: int, among: Collection[int]) -> set[int]:
        """The sites of ``among`` that ``site`` masks with and shares to (never itself).

        Under SecAgg+ it walks the ``k`` neighbours, not ``among``: the coordinator asks this
        for every site, so scanning all present sites would make its work ``O(n^2)``."""
        near = self.neighbourhood(site)
        if near is None:
            return {j for j in among if j != site}
        return {j for j in near if j in among}

    def where(self, phase: str, site: int) -> str:
        """``phase``, naming the neighbourhood whose quorum is checked under SecAgg+."""
        return f"{phase} (neighbourhood of site {site})" if self.neighbours else phase

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
