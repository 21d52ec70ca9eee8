"""Which coordinator key the user trusts for which ledger: pinned once, checked ever after.

``ledger.pub`` sits beside the ledger, so whoever can rewrite the ledger can replace the key
too: a chain re-signed under a new key, with the new ``ledger.pub`` next to it, verifies
perfectly against that file. Verification is only as good as the key it starts from, so the
key's fingerprint is pinned per ledger the first time the user trusts it:

* at provisioning: the coordinator that creates a run's ledger pins its own key for it
  (:class:`~medsilo.ledger.run_ledger.RunLedger`);
* at the first successful ``medsilo audit verify`` of a ledger (trust on first use), with
  a loud warning when the key came from ``ledger.pub`` beside it rather than from
  ``--public-key``.

Later verifications compare the key they are given with the pin; a different key is a
failure, whoever supplied it, until the user re-pins on purpose (``--repin``). A ledger is
identified by its resolved path: a copy elsewhere is a new ledger to the store (first use
again), while a ledger replaced in place is caught.

The store is one JSON file: ``$MEDSILO_TRUST_STORE`` if set (tests point it at a temp
file), else ``$XDG_CONFIG_HOME/medsilo/trusted_ledger_keys.json`` (``~/.config`` when unset).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from medsilo.ledger.user_config import user_config_file

TRUST_ENV = "MEDSILO_TRUST_STORE"


def default_trust_path() -> Path:
    return user_config_file(TRUST_ENV, "trusted_ledger_keys.json")


@dataclass(frozen=True)
class Pin:
    """The trusted key of one ledger: its fingerprint, when and how it was first trusted."""

    public_key_sha256: str
    pinned_at: str
    source: str


@dataclass(frozen=True)
class TrustCheck:
    """What the pin says about the key a verification used."""

    ok: bool
    message: str
    loud: bool = False  # print as a warning: the trust rests on an unauthenticated file


class TrustStore:
    """The user's pins, one JSON object ``{ledger path: Pin}``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_trust_path()

    def pin_for(self, ledger: Path) -> Pin | None:
        entry = self._load().get(_identity(ledger))
        return Pin(**entry) if entry is not None else None

    def pin(self, ledger: Path, public_key_sha256: str, source: str) -> Pin:
        pins = self._load()
        pin = Pin(public_key_sha256, datetime.now(UTC).isoformat(timespec="seconds"), source)
        pins[_identity(ledger)] = asdict(pin)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, delete=False, encoding="utf-8", suffix=".tmp"
        ) as tmp:
            json.dump(pins, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, self.path)
        return pin

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            loaded = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as err:
            raise ValueError(f"trust store {self.path} is not valid JSON: {err}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"trust store {self.path} is not a JSON object")
        return loaded


def _identity(ledger: Path) -> str:
    return str(ledger.resolve())


def check_and_pin(
    store: TrustStore, ledger: Path, fingerprint: str, key_source: str, *, beside: bool,
    chain_ok: bool, repin: bool = False,
) -> TrustCheck:  # fmt: skip
    """Compare ``fingerprint`` with the ledger's pin; pin it on first use of an intact chain.

    ``beside``: the key was read from the ``ledger.pub`` next to the ledger (anyone who can
    rewrite the ledger can rewrite that file too), not given by the user."""
    pin = store.pin_for(ledger)
    if pin is not None and pin.public_key_sha256 == fingerprint:
        return TrustCheck(True, f"key matches the one pinned {pin.pinned_at} ({pin.source})")
    if pin is not None and not repin:
        return TrustCheck(
            False,
            f"the key {fingerprint[:16]}... ({key_source}) is NOT the key pinned for this "
            f"ledger, {pin.public_key_sha256[:16]}... ({pin.source}, {pin.pinned_at}): the "
            "chain may have been re-signed under a new key. If the coordinator really "
            "changed its key, confirm the new fingerprint out of band and run again with "
            f"--repin (trust store {store.path})",
        )
    if not chain_ok:
        return TrustCheck(True, "nothing pinned: the chain does not verify")
    how = "re-pinned" if pin is not None else "pinned (first use)"
    store.pin(ledger, fingerprint, f"{how} from {key_source}")
    if beside:
        return TrustCheck(
            True,
            f"{how}: trusting {key_source} that sits beside the ledger; anyone who can "
            "rewrite the ledger can replace that file, so compare the fingerprint "
            f"{fingerprint} with the coordinator's out of band (or verify with "
            f"--public-key). Later verifications must use this key (trust store {store.path})",
            loud=True,
        )
    return TrustCheck(True, f"{how}: the key from {key_source} (trust store {store.path})")
