"""Conversion between medsilo's plain types and Flower's Message records.

Every array travels as an :class:`~flwr.app.ArrayRecord` (``np.save`` bytes, so float32 and
float64 round-trip bit for bit); scalars travel as :class:`~flwr.app.MetricRecord` (metrics)
or :class:`~flwr.app.ConfigRecord` (identifiers and counters). Keys are fixed here so the
ServerApp and the ClientApp cannot disagree about them.

Message layout:

* server -> site, ``train``: ``weights`` (global weights), ``payload.<name>`` (what
  :meth:`Algorithm.broadcast` returned), ``round`` (ConfigRecord with ``round`` and, when
  the site is to evaluate ``weights`` before it trains, ``evaluate_first`` and
  ``global_eval``).
* site -> server, ``train``: ``delta`` or, when a codec compressed it, ``encoded``
  (ConfigRecord with the payload bytes under ``delta``), ``extra.<name>``
  (:attr:`Update.extras`), ``update`` (ConfigRecord: ``site``, ``num_examples``,
  ``num_steps``), ``metrics`` and, with ``evaluate_first``, the ``evaluate`` reply's records.
* server -> site, ``evaluate``: ``weights`` and ``round`` (with ``return_state``).
* site -> server, ``evaluate``: ``eval`` (MetricRecord: ``loss``, ``accuracy``, ``n``),
  ``clinical`` (ConfigRecord: the JSON report of metric states, :mod:`medsilo.runtime.clinical`),
  ``site`` (ConfigRecord) and, when asked, ``state.<name>`` (the site's persistent state).
* server -> site, ``query``: empty; the reply's ``site`` ConfigRecord names the site.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from medsilo.types import Update, Weights

#: What a ConfigRecord holds (``flwr.common.typing.ConfigRecordValues``).
ConfigValue = (
    int
    | float
    | str
    | bytes
    | bool
    | list[int]
    | list[float]
    | list[str]
    | list[bytes]
    | list[bool]
)

WEIGHTS = "weights"
DELTA = "delta"
ENCODED = "encoded"
PAYLOAD_PREFIX = "payload."
EXTRA_PREFIX = "extra."
STATE_PREFIX = "state."
ROUND = "round"
UPDATE = "update"
METRICS = "metrics"
EVAL = "eval"
#: The global model's metrics on the site's test set, asked for by a coordinator that holds
#: no test data (a deployment) so it can pool them.
GLOBAL_EVAL = "eval.global"
#: The site's clinical-metric report (metric states only, :mod:`medsilo.runtime.clinical`).
CLINICAL = "clinical"
SITE = "site"

#: Where a ClientApp keeps its site's persistent algorithm state in ``context.state``.
CONTEXT_STATE_PREFIX = "medsilo.state."


class RecordFormatError(ValueError):
    """A Message does not carry the records this runtime expects."""


# --- weights ------------------------------------------------------------------------------


def weights_to_record(weights: Weights) -> ArrayRecord:
    """Arrays keyed ``"0"``, ``"1"``, ... in list order."""
    return ArrayRecord([np.asarray(w) for w in weights])


def record_to_weights(record: ArrayRecord) -> Weights:
    """The inverse of :func:`weights_to_record`; order is taken from the keys, not insertion."""
    expected = [str(i) for i in range(len(record))]
    if sorted(record.keys()) != sorted(expected):
        raise RecordFormatError(
            f"an ArrayRecord of weights needs keys 0..{len(record) - 1}, got {sorted(record)}"
        )
    out: Weights = []
    for key in expected:
        arr = record[key].numpy()
        # np.load on a bytes buffer gives a read-only view; algorithms may update in place.
        out.append(arr if arr.flags.writeable else arr.copy())
    return out


def named_weights_to_records(content: RecordDict, prefix: str, named: dict[str, Weights]) -> None:
    for name, weights in named.items():
        content[prefix + name] = weights_to_record(weights)


def records_to_named_weights(content: RecordDict, prefix: str) -> dict[str, Weights]:
    return {
        key[len(prefix) :]: record_to_weights(record)
        for key, record in content.array_records.items()
        if key.startswith(prefix)
    }


# --- server -> site -----------------------------------------------------------------------


def broadcast_content(
    rnd: int,
    weights: Weights,
    payload: dict[str, Weights] | None = None,
    *,
    return_state: bool = False,
    global_eval: bool = False,
    final: bool = False,
    evaluate_first: bool = False,
) -> RecordDict:
    config: dict[str, ConfigValue] = {
        "round": rnd,
        "return_state": return_state,
        "global_eval": global_eval,
    }
    if final:  # the run's last evaluation: sites add bootstrap replicates
        config["final"] = True
    if evaluate_first:  # train-with-evaluation: evaluate ``weights``, then train from them
        config["evaluate_first"] = True
    content = RecordDict(
        {
            WEIGHTS: weights_to_record(weights),
            ROUND: ConfigRecord(config),
        }
    )
    named_weights_to_records(content, PAYLOAD_PREFIX, payload or {})
    return content


def read_broadcast(content: RecordDict) -> tuple[int, Weights, dict[str, Weights], bool]:
    """``(round, global weights, payload, return_state)`` from a server message."""
    _require(content, WEIGHTS, ROUND)
    config = content.config_records[ROUND]
    return (
        _int(config, "round"),
        record_to_weights(content.array_records[WEIGHTS]),
        records_to_named_weights(content, PAYLOAD_PREFIX),
        bool(config.get("return_state", False)),
    )


# --- site -> server -----------------------------------------------------------------------


def update_to_content(update: Update) -> RecordDict:
    sent = (
        {ENCODED: ConfigRecord({"delta": update.encoded_delta})}
        if update.encoded_delta is not None
        else {DELTA: weights_to_record(update.delta)}
    )
    content = RecordDict(
        {
            **sent,
            UPDATE: ConfigRecord(
                {
                    "site": update.site,
                    "num_examples": int(update.num_examples),
                    "num_steps": int(update.num_steps),
                }
            ),
            METRICS: MetricRecord({k: float(v) for k, v in update.metrics.items()}),
        }
    )
    named_weights_to_records(content, EXTRA_PREFIX, update.extras)
    return content


def content_to_update(content: RecordDict) -> Update:
    _require(content, ENCODED if ENCODED in content else DELTA, UPDATE, METRICS)
    meta = content.config_records[UPDATE]
    metrics = content.metric_records[METRICS]
    encoded: bytes | None = None
    if ENCODED in content:
        value = content.config_records[ENCODED].get("delta")
        if not isinstance(value, bytes):
            raise RecordFormatError(f"record {ENCODED!r} should carry bytes, got {value!r}")
        encoded, delta = value, []
    else:
        delta = record_to_weights(content.array_records[DELTA])
    return Update(
        site=str(meta["site"]),
        delta=delta,
        encoded_delta=encoded,
        num_examples=_int(meta, "num_examples"),
        num_steps=_int(meta, "num_steps"),
        metrics={k: float(_number(metrics, k)) for k in metrics},
        extras=records_to_named_weights(content, EXTRA_PREFIX),
    )


def identity_content(site: str, index: int) -> RecordDict:
    return RecordDict({SITE: ConfigRecord({"site": site, "index": index})})


def read_identity(content: RecordDict) -> tuple[str, int]:
    _require(content, SITE)
    record = content.config_records[SITE]
    return str(record["site"]), _int(record, "index")


def _metric_record(metrics: dict[str, float | int]) -> MetricRecord:
    return MetricRecord(
        {k: (int(v) if isinstance(v, int) else float(v)) for k, v in metrics.items()}
    )


def eval_content(
    site: str,
    index: int,
    metrics: dict[str, float | int],
    global_metrics: dict[str, float | int] | None = None,
) -> RecordDict:
    content = identity_content(site, index)
    content[EVAL] = _metric_record(metrics)
    if global_metrics is not None:
        content[GLOBAL_EVAL] = _metric_record(global_metrics)
    return content


def is_final(content: RecordDict) -> bool:
    """Whether an ``evaluate`` broadcast is the run's last evaluation."""
    _require(content, ROUND)
    return bool(content.config_records[ROUND].get("final", False))


