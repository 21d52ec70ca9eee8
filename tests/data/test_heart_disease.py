"""Fed-Heart-Disease must match FLamby row for row, so results compare with its benchmark."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from medsilo.data import HOSPITALS, load_central, load_heart_disease

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
KEPT = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13]  # FLamby drops columns 10, 11, 12 (slope, ca, thal)
# Train/test per centre, from FLamby's fed_heart_disease README.
FLAMBY_COUNTS = {
    "cleveland": (199, 104),
    "hungarian": (172, 89),
    "switzerland": (30, 16),
    "va": (85, 45),
}


def _flamby_reference(centre: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent re-derivation with FLamby's steps: complete rows, labels, train indices."""
    path = REPO_DATA / "heart_disease" / f"processed.{centre}.data"
    with path.open(newline="") as fh:
        rows = [[r[i] for i in KEPT] for r in csv.reader(fh) if r]
    complete = np.array([[float(v) for v in r] for r in rows if "?" not in r])
    labels = (complete[:, -1] > 0).astype(int)
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if len(counts) > 1 and all(c > 2 for c in counts) else None
    train, test = train_test_split(
        np.arange(len(labels)),
        test_size=1.0 - 0.66,
        train_size=0.66,
        random_state=43,
        shuffle=True,
        stratify=stratify,
    )
    return complete, np.sort(train), np.sort(test)


def test_rows_per_hospital() -> None:
    fed = load_heart_disease(REPO_DATA)
    assert fed.site_names == list(HOSPITALS) == ["cleveland", "hungarian", "switzerland", "va"]
    totals = [len(s.train) + len(s.test) for s in fed.sites]
    assert totals == [303, 261, 46, 130]
    assert sum(totals) == 740
    assert fed.task == "binary" and fed.num_classes == 2


def test_split_counts_match_flamby() -> None:
    fed = load_heart_disease(REPO_DATA)
    for site in fed.sites:
        _, train, test = _flamby_reference(site.name)
        assert (len(site.train), len(site.test)) == (len(train), len(test))
        assert (len(site.train), len(site.test)) == FLAMBY_COUNTS[site.name]


def test_rows_and_labels_match_flamby_indices() -> None:
    fed = load_heart_disease(REPO_DATA)
    numeric = [0, 1, 3, 4, 5, 7, 8, 9]  # age sex trestbps chol fbs thalach exang oldpeak
    for site in fed.sites:
        complete, train, test = _flamby_reference(site.name)
        for part, idx in ((site.train, train), (site.test, test)):
            np.testing.assert_array_equal(
                part.x[:, :8], complete[idx][:, numeric].astype(np.float32)
            )
            np.testing.assert_array_equal(part.y, (complete[idx, -1] > 0).astype(np.int64))


def test_one_hot_features() -> None:
    fed = load_heart_disease(REPO_DATA)
    x = fed.pooled_train().x
    assert fed.input_shape == (13,)
    cp, restecg = x[:, 8:11], x[:, 11:13]
    assert set(np.unique(cp)) <= {0.0, 1.0} and set(np.unique(restecg)) <= {0.0, 1.0}
    assert cp.sum(axis=1).max() == 1 and restecg.sum(axis=1).max() == 1
    # Row 1 of Cleveland: cp=1 (the dropped level), restecg=2 -> only restecg_2 set.
    first = fed.site("cleveland").train.x[0]
    expected = [63, 1, 145, 233, 1, 150, 0, 2.3, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(first, np.array(expected, dtype=np.float32))


def test_label_shift_between_hospitals() -> None:
    """The natural split is non-IID: Switzerland is almost all positive, Cleveland balanced."""
    fed = load_heart_disease(REPO_DATA)
    pos = {s.name: float(np.mean(np.concatenate([s.train.y, s.test.y]))) for s in fed.sites}
    assert pos["switzerland"] > 0.95 and 0.4 < pos["cleveland"] < 0.5
    # 1 negative among 46 rows: too few to stratify, so every training row is positive.
    assert fed.site("switzerland").train.y.tolist() == [1] * 30


def test_pooled_central_view() -> None:
    central = load_central("heart_disease", REPO_DATA)
    fed = load_heart_disease(REPO_DATA)
    assert len(central.train) == 486 and len(central.test) == 254
    np.testing.assert_array_equal(central.test.x, fed.test.x)
    np.testing.assert_array_equal(central.train.y, fed.pooled_train().y)
