"""Load run and suite directories written by a runtime into typed records.

Round records are read through the one :class:`~medsilo.runtime.round_record.RoundRecord`
type every runtime writes.

A *run directory* holds ``summary.json``, ``rounds.jsonl`` (one JSON object per federated
round) and, usually, ``config.yaml`` (the resolved config, kept as text). A *suite directory*
holds several run directories as subfolders and optionally a ``suite.json``
(``{"title": ..., "runs": [folder, ...]}``) giving the display order.

Every problem with the files raises :class:`ReportError`, whose message names the file and,
for ``rounds.jsonl``, the line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from medsilo.runtime.round_record import (
    EvalMetrics,
    RoundRecord,
    RoundRecordError,
    parse_rounds,
)

SUMMARY_FILE = "summary.json"
ROUNDS_FILE = "rounds.jsonl"
CONFIG_FILE = "config.yaml"
SUITE_FILE = "suite.json"


class ReportError(ValueError):
    """A run or suite directory is missing a file or holds a malformed one.

    ``path`` is the offending file (or directory) and ``line`` the 1-based line number when
    one applies; both are also in the message.
    """

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}, line {line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class RunSummary:
    """``summary.json``. ``name`` defaults to the run folder's name when absent."""

    name: str
    algorithm: str | None = None
    dataset: str | None = None
    seed: int | None = None
    rounds: int | None = None
    wall_s: float | None = None
    final_test: EvalMetrics | None = None
    final_per_site: dict[str, EvalMetrics] | None = None
    final_mean_site_accuracy: float | None = None
    loho: dict[str, EvalMetrics] | None = None
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """A loaded run directory. ``config_text`` is ``None`` when there is no config.yaml."""

    path: Path
    summary: RunSummary
    rounds: list[RoundRecord]
    config_text: str | None = None
    label: str = ""

    @property
    def name(self) -> str:
        """The display name: ``label`` when set (suites disambiguate), else the summary's."""
        return self.label or self.summary.name

    @property
    def final_pooled_accuracy(self) -> float | None:
        """Final accuracy on the pooled test set (summary, else the last evaluated round)."""
        if self.summary.final_test is not None and self.summary.final_test.accuracy is not None:
            return self.summary.final_test.accuracy
        for rec in reversed(self.rounds):
            if rec.test is not None and rec.test.accuracy is not None:
                return rec.test.accuracy
        return None

    @property
    def final_per_site(self) -> dict[str, EvalMetrics]:
        """Final per-site metrics (summary, else the last round that has them)."""
        if self.summary.final_per_site:
            return self.summary.final_per_site
        for rec in reversed(self.rounds):
            if rec.per_site:
                return rec.per_site
        return {}

    @property
    def final_mean_site_accuracy(self) -> float | None:
        if self.summary.final_mean_site_accuracy is not None:
            return self.summary.final_mean_site_accuracy
        mean = _mean_accuracy(self.final_per_site)
        if mean is not None:
            return mean
        for rec in reversed(self.rounds):
            if rec.mean_site_accuracy is not None:
                return rec.mean_site_accuracy
        return None

    @property
    def loho_mean_accuracy(self) -> float | None:
        """Unweighted mean of the leave-one-hospital-out accuracies, if any."""
        return _mean_accuracy(self.summary.loho or {})

    @property
    def wall_s(self) -> float | None:
        if self.summary.wall_s is not None:
            return self.summary.wall_s
        times = [r.wall_s for r in self.rounds if r.wall_s is not None]
        return float(sum(times)) if times else None

    @property
    def site_names(self) -> list[str]:
        """Sites in order of first appearance (final metrics, LOHO, then rounds)."""
        seen: dict[str, None] = {}
        for name in self.final_per_site:
            seen.setdefault(name, None)
        for name in self.summary.loho or {}:
            seen.setdefault(name, None)
        for rec in self.rounds:
            for name in rec.per_site or {}:
                seen.setdefault(name, None)
        return list(seen)

    @property
    def extra_keys(self) -> list[str]:
        """Numeric ``extra`` metrics present in any round, in order of first appearance."""
        seen: dict[str, None] = {}
        for rec in self.rounds:
            for key in rec.extra:
                seen.setdefault(key, None)
        return list(seen)

    @property
    def has_sim_time(self) -> bool:
        return any(r.sim_time_s is not None for r in self.rounds)

    @property
    def sim_clock_s(self) -> float | None:
        """Simulated time at the end of the run (``None`` without a simulated clock)."""
        clocks = [r.sim_clock_s for r in self.rounds if r.sim_clock_s is not None]
        return max(clocks) if clocks else None


