"""Add a site to a provisioned federation without re-issuing anyone else's keys.

``medsilo provision add-site OUT --name X`` reads the CA that ``medsilo provision`` left in
``OUT/authority/`` and writes ``OUT/sites/X/`` (fresh node and attestation keys, the same
``ca.crt``, the coordinator's address, the council copy if any), X's public keys into
``OUT/coordinator/site-keys/`` and X at the end of the coordinator's roster
(``federation.json``, ``register-sites.sh``, ``README.txt``). No other file changes: the
kits already shipped to the other sites stay byte-identical and need not be sent again; only
the coordinator kit's roster files and X's two public keys are new at the coordinator, which
registers X's node key at its next start.

With a council (``council.json`` in the coordinator kit) the coordinator cannot grow the
federation alone: an ``admit_site`` proposal naming X must carry the council's quorum in the
coordinator's decisions folder (``medsilo governance propose --admit-site X``, then the
members' approvals). It is checked before anything is written and consumed (a
``quorum_decision`` record in the governance ledger) once the kit is complete, so the
replay of the membership decisions (:mod:`medsilo.governance.membership`) shows when and by
whom X was admitted. The council itself is unchanged: X does not vote.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import ValidationError

from medsilo.config import ConfigError
from medsilo.config_errors import problem_lines
from medsilo.deploy import pki
from medsilo.deploy.authority import coordinator_roster, load_matching_authority
from medsilo.deploy.kits import (
    COORDINATOR_DIR,
    SITE_FILES,
    SITES_DIR,
    Kit,
    write_roster_files,
    write_site_entries,
    write_site_kit,
)
from medsilo.deploy.spec import SiteSpec
from medsilo.governance.council import COUNCIL_FILE, load_council
from medsilo.governance.decisions import PUBLIC_KEY_FILE, DecisionBook
from medsilo.governance.quorum import Tally
from medsilo.governance.run_gate import KIT_DECISIONS_DIR
from medsilo.ledger.keys import default_key_path, load_or_create_private_key, public_pem


def check_new_site_name(name: str, existing: tuple[str, ...]) -> None:
    """``name`` must be a valid site name, not ``coordinator`` and not taken."""
    try:
        SiteSpec(name=name)
    except ValidationError as err:
        raise ConfigError("; ".join(problem_lines(err))) from None
    if name == COORDINATOR_DIR:
        raise ConfigError("'coordinator' is reserved for the coordinator kit")
    if name in existing:
        raise ConfigError(
            f"site {name!r} is already in the federation ({', '.join(existing)}); a site "
            "keeps its kit: revoke it (`medsilo provision revoke-site`) to shut it out"
        )


def _council_approval(
    coordinator: Path, name: str, decisions: Path, ledger_key: Path | None
) -> tuple[DecisionBook, Tally] | None:
    """The council's approved ``admit_site`` of ``name`` (not yet consumed), or ``None``
    without a council; ``QuorumRefused`` naming the missing approvals when there is none."""
    if not (coordinator / COUNCIL_FILE).exists():
        return None
    council = load_council(coordinator / COUNCIL_FILE, coordinator / "ca.crt")
    book = DecisionBook(decisions, council, ledger_key)
    approved = book.approved("admit_site", name)
    key_path = ledger_key or default_key_path()
    published = decisions / PUBLIC_KEY_FILE
    if published.is_file() and (
        not key_path.is_file()  # never create a key just to find it is the wrong one
        or public_pem(load_or_create_private_key(key_path).public_key()) != published.read_bytes()
    ):
        raise ConfigError(
            f"the governance ledger in {decisions} is not signed with {key_path}; give "
            "--ledger-key the key the coordinator signs it with"
        )
    return book, approved


def add_site(
    federation_dir: Path,
    name: str,
    *,
    decisions: Path | None = None,
    ledger_key: Path | None = None,
) -> Kit:
    """Issue site ``name``'s kit under ``federation_dir`` (the folder ``medsilo provision``
    wrote) and add it to the coordinator kit; every check runs before anything is written.

    ``decisions`` is the coordinator's decisions folder (default ``coordinator/decisions``)
    and ``ledger_key`` the key its governance ledger is signed with (default the ledger's
    default key), used only when the federation has a council."""
    roster = coordinator_roster(federation_dir)
    check_new_site_name(name, roster.sites)
    folder = federation_dir / SITES_DIR / name
    if folder.exists():
        raise ConfigError(f"{folder} already exists; remove it or choose another name")
    ca = load_matching_authority(federation_dir)
    coordinator = federation_dir / COORDINATOR_DIR
    approval = _council_approval(
        coordinator, name, decisions or coordinator / KIT_DECISIONS_DIR, ledger_key
    )

    # Written beside its final place and moved in once complete (and, with a council, once
    # the decision is recorded), so a failure leaves no half kit under sites/.
    staging = folder.with_name(f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        grown = roster.model_copy(update={"sites": (*roster.sites, name)})
        keys = write_site_kit(staging, grown, name, pki.certificate_pem(ca.certificate))
        files: tuple[str, ...] = SITE_FILES
        if (coordinator / COUNCIL_FILE).exists():
            shutil.copyfile(coordinator / COUNCIL_FILE, staging / COUNCIL_FILE)
            os.chmod(staging / COUNCIL_FILE, 0o644)
            files += (COUNCIL_FILE,)
        if approval is not None:
            book, tally = approval
            book.record(tally)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(folder)
    write_site_entries(coordinator, name, keys)
    write_roster_files(coordinator, grown)
    return Kit("site", name, folder, files)
