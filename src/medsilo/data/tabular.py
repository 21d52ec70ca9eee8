"""scikit-learn's bundled Wisconsin breast-cancer set: a tiny tabular task that needs no files."""

from __future__ import annotations

import functools

import numpy as np

from medsilo.data._util import frozen
from medsilo.data.base import CentralData

TEST_FRACTION = 0.25
SPLIT_SEED = 0


@functools.cache
def load_breast_cancer_data() -> CentralData:
    """569 x 30 features, 0 = malignant, 1 = benign; 75/25 stratified split (seed 0).

    Standardised with train-split statistics only, so nothing about the test rows leaks in.
    """
    from sklearn.datasets import load_breast_cancer  # lazy: sklearn costs ~0.5 s to import
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)  # reads a CSV inside the wheel; no download
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=SPLIT_SEED
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return CentralData(
        "breast_cancer",
        frozen((x_train - mean) / std, np.asarray(y_train)),
        frozen((x_test - mean) / std, np.asarray(y_test)),
        num_classes=2,
        task="binary",
    )
