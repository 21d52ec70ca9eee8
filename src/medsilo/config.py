"""Validated configuration of a federation run.

Everything is checked before any training starts: an unknown key, a wrong type or an
incompatible combination fails with a message that names the offending field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsilo.aggregation.robust import bulyan_min_updates, krum_min_updates
from medsilo.algorithms.capabilities import Capabilities, with_client_dp
from medsilo.algorithms.compatibility import RunFeatures, algorithm_problem
from medsilo.algorithms.registry import capabilities_of
from medsilo.anchor.config import AnchorConfig
from medsilo.asynchrony import AsynchronyConfig, FedAsyncConfig, FedBuffConfig, SyncConfig
from medsilo.confidential.platform import PlatformRecord
from medsilo.config_errors import describe_invalid
from medsilo.data.spec import SUBGROUP_COLUMNS, DataConfig
from medsilo.governance.config import GovernanceConfig
from medsilo.imports import ImportPath, is_import_path
from medsilo.metrics.operating_point import OperatingRule, YoudenRule
from medsilo.metrics.registry import builtin_metrics, resolve_metrics
from medsilo.models.lora_config import lora_problem
from medsilo.models.spec import ModelConfig
from medsilo.network import Availability, ComputeProfile, NetworkProfile
from medsilo.privacy.config import ClientDPConfig, PrivacyConfig, privacy_problem
from medsilo.secure.config import SecureAggregationConfig, incompatibility
from medsilo.tracking.config import TrackingConfig
from medsilo.training.device import DEVICE_PATTERN, Precision
from medsilo.training.local import LocalTraining


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- algorithms -------------------------------------------------------------------------


class FedAvgConfig(_Strict):
    name: Literal["fedavg"] = "fedavg"


class FedProxConfig(_Strict):
    name: Literal["fedprox"]
    mu: float = Field(0.01, ge=0)


class ScaffoldConfig(_Strict):
    name: Literal["scaffold"]


class FedNovaConfig(_Strict):
    name: Literal["fednova"]


class FedBNConfig(_Strict):
    name: Literal["fedbn"]


class DittoConfig(_Strict):
    name: Literal["ditto"]
    lam: float = Field(0.1, ge=0)


class CCPGDConfig(_Strict):
    """CC-PGD (docs/ccpgd.md): privacy knob ``lam``, communication knob ``mu``, ball ``rho``."""

    name: Literal["ccpgd"]
    lam: float = Field(0.05, ge=0, description="privacy (leakage-risk) penalty weight")
    mu: float = Field(0.005, ge=0, description="l1 communication penalty weight")
    rho: float = Field(5.0, gt=0, description="l2 radius of the local update")
    kappa: float = Field(1.0, ge=0, description="extra privacy weight at TEE-exposed sites")
    eps: float = Field(1e-8, gt=0, description="magnitude smoothing of the leakage risk")


class DPFedAvgConfig(ClientDPConfig):
    """DP-FedAvg (docs/privacy.md): FedAvg with client-level DP, configured in place (the
    same as ``algorithm: fedavg`` with ``privacy.client_dp``)."""

    name: Literal["dp_fedavg"]


class PooledConfig(_Strict):
    """Baseline: centralised training on the union of all sites' training data."""

    name: Literal["pooled"]


class LocalOnlyConfig(_Strict):
    """Baseline: each site trains alone on its own data."""

    name: Literal["local"]


AlgorithmConfig = Annotated[
    FedAvgConfig
    | FedProxConfig
    | ScaffoldConfig
    | FedNovaConfig
    | FedBNConfig
    | DittoConfig
    | CCPGDConfig
    | DPFedAvgConfig
    | PooledConfig
    | LocalOnlyConfig,
    Field(discriminator="name"),
]

BASELINES = ("pooled", "local")

# --- server optimisers -------------------------------------------------------------------


class ServerSGDConfig(_Strict):
    name: Literal["sgd"] = "sgd"
    lr: float = Field(1.0, gt=0)


class FedAvgMConfig(_Strict):
    name: Literal["avgm"]
    lr: float = Field(1.0, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)


