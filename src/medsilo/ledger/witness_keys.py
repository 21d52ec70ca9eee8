"""The key each site countersigns with, pinned by the coordinator when the run starts.

A countersignature names its own public key, so on its own it proves only that *some* key
signed. The coordinator therefore pins, per run, the key each site must use, and accepts
(:mod:`medsilo.ledger.witness_feed`) and verification checks (``medsilo audit verify``,
:mod:`medsilo.ledger.witness_verify`) countersignatures under that key only:

* in the engine, each simulated site's witness key, made when the run starts
  (``RUN/witness/<site>.key``, :mod:`medsilo.ledger.engine_witnesses`);
* deployed, each admitted site's enrolled attestation key: the public key the coordinator
  kit holds for it (``site-keys/<site>.attest.pub``), whose fingerprint the site's
  ``enrolment`` ledger record names, so a pin that does not match it is found too.

The pins live beside the ledger in ``RUN/witness_keys.json``: ``format``, ``run`` (the run
id countersignatures name, :mod:`medsilo.ledger.witness`), ``source`` (where the keys came
from) and ``keys`` (site -> raw Ed25519 public key, hex). A resumed run keeps the pins it
finds and adds new sites; a site whose key changed is refused, as its earlier
countersignatures would no longer verify under the pin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medsilo.ledger.keys import fingerprint, raw_public
from medsilo.ledger.witness import Countersignature

WITNESS_KEYS_FILE = "witness_keys.json"
KEYS_FORMAT = "medsilo-witness-keys/1"


def key_fingerprint(public_hex: str) -> str:
    """SHA-256 fingerprint of a raw Ed25519 public key given in hex (as enrolment records it)."""
    return fingerprint(Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)))


@dataclass(frozen=True)
class WitnessKeys:
    """The pinned witness keys of one run (module docstring)."""

    run: str
    source: str
    keys: dict[str, str]  # site -> raw Ed25519 public key, hex

    @staticmethod
    def of(run: str, source: str, keys: Mapping[str, Ed25519PublicKey]) -> WitnessKeys:
        return WitnessKeys(run, source, {site: raw_public(k).hex() for site, k in keys.items()})

    def problem(self, signature: Countersignature) -> str | None:
        """Why ``signature`` is not a countersignature of its site in this run (``None``
        when it is: its site's pinned key, this run, and it verifies)."""
        pinned = self.keys.get(signature.site)
        if pinned is None:
            return f"no witness key is pinned for site {signature.site!r} in this run"
        if signature.public_key != pinned:
            return (
                f"it is signed with key {_short(signature.public_key)}, not the key pinned for "
                f"site {signature.site} ({key_fingerprint(pinned)[:16]}...)"
            )
        if signature.run != self.run:
            return f"it names run {signature.run!r}, not this run {self.run!r}"
        if not signature.valid():
            return "the countersignature does not verify under the site's pinned key"
        return None

    def write(self, run_dir: Path) -> WitnessKeys:
        """Pin these keys in ``run_dir`` beside the pins already there (a resumed run); the
        pins now in force are returned. ``ValueError`` when a site's key or the run differs
        from what the folder pinned (nothing is written then)."""
        path = run_dir / WITNESS_KEYS_FILE
        earlier = WitnessKeys.read(run_dir)
        keys = dict(self.keys)
        if earlier is not None:
            if earlier.run != self.run:
                raise ValueError(f"{path} pins the keys of run {earlier.run!r}, not {self.run!r}")
            for site, key in earlier.keys.items():
                if keys.setdefault(site, key) != key:
                    raise ValueError(
                        f"site {site}'s witness key differs from the one {path} pinned when the "
                        f"run started ({key_fingerprint(key)[:16]}...); its earlier "
                        "countersignatures would no longer verify"
                    )
        pinned = WitnessKeys(self.run, self.source, keys)
        data = {"format": KEYS_FORMAT, "run": self.run, "source": self.source, "keys": keys}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return pinned

    @staticmethod
    def read(run_dir: Path) -> WitnessKeys | None:
        """The pins in ``run_dir`` (``None`` when it has none); ``ValueError`` naming the
        file when it is not a pin file of this format."""
        path = run_dir / WITNESS_KEYS_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("format") != KEYS_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {KEYS_FORMAT!r}")
            keys = {str(site): str(key) for site, key in dict(data["keys"]).items()}
            for key in keys.values():
                key_fingerprint(key)  # a raw Ed25519 public key, or ValueError
            return WitnessKeys(str(data["run"]), str(data["source"]), keys)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path} is not a witness key pin file: {err}") from None


def _short(public_hex: str) -> str:
    try:
        return f"{key_fingerprint(public_hex)[:16]}..."
    except ValueError:
        return "(not an Ed25519 public key)"
