"""Coordinator challenges: one fresh random nonce per site, usable once (replay protection).

``issue(site)`` draws 32 random bytes (hex); ``take(site)`` returns the outstanding nonce and
forgets it, so evidence replayed after a successful (or failed) check meets either no
outstanding nonce or a newer one, and is refused.
"""

from __future__ import annotations

import secrets

from medsilo.attestation.errors import AttestationError


class NonceBook:
    def __init__(self) -> None:
        self._outstanding: dict[str, str] = {}

    def issue(self, site: str) -> str:
        nonce = secrets.token_hex(32)
        self._outstanding[site] = nonce
        return nonce

    def expect(self, site: str, nonce: str) -> None:
        """Register a nonce issued elsewhere (e.g. given on the command line)."""
        self._outstanding[site] = nonce

    def take(self, site: str) -> str:
        nonce = self._outstanding.pop(site, None)
        if nonce is None:
            raise AttestationError(
                f"no outstanding challenge for site {site!r}: replayed or unsolicited evidence"
            )
        return nonce
