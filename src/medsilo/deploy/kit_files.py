"""Read what ``medsilo provision`` wrote for attestation-gated enrolment, with clear errors.

The runtime (``medsilo coordinator start KIT`` / ``medsilo site start KIT``) calls these
loaders instead of opening kit files itself, so a missing or damaged file is reported the same
way everywhere: the file's path, what is wrong, and "re-run ``medsilo provision``".

Coordinator kit (attestation part)::

    federation.json             the roster: {"federation", "sites" (FEDERATION.yaml order),
                                "address", "port"}; the site order is the federation's order
    enrolment-policy.yaml       the resolved EnrolmentPolicy (``load_policy`` reads it)
    site-keys/<site>.attest.pub each site's Ed25519 attestation public key (PEM)

Site kit (attestation part)::

    site.txt                    the site's name, one line
    attest.key                  its Ed25519 attestation private key (PKCS#8 PEM, mode 0600)

The file names are defined here and used by :mod:`medsilo.deploy.kits` when writing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medsilo.attestation.policy import EnrolmentPolicy, load_policy
from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.deploy.spec import SiteSpec

ROSTER_FILE = "federation.json"
POLICY_FILE = "enrolment-policy.yaml"
SITE_KEYS_DIR = "site-keys"
SITE_NAME_FILE = "site.txt"
ATTEST_KEY_FILE = "attest.key"
NODE_KEY_FILE = "node.key"
CA_FILE = "ca.crt"
COORDINATOR_ADDRESS_FILE = "coordinator.txt"

_RERUN = "re-run `medsilo provision` and ship the kit again"


class KitFileError(ConfigError):
    """A kit file is missing or malformed; the message names it and says how to fix it."""


def attest_public_key_name(site: str) -> str:
    """Path of a site's attestation public key inside the coordinator kit."""
    return f"{SITE_KEYS_DIR}/{site}.attest.pub"


class Roster(BaseModel):
    """Who takes part: the federation, its sites in FEDERATION.yaml order, the coordinator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    federation: str = Field(min_length=1)
    sites: tuple[str, ...] = Field(min_length=1)
    address: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    #: What ``flower-superlink --host`` binds (``coordinator.bind_host``).
    bind_host: str = "0.0.0.0"

    @field_validator("sites")
    @classmethod
    def _valid_sites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            SiteSpec(name=name)  # same alphabet as FEDERATION.yaml (a name becomes a path)
        if len(set(value)) != len(value):
            raise ValueError("site names must be unique")
        return value


@dataclass(frozen=True)
class SiteIdentity:
    """A site kit's identity and the paths the site runtime needs."""

    name: str
    kit: Path
    attest_key: Path
    node_key: Path
    ca_certificate: Path
    coordinator: str  # host:port from coordinator.txt ([v6]:port for an IPv6 literal)

    def attest_private_key(self) -> Ed25519PrivateKey:
        return load_attest_private_key(self.attest_key)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise KitFileError(f"kit file missing: {path}; {_RERUN}")
    return path


def _bad(path: Path, what: str) -> KitFileError:
    return KitFileError(f"kit file {path} is malformed: {what}; {_RERUN}")


def _read_text(path: Path) -> str:
    try:
        return _need(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise _bad(path, "not UTF-8 text") from err


def load_roster(coordinator_kit: Path) -> Roster:
    path = coordinator_kit / ROSTER_FILE
    text = _read_text(path)
    try:
        return Roster.model_validate(json.loads(text))
    except json.JSONDecodeError as err:
        raise _bad(path, f"not JSON ({err})") from err
    except ValidationError as err:
        raise _bad(path, "; ".join(problem_lines(err))) from err


def load_enrolment_policy(coordinator_kit: Path) -> EnrolmentPolicy:
    path = _need(coordinator_kit / POLICY_FILE)
    try:
        return load_policy(path)
    except (ValueError, yaml.YAMLError) as err:
        raise _bad(path, " ".join(str(err).split())) from err


def _load_public_key(path: Path) -> Ed25519PublicKey:
    data = _need(path).read_bytes()  # outside the try: KitFileError is a ValueError too
    try:
        loaded = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise _bad(path, "not a PEM public key") from err
    if not isinstance(loaded, Ed25519PublicKey):
        raise _bad(path, "not an Ed25519 public key")
    return loaded


def load_attestation_keys(coordinator_kit: Path) -> dict[str, Ed25519PublicKey]:
    """Every roster site's attestation public key, in roster order."""
    roster = load_roster(coordinator_kit)
    return {
        site: _load_public_key(coordinator_kit / attest_public_key_name(site))
        for site in roster.sites
    }


def load_attest_private_key(path: Path) -> Ed25519PrivateKey:
    """A site's ``attest.key``; refused when group/others can read it (as the ledger key)."""
    _need(path)
    if path.stat().st_mode & 0o077:
        raise KitFileError(f"kit file {path} is readable by others; run: chmod 600 {path}")
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise _bad(path, "not an unencrypted PEM private key") from err
    if not isinstance(loaded, Ed25519PrivateKey):
        raise _bad(path, "not an Ed25519 private key")
    return loaded


def _one_line(path: Path) -> str:
    lines = _read_text(path).splitlines()
    if len(lines) != 1 or not lines[0].strip():
        raise _bad(path, "expected exactly one non-empty line")
    return lines[0].strip()


def _check_endpoint(path: Path, endpoint: str) -> str:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _bad(path, f"{endpoint!r} is not host:port")
    return endpoint


def load_site_identity(site_kit: Path) -> SiteIdentity:
    """The site kit's name, key paths and coordinator address; every file must be there."""
    name_path = site_kit / SITE_NAME_FILE
    name = _one_line(name_path)
    try:
        SiteSpec(name=name)
    except ValidationError as err:
        raise _bad(name_path, f"{name!r} is not a valid site name") from err
    address_path = site_kit / COORDINATOR_ADDRESS_FILE
    coordinator = _check_endpoint(address_path, _one_line(address_path))
    attest_key = site_kit / ATTEST_KEY_FILE
    load_attest_private_key(attest_key)  # fail now, not at the first challenge
    return SiteIdentity(
        name=name,
        kit=site_kit,
        attest_key=attest_key,
        node_key=_need(site_kit / NODE_KEY_FILE),
        ca_certificate=_need(site_kit / CA_FILE),
        coordinator=coordinator,
    )
