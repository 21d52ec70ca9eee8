"""The hashes the ledger records: the global model and the resolved configuration.

* model: SHA-256 of the model's canonical wire bytes (:func:`medsilo.wire.encode` with
  ``bitmap=False``: float32, little-endian, dense or index-sparse per tensor, the format's
  first version, kept so that earlier runs' hashes still verify), hex. Anyone holding the
  weights (e.g. a run's ``final_weights.npz``) recomputes it without knowing the
  architecture.
* config: SHA-256 of the canonical JSON (:mod:`~medsilo.ledger.canonical`) of
  ``RunConfig.model_dump(mode="json")``, i.e. of the config after defaults were filled in,
  so two YAML files that differ only in layout, key order or spelled-out defaults hash alike.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from medsilo.types import Weights
from medsilo.wire import encode

if TYPE_CHECKING:
    from medsilo.config import RunConfig


def weights_sha256(weights: Weights) -> str:
    return hashlib.sha256(encode(weights, bitmap=False)).hexdigest()


def config_sha256(cfg: RunConfig) -> str:
    from medsilo.ledger.canonical import canonical_json

    return hashlib.sha256(canonical_json(cfg.model_dump(mode="json"))).hexdigest()
