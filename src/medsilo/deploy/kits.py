"""Write the provisioning output: the authority folder, the coordinator kit, one kit per site.

Layout under the output folder (``FederationSpec.output`` or ``--out``)::

    authority/   ca.crt, ca.key            kept by whoever provisions; never shipped
    coordinator/ ca.crt, server.crt, server.key, site-keys/<site>.pub,
                 site-keys/<site>.attest.pub, enrolment-policy.yaml, federation.json,
                 start-coordinator.sh, register-sites.sh, README.txt
    sites/<site>/ ca.crt, node.key, node.pub, attest.key, site.txt, coordinator.txt,
                 start-site.sh, README.txt

Flags are those of the installed Flower 1.42 (checked with ``flower-superlink --help`` and
``flower-supernode --help``). Since 1.41 the SuperLink no longer reads a list of authorised keys
(``--auth-list-public-keys`` is refused); with ``--enable-supernode-auth`` each SuperNode's
public key is registered through the Control API with ``flwr supernode register KEY``, which
``register-sites.sh`` does for every site. A site only dials out to the coordinator; its own
Runtime API stays on 127.0.0.1 (Flower's default).

Attestation-gated enrolment (:mod:`medsilo.attestation`) gets its own key per site, separate
from the SuperNode key: ``attest.key`` is Ed25519 (what the software backend signs evidence
with), PKCS#8 PEM, unencrypted, mode 0600; the coordinator holds its public half
``site-keys/<site>.attest.pub``, the resolved enrolment policy and the roster
``federation.json``. Names and loaders: :mod:`medsilo.deploy.kit_files`.

With a ``council`` in the spec, every kit also gets ``council.json`` (the voting members'
attestation public keys and the threshold, signed by the CA; :mod:`medsilo.governance.council`).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsilo.attestation.policy import EnrolmentPolicy
from medsilo.deploy import pki
from medsilo.deploy.kit_files import (
    ATTEST_KEY_FILE,
    POLICY_FILE,
    ROSTER_FILE,
    SITE_KEYS_DIR,
    SITE_NAME_FILE,
    Roster,
    attest_public_key_name,
)
from medsilo.deploy.spec import FederationSpec
from medsilo.deploy.superlink_state import DATABASE, FLOWER_DIR
from medsilo.governance.council import COUNCIL_FILE, Council, council_document
from medsilo.ledger.keys import public_pem, raw_public

AUTHORITY_DIR = "authority"
COORDINATOR_DIR = "coordinator"
SITES_DIR = "sites"
# The ClientApp learns which hospital it is from this node-config key
# (medsilo.runtime.flower.client_app.SITE_NAME).
NODE_CONFIG_SITE_KEY = "site"

AUTHORITY_FILES = ("ca.crt", "ca.key")
COORDINATOR_FILES = (
    "ca.crt",
    "server.crt",
    "server.key",
    POLICY_FILE,
    ROSTER_FILE,
    "start-coordinator.sh",
    "register-sites.sh",
    "README.txt",
)
SITE_FILES = (
    "ca.crt",
    "node.key",
    "node.pub",
    ATTEST_KEY_FILE,
    SITE_NAME_FILE,
    "coordinator.txt",
    "start-site.sh",
    "README.txt",
)
PRIVATE_FILES = frozenset({"ca.key", "server.key", "node.key", ATTEST_KEY_FILE})


class KitExistsError(FileExistsError):
    """A kit folder is already there and ``force`` was not given."""


@dataclass(frozen=True)
class Kit:
    role: str  # "authority", "coordinator" or "site"
    name: str
    path: Path
    files: tuple[str, ...]


def kit_folders(spec: FederationSpec, out: Path) -> list[Path]:
    return [
        out / AUTHORITY_DIR,
        out / COORDINATOR_DIR,
        *(out / SITES_DIR / site.name for site in spec.sites),
    ]


def _script(path: Path, lines: list[str]) -> None:
    header = [
        "#!/usr/bin/env bash",
        "# Written by `medsilo provision`; see README.txt next to this file.",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
    ]
    path.write_text("\n".join([*header, *lines]) + "\n")
    os.chmod(path, 0o755)


def _command(argv: list[str]) -> list[str]:
    """One shell command, one flag per line; "$HERE/..." stays expandable."""
    parts = [arg if arg.startswith('"$') else shlex.quote(arg) for arg in argv]
    first = next((i for i, part in enumerate(parts) if part.startswith("--")), len(parts))
    lines, i = [" ".join(parts[:first])], first
    while i < len(parts):
        if parts[i].startswith("--") and i + 1 < len(parts) and not parts[i + 1].startswith("--"):
            lines.append(f"  {parts[i]} {parts[i + 1]}")
            i += 2
        else:
            lines.append(f"  {parts[i]}")
            i += 1
    return [" \\\n".join(lines)]


#: ``start-coordinator.sh RUN_FOLDER``: the SuperLink's database goes where ``medsilo
#: coordinator start KIT --out RUN_FOLDER`` keeps it (:mod:`medsilo.deploy.superlink_state`),
#: so a SuperLink run by hand is durable too (registered keys, node ids and runs survive a
#: restart) and both ways of starting the coordinator agree on where its state lives.
COORDINATOR_RUN_LINES = [
    'RUN="${1:?usage: start-coordinator.sh RUN_FOLDER [flower-superlink options]}"',
    "shift",
    f'mkdir -p "$RUN/{FLOWER_DIR}"',
]


def coordinator_command(roster: Roster) -> list[str]:
    return [
        "exec",
        "flower-superlink",
        "--ssl-ca-certfile",
        '"$HERE/ca.crt"',
        "--ssl-certfile",
        '"$HERE/server.crt"',
        "--ssl-keyfile",
        '"$HERE/server.key"',
        "--enable-supernode-auth",
        "--host",
        roster.bind_host,
        "--port",
        str(roster.port),
        "--database",
        f'"$RUN/{FLOWER_DIR}/{DATABASE}"',
        '"$@"',
    ]


def site_command(roster: Roster, site: str) -> list[str]:
    return [
        "exec",
        "flower-supernode",
        "--superlink",
        coordinator_endpoint(roster),
        "--root-certificates",
        '"$HERE/ca.crt"',
        "--auth-supernode-private-key",
        '"$HERE/node.key"',
        "--node-config",
        f'{NODE_CONFIG_SITE_KEY}="{site}"',
        '"$@"',
    ]


def coordinator_endpoint(roster: Roster) -> str:
    host = roster.address
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    return f"{host}:{roster.port}"


def _policy_yaml(spec: FederationSpec, policy: EnrolmentPolicy) -> str:
    source = (
        "listed in FEDERATION.yaml"
        if spec.enrolment.allowed_measurements
        else "the medsilo package installed where `medsilo provision` ran"
    )
    header = [
        f"# Enrolment policy of federation {spec.federation}, written by `medsilo provision`.",
        "# Read with medsilo.attestation.policy.load_policy (docs/attestation.md).",
        f"# allowed_measurements: {source}.",
    ]
    if "software" in policy.allowed_backends:
        header.append("# 'software' is allowed: it has NO hardware root of trust (signed claim).")
    body = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False)
    return "\n".join(header) + "\n" + body


def roster_of(spec: FederationSpec) -> Roster:
    """What the coordinator kit records of the spec (``federation.json``)."""
    return Roster(
        federation=spec.federation,
        sites=tuple(site.name for site in spec.sites),
        address=spec.coordinator.address,
        port=spec.coordinator.port,
        bind_host=spec.coordinator.bind_host,
    )


def roster_json(roster: Roster) -> str:
    return roster.model_dump_json(indent=2) + "\n"


def _attest_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


#: The commands the kits' README.txt tell operators to run (``medsilo.deploy.run_commands``).
COORDINATOR_START = "medsilo coordinator start"
SITE_START = "medsilo site start"


def coordinator_readme(roster: Roster) -> str:
    sites = ", ".join(roster.sites)
    return f"""medsilo federation {roster.federation}: coordinator kit

