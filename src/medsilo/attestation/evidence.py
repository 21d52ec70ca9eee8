"""What a site presents at enrolment, and the exact bytes the software backend signs.

``Evidence`` is a strict pydantic model (JSON on disk). ``measurement`` is a hex digest of
the code the site runs (:mod:`.measurement` for the software backend; the report's
MEASUREMENT / MRTD for hardware backends), ``nonce`` the coordinator's challenge,
``timestamp`` ISO-8601 UTC, ``signature`` hex (software backend), ``report`` hex of the raw
hardware report / quote (hardware backends).

Signed bytes (software backend): canonical JSON (:func:`medsilo.ledger.canonical.canonical_json`:
sorted keys, no whitespace) of ``{"backend", "site", "platform": {"kind", "tcb_version"},
"measurement", "nonce", "timestamp"}``; every field except the signature itself is covered,
so changing any of them breaks the signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medsilo.confidential.platform import PlatformKind
from medsilo.ledger.canonical import canonical_json

Backend = Literal["software", "sev-snp", "tdx"]
HEX = r"^[0-9a-f]*$"


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str = Field(min_length=1)
    backend: Backend
    platform: PlatformKind
    tcb_version: str = ""
    measurement: str = Field(pattern=HEX, min_length=64)
    nonce: str = Field(min_length=16)
    timestamp: str
    signature: str = Field(default="", pattern=HEX)
    report: str = Field(default="", pattern=HEX)

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {
                "backend": self.backend,
                "site": self.site,
                "platform": {"kind": self.platform, "tcb_version": self.tcb_version},
                "measurement": self.measurement,
                "nonce": self.nonce,
                "timestamp": self.timestamp,
            }
        )


def load_evidence(path: Path) -> Evidence:
    return Evidence.model_validate(json.loads(path.read_text(encoding="utf-8")))


def save_evidence(evidence: Evidence, path: Path) -> None:
    path.write_text(evidence.model_dump_json(indent=2) + "\n", encoding="utf-8")
