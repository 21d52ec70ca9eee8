"""How many sites a round samples: one definition for the engines, the Flower apps and the
privacy accounting (whose sampling rate is ``cohort / num_sites``)."""

from __future__ import annotations


def cohort_size(num_sites: int, fraction: float, min_sites: int) -> int:
    """How many sites :func:`medsilo.runtime.federation.sample_sites` picks each round."""
    return min(num_sites, max(min_sites, round(fraction * num_sites)))
