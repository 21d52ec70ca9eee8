"""Reward shares of one run from its contribution scores (docs/contribution.md).

    share_i = max(phi_i, 0) / sum_j max(phi_j, 0),   share_i = 0 for a flagged free rider

``phi`` is the GTG-Shapley value when the run has one, else the leave-one-out score. Why this
form, and what it guarantees:

* **sums to 1** whenever some unflagged site has a positive score (otherwise nobody made the
  model better and every share is 0: nothing is paid out);
* **symmetric**: equal scores get equal shares (the formula only sees the score);
* **null player gets 0**: a site whose update never changes the utility has Shapley value
  0, hence share 0; a site that made the model worse gets 0 too (the negative part is
  dropped, so harming the model is never paid);
* **free riding does not pay**: a site flagged by :mod:`medsilo.contribution.free_riders`
  gets 0 whatever its score (a copy of an honest update would otherwise split the honest
  site's Shapley value with it);
* **duplicated data does not double**: with Shapley values a second site holding the same
  data adds nothing to a coalition that already has the first, so the two identities split
  most of the value instead of each earning it. In the diminishing-returns game of the
  tests, a site with share 0.457 gets 0.263 + 0.263 = 0.526 as two identities (x1.15, not
  x2) and 3 x 0.188 = 0.565 as three; identical *updates* are flagged as ``copy`` and get 0.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def reward_shares(scores: dict[str, float], flagged: Collection[str] = ()) -> dict[str, float]:
    """``{site: share}``: the normalised positive part of ``scores``, 0 for ``flagged``."""
    positive = {s: (max(v, 0.0) if s not in flagged else 0.0) for s, v in scores.items()}
    total = sum(positive.values())
    if total <= 0:
        return dict.fromkeys(scores, 0.0)
    return {s: p / total for s, p in positive.items()}


def shares_entry(scores: dict[str, Any], flagged: Collection[str]) -> dict[str, Any]:
    """The ``shares`` entry of ``contribution.json`` from its ``shapley`` or ``loo`` scores."""
    if "shapley" in scores:
        source = "shapley"
        values = {s: float(v) for s, v in scores["shapley"]["values"].items()}
    else:
        source = "loo"
        values = {s: float(v["score"]) for s, v in scores["loo"].items()}
    return {
        "from": source,
        "zeroed_free_riders": sorted(set(flagged) & set(values)),
        "values": reward_shares(values, flagged),
    }