@dataclass(frozen=True)
class SuiteResult:
    """A loaded suite directory: its title and its runs in display order."""

    path: Path
    title: str
    runs: list[RunResult]


# --- detection --------------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file()


def suite_members(path: Path) -> list[Path]:
    """Subfolders of ``path`` that are run directories, sorted by name."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))


def is_suite_dir(path: Path) -> bool:
    return not is_run_dir(path) and bool(suite_members(path))


def load(path: Path) -> RunResult | SuiteResult:
    """Load ``path`` as a run directory (has summary.json) or else a suite directory."""
    path = Path(path)
    if not path.exists():
        raise ReportError("no such directory", path)
    if not path.is_dir():
        raise ReportError("expected a run or suite directory, got a file", path)
    if is_run_dir(path):
        return load_run(path)
    if suite_members(path):
        return load_suite(path)
    raise ReportError(
        f"not a run directory (no {SUMMARY_FILE}) nor a suite directory "
        f"(no subfolder with a {SUMMARY_FILE})",
        path,
    )


# --- loading ----------------------------------------------------------------------------


def load_run(path: Path) -> RunResult:
    """Load one run directory; summary.json and rounds.jsonl are required."""
    path = Path(path)
    summary_path = path / SUMMARY_FILE
    rounds_path = path / ROUNDS_FILE
    if not summary_path.is_file():
        raise ReportError(f"missing {SUMMARY_FILE}; a run directory needs one", summary_path)
    if not rounds_path.is_file():
        raise ReportError(f"missing {ROUNDS_FILE}; a run directory needs one", rounds_path)
    summary = _parse_summary(_read_json_object(summary_path), summary_path, path.name)
    rounds = load_rounds(rounds_path)
    config_path = path / CONFIG_FILE
    config_text = _read_text(config_path) if config_path.is_file() else None
    return RunResult(path=path, summary=summary, rounds=rounds, config_text=config_text)


def load_rounds(path: Path) -> list[RoundRecord]:
    """``rounds.jsonl`` through the shared :class:`RoundRecord` type, sorted by round number;
    ``mean_site_accuracy`` is filled from ``per_site`` where the file has none."""
    try:
        records = parse_rounds(_read_text(path), path)
    except RoundRecordError as err:
        raise ReportError(err.reason, err.path, err.line) from None
    records = [_with_site_mean(r) for r in records]
    records.sort(key=lambda r: r.round)
    return _with_clock(records)


def _with_site_mean(record: RoundRecord) -> RoundRecord:
    if record.mean_site_accuracy is not None or not record.per_site:
        return record
    return replace(record, mean_site_accuracy=_mean_accuracy(record.per_site))


def _with_clock(records: list[RoundRecord]) -> list[RoundRecord]:
    """Fill ``sim_clock_s`` from the running sum of ``sim_time_s`` where the file has none."""
    if any(r.sim_clock_s is not None for r in records):
        return records
    out: list[RoundRecord] = []
    clock = 0.0
    for r in records:
        if r.sim_time_s is None:
            out.append(r)
            continue
        clock += r.sim_time_s
        out.append(replace(r, sim_clock_s=clock))
    return out


def load_suite(path: Path) -> SuiteResult:
    """Load every run subfolder of ``path``, ordered by suite.json when present."""
    path = Path(path)
    members = {p.name: p for p in suite_members(path)}
    title = path.name
    order: list[str] = []
    suite_path = path / SUITE_FILE
    if suite_path.is_file():
        meta = _read_json_object(suite_path)
        where = _Where(suite_path, None)
        title = _opt_str(meta, "title", where) or title
        listed = meta.get("runs")
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
                raise ReportError("'runs' must be a list of folder names", suite_path)
            for name in listed:
                if name not in members:
                    raise ReportError(
                        f"lists run {name!r} but {path / name} has no {SUMMARY_FILE}", suite_path
                    )
                if name not in order:
                    order.append(name)
    order += [name for name in members if name not in order]
    if not order:
        raise ReportError(f"no subfolder with a {SUMMARY_FILE}; not a suite directory", path)
    runs = [load_run(members[name]) for name in order]
    # Display names must be unique; fall back to folder names when summaries collide.
    names = [r.summary.name for r in runs]
    if len(set(names)) != len(names):
        runs = [_relabel(r, r.path.name) for r in runs]
    return SuiteResult(path=path, title=title, runs=runs)


def _relabel(run: RunResult, label: str) -> RunResult:
    return RunResult(
        path=run.path,
        summary=run.summary,
        rounds=run.rounds,
        config_text=run.config_text,
        label=label,
    )


# --- parsing helpers --------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    path: Path
    line: int | None

    def error(self, message: str) -> ReportError:
        return ReportError(message, self.path, self.line)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read file ({exc})", path) from exc


def _read_json_object(path: Path) -> dict[str, object]:
    try:
        obj = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"not valid JSON ({exc.msg}, column {exc.colno})", path, exc.lineno
        ) from exc
    if not isinstance(obj, dict):
        raise ReportError(f"expected a JSON object, got {_kind(obj)}", path)
    return obj


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _opt_float(obj: Mapping[str, object], key: str, where: _Where) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(f"field {key!r} must be a number, got {_kind(value)}")
    return float(value)


def _opt_int(obj: Mapping[str, object], key: str, where: _Where) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"field {key!r} must be an integer, got {_kind(value)}")
    return value


def _opt_str(obj: Mapping[str, object], key: str, where: _Where) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise where.error(f"field {key!r} must be a string, got {_kind(value)}")
    return value


def _opt_mapping(obj: Mapping[str, object], key: str, where: _Where) -> dict[str, object] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.error(f"field {key!r} must be an object, got {_kind(value)}")
    return value


def _metrics(obj: Mapping[str, object], key: str, where: _Where) -> EvalMetrics | None:
    value = _opt_mapping(obj, key, where)
    if value is None:
        return None
    return EvalMetrics(
        loss=_opt_float(value, "loss", where),
        accuracy=_opt_float(value, "accuracy", where),
        n=_opt_int(value, "n", where),
    )


def _site_metrics(
    obj: Mapping[str, object], key: str, where: _Where
) -> dict[str, EvalMetrics] | None:
    value = _opt_mapping(obj, key, where)
    if value is None:
        return None
    out: dict[str, EvalMetrics] = {}
    for site in value:
        metrics = _metrics(value, site, where)
        if metrics is not None:
            out[site] = metrics
    return out


def _mean_accuracy(per_site: Mapping[str, EvalMetrics]) -> float | None:
    accs = [
        m.accuracy
        for m in per_site.values()
        if m.accuracy is not None and not math.isnan(m.accuracy)
    ]
    return sum(accs) / len(accs) if accs else None


def _parse_summary(obj: dict[str, object], path: Path, default_name: str) -> RunSummary:
    where = _Where(path, None)
    final = _opt_mapping(obj, "final", where) or {}
    return RunSummary(
        name=_opt_str(obj, "name", where) or default_name,
        algorithm=_opt_str(obj, "algorithm", where),
        dataset=_opt_str(obj, "dataset", where),
        seed=_opt_int(obj, "seed", where),
        rounds=_opt_int(obj, "rounds", where),
        wall_s=_opt_float(obj, "wall_s", where),
        final_test=_metrics(final, "test", where),
        final_per_site=_site_metrics(final, "per_site", where),
        final_mean_site_accuracy=_opt_float(final, "mean_site_accuracy", where),
        loho=_site_metrics(obj, "loho", where) or None,
        raw=obj,
    )
