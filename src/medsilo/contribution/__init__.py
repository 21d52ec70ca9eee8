"""Per-site contribution to the global model (docs/contribution.md).

* :mod:`~medsilo.contribution.loo`: exact leave-one-out, one retraining per site;
* :mod:`~medsilo.contribution.gtg`: GTG-Shapley from round-wise reconstructed models, no
  retraining (:mod:`~medsilo.contribution.observed` attaches it to a run);
* :mod:`~medsilo.contribution.shapley`: exact and Monte Carlo Shapley values of any game;
* :mod:`~medsilo.contribution.scores`: both for a run directory, as ``contribution.json``;
* incentives: :mod:`~medsilo.contribution.free_riders` (detection on the aggregated
  updates), :mod:`~medsilo.contribution.shares` (reward shares of a run) and
  :mod:`~medsilo.contribution.reputation` (per-site reputation across runs).
"""

from medsilo.contribution.gtg import GTGSettings, GTGShapley, RoundShapley, reconstruct
from medsilo.contribution.loo import leave_one_out
from medsilo.contribution.scores import contribution_scores, load_scores, score_run_dir
from medsilo.contribution.shapley import exact_shapley, monte_carlo_shapley, shapley

__all__ = [
    "GTGSettings",
    "GTGShapley",
    "RoundShapley",
    "contribution_scores",
    "exact_shapley",
    "leave_one_out",
    "load_scores",
    "monte_carlo_shapley",
    "reconstruct",
    "score_run_dir",
    "shapley",
]
