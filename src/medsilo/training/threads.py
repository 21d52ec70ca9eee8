"""torch's intra-op threads, pinned for a stretch of work and restored after it.

A run's ``threads`` (default 1) is what ``medsilo simulate`` and each deployed site train
with; a benchmark that runs the engine beside something else pins the same count for its
engine runs only, so the caller's setting is back afterwards even when a run fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside (None: left as it is) and
    restored on the way out."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
