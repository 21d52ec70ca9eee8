"""A user's own dataset, named in the config by an import path (``dataset: "pkg.mod:build"``).

The factory takes no arguments and returns either

* a :class:`~medsilo.data.base.CentralData` (one dataset, train and test), which medsilo
  splits over sites with the config's ``partition`` exactly as it splits a bundled dataset;
  or
* a :class:`~medsilo.data.base.FederatedData` (the sites already as they are, e.g. one per
  hospital), used with ``partition: natural``.

Adding a dataset is therefore one file of the user's, and no edit of medsilo (docs/extending.md).
"""

from __future__ import annotations

from medsilo.data.base import CentralData, DataFormatError, FederatedData
from medsilo.imports import load_object


def load_user_dataset(path: str) -> CentralData | FederatedData:
    """Call the factory ``path`` names and check what it returns."""
    factory = load_object(path, "dataset")
    if not callable(factory):
        raise DataFormatError(f"dataset {path!r} is not callable (a function returning data)")
    data = factory()
    if not isinstance(data, CentralData | FederatedData):
        raise DataFormatError(
            f"dataset {path!r} returned {type(data).__name__}; it must return "
            "medsilo.data.base.CentralData (split by the config's partition) or FederatedData "
            "(its sites, with partition: natural)"
        )
    return data


def load_user_central(path: str) -> CentralData:
    data = load_user_dataset(path)
    if not isinstance(data, CentralData):
        raise DataFormatError(
            f"dataset {path!r} returned its sites (FederatedData); use partition: natural"
        )
    return data


def load_user_federation(path: str) -> FederatedData:
    data = load_user_dataset(path)
    if not isinstance(data, FederatedData):
        raise DataFormatError(
            f"dataset {path!r} returned one dataset (CentralData): choose how to split it with "
            "partition: iid, dirichlet, shards or quantity_skew (and num_sites)"
        )
    return data
