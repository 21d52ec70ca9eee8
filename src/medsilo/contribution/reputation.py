"""A reputation per site across runs: an exponentially weighted mean of its reward shares.

One run's shares are noisy (seed, rounds, what the others brought), and a site can free ride
in one run and not the next. The reputation file (JSON, keyed by site) keeps, per site,

    r_i <- (1 - alpha) * r_i + alpha * n * share_i        (first run: r_i = n * share_i)

where ``n`` is the number of sites in that run, so ``n * share_i`` is the share relative to
an equal split: 1 means "pulled its weight", 0 "added nothing or free rode", and runs with
different numbers of sites are comparable. Sites absent from a run keep their reputation. A
run is counted once (its resolved path is stored); ``alpha`` is fixed when the file is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsilo.contribution.scores import load_scores

DEFAULT_ALPHA = 0.3


class ReputationError(ValueError):
    """A reputation file or a run that cannot be used; the message says why."""


@dataclass
class SiteReputation:
    reputation: float
    runs: int
    last_share: float


@dataclass
class Reputation:
    alpha: float = DEFAULT_ALPHA
    sites: dict[str, SiteReputation] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    def update(self, run: str, shares: dict[str, float]) -> None:
        """Fold one run's shares in (refused when ``run`` was counted already)."""
        if run in self.runs:
            raise ReputationError(f"{run} is already counted in this reputation file")
        n = len(shares)
        for site, share in shares.items():
            relative = n * share
            old = self.sites.get(site)
            if old is None:
                self.sites[site] = SiteReputation(relative, 1, share)
            else:
                mixed = (1 - self.alpha) * old.reputation + self.alpha * relative
                self.sites[site] = SiteReputation(mixed, old.runs + 1, share)
        self.runs.append(run)

    def to_json(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "sites": {s: vars(r) for s, r in sorted(self.sites.items())},
            "runs": self.runs,
        }


def check_alpha(alpha: float) -> float:
    if not 0 < alpha <= 1:
        raise ReputationError(f"alpha must be in (0, 1], not {alpha}")
    return alpha


def load_reputation(path: Path, alpha: float | None = None) -> Reputation:
    """The file at ``path``, or a new reputation (with ``alpha``) when it does not exist."""
    if not path.exists():
        return Reputation(check_alpha(DEFAULT_ALPHA if alpha is None else alpha))
    try:
        raw = json.loads(path.read_text())
        rep = Reputation(
            float(raw["alpha"]),
            {s: SiteReputation(**v) for s, v in raw["sites"].items()},
            [str(r) for r in raw["runs"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ReputationError(f"{path} is not a reputation file: {err}") from err
    if alpha is not None and alpha != rep.alpha:
        raise ReputationError(f"{path} was made with alpha {rep.alpha}; it cannot change")
    return rep


def run_shares(run_dir: Path) -> dict[str, float]:
    """The reward shares ``medsilo contribution`` wrote for ``run_dir``."""
    scores = load_scores(run_dir)
    if scores is None or "shares" not in scores:
        raise ReputationError(
            f"{run_dir} has no reward shares: run `medsilo contribution {run_dir}` first"
        )
    return {s: float(v) for s, v in scores["shares"]["values"].items()}


def update_reputation(path: Path, run_dirs: list[Path], alpha: float | None = None) -> Reputation:
    """Fold the runs' shares into the file at ``path`` (all checked before it is written)."""
    rep = load_reputation(path, alpha)
    for run_dir in run_dirs:
        rep.update(str(run_dir.resolve()), run_shares(run_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep.to_json(), indent=2) + "\n")
    return rep