class FedAdamConfig(_Strict):
    name: Literal["adam", "yogi"]
    lr: float = Field(0.01, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    tau: float = Field(1e-3, gt=0)


ServerOptimizerConfig = Annotated[
    ServerSGDConfig | FedAvgMConfig | FedAdamConfig, Field(discriminator="name")
]


# --- training and evaluation -------------------------------------------------------------


class TrainingConfig(_Strict):
    rounds: int = Field(10, ge=1)
    local_steps: int | None = Field(None, ge=1)
    local_epochs: float | None = Field(None, gt=0)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.01, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    fraction: float = Field(1.0, gt=0, le=1, description="share of sites sampled per round")
    min_sites: int = Field(1, ge=1)
    max_rejected_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a run whose share of rejected updates exceeds this is marked failed "
        "(summary.json 'failed', non-zero exit of medsilo simulate)",
    )
    device: str = Field(
        "auto",
        pattern=DEVICE_PATTERN,
        description="where sites train: auto (a CUDA GPU when there is one), cpu, cuda, cuda:N",
    )
    precision: Precision = Field(
        "fp32", description="mixed precision on CUDA (bf16, fp16); the CPU always runs fp32"
    )
    loader_workers: int = Field(
        0, ge=0, description="DataLoader worker processes per site for data streamed from disk"
    )
    step: ImportPath | None = Field(
        None,
        description="the import path 'package.module:function' of your own training step: "
        "function(model, x, y) returning the batch's mean loss (docs/training-step.md)",
    )

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> TrainingConfig:
        if (self.local_steps is None) == (self.local_epochs is None):
            raise ValueError("set exactly one of training.local_steps or training.local_epochs")
        return self

    def local(self) -> LocalTraining:
        return LocalTraining(
            batch_size=self.batch_size,
            lr=self.lr,
            local_steps=self.local_steps,
            local_epochs=self.local_epochs,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            precision=self.precision,
        )


def _all_builtin_metrics() -> list[str]:
    return list(builtin_metrics().names)


class EvaluationConfig(_Strict):
    """When to evaluate, and which clinical metrics to report (docs/metrics.md)."""

    every: int = Field(1, ge=1, description="evaluate every N rounds (and always the last)")
    loho: bool = Field(False, description="also run leave-one-hospital-out")
    sites: Literal["all", "cohort"] = Field(
        "all",
        description="whose test sets each evaluation scores: every site, or only the round's "
        "sampled cohort (bounds the cost of a round for federations of thousands of sites; "
        "the pooled test set is scored either way; docs/scale.md)",
    )
    metrics: list[str] = Field(
        default_factory=_all_builtin_metrics,
        min_length=1,
        description="metric names (default: every built-in metric)",
    )
    lead_metric: str | None = Field(
        None,
        description="the metric the tables lead with; default auroc for binary tasks and "
        "accuracy otherwise (when listed; else the first listed)",
    )
    operating_point: OperatingRule = Field(
        default_factory=YoudenRule,
        description="threshold rule on validation data: {rule: youden} or "
        "{rule: target_sensitivity, value: 0.9}",
    )
    subgroup: str | None = Field(
        None, description="subgroup column to report metrics by (heart_disease: sex, age_band)"
    )
    bootstrap_replicates: int = Field(
        200, ge=0, description="bootstrap resamples for 95% intervals at the end (0: none)"
    )

    @model_validator(mode="after")
    def _known_metrics(self) -> EvaluationConfig:
        registry, names = resolve_metrics(self.metrics)  # import paths name outside metrics
        problem = registry.problem(names)
        if problem is not None:
            raise ValueError(f"evaluation.metrics: {problem}")
        if self.lead_metric is not None and self.lead_metric not in self.metrics:
            raise ValueError(
                f"evaluation.lead_metric {self.lead_metric!r} is not in evaluation.metrics "
                f"{self.metrics}"
            )
        return self

    def lead_for(self, task: str) -> str:
        """The lead metric for a ``binary`` or ``multiclass`` task."""
        if self.lead_metric is not None:
            return self.lead_metric
        default = "auroc" if task == "binary" else "accuracy"
        return default if default in self.metrics else self.metrics[0]


# --- sites: network links and platform records --------------------------------------------


