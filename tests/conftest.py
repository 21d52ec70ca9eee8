"""Shared fixtures: small synthetic federations that train in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from medsilo.config import RunConfig, parse_config
from medsilo.data.base import ArrayData, FederatedData, SiteData


def synthetic_federation(
    num_sites: int = 3,
    n: int = 120,
    d: int = 5,
    seed: int = 0,
    classes: int = 2,
    concept_shift: float = 0.0,
) -> FederatedData:
    """Linearly separable-ish data with a per-site feature shift (non-IID).

    ``concept_shift`` > 0 also gives each site its own labelling rule, so that one global
    model cannot fit every site (what personalisation is for).
    """
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=(d, classes))
    sites = []
    for i in range(num_sites):
        shift = rng.normal(scale=1.0, size=d) * (i + 1) / num_sites
        x = (rng.normal(size=(n, d)) + shift).astype(np.float32)
        w_site = w_true + concept_shift * rng.normal(size=w_true.shape)
        logits = x @ w_site + rng.normal(scale=0.3, size=(n, classes))
        y = logits.argmax(axis=1).astype(np.int64)
        cut = int(0.75 * n)
        sites.append(SiteData(f"h{i}", ArrayData(x[:cut], y[:cut]), ArrayData(x[cut:], y[cut:])))
    test = ArrayData.concat([s.test for s in sites])
    return FederatedData(
        "synthetic", sites, test, classes, "binary" if classes == 2 else "multiclass"
    )


def small_config(**overrides: object) -> RunConfig:
    raw: dict[str, object] = {
        "name": "t",
        "seed": 0,
        "data": {"dataset": "heart_disease", "partition": "natural"},
        "model": {"name": "logistic"},
        "algorithm": {"name": "fedavg"},
        "training": {"rounds": 3, "local_steps": 10, "batch_size": 8, "lr": 0.1},
        # enough resamples to exercise the intervals; runs for people use the default 200
        "evaluation": {"bootstrap_replicates": 20},
    }
    raw.update(overrides)
    return parse_config(raw)


@pytest.fixture(autouse=True, scope="session")
def _trust_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Ledger key pins (docs/audit-ledger.md) go to a temp file, never ~/.config; session
    scoped so that module-scoped runs are pinned there too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSILO_TRUST_STORE", str(tmp_path_factory.getbasetemp() / "trust.json"))
        yield


@pytest.fixture(autouse=True)
def _coordinator_key(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs sign their audit ledger (docs/audit-ledger.md) with a test key, never ~/.config."""
    key = tmp_path_factory.getbasetemp() / "coordinator_ed25519.pem"
    monkeypatch.setenv("MEDSILO_COORDINATOR_KEY", str(key))


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine run far faster single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fed() -> FederatedData:
    return synthetic_federation()
