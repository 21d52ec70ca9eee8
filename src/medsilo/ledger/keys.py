"""The coordinator's Ed25519 signing key: created on first use, private file mode 0600.

The private key (PKCS#8 PEM, unencrypted) stays with the coordinator; the public key
(SubjectPublicKeyInfo PEM) is written next to every ledger (``ledger.pub``) so a site holding
a copy can verify it with nothing else. A copied ``ledger.pub`` proves nothing about *who*
signed: a site should compare :func:`fingerprint` with the one it learnt out of band
(e.g. at enrolment), docs/audit-ledger.md.

Where the private key lives: ``$MEDSILO_COORDINATOR_KEY`` if set, else
``$XDG_CONFIG_HOME/medsilo/coordinator_ed25519.pem`` (``~/.config`` when unset).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsilo.ledger.user_config import user_config_file

KEY_ENV = "MEDSILO_COORDINATOR_KEY"


def default_key_path() -> Path:
    return user_config_file(KEY_ENV, "coordinator_ed25519.pem")


def load_or_create_private_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The key at ``path`` (default :func:`default_key_path`), generated there if missing.

    A new file is created with ``O_EXCL`` and mode 0600, so a concurrent creator cannot be
    overwritten and no other user can read it; an existing file readable by group or others
    is refused."""
    path = path or default_key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created meanwhile by another process: use that one
            return load_or_create_private_key(path)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        return key
    if path.stat().st_mode & 0o077:
        raise PermissionError(
            f"coordinator key {path} is readable by others; run: chmod 600 {path}"
        )
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return loaded


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the 32 raw public-key bytes, hex: what a site compares out of band."""
    return hashlib.sha256(raw_public(key)).hexdigest()


def write_public_key(key: Ed25519PublicKey, path: Path) -> None:
    path.write_bytes(public_pem(key))


def load_public_key(path: Path) -> Ed25519PublicKey:
    loaded = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return loaded