class SiteRecord(_Strict):
    """What the simulation assumes about one site: its link, its TEE platform, its compute
    speed and its availability (:mod:`medsilo.network`)."""

    network: NetworkProfile = NetworkProfile()
    platform: PlatformRecord = PlatformRecord()
    compute: ComputeProfile = ComputeProfile()
    availability: Availability = Availability()


class SiteOverride(_Strict):
    """Per-site replacement of the default's ``network``, ``platform``, ``compute`` or
    ``availability`` (each replaced as a whole)."""

    network: NetworkProfile | None = None
    platform: PlatformRecord | None = None
    compute: ComputeProfile | None = None
    availability: Availability | None = None


class SitesConfig(_Strict):
    default: SiteRecord = SiteRecord()
    overrides: dict[str, SiteOverride] = Field(
        default_factory=dict, description="keyed by site name (e.g. hungarian, site_3)"
    )

    def record(self, site: str) -> SiteRecord:
        o = self.overrides.get(site)
        if o is None:
            return self.default
        return SiteRecord(
            network=o.network or self.default.network,
            platform=o.platform or self.default.platform,
            compute=o.compute or self.default.compute,
            availability=o.availability or self.default.availability,
        )

    def without(self, site: str) -> SitesConfig:
        """The same records with ``site``'s override dropped (leave-one-hospital-out)."""
        return SitesConfig(
            default=self.default, overrides={k: v for k, v in self.overrides.items() if k != site}
        )

    def check_names(self, site_names: list[str]) -> None:
        unknown = sorted(set(self.overrides) - set(site_names))
        if unknown:
            raise ConfigError(
                f"sites.overrides names unknown site(s) {unknown}; the federation has {site_names}"
            )


# --- robustness: update validation, robust aggregation, attacks, compression -------------


class ValidationConfig(_Strict):
    """Coordinator-side screening of received updates (docs/robustness.md).

    Structural checks (tensor count, shapes, dtypes, NaN/Inf) always run; these two knobs
    add norm checks.
    """

    max_norm: float | None = Field(None, gt=0, description="absolute cap on an update's l2 norm")
    max_norm_factor: float | None = Field(
        100.0,
        gt=1,
        description="reject an update whose l2 norm exceeds this multiple of the round's "
        "median update norm (null: no relative check)",
    )


class NoRobustConfig(_Strict):
    rule: Literal["none"] = "none"


class KrumConfig(_Strict):
    """Krum picks one update; Multi-Krum keeps ``m`` (default ``n - f``) for the algorithm."""

    rule: Literal["krum", "multi_krum"]
    f: int = Field(1, ge=0, description="Byzantine sites tolerated; needs n >= 2f + 3")
    m: int | None = Field(None, ge=1, description="multi_krum: updates kept (default n - f)")

    @model_validator(mode="after")
    def _m_only_for_multi_krum(self) -> KrumConfig:
        if self.rule == "krum" and self.m is not None:
            raise ValueError("m applies to multi_krum only (krum keeps exactly one update)")
        return self


class MedianConfig(_Strict):
    rule: Literal["median"]


class TrimmedMeanConfig(_Strict):
    rule: Literal["trimmed_mean"]
    trim: float = Field(0.2, ge=0, lt=0.5, description="share dropped at each end")


class NormBoundConfig(_Strict):
    rule: Literal["norm_bound"]
    max_norm: float = Field(gt=0, description="updates are scaled down to this l2 norm")


class BulyanConfig(_Strict):
    rule: Literal["bulyan"]
    f: int = Field(1, ge=0, description="Byzantine sites tolerated; needs n >= 4f + 3")


RobustConfig = Annotated[
    NoRobustConfig | KrumConfig | MedianConfig | TrimmedMeanConfig | NormBoundConfig | BulyanConfig,
    Field(discriminator="rule"),
]


class _Attack(_Strict):
    sites: list[str] = Field(min_length=1, description="names of the attacking sites")


class SignFlipAttack(_Attack):
    """Sends ``-scale * delta``."""

    kind: Literal["sign_flip"]
    scale: float = Field(1.0, gt=0)


