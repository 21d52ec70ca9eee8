"""JSON documents the federation's CA signs: the council (``council.json``) and the
revocation list (``revoked.json``).

Both are ``{"format": ..., <body>: {...}, "authority_signature": hex}`` with an ECDSA
P-384/SHA-384 signature by ``authority/ca.key`` over a tag and the canonical JSON of the
body, so whoever holds only the coordinator kit (and its ``ca.crt``) can tell an edited copy
from the one the provisioner wrote. This module reads the envelope and checks signatures;
each document's own module says what the body holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from medsilo.config import ConfigError

SIGNATURE_FIELD = "authority_signature"


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    """ECDSA P-384/SHA-384 signature of ``message`` by the CA, hex."""
    return key.sign(message, ec.ECDSA(hashes.SHA384())).hex()


def signed_by(certificate: x509.Certificate, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (hex) is the CA ``certificate``'s key's over ``message``."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(bytes.fromhex(signature), message, ec.ECDSA(hashes.SHA384()))
    except (InvalidSignature, ValueError):
        return False
    return True


def read_envelope(
    path: Path, fmt: str, body: str, what: str, error: type[ConfigError]
) -> tuple[object, object]:
    """The ``body`` part of the document at ``path`` and its signature (both unchecked);
    ``error`` naming ``path`` when it is not JSON or not of format ``fmt``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{path} is not a JSON {what}: {err}") from None
    if not isinstance(document, dict) or document.get("format") != fmt:
        raise error(f"{path} is not a {what} (format {fmt!r} expected)")
    return document.get(body), document.get(SIGNATURE_FIELD)
