"""Free-rider detection on the updates the coordinator aggregates (docs/contribution.md).

A free rider wants a reward share without doing the work. It cannot see the other sites'
data, so what it sends is one of a few cheap things, and each leaves a mark on the deltas
``delta_k = w_k - w`` that the coordinator holds every round:

* ``returns_received_model``: it sends back the model it received, ``delta ~ 0``: flagged
  in a round when ``||delta|| <= zero_tolerance * median ||delta_j||`` of the round's other
  updates (or exactly 0);
* ``stale``: it re-sends an earlier upload: flagged when ``||delta_t - delta_prev|| <=
  equal_tolerance * ||delta_t||``, ``delta_prev`` its previous update seen;
* ``copy``: it sends another site's update of the round: flagged when its delta is within
  ``equal_tolerance`` (relative) of the delta of a site that arrived *before* it (a copy
  cannot arrive before its original; the original's sender is not flagged); only the
  earlier updates that pass two cheap necessary conditions
  (:mod:`medsilo.contribution.copy_prefilter`) are compared in full;
* ``noise``: it sends random numbers that look like work. Over the run, two z-scores test
  whether the direction of its updates is that of a random vector: for a direction drawn
  uniformly in ``d`` dimensions, the cosine with any fixed vector has mean 0 and variance
  ``1/d``, so ``z = sum_t cos_t * sqrt(d / R)`` over ``R`` rounds is about standard normal.
  ``z_others`` uses the cosine with the mean of the round's other updates, ``z_own`` the
  cosine with the site's own previous update. Flagged when both ``|z|`` are below
  ``noise_z`` after at least ``noise_min_rounds`` rounds: an honest site moves the model in
  a direction related to the others' *or*, if its data disagrees with theirs (non-IID),
  consistently with itself round after round; noise does neither. The rule assumes training
  that makes steady progress: where the honest updates themselves jump around (a diverging
  learning rate), they look like noise too (docs/contribution.md).

The three per-round rules flag a site only when they fire in at least ``min_round_share`` of
the rounds its update was aggregated in: a single round with a vanishing gradient (a
saturated model on a site whose patients all share one label) is not free riding, a site
that does it every other round is.

The detector observes exactly what the coordinator aggregates, so it needs the individual
updates: it is refused under secure aggregation (only the sum is visible) and where a robust
rule replaces the aggregation it observes (:func:`detection_unsupported_reason`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, RunConfig
from medsilo.contribution.copy_prefilter import CopyPrefilter
from medsilo.types import Update, Weights, flatten

Rule = Literal["returns_received_model", "stale", "copy", "noise"]


@dataclass(frozen=True)
class DetectionSettings:
    #: ``||delta|| <=`` this times the median norm of the round's other updates: "no update".
    zero_tolerance: float = 1e-3
    #: Relative distance under which two updates are the same (stale, copy).
    equal_tolerance: float = 1e-6
    #: Both noise z-scores below this: the update direction is indistinguishable from random.
    noise_z: float = 3.0
    #: Rounds of evidence before the noise rule may flag a site.
    noise_min_rounds: int = 3
    #: A per-round rule flags a site when it fires in at least this share of the rounds in
    #: which the site's update was aggregated (one zero-gradient round is not free riding).
    min_round_share: float = 0.5


@dataclass(frozen=True)
class FreeRiderFlag:
    site: str
    rule: Rule
    rounds: list[int]
    detail: str

    def payload(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NoiseEvidence:
    """Per site: the cosines the noise rule sums (with the others' mean, with itself)."""

    rounds: list[int] = field(default_factory=list)
    others: list[float] = field(default_factory=list)
    own: list[float] = field(default_factory=list)

    def z_scores(self, dimension: int) -> tuple[float | None, float | None]:
        return _z(self.others, dimension), _z(self.own, dimension)


def _z(cosines: list[float], dimension: int) -> float | None:
    """``None`` without evidence (a site seen once has no previous update to compare)."""
    return float(sum(cosines) * math.sqrt(dimension / len(cosines))) if cosines else None


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def _same(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    return float(np.linalg.norm(a - b)) <= tolerance * float(np.linalg.norm(a))


def detection_unsupported_reason(cfg: RunConfig) -> str | None:
    """Why the coordinator cannot check this run's individual updates, or ``None``."""
    if cfg.algorithm.name in BASELINES:
        return f"algorithm {cfg.algorithm.name!r} is a baseline and exchanges no updates"
    if cfg.secure_aggregation.enabled:
        return (
            "secure aggregation hides the individual updates from the coordinator (it only "
            "learns their sum), so free riders cannot be detected from them"
        )
    if not isinstance(cfg.asynchrony, SyncConfig):
        return "asynchronous runs have no rounds of updates to compare"
    if cfg.robust.rule != "none":
        return f"robust.rule {cfg.robust.rule!r} replaces the aggregation the detector observes"
    return None


@dataclass
class FreeRiderDetector:
    """Feed it every aggregation with :meth:`observe`; read :meth:`flags` after the run."""

    settings: DetectionSettings = field(default_factory=DetectionSettings)
    dimension: int = 0
    hits: dict[tuple[str, Rule], list[int]] = field(default_factory=dict)
    details: dict[tuple[str, Rule], set[str]] = field(default_factory=dict)
    evidence: dict[str, NoiseEvidence] = field(default_factory=dict)
    previous: dict[str, np.ndarray] = field(default_factory=dict)
    participation: dict[str, int] = field(default_factory=dict)

    def observe(self, rnd: int, weights: Weights, updates: list[Update]) -> None:
        """One round's aggregated updates, in arrival order (``weights``: the global model)."""
        del weights  # the deltas are all the rules need
        flat = [flatten(u.delta).astype(np.float64) for u in updates]
        if flat:
            self.dimension = int(flat[0].size)
        norms = [float(np.linalg.norm(x)) for x in flat]
        total = np.sum(flat, axis=0) if len(flat) > 1 else None  # for the others' means
        prefilter = CopyPrefilter.of(flat, norms)  # copy rule: O(n^2) cheap checks, not O(n^2 d)
        s = self.settings
        for i, (update, x) in enumerate(zip(updates, flat, strict=True)):
            site = update.site
            self.participation[site] = self.participation.get(site, 0) + 1
            others = [norms[j] for j in range(len(flat)) if j != i]
            floor = s.zero_tolerance * float(np.median(others)) if others else 0.0
            if norms[i] == 0.0 or norms[i] <= floor:
                self._hit(site, "returns_received_model", rnd, self._zero_detail(norms[i]))
                continue  # a zero update carries no direction for the other rules
            prev = self.previous.get(site)
            if prev is not None and _same(x, prev, s.equal_tolerance):
                self._hit(site, "stale", rnd, "same as its previous update")
            for j in prefilter.candidates(i, s.equal_tolerance):
                if _same(x, flat[j], s.equal_tolerance):
                    self._hit(site, "copy", rnd, f"same as {updates[j].site}'s update")
                    break
            others_mean = None if total is None else (total - x) / (len(flat) - 1)
            self._noise_evidence(rnd, site, x, others_mean, prev)
            self.previous[site] = x

    def _noise_evidence(
        self,
        rnd: int,
        site: str,
        x: np.ndarray,
        others_mean: np.ndarray | None,
        prev: np.ndarray | None,
    ) -> None:
        """``others_mean``: the mean of the round's other updates (None when alone), derived
        from the round's total so that a round costs O(n d), not O(n^2 d)."""
        evidence = self.evidence.setdefault(site, NoiseEvidence())
        evidence.rounds.append(rnd)
        if others_mean is not None:
            evidence.others.append(_cosine(x, others_mean))
        if prev is not None:
            evidence.own.append(_cosine(x, prev))

    def _zero_detail(self, norm: float) -> str:
        if norm == 0.0:
            return "update norm 0"
        return f"update norm at most {self.settings.zero_tolerance:g} x the others' median"

    def _hit(self, site: str, rule: Rule, rnd: int, detail: str) -> None:
        self.hits.setdefault((site, rule), []).append(rnd)
        self.details.setdefault((site, rule), set()).add(detail)

    def noise_scores(self) -> dict[str, dict[str, float | int | None]]:
        """``{site: {"z_others", "z_own", "rounds"}}`` for every site with evidence."""
        out: dict[str, dict[str, float | int | None]] = {}
        for site, ev in self.evidence.items():
            z_others, z_own = ev.z_scores(self.dimension)
            out[site] = {"z_others": z_others, "z_own": z_own, "rounds": len(ev.rounds)}
        return out

    def flags(self) -> list[FreeRiderFlag]:
        """One flag per (site, rule) that fired, in site-then-rule order of first sight."""
        s = self.settings
        flags = [
            FreeRiderFlag(site, rule, rounds, "; ".join(sorted(self.details[(site, rule)])))
            for (site, rule), rounds in self.hits.items()
            if len(rounds) >= s.min_round_share * self.participation[site]
        ]
        for site, scores in self.noise_scores().items():
            z_others, z_own = scores["z_others"], scores["z_own"]
            rounds = self.evidence[site].rounds
            if z_others is None or z_own is None or len(rounds) < s.noise_min_rounds:
                continue
            if abs(z_others) < s.noise_z and abs(z_own) < s.noise_z:
                detail = (
                    f"direction indistinguishable from random: z {z_others:.2f} against the "
                    f"others' mean, {z_own:.2f} against its own previous update "
                    f"(threshold {s.noise_z}, {self.dimension} parameters)"
                )
                flags.append(FreeRiderFlag(site, "noise", list(rounds), detail))
        return flags

    def summary(self) -> dict[str, Any]:
        """The ``free_riders`` entry of ``contribution.json``."""
        return {
            "settings": asdict(self.settings),
            "flags": [f.payload() for f in self.flags()],
            "noise_scores": self.noise_scores(),
        }


def flagged_sites(summary: dict[str, Any]) -> set[str]:
    """The sites a ``free_riders`` entry flags (none when detection was skipped)."""
    return {str(f["site"]) for f in summary.get("flags", [])}


def free_rider_lines(summary: dict[str, Any]) -> str:
    """The ``free_riders`` entry in words (command output and report)."""
    if "skipped" in summary:
        return f"free-rider detection skipped: {summary['skipped']}"
    flags = summary["flags"]
    if not flags:
        return "free-rider detection: no site flagged"
    lines = [
        f"free rider: {f['site']} ({f['rule']}"
        + (f", rounds {_rounds(f['rounds'])}" if f["rounds"] else "")
        + f"): {f['detail']}; reward share 0"
        for f in flags
    ]
    return "\n".join(lines)


def _rounds(rounds: list[int]) -> str:
    if len(rounds) <= 4:
        return ", ".join(map(str, rounds))
    return f"{rounds[0]}..{rounds[-1]} ({len(rounds)} rounds)"
