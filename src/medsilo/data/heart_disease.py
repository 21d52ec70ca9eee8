"""UCI Heart Disease split by hospital, preprocessed as FLamby's Fed-Heart-Disease.

The four hospitals are a real cross-silo split with label and feature shift, so the
preprocessing follows FLamby exactly (same rows, same per-centre train/test indices) to keep
results comparable with the FLamby benchmark. pandas is not a dependency, so its semantics
(``na_values='?'``, ``dropna``, ``get_dummies(drop_first=True)``) are re-implemented here.

One deliberate difference: FLamby's README and model report 16 features, not 13. Its
``read_csv`` has no ``na_values``, so the ``?`` in the Hungarian and Switzerland ``restecg``
columns makes pandas keep those columns as strings, and ``get_dummies`` then treats ``'0'``
and ``0.0`` as different levels (6 levels, 5 dummies). That encodes the hospital rather
than the ECG, so the intended 13 features are used here; rows, labels and splits are the same.

Each hospital is read, encoded and split from its own file alone (:func:`load_hospital`), so
a deployed site process and a federation of a subset of the hospitals (``data.hospitals``)
get exactly the arrays of the four-hospital federation.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data._util import frozen
from medsilo.data.base import ArrayData, DataFormatError, FederatedData, SiteData, in_memory
from medsilo.data.paths import require_file, resolve_root
from medsilo.data.schema import FederationSchema
from medsilo.data.site_mapping import ColumnMapping, SiteMapping
from medsilo.data.site_validation import check_site

HOSPITALS: tuple[str, ...] = ("cleveland", "hungarian", "switzerland", "va")
COLUMNS: tuple[str, ...] = (
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
    "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num",
)  # fmt: skip
DROPPED = ("slope", "ca", "thal")  # mostly missing outside Cleveland
CATEGORICAL = ("cp", "restecg")  # one-hot encoded; the rest stay numeric, in file order
TRAIN_FRACTION = 0.66
SPLIT_SEED = 43

# The UCI layout as a federation schema, so that a hospital file is checked by the same range
# and code checks as a site's CSV (medsilo.data.site_validation), not by a second copy.
# Codes are heart-disease.names'; a value outside them is a corrupt file, and accepting it
# would silently change the number of one-hot features. Ranges are physiological bounds
# that every value of the four UCI files falls in; 0 is kept for trestbps and chol because
# the Switzerland and VA files record some unmeasured values as 0 and FLamby keeps those rows.
SCHEMA = FederationSchema.model_validate(
    {
        "name": "uci_heart_disease",
        "label": {"name": "num", "classes": [0, 1, 2, 3, 4]},  # diagnosis; > 0 is disease
        "columns": [
            {"name": "age", "type": "numeric", "unit": "years", "range": [0, 120]},
            {"name": "sex", "type": "binary"},
            {"name": "cp", "type": "categorical", "codes": [1, 2, 3, 4]},
            {"name": "trestbps", "type": "numeric", "unit": "mmHg", "range": [0, 300]},
            {"name": "chol", "type": "numeric", "unit": "mg/dL", "range": [0, 1000]},
            {"name": "fbs", "type": "binary"},
            {"name": "restecg", "type": "categorical", "codes": [0, 1, 2]},
            {"name": "thalach", "type": "numeric", "unit": "bpm", "range": [30, 250]},
            {"name": "exang", "type": "binary"},
            {"name": "oldpeak", "type": "numeric", "unit": "mm", "range": [-10, 10]},
        ],
        # Incomplete rows are dropped after the check (FLamby's dropna), never imputed.
        "max_missing": 1.0,
    }
)
# Every kept column under its own name; "?" is the files' only missing-value marker.
MAPPING = SiteMapping(
    missing_values=["?"],
    columns={c: ColumnMapping(to=c) for c in [*SCHEMA.column_names, SCHEMA.label.name]},
)
# One-hot levels per categorical column. FLamby takes them from the four hospitals pooled; on
# the UCI files (complete rows) that union is exactly the documented code set, so using the
# codes gives the same columns while letting each hospital encode its own file alone (a
# deployed site, or a federation of a subset of the hospitals) with the federation's layout.
CATEGORIES: dict[str, list[int]] = {
    c: sorted(int(code) for code in SCHEMA.column(c).codes or []) for c in CATEGORICAL
}
# Subgroup columns for per-subgroup metrics (evaluation.subgroup); taken from the raw file
# values, so standardising the features (which keep age and sex) does not change them.
AGE_BAND_EDGES = (50.0, 60.0)  # years; a band holds ages from its lower edge up to the next
AGE_BANDS = ("<50", "50-59", "60+")
SUBGROUPS: tuple[str, ...] = ("sex", "age_band")

_NUMERIC = [c for c in SCHEMA.column_names if c not in CATEGORICAL]


def read_centre(path: Path) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    """The kept columns of one hospital file (complete rows only) and the binary label.

    Missing values in the dropped columns do not remove a row, as in FLamby, which drops the
    columns before ``dropna``. Every problem of the file is reported at once, each naming the
    file's line and the column.
    """
    require_file(path)
    check = check_site(SCHEMA, MAPPING, path, site=path.name, columns=COLUMNS)
    if check.values is None or check.labels is None:
        raise DataFormatError(
            "\n".join(
                [
                    f"{path}: not a usable UCI heart-disease file (columns "
                    f"{', '.join(COLUMNS)}; '?' marks a missing value):",
                    *[f"  - {issue.where}: {issue.problem}" for issue in check.issues],
                    "Correct these cells, or mark an unknown value '?'.",
                ]
            )
        )
    complete = ~np.any(np.isnan(np.stack(list(check.values.values()))), axis=0)
    if not complete.any():
        raise DataFormatError(f"{path}: no complete rows (after dropping {', '.join(DROPPED)})")
    columns = {c: v[complete] for c, v in check.values.items()}
    for c in CATEGORICAL:  # validation gives the index of the code; the encoding wants the code
        codes = np.array([float(code) for code in SCHEMA.column(c).codes or []])
        columns[c] = codes[columns[c].astype(np.int64)]
    return columns, (check.labels[complete] > 0).astype(np.int64)


def split_indices(path: Path, labels: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
    """FLamby's per-centre split: stratify only when every class has more than 2 members.

    Indices come back sorted because FLamby selects a centre's rows in file order.
    """
    n = len(labels)
    levels, counts = np.unique(labels, return_counts=True)
    stratify = labels if len(levels) > 1 and bool(np.all(counts > 2)) else None
    try:
        from sklearn.model_selection import train_test_split  # lazy: ~0.5 s of imports

        train, test = train_test_split(
            np.arange(n),
            test_size=1.0 - TRAIN_FRACTION,
            train_size=TRAIN_FRACTION,
            random_state=SPLIT_SEED,
            shuffle=True,
            stratify=stratify,
        )
    except ValueError as err:
        raise DataFormatError(f"{path}: {n} complete rows are too few to split ({err})") from err
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def feature_names(categories: dict[str, list[int]]) -> list[str]:
    """Numeric columns first, then dummies, as ``pd.get_dummies(columns=[2, 6])`` orders them."""
    dummies = [f"{c}_{v}" for c in CATEGORICAL for v in categories[c][1:]]
    return _NUMERIC + dummies


def _encode(
    columns: dict[str, NDArray[np.float64]], categories: dict[str, list[int]]
) -> NDArray[np.float64]:
    parts = [columns[c] for c in _NUMERIC]
    for c in CATEGORICAL:
        parts += [(columns[c] == v).astype(np.float64) for v in categories[c][1:]]  # drop_first
    return np.stack(parts, axis=1)


def subgroup_columns(columns: dict[str, NDArray[np.float64]]) -> dict[str, NDArray[np.str_]]:
    """``sex`` (female/male, coded 0/1 in the files) and ``age_band`` (<50, 50-59, 60+)."""
    sex = np.where(columns["sex"] == 1, "male", "female")
    band = np.array(AGE_BANDS)[np.searchsorted(AGE_BAND_EDGES, columns["age"], side="right")]
    return {"sex": sex.astype(np.str_), "age_band": band.astype(np.str_)}


def check_hospitals(hospitals: list[str] | tuple[str, ...], where: str = "hospitals") -> None:
    """Refuse an empty list, unknown names and repeats; ``where`` names the config field."""
    if not hospitals:
        raise ValueError(f"{where} is empty; list one or more of {', '.join(HOSPITALS)}")
    unknown = [h for h in hospitals if h not in HOSPITALS]
    if unknown:
        raise ValueError(
            f"{where}: unknown hospital(s) {unknown}; the hospitals are {', '.join(HOSPITALS)}"
        )
    repeated = sorted({h for h in hospitals if list(hospitals).count(h) > 1})
    if repeated:
        raise ValueError(f"{where}: each hospital may be listed once; repeated: {repeated}")


def load_hospital(path: Path, name: str) -> SiteData:
    """One hospital from its own file only, as the federation holds it: the same rows,
    one-hot columns (documented code sets, see ``CATEGORIES``) and FLamby train/test split.

    This is what a deployed site process reads; it never needs the other hospitals' files.
    """
    cols, y = read_centre(path)
    x = _encode(cols, CATEGORIES)
    groups = subgroup_columns(cols)
    train, test = split_indices(path, y)
    return SiteData(
        name,
        frozen(x[train], y[train], {k: v[train] for k, v in groups.items()}),
        frozen(x[test], y[test], {k: v[test] for k, v in groups.items()}),
    )


def load_heart_disease(
    root: Path | str | None = None, hospitals: list[str] | tuple[str, ...] | None = None
) -> FederatedData:
    """The hospitals (default: cleveland, hungarian, switzerland, va), each with its own test
    set, in the order given; the pooled test set is the concatenation of theirs.

    The arrays are shared with the in-process cache (read-only); the site list is a fresh copy
    so that a caller dropping or adding sites cannot change what the next caller gets.
    """
    names = HOSPITALS if hospitals is None else tuple(hospitals)
    check_hospitals(names)
    fed = _load(resolve_root(root), names)
    return dataclasses.replace(fed, sites=list(fed.sites))


@functools.cache
def _load(root: Path, hospitals: tuple[str, ...] = HOSPITALS) -> FederatedData:
    folder = root / "heart_disease"
    sites = [load_hospital(folder / f"processed.{h}.data", h) for h in hospitals]
    pooled = ArrayData.concat([in_memory(s.test, "heart disease") for s in sites])
    pooled_test = frozen(pooled.x, pooled.y, pooled.groups)
    return FederatedData("heart_disease", sites, pooled_test, num_classes=2, task="binary")
