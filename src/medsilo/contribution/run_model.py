"""Is the model ``config.yaml`` builds the model this run trained? Contribution scores need it.

Scores are computed by re-running the run from its ``config.yaml``: the configured (bundled)
model is retrained with and without each site. If the user trained a different model (a
model swapped in through the Python API, or ``final_weights.npz`` replaced afterwards), the
retrained model is not theirs and every score would describe a model nobody deployed. So
the run's saved final weights are checked twice, and the command refuses on either:

* before any training: their tensor count and shapes must be the configured model's
  (:func:`~medsilo.models.weights.shape_mismatch`), which catches another architecture;
* after the full re-run, before leave-one-out's further runs and before anything is
  written: the re-run's final weights must equal them (``atol`` 1e-6), which catches a
  model of the same shapes trained differently, or other weights saved in their place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsilo.models.weights import shape_mismatch
from medsilo.types import Weights

FINAL_WEIGHTS = "final_weights.npz"
TOLERANCE = 1e-6


class RunModelMismatch(ValueError):
    """The run's model is not the one its config builds; the message says how it differs."""


def saved_final_weights(run_dir: Path | None) -> Weights | None:
    """The run's ``final_weights.npz`` in saved order, or ``None`` when there is none."""
    path = run_dir / FINAL_WEIGHTS if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def require_configured_model(configured: Weights, saved: Weights) -> None:
    """Refuse (before training) saved weights that cannot belong to the configured model."""
    mismatch = shape_mismatch(configured, saved)
    if mismatch is not None:
        raise RunModelMismatch(
            f"{FINAL_WEIGHTS} does not fit the model config.yaml builds ({mismatch}): the "
            "run's model was swapped. Contribution scores retrain the configured model, so "
            "they would score a different model; refusing"
        )


def require_reproduced(rerun: Weights, saved: Weights) -> None:
    """Refuse when re-running the config does not give the run's saved final weights."""
    largest = max(
        float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(rerun, saved, strict=True)
    )
    if largest > TOLERANCE:
        raise RunModelMismatch(
            f"re-running config.yaml does not reproduce {FINAL_WEIGHTS} (largest difference "
            f"{largest:.3g}): the run's model or its training is not what the config builds, "
            "so contribution scores would describe another model; refusing"
        )
