"""Differential privacy: accounting, budgets, DP-FedAvg's clipping maths and DP-SGD.

Modules (imported directly, so that ``medsilo.config`` can import :mod:`.config` without
pulling in Opacus or the runtime):

* :mod:`.config`: the ``privacy:`` config section (delta, budget, DP-SGD);
* :mod:`.accountant`: epsilon at delta from dp-accounting's RDP accountant, and
  noise calibration for a target epsilon;
* :mod:`.adaptive_clip`: Andrew et al. (2021) quantile-based adaptive clipping;
* :mod:`.dp_sgd`: sample-level DP-SGD of a site's local training through Opacus;
* :mod:`.ledger`: the coordinator's per-round epsilon, shared by the engine and Flower,
  and the budget stop.

See docs/privacy.md.
"""
