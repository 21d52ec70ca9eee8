"""The update a coordinator actually receives from a site, produced by the site's own code.

An audit is only honest if the attacked update went through every defence the run
configures, so this module reuses the runtime's code path instead of re-implementing it:
the configured :class:`~medsilo.algorithms.base.Algorithm`'s ``local_update`` (DP-FedAvg's
clipping, CC-PGD's proximal steps and projection, FedProx's term, ...), then
:meth:`medsilo.runtime.rounds.SiteSteps.upload` (update poisoning by an attacking site,
compression with error feedback), then the coordinator's decoding (the configured codec's
``decode``, as in :meth:`medsilo.runtime.rounds.CoordinatorSteps.decode`). What comes out is
exactly what the coordinator holds before aggregation.

Coordinator-side mechanisms act *after* this point and therefore do not protect an individual
update from the coordinator: DP-FedAvg's central Gaussian noise is added to the aggregate, so
the coordinator sees each site's update clipped but not noised. Noise a site adds itself is
measured: DP-FedAvg with ``noise: local`` (each site adds its share ``N(0, (z C)^2 / m)``,
built by :func:`medsilo.runtime.factory.build_run_algorithm` as in the engine, so one update
seen in the clear carries noise multiplier ``z / sqrt(m)``) and sample-level DP-SGD
(``privacy.dp_sgd``, per-example clipping and Gaussian noise in every local step) runs
through :func:`medsilo.runtime.factory.site_training`, exactly as the engine's sites do. With
``noise_multiplier: auto`` the site's noise multiplier is the one it uses in the real run
(calibrated from its real row count, batch size and steps per round), not one recalibrated
for the tiny victim batch.

The attacked round is the FedSGD-style worst case unless told otherwise: the site's training
set is the victim batch itself, the batch size is the batch's size, and the site takes
``local_steps`` full-batch steps (1 by default) with the run's optimiser settings.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from medsilo.algorithms.base import SiteTask
from medsilo.compression.codecs import DecodeError
from medsilo.confidential.vulnerabilities import exploit_indicator
from medsilo.config import RunConfig
from medsilo.privacy.dp_sgd import dp_sgd_plan
from medsilo.runtime.factory import build_run_algorithm, site_training
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.rounds import SiteSteps, codec_of, site_seed
from medsilo.training.tensors import TensorData
from medsilo.types import Weights


def fedsgd_config(cfg: RunConfig, batch_size: int, local_steps: int) -> RunConfig:
    """``cfg`` with the local budget replaced by ``local_steps`` steps of ``batch_size``."""
    training = cfg.training.model_copy(
        update={"batch_size": batch_size, "local_steps": local_steps, "local_epochs": None}
    )
    return cfg.model_copy(update={"training": training})


def observe_update(
    cfg: RunConfig,
    prep: PreparedFederation,
    site: str,
    batch: TensorData,
    global_weights: Weights,
    local_steps: int = 1,
    round_num: int = 1,
) -> Weights:
    """The decoded update ``site`` transmits after training on ``batch`` from ``global_weights``.

    Raises ``ValueError`` if the coordinator could not decode the update.
    """
    names = prep.fed.site_names
    if site not in names:
        raise ValueError(f"no site named {site!r}; sites are {names}")
    index = names.index(site)
    run = fedsgd_config(cfg, len(batch), local_steps)
    training = site_training(run)
    plan = dp_sgd_plan(run.privacy, run.training.rounds)
    if plan is not None and plan.noise_multiplier is None:
        n = len(prep.train[site])
        sigma = plan.sigma(n, cfg.training.batch_size, cfg.training.local().steps_for(n))
        training = replace(training, dp_sgd=replace(plan, noise_multiplier=sigma))
    algorithm = build_run_algorithm(run, len(names))
    server_state = algorithm.init_server_state(global_weights, prep.layout)
    task = SiteTask(
        site=site,
        round=round_num,
        model=prep.model,
        layout=prep.layout,
        data=batch,
        training=training,
        generator=torch.Generator().manual_seed(site_seed(run.seed, round_num, index)),
        state={},
        exploit_indicator=exploit_indicator(run.sites.record(site).platform),
    )
    update = algorithm.local_update(task, global_weights, algorithm.broadcast(server_state))
    sent = SiteSteps(run, names, prep.fed.num_classes).upload(update, task.state, round_num, index)
    codec = codec_of(run)
    if codec is None or sent.encoded_delta is None:
        return [d.copy() for d in sent.delta]
    try:
        return codec.decode(sent.encoded_delta, [w.shape for w in global_weights])
    except DecodeError as err:
        raise ValueError(f"the coordinator could not decode the update: {err}") from None
