"""The one error every verifier and policy check raises: a refusal with a readable reason."""

from __future__ import annotations


class AttestationError(Exception):
    """Evidence was not accepted; ``reason`` says why (it is stored in the audit ledger)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
