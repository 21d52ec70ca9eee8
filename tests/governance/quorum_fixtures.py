"""A federation provisioned with a council (sites a, b, c; any 2 of them decide)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medsilo.deploy.kit_files import load_attest_private_key
from medsilo.deploy.kits import COORDINATOR_DIR, SITES_DIR, provision
from medsilo.deploy.spec import parse_federation
from medsilo.governance.council import COUNCIL_FILE, Council, load_council

MEMBERS = ("a", "b", "c")
RAW = {
    "federation": "quorumfed",
    "coordinator": {"address": "127.0.0.1", "port": 8443},
    "sites": [{"name": name} for name in MEMBERS],
    "enrolment": {"allowed_backends": ["software"], "allowed_measurements": ["0" * 64]},
    "council": {"members": list(MEMBERS), "threshold": 2},
    "validity_days": 30,
}


def provision_council(out: Path) -> Path:
    """Provision the kits into ``out``; return the folder holding them."""
    provision(parse_federation(RAW), out)
    return out


def coordinator_kit(out: Path) -> Path:
    return out / COORDINATOR_DIR


def site_kit(out: Path, member: str) -> Path:
    return out / SITES_DIR / member


def council_of(out: Path) -> Council:
    kit = coordinator_kit(out)
    return load_council(kit / COUNCIL_FILE, kit / "ca.crt")


def member_key(out: Path, member: str) -> Ed25519PrivateKey:
    return load_attest_private_key(site_kit(out, member) / "attest.key")
