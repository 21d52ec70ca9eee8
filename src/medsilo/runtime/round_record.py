"""The round record: one typed, versioned record per round, one JSON line in ``rounds.jsonl``.

Every runtime hands :class:`RoundRecord` to its ``on_round`` sinks (``rounds.jsonl``, the
audit ledger, the dashboard, MLflow), and every reader (the report, the dashboard, the
benchmarks, contribution scores, unlearning) reads ``rounds.jsonl`` back through
:func:`read_rounds` into the same type, so a field is defined once, here.

While a round runs, its parts are gathered as plain fields (:data:`RoundFields`, from
:mod:`medsilo.runtime.records`, the clock, privacy, secure aggregation, governance); the
loop closes the round with :meth:`RoundRecord.from_fields`, which refuses an unknown key or
a value of the wrong type, so a producer's typo fails in tests instead of writing a field no
reader knows.

Versions: ``schema_version`` 2 is this layout. Lines without it were written before records
were versioned (schema 1): the same fields, so they load. A line from a newer schema is
refused with a message naming both versions.

A record also reads as the mapping it serialises to (``record["test"]["accuracy"]``,
``record.items()``), which is what its JSON line holds; code inside the package uses the
attributes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

SCHEMA_VERSION = 2
#: Records written before versioning carry no ``schema_version``: read as this one.
UNVERSIONED = 1

#: A round's fields while it is being assembled (see the module docstring).
RoundFields = dict[str, Any]


class RoundRecordError(ValueError):
    """A round record (or a ``rounds.jsonl`` line) that does not match the schema.

    ``reason`` is the problem, ``path`` and ``line`` (1-based) where it is when it came from
    a file; the message has all three."""

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None):
        where = "" if path is None else f"{path}, line {line}: " if line else f"{path}: "
        super().__init__(where + reason)
        self.reason = reason
        self.path = None if path is None else Path(path)
        self.line = line


@dataclass(frozen=True)
class EvalMetrics:
    """One model on one test set: mean loss, accuracy and the number of examples (a
    hand-written or foreign record may lack one of them)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    loss: float | None = None
    accuracy: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class SiteHealth:
    """A site's raw health this round (the dashboard releases it with DP noise)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    train_loss: float | None
    update_norm: float | None
    num_examples: int


@dataclass(frozen=True)
class RejectedUpdate:
    """An update the coordinator refused (validation, decoding, secure aggregation)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    site: str
    reason: str


