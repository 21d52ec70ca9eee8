"""The trackers a run is mirrored to, each dropped with a warning the moment it fails.

The run directory (``rounds.jsonl``, ``summary.json``, ``final_weights.npz``) is the record
of a run; a tracker is a copy somewhere else. So an unreachable tracking server or a broken
store costs the copy, never the run: :class:`Tracking` catches whatever a tracker raises
(any ``Exception``: MLflow, HTTP and database clients each have their own), logs one
warning and goes on without it. ``KeyboardInterrupt`` and the like are not caught.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from medsilo.config import RunConfig
    from medsilo.runtime.round_record import RoundRecord

log = logging.getLogger(__name__)


def _warn(tracker: str, when: str, err: Exception, run_dir: Path) -> None:
    log.warning(
        "%s tracking stopped %s: %s: %s; the run goes on and %s keeps its complete record",
        tracker,
        when,
        type(err).__name__,
        err,
        run_dir,
    )


class TrackingSink(Protocol):
    """What a tracker does with a run: its rounds as they come, its summary at the end."""

    name: str

    def round(self, rec: RoundRecord) -> None: ...

    def end(self, summary: dict[str, Any], last: RoundRecord) -> None: ...

    def abandon(self) -> None:
        """Called (once) after the sink raised; it receives nothing afterwards."""


class Tracking:
    """The run's working trackers; with none configured every call does nothing."""

    def __init__(self, sinks: list[TrackingSink], run_dir: Path) -> None:
        self.sinks = sinks
        self.run_dir = run_dir

    def _drop(self, sink: TrackingSink, when: str, err: Exception) -> None:
        _warn(sink.name, when, err, self.run_dir)
        self.sinks.remove(sink)
        sink.abandon()

    def round(self, rec: RoundRecord) -> None:
        for sink in list(self.sinks):
            try:
                sink.round(rec)
            except Exception as err:
                self._drop(sink, f"at round {rec.get('round')}", err)

    def end(self, summary: dict[str, Any], last: RoundRecord) -> None:
        for sink in list(self.sinks):
            try:
                sink.end(summary, last)
            except Exception as err:
                self._drop(sink, "at the end of the run", err)


def start_tracking(
    cfg: RunConfig, run_dir: Path, sites: list[str], prior: list[RoundRecord]
) -> Tracking:
    """The trackers ``cfg.tracking`` switches on, each started (``prior``: the rounds a
    resumed run inherits); one that cannot start is left out with a warning."""
    sinks: list[TrackingSink] = []
    if cfg.tracking.mlflow.enabled:
        from medsilo.tracking.mlflow_sink import MlflowSink

        try:
            sinks.append(MlflowSink.start(cfg, run_dir, sites, prior))
        except Exception as err:
            _warn(MlflowSink.name, "before the first round", err, run_dir)
    return Tracking(sinks, run_dir)


def with_mlflow(cfg: RunConfig, tracking_uri: str | None) -> RunConfig:
    """``cfg`` with MLflow tracking on (``medsilo simulate --mlflow``), at ``tracking_uri``
    if given, else at the configured or default store; a bad URI is a ConfigError."""
    from medsilo.config import parse_config

    raw = cfg.model_dump(mode="json")
    raw["tracking"]["mlflow"]["enabled"] = True
    if tracking_uri is not None:
        raw["tracking"]["mlflow"]["tracking_uri"] = tracking_uri
    return parse_config(raw, "--mlflow-uri")