class ScaleAttack(_Attack):
    """Sends ``scale * delta`` (boosted update)."""

    kind: Literal["scale"]
    scale: float = Field(10.0, gt=0)


class GaussianAttack(_Attack):
    """Sends Gaussian noise of standard deviation ``std`` instead of its update."""

    kind: Literal["gaussian"]
    std: float = Field(1.0, gt=0)


class LabelFlipAttack(_Attack):
    """Trains on flipped labels: ``y -> C - 1 - y``."""

    kind: Literal["label_flip"]


class BackdoorAttack(_Attack):
    """Stamps a trigger on a share of its training rows and relabels them ``target``.

    The trigger sets the last ``trigger_size`` input features (for images: the last pixels
    of the bottom row) to ``trigger_value``; the update is then multiplied by ``boost``.
    """

    kind: Literal["backdoor"]
    target: int = Field(0, ge=0)
    fraction: float = Field(0.5, gt=0, le=1)
    trigger_size: int = Field(9, ge=1)
    trigger_value: float = 3.0
    boost: float = Field(1.0, gt=0)


class FreeRideAttack(_Attack):
    """Free rider: returns the model it received (a zero delta) without training on it."""

    kind: Literal["free_ride"]


class StaleAttack(_Attack):
    """Free rider: trains once, then re-sends that first upload in every later round."""

    kind: Literal["stale"]


class CopyAttack(_Attack):
    """Free rider: sends the update ``source`` sent this round (a colluder passed it on)."""

    kind: Literal["copy"]
    source: str = Field(description="the (honest) site whose update is copied")


AttackConfig = Annotated[
    SignFlipAttack
    | ScaleAttack
    | GaussianAttack
    | LabelFlipAttack
    | BackdoorAttack
    | FreeRideAttack
    | StaleAttack
    | CopyAttack,
    Field(discriminator="kind"),
]


class NoCompressionConfig(_Strict):
    codec: Literal["none"] = "none"


class _LossyCodec(_Strict):
    error_feedback: bool = Field(
        True, description="carry what compression dropped into the next round's update"
    )


class QuantizeConfig(_LossyCodec):
    codec: Literal["fp16", "int8"]


class TopKConfig(_LossyCodec):
    codec: Literal["topk"]
    k: float = Field(0.01, gt=0, le=1, description="share of entries sent")


class QSGDConfig(_LossyCodec):
    """QSGD is unbiased but not contractive (its error can exceed the update), which breaks
    error feedback's assumption; so feedback is off by default here (docs/robustness.md)."""

    codec: Literal["qsgd"]
    levels: int = Field(4, ge=1, le=127)
    error_feedback: bool = Field(
        False, description="carry what compression dropped into the next round's update"
    )
    bucket: int = Field(512, ge=1, description="entries sharing one norm (bounds the variance)")


class PowerSGDConfig(_LossyCodec):
    codec: Literal["powersgd"]
    rank: int = Field(4, ge=1)


CompressionConfig = Annotated[
    NoCompressionConfig | QuantizeConfig | TopKConfig | QSGDConfig | PowerSGDConfig,
    Field(discriminator="codec"),
]