Run on the coordinator machine (the Flower SuperLink). Sites dial {coordinator_endpoint(roster)}
over TLS; open that port to the sites only.

Run a federation (starts the SuperLink, registers every site's key, enrols the sites with
attestation and runs the rounds; docs/deployment.md):

  {COORDINATOR_START} KIT --config EXPERIMENT.yaml --out RUN_FOLDER

where KIT is this folder. The two scripts are the bare Flower steps the command performs,
for operators who run Flower by hand (extra arguments are passed to Flower):

  ./start-coordinator.sh RUN_FOLDER     flower-superlink with TLS and SuperNode auth, its
                                        database in RUN_FOLDER/{FLOWER_DIR}/{DATABASE} (where
                                        `{COORDINATOR_START} --out RUN_FOLDER` keeps it);
                                        large updates: use `{COORDINATOR_START}`, whose
                                        SuperLink keeps message payloads out of SQLite
  ./register-sites.sh CONNECTION        register every site's SuperNode key
                                        (site-keys/<site>.pub)
                                        via `flwr supernode register`; CONNECTION is the name
                                        of a SuperLink connection in your Flower CLI config
                                        pointing at this SuperLink with ca.crt as root cert

Files
  ca.crt           the federation's certificate authority (public)
  server.crt       this coordinator's TLS certificate, signed by the CA
  server.key       its private key (mode 0600; never copy it elsewhere)
  site-keys/<site>.pub         OpenSSH EC P-384 SuperNode public keys of the sites: {sites}
  site-keys/<site>.attest.pub  the sites' Ed25519 attestation public keys (PEM): enrolment
                               evidence must be signed with the matching attest.key
  enrolment-policy.yaml        the enrolment policy (allowed backends and measurements, maximum
                               evidence age, what to do with an exploitable TCB)
  federation.json              the roster: federation name, sites in order, address and port
