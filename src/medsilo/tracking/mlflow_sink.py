"""A run mirrored to MLflow: one MLflow run per medsilo run directory (docs/tracking.md).

At the start: the flattened resolved config as parameters, tags (medsilo version, config
name, seed, run directory) and the metrics of rounds a resumed run inherits. Each round:
every number of the round record as a metric at ``step = round``
(:mod:`medsilo.tracking.names`). At the end: every number of ``summary.json`` under
``summary/``, then ``final_weights.npz``, ``summary.json``, ``config.yaml``,
``rounds.jsonl`` and the run's HTML report (``report/``) as artefacts, and the MLflow run is
marked FINISHED. A run that ends without its summary (a crash, Ctrl-C) is marked FAILED when
the process exits.

MLflow is imported here only, and this module only when tracking is on.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsilo import __version__
from medsilo.tracking.config import DEFAULT_ARTIFACT_FOLDER
from medsilo.tracking.names import STEP_KEY, metrics_of, params_of

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from medsilo.config import RunConfig
    from medsilo.runtime.round_record import RoundRecord

log = logging.getLogger(__name__)

#: MLflow's HTTP client retries an unreachable server 7 times with exponential backoff
#: (minutes) and sends usage telemetry; medsilo's defaults, used unless the environment
#: sets them: a dead server is given up after seconds, and nothing leaves for MLflow's
#: telemetry service from a hospital's machine.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
#: Run-directory files logged as artefacts at the end (those that exist).
RUN_FILES = ("final_weights.npz", "summary.json", "config.yaml", "rounds.jsonl")
SQLITE_PREFIX = "sqlite:///"


def _now_ms() -> int:
    return int(time.time() * 1000)


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment in a local SQLite store keeps its artefacts: ``mlartifacts``
    beside the database (MLflow's own default is ``./mlruns`` of whatever the current
    directory is). ``None`` for other stores: the server decides."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    database = Path(tracking_uri[len(SQLITE_PREFIX) :].split("?", 1)[0])
    return str(database.resolve().parent / DEFAULT_ARTIFACT_FOLDER)


def _experiment_id(client: MlflowClient, name: str, tracking_uri: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return client.create_experiment(name, artifact_location(tracking_uri))
    except MlflowException as err:  # another run created it since: use theirs
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


class MlflowSink:
    """One MLflow run, fed the run's records as :func:`run_experiment` writes them."""

    name = "MLflow"

    def __init__(self, client: MlflowClient, run_id: str, run_dir: Path, sites: list[str]) -> None:
        self.client = client
        self.run_id = run_id
        self.run_dir = run_dir
        self.sites = sites
        atexit.register(self._mark_failed)

    @classmethod
    def start(
        cls, cfg: RunConfig, run_dir: Path, sites: list[str], prior: list[RoundRecord]
    ) -> MlflowSink:
        """Open (or create) the experiment, create the run, log parameters, tags and the
        ``prior`` rounds of a resumed run."""
        for key, value in MLFLOW_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        settings = cfg.tracking.mlflow
        uri = settings.store_uri(cfg.output_dir)
        client = MlflowClient(tracking_uri=uri)
        experiment = _experiment_id(client, settings.experiment, uri)
        tags = {
            "medsilo.version": __version__,
            "medsilo.config": cfg.name,
            "medsilo.seed": str(cfg.seed),
            "medsilo.run_dir": str(run_dir.resolve()),
        }
        run = client.create_run(experiment, tags=tags, run_name=run_dir.name)
        sink = cls(client, run.info.run_id, run_dir, sites)
        try:
            params = params_of(cfg.model_dump(mode="json"))
            client.log_batch(sink.run_id, params=[Param(k, v) for k, v in params.items()])
            for rec in prior:
                sink.round(rec)
        except Exception:
            sink.abandon()
            raise
        return sink

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [Metric(name, value, stamp, step) for name, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def round(self, rec: RoundRecord) -> None:
        self._log_metrics(metrics_of(rec, self.sites), int(rec[STEP_KEY]))

    def end(self, summary: dict[str, Any], last: RoundRecord) -> None:
        """Summary metrics (at the last round's step), artefacts, and FINISHED."""
        from medsilo.report import build_report

        self._log_metrics(metrics_of(summary, self.sites, ("summary",)), int(last[STEP_KEY]))
        for name in RUN_FILES:
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        with tempfile.TemporaryDirectory(prefix="medsilo-report-") as tmp:
            build_report(self.run_dir, Path(tmp))
            self.client.log_artifacts(self.run_id, tmp, "report")
        self.client.set_terminated(self.run_id, "FINISHED")
        atexit.unregister(self._mark_failed)

    def abandon(self) -> None:
        """Stop mirroring after a failure: mark the run FAILED if the tracker still answers."""
        atexit.unregister(self._mark_failed)
        self._mark_failed()

    def _mark_failed(self) -> None:
        try:
            self.client.set_terminated(self.run_id, "FAILED")
        except Exception as err:  # the tracker is gone; nothing left to tell it
            log.debug("could not mark MLflow run %s FAILED: %s", self.run_id, err)
