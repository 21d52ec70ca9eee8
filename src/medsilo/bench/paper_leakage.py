"""The second pass's leakage measures of one run (docs/ccpgd.md §10, pre-registered).

:func:`measure_leakage` runs a configured federation once with a
:class:`~medsilo.runtime.federation.UpdateObserver` (:class:`TransmittedUpdates`) that sees
what the honest-but-curious coordinator holds every round: each site's update *as
transmitted and decoded* (after clipping, CC-PGD's proximal steps, a codec, ...), under the
run's real local training. From it:

* **gradient inversion** (primary): at the attacked rounds (1, R/2, R by default), every
  site's update is inverted by simulating the site's real round (all local steps, all
  batches; :mod:`medsilo.bench.leakage_inversion`) and ``inversion_images`` images of the
  round's first batch are scored; the site's value is the share reconstructed (SSIM >= 0.5
  and PSNR above the site's mean-image guess) over rounds and images;
* **membership inference** (primary): offline LiRA per site on the final global model
  (:mod:`medsilo.bench.leakage_membership`): advantage ``AUC - 0.5`` and TPR at 0.1 % FPR;
* **proxies** (secondary): ``R``, ``R'`` and support bits per parameter of every transmitted
  update of every round (:mod:`medsilo.bench.leakage_proxies`), averaged per site.

Every setting-level number is the mean of the sites' values weighted by ``1 + kappa * e_i``,
``e_i`` being the site's TEE-exploit indicator from its platform record, the same
:func:`~medsilo.confidential.vulnerabilities.exploit_indicator` CC-PGD uses (docs/ccpgd.md
§6: the SGX site still listing LVI has ``e = 1``); the exposed sites are listed.

A run that sends no updates (``pooled``, ``local``) has no inversion or proxy numbers (NaN);
its final model is still attacked for membership. Inversion on tabular inputs is NaN as well:
§10's criterion needs SSIM, which images only have (``inversion_beats_guess``, the PSNR half
alone, is reported for any input).

:data:`QUICK_LEAKAGE` is the cheap preset for ``medsilo bench paper --quick``; its reductions
are *not* the pre-registered budget and a report using it must say so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from medsilo.audit.inversion import InversionSettings
from medsilo.audit.lira import LiraSettings
from medsilo.bench.leakage_inversion import RoundAttack, attack_round, check_replayable
from medsilo.bench.leakage_membership import site_membership
from medsilo.bench.leakage_proxies import (
    site_weighted_mean,
    site_weights,
    spread,
    support_bits_per_param,
)
from medsilo.confidential.leakage import leakage_risk
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import BASELINES, RunConfig
from medsilo.runtime.federation import FederationResult
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.simulation import run_federation
from medsilo.types import Update, Weights

ROUND_NAMES = ("first", "middle", "last")


@dataclass(frozen=True)
class LeakageSettings:
    """The attack budget. The defaults are §10's pre-registered ones."""

    kappa: float = 1.0  # site weight 1 + kappa * e_i
    inversion_images: int = 8  # images of the first batch scored per site and attacked round
    inversion_iterations: int = 300
    inversion_restarts: int = 1
    membership_shadows: int = 8  # offline LiRA shadow models
    membership_rows: int = 500  # members and non-members per site (fewer if fewer exist)
    attacked_rounds: str = "first,middle,last"
    #: LiRA shadow training epochs (docs/privacy-audits.md's default; §10 does not fix it).
    membership_shadow_epochs: float = 3.0

    def __post_init__(self) -> None:
        if self.kappa < 0:
            raise ValueError(f"kappa must be >= 0, got {self.kappa}")
        for name in (
            "inversion_images",
            "inversion_iterations",
            "inversion_restarts",
            "membership_rows",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.membership_shadows < 2:
            raise ValueError("LiRA needs at least 2 shadow models (membership_shadows >= 2)")
        if self.membership_shadow_epochs <= 0:
            raise ValueError("membership_shadow_epochs must be > 0")
        self.rounds(1)  # validates the spelling

    def rounds(self, total: int) -> list[int]:
        """The attacked rounds of a ``total``-round run: ``first`` = 1, ``middle`` = R // 2
        (at least 1), ``last`` = R, or explicit round numbers; sorted, without repeats."""
        if total < 1:
            raise ValueError(f"a run has at least one round, got {total}")
        named = {"first": 1, "middle": max(1, total // 2), "last": total}
        chosen: set[int] = set()
        for token in (t.strip() for t in self.attacked_rounds.split(",")):
            if token in named:
                chosen.add(named[token])
            elif token.isdigit() and int(token) >= 1:
                chosen.add(min(int(token), total))
            else:
                raise ValueError(
                    f"attacked_rounds: {token!r} is neither one of {', '.join(ROUND_NAMES)} "
                    "nor a round number >= 1"
                )
        return sorted(chosen)

    def inversion(self) -> InversionSettings:
        return InversionSettings(
            iterations=self.inversion_iterations, restarts=self.inversion_restarts
        )

    def lira(self) -> LiraSettings:
        return LiraSettings(shadows=self.membership_shadows, epochs=self.membership_shadow_epochs)


#: The cheap preset of ``--quick`` (NOT the pre-registered budget, and too weak to reconstruct
#: anything from a 10-step round of 32-image batches: a smoke test of the inversion path, whose
#: success share is expected to be 0 for every method): 5 attacker iterations instead of 300,
#: the first round only (where gradients are largest), 4 LiRA shadows of 2 epochs on 250 rows
#: a side instead of 8 on 500. Scoring 8 images costs nothing next to the attack, so it stays.
#: Cost on the quick shape (paper CNN, MNIST, 10 steps x 32 = 320 dummy images, one thread):
#: about 0.2 CPU s per attacker iteration and attacked site, so 5 sites x 5 iterations is
#: about 5 CPU s a run; the pre-registered 5 sites x 3 rounds x 300 iterations about 950.
QUICK_LEAKAGE = LeakageSettings(
    inversion_iterations=5,
    membership_shadows=4,
    membership_rows=250,
    attacked_rounds="first",
    membership_shadow_epochs=2.0,
)


@dataclass(frozen=True)
class LeakageMeasures:
    """One run's leakage (docs/ccpgd.md §10); NaN where a measure does not apply."""

    inversion_success: float  # site-weighted share of images reconstructed (SSIM, PSNR)
    inversion_success_by_site: dict[str, float]
    membership_advantage: float  # site-weighted AUC - 0.5
    membership_tpr_at_low_fpr: float  # site-weighted TPR at 0.1 % FPR
    membership_advantage_by_site: dict[str, float]
    exposed_sites: tuple[str, ...]  # e_i = 1
    support_bits_per_param: float  # site-weighted mean over transmitted updates
    r_concentration: float  # R = 1 - H(p)/log d, site-weighted mean
    r_spread: float  # R' = H(p)/log d, site-weighted mean
    #: Share of scored images whose PSNR beats the mean-image guess (any input; not §10's).
    inversion_beats_guess: float = math.nan
    #: Whether the TPR at 0.1 % FPR is an interpolation (fewer than 1000 non-members).
    membership_resolution_limited: bool = False
    #: The site weights used, ``1 + kappa * e_i``.
    site_weights: dict[str, float] = field(default_factory=dict)
    #: Attacked (site, round) pairs and scored images.
    attacked: int = 0
    images_scored: int = 0
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (NaN becomes ``None``)."""
        out: dict[str, Any] = _json_ready(asdict(self))
        return out


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


class TransmittedUpdates:
    """The :class:`~medsilo.runtime.federation.UpdateObserver` of :func:`measure_leakage`:
    per site, the proxies of every decoded update, and at the attacked rounds a copy of the
    update and of the global weights it was computed from."""

    def __init__(self, attacked_rounds: list[int]) -> None:
        self.attacked_rounds = set(attacked_rounds)
        self.support: dict[str, list[float]] = defaultdict(list)
        self.concentration: dict[str, list[float]] = defaultdict(list)
        self.spread: dict[str, list[float]] = defaultdict(list)
        #: round -> (global weights, {site: decoded update})
        self.kept: dict[int, tuple[Weights, dict[str, Weights]]] = {}

    def received(self, rnd: int, weights: Weights, updates: list[Update]) -> None:
        for u in updates:
            self.support[u.site].append(support_bits_per_param(u.delta))
            self.concentration[u.site].append(leakage_risk(u.delta))
            self.spread[u.site].append(spread(u.delta))
        if rnd in self.attacked_rounds:
            self.kept[rnd] = (
                [w.copy() for w in weights],
                {u.site: [d.copy() for d in u.delta] for u in updates},
            )


def run_with_leakage(
    cfg: RunConfig,
    settings: LeakageSettings,
    prepared: PreparedFederation | None = None,
) -> tuple[FederationResult, LeakageMeasures]:
    """Run ``cfg`` once and measure its leakage: for a bench that also wants the run's
    accuracy and bytes without training twice."""
    prep = prepared or PreparedFederation.build(cfg)
    sends_updates = cfg.algorithm.name not in BASELINES
    if sends_updates:
        check_replayable(cfg)
    observer = TransmittedUpdates(settings.rounds(cfg.training.rounds))
    result = run_federation(cfg, prepared=prep, observer=observer if sends_updates else None)
    return result, leakage_of(cfg, prep, result.weights, observer, settings, sends_updates)


def measure_leakage(cfg: RunConfig, seed: int, settings: LeakageSettings) -> LeakageMeasures:
    """The leakage measures of ``cfg`` run with ``seed`` (see the module docstring)."""
    if cfg.seed != seed:
        cfg = cfg.with_overrides(seed=seed)
    return run_with_leakage(cfg, settings)[1]


def leakage_of(
    cfg: RunConfig,
    prep: PreparedFederation,
    final_weights: Weights,
    seen: TransmittedUpdates,
    settings: LeakageSettings,
    sends_updates: bool = True,
) -> LeakageMeasures:
    """The measures from what ``seen`` observed during the run and its final weights."""
    names = prep.fed.site_names
    indicators = {n: exploit_indicator(cfg.sites.record(n).platform) for n in names}
    weights = site_weights(indicators, settings.kappa)
    notes: list[str] = []
    attacks: list[RoundAttack] = []
    if sends_updates:
        for rnd, (global_weights, updates) in sorted(seen.kept.items()):
            for site in names:
                if site not in updates:
                    continue  # dropped or rejected this round: nothing to attack
                attacks.append(
                    attack_round(
                        cfg,
                        prep,
                        site,
                        rnd,
                        global_weights,
                        updates[site],
                        settings.inversion_images,
                        settings.inversion(),
                    )
                )
    else:
        notes.append("sends no updates: inversion and proxies do not apply")
    success: dict[str, float] = {}
    beats: dict[str, float] = {}
    for site in names:
        mine = [a for a in attacks if a.site == site]
        flags = [s for a in mine for s in a.successes]
        success[site] = math.nan if not flags or any(f is None for f in flags) else _share(flags)
        beats[site] = _share([b for a in mine for b in a.beats_guess])
    if attacks and all(math.isnan(v) for v in success.values()):
        notes.append("inversion success is NaN: tabular inputs have no SSIM (§10's criterion)")
    membership = site_membership(
        cfg, prep, final_weights, settings.membership_rows, settings.lira()
    )
    advantage = {s: m.advantage for s, m in membership.items()}

    def proxy(values: dict[str, list[float]]) -> float:
        per_site = {s: _mean(values.get(s, [])) for s in names}
        return site_weighted_mean(per_site, weights)

    return LeakageMeasures(
        inversion_success=site_weighted_mean(success, weights),
        inversion_success_by_site=success,
        membership_advantage=site_weighted_mean(advantage, weights),
        membership_tpr_at_low_fpr=site_weighted_mean(
            {s: m.roc.tpr_at_low_fpr for s, m in membership.items()}, weights
        ),
        membership_advantage_by_site=advantage,
        exposed_sites=tuple(n for n in names if indicators[n] == 1),
        support_bits_per_param=proxy(seen.support),
        r_concentration=proxy(seen.concentration),
        r_spread=proxy(seen.spread),
        inversion_beats_guess=site_weighted_mean(beats, weights),
        membership_resolution_limited=any(m.roc.resolution_limited for m in membership.values()),
        site_weights=weights,
        attacked=len(attacks),
        images_scored=sum(len(a.psnr) for a in attacks),
        notes=tuple(notes),
    )


def _share(flags: list[bool] | list[bool | None]) -> float:
    return float(sum(bool(f) for f in flags)) / len(flags) if flags else math.nan


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan
