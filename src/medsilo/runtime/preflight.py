"""Every check a run can make before training, made before anything is written.

A config that validates can still be wrong for the data it meets: a model that does not take
the dataset's inputs, an attack naming a site the federation lacks, a Krum rule with too few
sites, more sites than samples, a backdoor target outside the classes, a privacy budget one
round already exceeds. The engine finds each of these when it starts, which is too late: the
run folder and its open ledger already exist, and a config mistake then looks like an
interrupted (or tampered) run. :func:`preflight` builds the same pieces the engine builds
(federation, model, algorithm, site and coordinator steps, privacy accountant) and so runs
the same checks, for the run itself and for each leave-one-hospital-out federation it will
train, and turns what they refuse into a :class:`~medsilo.config.ConfigError`.
"""

from __future__ import annotations

from medsilo.asynchrony import SyncConfig
from medsilo.config import BASELINES, ConfigError, RunConfig
from medsilo.data.base import DataFormatError, FederatedData
from medsilo.data.registry import build_federation
from medsilo.governance.engine import refuse_unsupported
from medsilo.governance.participation import Participation, absent_sites
from medsilo.governance.patient_consent import PatientConsent
from medsilo.privacy.accounting import PrivacyAccounting
from medsilo.runtime.factory import build_run_algorithm, refuse_incompatible, site_training
from medsilo.runtime.federation import sample_sites
from medsilo.runtime.prepared import PreparedFederation
from medsilo.runtime.rounds import CoordinatorSteps, SiteSteps


def held_out_config(cfg: RunConfig, site: str) -> RunConfig:
    """``cfg`` for the federation without ``site`` (a leave-one-hospital-out run): its site
    settings, governance and, if it attacks, its attack go with it."""
    attack = cfg.attack
    if attack is not None and site in attack.sites:
        rest = [s for s in attack.sites if s != site]
        attack = attack.model_copy(update={"sites": rest}) if rest else None
    return cfg.model_copy(
        update={
            "sites": cfg.sites.without(site),
            "governance": cfg.governance.without(site),
            "attack": attack,
        }
    )


def preflight(cfg: RunConfig, fed: FederatedData | None = None) -> PreparedFederation:
    """The prepared federation of ``cfg``, once every pre-training check has passed.

    Raises :class:`ConfigError` naming the run and the problem. A data file that cannot be
    read stays a :class:`DataFormatError` (its message names the file)."""
    try:
        fed = fed if fed is not None else build_federation(cfg.data, cfg.seed)
        prepared = _checked(cfg, fed)
        if cfg.evaluation.loho:
            _check_loho(cfg, fed)
    except (ConfigError, DataFormatError):
        raise
    except (ValueError, KeyError) as err:
        raise ConfigError(f"config {cfg.name!r} cannot run: {err}") from None
    return prepared


def _checked(cfg: RunConfig, fed: FederatedData) -> PreparedFederation:
    # Builds the model for the data and the task: its builder checks its outputs with one
    # forward pass (medsilo.models.outputs.check_outputs).
    prepared = PreparedFederation.build(cfg, fed)
    site_training(cfg)  # the user's training step, if any, can be imported
    names = fed.site_names
    cfg.sites.check_names(names)
    refuse_unsupported(cfg, checkpointing=False)  # governance features this run cannot use
    PatientConsent.of(cfg, {n: len(prepared.train[n]) for n in names})  # registers, site keys
    if cfg.algorithm.name in BASELINES:  # no updates exchanged: nothing more to check
        return prepared
    algorithm = build_run_algorithm(cfg, len(names))
    refuse_incompatible(cfg, algorithm, prepared.model)  # FedBN, DP-SGD vs the built model
    SiteSteps(cfg, names, fed.num_classes)  # attack sites and backdoor target
    CoordinatorSteps(cfg, prepared.layout, len(names))  # robust rule vs sites per round
    privacy = PrivacyAccounting.build(cfg, algorithm, {n: len(prepared.train[n]) for n in names})
    if privacy is not None:
        if isinstance(cfg.asynchrony, SyncConfig):
            t = cfg.training
            first = sample_sites(names, t.fraction, t.min_sites, cfg.seed, 1)
            present = Participation(absent_sites(cfg.governance, names), {}).present(first)
            privacy.check_first_round(present)  # the engine's first cohort, unlogged
        else:
            privacy.check_first_release()
    return prepared


def loho_problem(cfg: RunConfig, fed: FederatedData) -> str | None:
    """Why leave-one-hospital-out cannot run on ``fed`` at all, else ``None``."""
    if cfg.algorithm.name == "local":
        return "leave-one-hospital-out needs a shared model; 'local' has none"
    if len(fed.sites) < 2:
        return "leave-one-hospital-out needs at least two sites"
    return None


def _check_loho(cfg: RunConfig, fed: FederatedData) -> None:
    problem = loho_problem(cfg, fed)
    if problem is not None:
        raise ValueError(problem)
    for site in fed.site_names:
        try:
            _checked(held_out_config(cfg, site), fed.without(site))
        except ValueError as err:
            raise ValueError(f"leave-one-hospital-out without {site!r}: {err}") from None
