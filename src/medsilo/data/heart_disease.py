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
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from medsilo.data._util import frozen
from medsilo.data.base import ArrayData, DataFormatError, FederatedData, SiteData
from medsilo.data.paths import require_file, resolve_root

HOSPITALS: tuple[str, ...] = ("cleveland", "hungarian", "switzerland", "va")
COLUMNS: tuple[str, ...] = (
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
    "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num",
)  # fmt: skip
DROPPED = ("slope", "ca", "thal")  # mostly missing outside Cleveland
CATEGORICAL = ("cp", "restecg")  # one-hot encoded; the rest stay numeric, in file order
# Documented code sets (heart-disease.names): a value outside them is a corrupt file, and
# accepting it would silently change the number of one-hot features.
CODES: dict[str, frozenset[int]] = {
    "cp": frozenset({1, 2, 3, 4}),
    "restecg": frozenset({0, 1, 2}),
}
# One-hot levels per categorical column. FLamby takes them from the four hospitals pooled; on
# the UCI files (complete rows) that union is exactly the documented code set, so using the
# codes gives the same columns while letting each hospital encode its own file alone (a
# deployed site, or a federation of a subset of the hospitals) with the federation's layout.
CATEGORIES: dict[str, list[int]] = {c: sorted(CODES[c]) for c in CATEGORICAL}
TRAIN_FRACTION = 0.66
SPLIT_SEED = 43

_KEPT = [c for c in COLUMNS if c not in DROPPED]  # incl. "num"
_NUMERIC = [c for c in _KEPT if c not in CATEGORICAL and c != "num"]


def _parse_value(path: Path, row: int, col: str, raw: str) -> float:
    text = raw.strip()
    if text == "?":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
        ok = False
    else:
        ok = math.isfinite(value)
    if not ok:
        raise DataFormatError(
            f"{path}: row {row}, column {col!r}: expected a number or '?' (missing), got {raw!r}"
        )
    if col in CODES and value not in CODES[col]:
        raise DataFormatError(
            f"{path}: row {row}, column {col!r}: {raw!r} is not one of the documented codes "
            f"{sorted(CODES[col])}"
        )
    if col == "num" and (value < 0 or value != int(value)):
        raise DataFormatError(
            f"{path}: row {row}, column 'num': the diagnosis must be an integer 0-4, got {raw!r}"
        )
    return value


def read_centre(path: Path) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64]]:
    """The kept columns of one hospital file (complete rows only) and the binary label.

    Missing values in the dropped columns do not remove a row, as in FLamby, which drops the
    columns before ``dropna``.
    """
    require_file(path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not an ASCII CSV file ({err})") from err
    rows: list[list[float]] = []
    for row_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # pandas skips blank lines too
        fields = line.split(",")
        if len(fields) != len(COLUMNS):
            raise DataFormatError(
                f"{path}: row {row_no}: expected {len(COLUMNS)} comma-separated columns "
                f"({', '.join(COLUMNS)}), got {len(fields)}"
            )
        values = dict(zip(COLUMNS, fields, strict=True))
        parsed = [_parse_value(path, row_no, c, values[c]) for c in _KEPT]
        if not any(math.isnan(v) for v in parsed):
            rows.append(parsed)
    if not rows:
        raise DataFormatError(f"{path}: no complete rows (after dropping {', '.join(DROPPED)})")
    table = np.array(rows, dtype=np.float64)
    columns = {c: table[:, i] for i, c in enumerate(_KEPT)}
    labels = (columns.pop("num") > 0).astype(np.int64)
    return columns, labels


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
    train, test = split_indices(path, y)
    return SiteData(name, frozen(x[train], y[train]), frozen(x[test], y[test]))


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
    pooled = ArrayData.concat([s.test for s in sites])
    pooled_test = frozen(pooled.x, pooled.y)
    return FederatedData("heart_disease", sites, pooled_test, num_classes=2, task="binary")