def add_clinical(content: RecordDict, report: Mapping[str, Any]) -> None:
    content[CLINICAL] = ConfigRecord({"report": json.dumps(report)})


def read_clinical(content: RecordDict) -> dict[str, Any]:
    _require(content, CLINICAL)
    report = json.loads(str(content.config_records[CLINICAL]["report"]))
    if not isinstance(report, dict):
        raise ValueError("a site's clinical report is not a JSON object")
    return report


def evaluates_first(content: RecordDict) -> bool:
    """Whether a ``train`` broadcast asks the site to evaluate the weights before training."""
    _require(content, ROUND)
    return bool(content.config_records[ROUND].get("evaluate_first", False))


def add_records(content: RecordDict, more: RecordDict) -> RecordDict:
    """``content`` with ``more``'s records added (a reply that answers two requests)."""
    clash = sorted(set(content.keys()) & set(more.keys()))
    if clash:
        raise RecordFormatError(f"records {clash} would be overwritten")
    for key, record in more.items():
        content[key] = record
    return content


def wants_global_eval(content: RecordDict) -> bool:
    """Whether an ``evaluate`` broadcast also asks for the global model's metrics."""
    _require(content, ROUND)
    return bool(content.config_records[ROUND].get("global_eval", False))


def read_eval(content: RecordDict, key: str = EVAL) -> dict[str, float | int]:
    _require(content, key)
    metrics = content.metric_records[key]
    return {k: _number(metrics, k) for k in metrics}


# --- persistent site state ----------------------------------------------------------------


def store_state(records: RecordDict, state: dict[str, Weights], prefix: str) -> None:
    """Replace every ``prefix``-keyed ArrayRecord in ``records`` with ``state``."""
    for key in [k for k in records.array_records if k.startswith(prefix)]:
        del records[key]
    named_weights_to_records(records, prefix, state)


def load_state(records: RecordDict, prefix: str) -> dict[str, Weights]:
    return records_to_named_weights(records, prefix)


def _int(record: Mapping[str, object], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordFormatError(f"record field {key!r} should be an int, got {value!r}")
    return value


def _number(record: Mapping[str, object], key: str) -> float | int:
    value = record.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RecordFormatError(f"record field {key!r} should be a number, got {value!r}")
    return value


def _require(content: RecordDict, *keys: str) -> None:
    missing = [k for k in keys if k not in content]
    if missing:
        raise RecordFormatError(
            f"message is missing record(s) {missing}; it carries {sorted(content)}"
        )
