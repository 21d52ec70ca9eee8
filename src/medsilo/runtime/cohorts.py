"""How many sites a round samples: one definition for the engines, the Flower apps and the
privacy accounting (whose sampling rate is ``cohort / num_sites``)."""

from __future__ import annotations


def cohort_size(num_sites: int, fraction: float, min_sites: int) -> int:
    """How many sites :func:`medsilo.runtime.federation.sample_sites` picks each round."""
    return min(num_sites, max(min_sites, round(fraction * num_sites)))


def refuse_cohort_evaluation(evaluated_sites: str, runtime: str) -> None:
    """Refuse ``evaluation.sites: cohort`` in ``runtime``: only the in-process engine scores
    just the round's cohort (docs/scale.md); a Flower coordinator asks every site."""
    if evaluated_sites == "cohort":
        raise ValueError(
            f"evaluation.sites 'cohort' runs in the in-process engine only, not in {runtime}; "
            "use evaluation.sites 'all'"
        )