class RunConfig(_Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    data: DataConfig
    model: ModelConfig = ModelConfig()
    algorithm: AlgorithmConfig = FedAvgConfig()
    server_optimizer: ServerOptimizerConfig = ServerSGDConfig()
    training: TrainingConfig
    evaluation: EvaluationConfig = EvaluationConfig()
    sites: SitesConfig = SitesConfig()
    validation: ValidationConfig = ValidationConfig()
    robust: RobustConfig = NoRobustConfig()
    attack: AttackConfig | None = None
    compression: CompressionConfig = NoCompressionConfig()
    asynchrony: AsynchronyConfig = SyncConfig()
    secure_aggregation: SecureAggregationConfig = SecureAggregationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    governance: GovernanceConfig = Field(
        default_factory=GovernanceConfig,
        description="checkpoints, cohorts, consent window, withdrawals (docs/governance.md)",
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="also log the run to MLflow (docs/tracking.md)",
    )
    anchor: AnchorConfig = Field(
        default_factory=AnchorConfig,
        description="anchor each round's model hash and ledger head on an Ethereum chain "
        "(docs/anchoring.md)",
    )
    output_dir: Path = Path("runs")
    threads: int = Field(
        1,
        ge=1,
        description="torch intra-op threads; 1 avoids oversubscribing a shared CPU, where "
        "small federated models run many times slower with more threads",
    )

    @model_validator(mode="after")
    def _compatible(self) -> RunConfig:
        algo = self.algorithm.name
        lora = lora_problem(algo, self.model.lora)
        if lora is not None:
            raise ValueError(lora)
        if algo in BASELINES:
            self._check_baseline(algo)
        elif algo == "dp_fedavg" and self.privacy.client_dp is not None:
            raise ValueError(
                "algorithm 'dp_fedavg' is FedAvg with client-level DP already; remove "
                "privacy.client_dp, or use algorithm 'fedavg' with it"
            )
        else:
            problem = algorithm_problem(self.declared_capabilities(), self.features())
            if problem is not None:
                raise ValueError(problem)
        if self.attack is not None and len(set(self.attack.sites)) != len(self.attack.sites):
            raise ValueError(f"attack.sites lists a site twice: {self.attack.sites}")
        self._check_subgroup()
        for problem in (asynchrony_problem(self), self._secure_aggregation_problem()):
            if problem is not None:
                raise ValueError(problem)
        problem = privacy_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    def _check_subgroup(self) -> None:
        column = self.evaluation.subgroup
        available = SUBGROUP_COLUMNS.get(self.data.dataset, ())
        # A user's own dataset declares its columns in its arrays: checked when it is built.
        if column is not None and column not in available and not is_import_path(self.data.dataset):
            raise ValueError(
                f"evaluation.subgroup {column!r}: dataset {self.data.dataset!r} has no such "
                f"subgroup column (its subgroup columns: {', '.join(available) or 'none'})"
            )

    def client_dp(self) -> ClientDPConfig | None:
        """Client-level DP of the run: ``algorithm: dp_fedavg`` or ``privacy.client_dp``."""
        if isinstance(self.algorithm, DPFedAvgConfig):
            return self.algorithm
        return self.privacy.client_dp

    def declared_capabilities(self) -> Capabilities:
        """What the named (federated) algorithm declares, without a ``privacy.client_dp``
        layer."""
        return capabilities_of(self.algorithm.name)

    def capabilities(self) -> Capabilities:
        """What the run's algorithm supports, with ``privacy.client_dp`` around it."""
        caps = self.declared_capabilities()
        return with_client_dp(caps) if self.privacy.client_dp is not None else caps

    def features(self) -> RunFeatures:
        """What this run asks of its algorithm (:mod:`medsilo.algorithms.compatibility`)."""
        return RunFeatures(
            algorithm=self.algorithm.name,
            optimizer=self.training.optimizer,
            momentum=self.training.momentum,
            model=self.model.label,
            model_has_batch_norm=self.model.static_batch_norm(),
            asynchrony=self.asynchrony.mode,
            secure_aggregation=self.secure_aggregation.enabled,
            robust_rule=self.robust.rule,
            dp_sgd=self.privacy.dp_sgd is not None,
            client_dp=self.client_dp() is not None,
            wraps_client_dp=self.privacy.client_dp is not None,
        )

    def _check_baseline(self, algo: str) -> None:
        if self.server_optimizer.name != "sgd":
            raise ValueError(f"baseline {algo!r} has no server optimiser; remove server_optimizer")
        used = [
            name
            for name, on in (
                ("robust", self.robust.rule != "none"),
                ("attack", self.attack is not None),
                ("compression", self.compression.codec != "none"),
                ("privacy.client_dp", self.privacy.client_dp is not None),
                ("secure_aggregation", self.secure_aggregation.enabled),
            )
            if on
        ]
        if used:
            raise ValueError(f"baseline {algo!r} exchanges no updates; remove {', '.join(used)}")
        if not isinstance(self.asynchrony, SyncConfig):
            raise ValueError(
                f"baseline {algo!r} exchanges no updates; asynchrony applies to federated runs"
            )

    def _secure_aggregation_problem(self) -> str | None:
        # Asynchronous modes refuse secure aggregation in asynchrony_problem.
        v = self.validation
        # The default relative check does not apply (documented); a chosen one is refused.
        default_factor = ValidationConfig.model_fields["max_norm_factor"].default
        factor_set = v.max_norm_factor not in (None, default_factor)
        secure, codec = self.secure_aggregation, self.compression.codec
        return incompatibility(secure, self.robust.rule, codec, v.max_norm, factor_set)

    def with_overrides(self, **changes: Any) -> RunConfig:
        """A copy with top-level fields replaced, re-validated."""
        data = self.model_dump()
        data.update(changes)
        return RunConfig.model_validate(data)


def parse_config(raw: Any, source: str = "<config>") -> RunConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration in {source}: expected a mapping at the top")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_invalid(err, f"invalid configuration in {source}:")) from None


def load_raw_config(path: Path) -> Any:
    """The YAML of a config file, not yet validated (overrides apply to it first)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None


def config_of_file(raw: Any, path: Path, source: str | None = None) -> RunConfig:
    """Validate ``raw``, read from ``path``; its data paths and model weights are relative
    to the file's folder, so the same file works from any working directory."""
    cfg = parse_config(raw, source or str(path))
    folder = path.absolute().parent
    return cfg.model_copy(
        update={
            "data": cfg.data.anchored_at(folder),
            "model": cfg.model.anchored_at(folder),
            "governance": cfg.governance.anchored_at(folder),
        }
    )


def load_config(path: Path) -> RunConfig:
    return config_of_file(load_raw_config(path), path)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def asynchrony_problem(cfg: RunConfig) -> str | None:
    """Why ``cfg``'s asynchronous mode cannot run as configured, or ``None`` when it can
    (what the algorithm allows is checked from its capabilities)."""
    mode = cfg.asynchrony
    if isinstance(mode, SyncConfig):
        return None
    if cfg.evaluation.sites == "cohort":
        return (
            f"evaluation.sites 'cohort' scores the sites sampled in a round, but asynchrony.mode "
            f"{mode.mode!r} has no rounds of sampled sites; use evaluation.sites 'all'"
        )
    if cfg.secure_aggregation.enabled:
        return (
            f"asynchrony.mode {mode.mode!r} cannot use secure aggregation: pairwise masks "
            "cancel only when the coordinator sums the masked updates of the fixed cohort that "
            "agreed on the masks in one round; asynchronous updates arrive one by one from "
            "changing sets of sites"
        )
    rule = cfg.robust
    if isinstance(mode, FedAsyncConfig):
        if rule.rule not in ("none", "norm_bound"):
            return (
                f"robust.rule {rule.rule!r} compares several updates, but fedasync applies each "
                "update alone; use norm_bound (per update) or asynchrony.mode fedbuff"
            )
        if cfg.training.min_sites > 1:
            return (
                f"fedasync applies each update alone, but training.min_sites is "
                f"{cfg.training.min_sites}; set it to 1 or use asynchrony.mode fedbuff"
            )
        opt = cfg.server_optimizer
        if opt.name != "sgd" or opt.lr != 1.0:
            return (
                "fedasync's server step is the mixing x <- (1 - a_t) x + a_t x_site; leave "
                "server_optimizer as sgd with lr 1.0 and tune asynchrony.alpha (or use fedbuff, "
                "which applies its buffer through the server optimiser)"
            )
        return None
    assert isinstance(mode, FedBuffConfig)
    needed = 1
    if isinstance(rule, KrumConfig):
        needed = max(krum_min_updates(rule.f), rule.m or 0)
    elif isinstance(rule, BulyanConfig):
        needed = bulyan_min_updates(rule.f)
    if mode.buffer_size < needed:
        return (
            f"robust.rule {rule.rule!r} needs at least {needed} updates per aggregation, but "
            f"fedbuff aggregates asynchrony.buffer_size = {mode.buffer_size}"
        )
    if cfg.training.min_sites > mode.buffer_size:
        return (
            f"training.min_sites ({cfg.training.min_sites}) exceeds asynchrony.buffer_size "
            f"({mode.buffer_size}): no buffer could ever be aggregated"
        )
    return None
