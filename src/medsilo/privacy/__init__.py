"""Differential privacy: accounting, budgets, client-level DP around any algorithm, DP-SGD.

Modules (imported directly, so that ``medsilo.config`` can import :mod:`.config` without
pulling in Opacus or the runtime):

* :mod:`.config`: the ``privacy:`` config section (delta, budget, DP-SGD, client-level DP);
* :mod:`.accountant`: epsilon at delta from dp-accounting's RDP accountant, and
  noise calibration for a target epsilon;
* :mod:`.adaptive_clip`: Andrew et al. (2021) quantile-based adaptive clipping;
* :mod:`.client_dp`: client-level DP (clip, noise, adaptive clip) as a layer around an
  algorithm whose capabilities allow it (DP-FedAvg is FedAvg inside it);
* :mod:`.dp_sgd`: sample-level DP-SGD of a site's local training through Opacus;
* :mod:`.accounting`: the coordinator's per-round epsilon, shared by the engine and Flower,
  and the budget stop.

See docs/privacy.md.
"""