"""


def _site_readme(roster: Roster, site: str) -> str:
    return f"""medsilo federation {roster.federation}: startup kit for site {site}

Run on the site's machine (the Flower SuperNode). It only makes outbound connections, to
the coordinator at {coordinator_endpoint(roster)} (see coordinator.txt); no inbound port needs
to be opened.

Take part in the federation (runs the SuperNode with this kit's keys, attests at enrolment,
trains on DATA only, restarts the SuperNode when the coordinator restarts):

  {SITE_START} KIT --data DATA

where KIT is this folder and DATA this site's own data (docs/site-data.md).
./start-site.sh is the bare flower-supernode command line (TLS and SuperNode authentication
only; extra arguments are passed to Flower). It does not tell medsilo's ClientApp where the
kit and the data are, so in a medsilo run that site stops at enrolment with an error naming
the command above; use the script to test the connection, or with your own Flower app.

Files
  ca.crt           certificate authority that signed the coordinator's TLS certificate
  node.key         this site's SuperNode authentication key (OpenSSH, EC P-384, mode 0600;
                   keep it on this machine only)
  node.pub         its public key; the coordinator registers it before the site can join
  attest.key       this site's Ed25519 attestation key (PEM, mode 0600; keep it on this
                   machine only); it signs the enrolment evidence the coordinator checks
  site.txt         this site's name ({site})
  coordinator.txt  the coordinator's address host:port
"""


@dataclass(frozen=True)
class SiteKeys:
    """The public halves of a new site's keys, for the coordinator kit."""

    node_public: bytes  # OpenSSH line, what `flwr supernode register` reads
    attest_public: Ed25519PublicKey


def write_site_kit(folder: Path, roster: Roster, site: str, ca_pem: bytes) -> SiteKeys:
    """Fill the (existing, empty) ``folder`` with site ``site``'s kit: fresh node and
    attestation keys, the CA, the coordinator's address and the start script."""
    node_key = pki.new_key()
    public = pki.node_public_openssh(node_key, f"{roster.federation}/{site}")
    pki.write_public(folder / "ca.crt", ca_pem)
    pki.write_private(folder / "node.key", pki.node_private_openssh(node_key))
    pki.write_public(folder / "node.pub", public)
    attest_key = Ed25519PrivateKey.generate()
    pki.write_private(folder / ATTEST_KEY_FILE, _attest_key_pem(attest_key))
    (folder / SITE_NAME_FILE).write_text(site + "\n")
    (folder / "coordinator.txt").write_text(coordinator_endpoint(roster) + "\n")
    _script(folder / "start-site.sh", _command(site_command(roster, site)))
    (folder / "README.txt").write_text(_site_readme(roster, site))
    return SiteKeys(public, attest_key.public_key())


def site_key_files(site: str) -> tuple[str, str]:
    """The coordinator kit's files for ``site``: SuperNode key, attestation key."""
    return f"{SITE_KEYS_DIR}/{site}.pub", attest_public_key_name(site)


