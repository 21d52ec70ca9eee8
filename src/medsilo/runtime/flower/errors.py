"""The error a Flower run raises when it cannot complete (shared by the synchronous and the
asynchronous coordinators, so neither imports the other)."""

from __future__ import annotations


class FlowerRunError(RuntimeError):
    """A Flower run could not complete: a site failed, did not answer, or never connected."""
