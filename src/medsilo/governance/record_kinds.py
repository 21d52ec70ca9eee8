"""The ledger record kinds of quorum decisions, in a module that imports nothing.

:mod:`medsilo.ledger.verify` accepts these kinds and :mod:`medsilo.governance.decisions`
writes them; both read the names from here so the two never drift apart.
"""

from __future__ import annotations

PROPOSAL_KIND = "quorum_proposal"  # a proposal was filed (the whole proposal)
APPROVAL_KIND = "quorum_approval"  # a member's approval that counted towards a decision
DECISION_KIND = "quorum_decision"  # an approved proposal consumed by the action it allowed
QUORUM_KINDS = frozenset({PROPOSAL_KIND, APPROVAL_KIND, DECISION_KIND})