def write_site_entries(coordinator: Path, site: str, keys: SiteKeys) -> None:
    """Put ``site``'s public keys into the coordinator kit."""
    node_name, attest_name = site_key_files(site)
    (coordinator / SITE_KEYS_DIR).mkdir(exist_ok=True)
    pki.write_public(coordinator / node_name, keys.node_public)
    pki.write_public(coordinator / attest_name, public_pem(keys.attest_public))


def write_roster_files(coordinator: Path, roster: Roster) -> None:
    """The coordinator kit's files that list the sites: roster, registration script, README."""
    pki.write_public(coordinator / ROSTER_FILE, roster_json(roster).encode())
    register_lines = [
        'CONNECTION="${1:?usage: register-sites.sh CONNECTION (a Flower CLI SuperLink connection)}"'
    ]
    for site in roster.sites:
        key_name = site_key_files(site)[0]
        register_lines += _command(
            [
                *("flwr", "supernode", "register", f'"$HERE/{key_name}"', '"$CONNECTION"'),
                *("--name", site),
            ]
        )
    _script(coordinator / "register-sites.sh", register_lines)
    (coordinator / "README.txt").write_text(coordinator_readme(roster))


def provision(spec: FederationSpec, out: Path, *, force: bool = False) -> list[Kit]:
    """Create every key, certificate and kit; refuse to touch existing kits unless ``force``."""
    policy = spec.enrolment.resolve()
    folders = kit_folders(spec, out)
    existing = [folder for folder in folders if folder.exists()]
    if existing and not force:
        listed = ", ".join(str(folder) for folder in existing)
        raise KitExistsError(f"kit folders already exist: {listed} (use --force to replace)")
    for folder in existing:
        shutil.rmtree(folder)
    for folder in folders:
        folder.mkdir(parents=True)

    days = spec.validity_days
    roster = roster_of(spec)
    ca = pki.make_ca(spec.federation, days)
    server = pki.make_server_certificate(ca, spec.coordinator.subject_alt_names(), days)
    ca_pem = pki.certificate_pem(ca.certificate)
    kits: list[Kit] = []

    authority = out / AUTHORITY_DIR
    pki.write_public(authority / "ca.crt", ca_pem)
    pki.write_private(authority / "ca.key", pki.tls_key_pem(ca.key))
    os.chmod(authority, 0o700)
    kits.append(Kit("authority", AUTHORITY_DIR, authority, AUTHORITY_FILES))

    coordinator = out / COORDINATOR_DIR
    pki.write_public(coordinator / "ca.crt", ca_pem)
    pki.write_public(coordinator / "server.crt", pki.certificate_pem(server.certificate))
    pki.write_private(coordinator / "server.key", pki.tls_key_pem(server.key))

    site_files: list[str] = []
    council_files = (COUNCIL_FILE,) if spec.council is not None else ()
    voters: dict[str, Ed25519PublicKey] = {}  # attestation keys double as council votes
    for site in roster.sites:
        folder = out / SITES_DIR / site
        keys = write_site_kit(folder, roster, site, ca_pem)
        write_site_entries(coordinator, site, keys)
        kits.append(Kit("site", site, folder, SITE_FILES + council_files))
        voters[site] = keys.attest_public
        site_files += site_key_files(site)

    if spec.council is not None:  # signed by the CA: the coordinator cannot change it alone
        council = Council(
            federation=spec.federation,
            threshold=spec.council.threshold,
            members={m: raw_public(voters[m]).hex() for m in spec.council.members},
        )
        document = council_document(council, ca.key).encode()
        for kit in [coordinator, *(k.path for k in kits if k.role == "site")]:
            pki.write_public(kit / COUNCIL_FILE, document)
    pki.write_public(coordinator / POLICY_FILE, _policy_yaml(spec, policy).encode())
    _script(
        coordinator / "start-coordinator.sh",
        COORDINATOR_RUN_LINES + _command(coordinator_command(roster)),
    )
    write_roster_files(coordinator, roster)
    kits.insert(
        1,
        Kit(
            "coordinator",
            COORDINATOR_DIR,
            coordinator,
            COORDINATOR_FILES + council_files + tuple(site_files),
        ),
    )
    return kits
