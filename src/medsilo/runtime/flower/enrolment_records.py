"""Wire format of a deployed federation's set-up exchanges (before round 1).

A deployed coordinator holds no data and no site's secrets, so before training it asks:

* ``query.enrol`` (server -> site): ``enrol`` ConfigRecord with the attestation ``nonce``, the
  run ``config`` (JSON of the :class:`RunConfig`), the ``roster`` (site names in federation
  order), ``run_key`` (names this run's on-disk site state), ``resume_round`` (0: fresh) and
  ``decision`` (the council's ``quorum_decision`` for this run as JSON, empty without a
  council; the site checks it, :mod:`medsilo.governance.site_check`).
  Reply: ``enrolled`` ConfigRecord: ``site``, ``index``, ``evidence`` (attestation evidence
  JSON), ``n_train``, ``n_test``, ``input_shape``, ``num_classes``, ``task`` and, when the
  config says ``data.standardize: federated``, ``moments`` ArrayRecord (per-feature sum and
  sum of squares of the training rows) and ``count`` (:mod:`medsilo.data.standardize`), so
  federated standardisation costs no exchange of its own (aggregates only; the coordinator
  drops those of a site it refuses).
* ``query.admission``: ``admission`` ConfigRecord (``accepted``, ``reason``,
  ``exploit_indicator``) and, when standardising, ``standardize`` ArrayRecord (mean, std).
  Reply: empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from medsilo.runtime.flower.records import RecordFormatError

ENROL = "enrol"
MOMENTS = "moments"
ADMISSION = "admission"
#: Message types (Flower "query" actions) of the set-up exchanges.
ACTIONS = {name: f"query.{name}" for name in (ENROL, ADMISSION)}
ENROLLED = "enrolled"
COUNT = "count"
STANDARDIZE = "standardize"


@dataclass(frozen=True)
class EnrolRequest:
    nonce: str
    config_json: str
    roster: list[str]
    run_key: str
    resume_round: int
    decision_json: str = ""  # the council's quorum_decision for this run (docs/governance.md)


@dataclass(frozen=True)
class Enrolled:
    site: str
    index: int
    evidence_json: str
    n_train: int
    n_test: int
    input_shape: tuple[int, ...]
    num_classes: int
    task: str


@dataclass(frozen=True)
class Admission:
    accepted: bool
    reason: str
    exploit_indicator: int


def _config(content: RecordDict, key: str) -> ConfigRecord:
    if key not in content.config_records:
        raise RecordFormatError(f"message has no {key!r} record (got {sorted(content.keys())})")
    return content.config_records[key]


def enrol_content(request: EnrolRequest) -> RecordDict:
    return RecordDict(
        {
            ENROL: ConfigRecord(
                {
                    "nonce": request.nonce,
                    "config": request.config_json,
                    "roster": list(request.roster),
                    "run_key": request.run_key,
                    "resume_round": request.resume_round,
                    "decision": request.decision_json,
                }
            )
        }
    )


def read_enrol(content: RecordDict) -> EnrolRequest:
    record = _config(content, ENROL)
    roster = record["roster"]
    if not isinstance(roster, list) or not all(isinstance(n, str) for n in roster):
        raise RecordFormatError(f"enrol roster must be a list of names, got {roster!r}")
    return EnrolRequest(
        nonce=str(record["nonce"]),
        config_json=str(record["config"]),
        roster=[str(n) for n in roster],
        run_key=str(record["run_key"]),
        resume_round=int(record["resume_round"]),  # type: ignore[arg-type]
        decision_json=str(record.get("decision", "")),
    )


def enrolled_content(reply: Enrolled) -> RecordDict:
    return RecordDict(
        {
            ENROLLED: ConfigRecord(
                {
                    "site": reply.site,
                    "index": reply.index,
                    "evidence": reply.evidence_json,
                    "n_train": reply.n_train,
                    "n_test": reply.n_test,
                    "input_shape": [int(d) for d in reply.input_shape],
                    "num_classes": reply.num_classes,
                    "task": reply.task,
                }
            )
        }
    )


def read_enrolled(content: RecordDict) -> Enrolled:
    r = _config(content, ENROLLED)
    shape = r["input_shape"]
    if not isinstance(shape, list):
        raise RecordFormatError(f"input_shape must be a list, got {shape!r}")
    return Enrolled(
        site=str(r["site"]),
        index=int(r["index"]),  # type: ignore[arg-type]
        evidence_json=str(r["evidence"]),
        n_train=int(r["n_train"]),  # type: ignore[arg-type]
        n_test=int(r["n_test"]),  # type: ignore[arg-type]
        input_shape=tuple(int(d) for d in shape),
        num_classes=int(r["num_classes"]),  # type: ignore[arg-type]
        task=str(r["task"]),
    )


def moments_content(count: int, total: np.ndarray, total_sq: np.ndarray) -> RecordDict:
    return RecordDict(
        {
            MOMENTS: ArrayRecord([np.asarray(total), np.asarray(total_sq)]),
            COUNT: ConfigRecord({"count": int(count)}),
        }
    )


def read_moments(content: RecordDict) -> tuple[int, np.ndarray, np.ndarray]:
    if MOMENTS not in content.array_records:
        raise RecordFormatError("moments reply has no 'moments' record")
    arrays = content.array_records[MOMENTS]
    count = int(_config(content, COUNT)["count"])  # type: ignore[arg-type]
    return count, arrays["0"].numpy(), arrays["1"].numpy()


def admission_content(
    admission: Admission, standardize: tuple[np.ndarray, np.ndarray] | None
) -> RecordDict:
    content = RecordDict(
        {
            ADMISSION: ConfigRecord(
                {
                    "accepted": admission.accepted,
                    "reason": admission.reason,
                    "exploit_indicator": admission.exploit_indicator,
                }
            )
        }
    )
    if standardize is not None:
        content[STANDARDIZE] = ArrayRecord([np.asarray(standardize[0]), np.asarray(standardize[1])])
    return content


def read_admission(content: RecordDict) -> tuple[Admission, tuple[np.ndarray, np.ndarray] | None]:
    r = _config(content, ADMISSION)
    admission = Admission(
        accepted=bool(r["accepted"]),
        reason=str(r["reason"]),
        exploit_indicator=int(r["exploit_indicator"]),  # type: ignore[arg-type]
    )
    if STANDARDIZE not in content.array_records:
        return admission, None
    arrays = content.array_records[STANDARDIZE]
    return admission, (arrays["0"].numpy(), arrays["1"].numpy())