@dataclass(frozen=True)
class BackdoorSuccess:
    """A backdoor attack's success: share of triggered non-target test rows classified as
    the target, over ``n`` rows (docs/robustness.md)."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    success: float
    n: int


#: Written on every line, ``None`` or not; every other field only when it has a value.
ALWAYS = ("round", "sites", "train_loss", "bytes_up", "bytes_down", "sim_time_s", "extra")


@dataclass(frozen=True)
class RoundRecord(Mapping[str, Any]):
    """One round (one aggregation, in asynchronous runs) of one run."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    # --- training: every runtime ---------------------------------------------------------
    round: int
    sites: list[str] = field(default_factory=list)
    train_loss: float | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    #: Simulated seconds of this round (network model, compute); ``None`` for baselines.
    sim_time_s: float | None = None
    #: Numeric extras: ``leakage``, ``sparsity``, ``rejected`` count, ``staleness_mean``.
    extra: dict[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    bytes_up_site: dict[str, int] | None = None
    site_health: dict[str, SiteHealth] | None = None
    rejected: list[RejectedUpdate] | None = None
    skipped: bool | None = None
    skip_reason: str | None = None
    #: Sites a selecting robust rule (Krum, Multi-Krum, Bulyan) kept.
    robust_selected: list[str] | None = None
    # --- the simulated clock ---------------------------------------------------------------
    sim_clock_s: float | None = None
    sim_compute_s: float | None = None
    dropped: list[str] | None = None
    late: list[str] | None = None
    # --- governance, privacy, secure aggregation -------------------------------------------
    cohorts: dict[str, str] | None = None
    absent_sites: dict[str, str] | None = None
    #: Patient-level consent: ``{site: {consented, sha256}}`` (docs/governance.md).
    patients: dict[str, Any] | None = None
    #: The accountant's state after this round (docs/privacy.md); its keys depend on the
    #: mechanism (``epsilon``, ``delta``, ``budget``, ``mechanism``, ...).
    privacy: dict[str, Any] | None = None
    #: Why the run stopped after this round (privacy budget, asynchronous end).
    stop_reason: str | None = None
    #: The protocol's account of the round (docs/secure-aggregation.md).
    secure_aggregation: dict[str, Any] | None = None
    # --- evaluation (rounds that evaluate) -------------------------------------------------
    test: EvalMetrics | None = None
    per_site: dict[str, EvalMetrics] | None = None
    mean_site_accuracy: float | None = None
    evaluation_missing: list[str] | None = None
    backdoor: BackdoorSuccess | None = None
    #: Clinical metrics of the global model from the sites' merged states: ``lead``,
    #: ``operating_point``, ``pooled``, ``per_site``, ``without_site``, ``subgroups``
    #: (:mod:`medsilo.runtime.clinical`); null where a state cannot define a metric.
    metrics: dict[str, Any] | None = None
    #: 95% bootstrap intervals (last evaluation): scope -> metric -> [low, high].
    metric_intervals: dict[str, Any] | None = None
    # --- the model and the clock on the wall -----------------------------------------------
    global_model_sha256: str | None = None
    wall_s: float | None = None
    # --- asynchronous runs ----------------------------------------------------------------
    mode: str | None = None
    staleness: list[int] | None = None
    updates_received: int | None = None
    updates_target: int | None = None
    updates_applied: int | None = None
    model_version: int | None = None

    # --- construction and serialisation ---------------------------------------------------

    @staticmethod
    def from_fields(raw: Mapping[str, Any]) -> RoundRecord:
        """The record of a round's assembled fields (or of one ``rounds.jsonl`` line)."""
        data = dict(raw)
        version = data.get("schema_version", UNVERSIONED)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RoundRecordError(
                f"round record of schema version {version!r}: this medsilo reads versions "
                f"{UNVERSIONED} to {SCHEMA_VERSION} (written by a newer medsilo? upgrade it)"
            )
        data["schema_version"] = SCHEMA_VERSION
        if isinstance(data.get("extra"), dict):  # numbers only; older files held notes too
            data["extra"] = {
                k: v
                for k, v in data["extra"].items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        try:
            return _adapter().validate_python(data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            which = f"round {data['round']!r}: " if "round" in data else ""
            raise RoundRecordError(which + problems) from None

    def replace(self, **changes: Any) -> RoundRecord:
        """A copy with ``changes`` applied (and checked like :meth:`from_fields`)."""
        return RoundRecord.from_fields({**self.to_json(), **changes})

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record's line (``None`` fields left out, see ALWAYS)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            evaluated = f.name == "mean_site_accuracy" and self.test is not None
            if value is None and f.name not in ALWAYS and not evaluated:
                continue
            out[f.name] = _plain(value)
        return out

    @property
    def evaluated(self) -> bool:
        return self.test is not None

    # --- Mapping: the record as its JSON object --------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json())

    def __len__(self) -> int:
        return len(self._json())

    def _json(self) -> dict[str, Any]:
        return self.to_json()


def _plain(value: Any) -> Any:
    """Dataclasses inside a record as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@cache
def _adapter() -> TypeAdapter[RoundRecord]:
    return TypeAdapter(RoundRecord)


RoundCallback = Callable[[RoundRecord], None]


def json_line(record: RoundRecord) -> str:
    """One ``rounds.jsonl`` line (NaN allowed: an empty test set has no loss)."""
    return json.dumps(record.to_json(), allow_nan=True) + "\n"


def parse_rounds(text: str, source: str | Path = "rounds.jsonl") -> list[RoundRecord]:
    """Records of a ``rounds.jsonl`` text; a torn last line (a crash mid-write) is dropped,
    any other bad line is an error naming the file and the line."""
    lines = text.splitlines()
    records: list[RoundRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines) and not text.endswith("\n"):
                break  # torn last line
            raise RoundRecordError(f"not JSON ({err.msg})", source, number) from None
        if not isinstance(raw, dict):
            raise RoundRecordError("expected a JSON object", source, number)
        try:
            records.append(RoundRecord.from_fields(raw))
        except RoundRecordError as err:
            raise RoundRecordError(err.reason, source, number) from None
    return records


def read_rounds(path: Path) -> list[RoundRecord]:
    """Every record of a ``rounds.jsonl`` file (see :func:`parse_rounds`)."""
    return parse_rounds(path.read_text("utf-8"), path)
