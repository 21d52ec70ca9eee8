"""The ``tracking:`` section of a run config: where else a run is logged (docs/tracking.md).

```yaml
tracking:
  mlflow:
    enabled: true
    tracking_uri: null        # null: sqlite:///OUTPUT_DIR/mlflow.db; or http://host:5000, ...
    experiment: medsilo       # the MLflow experiment the run is logged under
```

Plain pydantic models with ``extra="forbid"``, importing nothing from the rest of medsilo
(nor MLflow, which is imported only when a run is tracked) so that :mod:`medsilo.config`
can use them.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A URI MLflow can open: ``scheme:...`` (sqlite, http(s), postgresql, file, ...) or the bare
#: ``databricks``. A plain path is refused: MLflow would read it as a file store, which
#: MLflow 3 refuses by default.
TRACKING_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:.+|databricks)$")

#: The database and artefact folder of the default local store, inside ``output_dir``.
DEFAULT_STORE_FILE = "mlflow.db"
DEFAULT_ARTIFACT_FOLDER = "mlartifacts"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MlflowConfig(_Strict):
    enabled: bool = Field(False, description="log parameters, metrics and artefacts to MLflow")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; null: a local SQLite store in output_dir",
    )
    experiment: str = Field("medsilo", min_length=1, description="MLflow experiment name")

    @field_validator("tracking_uri")
    @classmethod
    def _has_scheme(cls, uri: str | None) -> str | None:
        if uri is not None and not TRACKING_URI.match(uri):
            raise ValueError(
                "give a URI with a scheme, e.g. sqlite:///runs/mlflow.db or http://HOST:5000 "
                "(a plain path would be an MLflow file store, which MLflow 3 refuses)"
            )
        return uri

    def store_uri(self, output_dir: Path) -> str:
        """The configured URI, or the default local store ``OUTPUT_DIR/mlflow.db``."""
        if self.tracking_uri is not None:
            return self.tracking_uri
        return f"sqlite:///{(output_dir / DEFAULT_STORE_FILE).resolve()}"


class TrackingConfig(_Strict):
    mlflow: MlflowConfig = MlflowConfig()
