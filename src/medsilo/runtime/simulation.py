"""The in-process engine: every site in one process, deterministic for a seed.

It runs :class:`~medsilo.runtime.federation.RoundLoop` (the one round loop every runtime
shares) over :class:`~medsilo.runtime.inprocess.InProcessSites`, the asynchronous modes
through :class:`~medsilo.runtime.asynchronous.AsyncEngine`, and the ``pooled``/``local``
reference points through :mod:`medsilo.runtime.baselines`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medsilo.algorithms.base import Algorithm
from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, RunConfig
from medsilo.data.base import FederatedData
from medsilo.governance.checkpoint import Checkpoint, CheckpointWriter
from medsilo.governance.engine import refuse_unsupported
from medsilo.runtime.asynchronous import AsyncEngine
from medsilo.runtime.baselines import run_baseline
from medsilo.runtime.factory import build_run_algorithm, refuse_incompatible
from medsilo.runtime.federation import FederationResult, RoundLoop, UpdateObserver
from medsilo.runtime.inprocess import InProcessSites
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.round_record import RoundCallback

if TYPE_CHECKING:
    from medsilo.ledger.engine_witnesses import EngineWitnessing

__all__ = ["FederationResult", "run_federation"]


def run_federation(
    cfg: RunConfig,
    fed: FederatedData | None = None,
    on_round: RoundCallback | None = None,
    prepared: PreparedFederation | None = None,
    algorithm: Algorithm | None = None,
    checkpoints: CheckpointWriter | None = None,
    resume: Checkpoint | None = None,
    witnessing: EngineWitnessing | None = None,
    observer: UpdateObserver | None = None,
) -> FederationResult:
    """Run ``cfg`` to completion; ``on_round`` sees each round's record as it is made.

    ``algorithm`` overrides the one ``cfg`` names (as in the Flower apps). ``checkpoints``
    saves the state after each due round, ``resume`` starts after a checkpoint's round
    (docs/governance.md; only the synchronous engine supports either). ``witnessing``: the
    sites witness the audit ledger's head with every round (synchronous engine only;
    docs/audit-ledger.md). ``observer`` sees each round's decoded, accepted updates
    (:class:`~medsilo.runtime.federation.UpdateObserver`; synchronous engine only).
    """
    refuse_unsupported(cfg, checkpoints is not None or resume is not None)
    prep = prepared or PreparedFederation.build(cfg, fed)
    if cfg.algorithm.name in BASELINES:
        return run_baseline(cfg, prep, on_round)
    algo = algorithm if algorithm is not None else build_run_algorithm(cfg, len(prep.fed.sites))
    refuse_incompatible(cfg, algo, prep.model)  # an algorithm passed in: as a named one
    if not isinstance(cfg.asynchrony, SyncConfig):
        if observer is not None:
            raise ValueError("an update observer needs the synchronous engine (asynchrony: sync)")
        return AsyncEngine(cfg, prep, algo).run(on_round)
    start = time.perf_counter()
    sites = InProcessSites(cfg, prep, algo, witnessing.sites if witnessing else None)
    loop = RoundLoop(
        cfg,
        algo,
        sites.names,
        prep.layout,
        prep.initial_weights,
        sites.train_sizes,
        on_round,
        checkpoints,
        resume,
        witnessing.feed if witnessing else None,
        observer=observer,
    )
    model, records = loop.run(sites)
    return FederationResult(
        weights=model.weights,
        rounds=records,
        site_states=sites.states,
        site_weights=sites.site_weights(model.weights),
        wall_s=time.perf_counter() - start,
    )
