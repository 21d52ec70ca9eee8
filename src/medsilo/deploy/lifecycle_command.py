"""``medsilo provision add-site | revoke-site | check-expiry | renew``: a federation after day one.

Each command works on the folder ``medsilo provision`` wrote (``authority/``, ``coordinator/``,
``sites/``) and signs with the CA kept there, so nothing already shipped to the sites is
re-issued (docs/deployment.md, "Key and certificate lifecycle"). Bad input (a bad or taken
name, a missing CA key, a council that has not approved) exits 2 with the reason, before
anything is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from medsilo.config import ConfigError
from medsilo.deploy.add_site import add_site
from medsilo.deploy.expiry import (
    WARN_DAYS,
    expiring,
    folder_certificates,
    renew_server_certificate,
)
from medsilo.deploy.kits import COORDINATOR_DIR
from medsilo.deploy.revocation import REVOCATION_FILE, revoke_site

FederationDir = Annotated[
    Path, typer.Argument(help="the folder `medsilo provision` wrote (authority/, coordinator/)")
]


def _fail(error: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}")
    return typer.Exit(2)


def add_site_command(
    federation_dir: FederationDir,
    name: Annotated[str, typer.Option("--name", help="the new site's name")],
    decisions: Annotated[
        Path | None,
        typer.Option(help="with a council: its decisions folder (default coordinator/decisions)"),
    ] = None,
    ledger_key: Annotated[
        Path | None,
        typer.Option(help="with a council: the key the governance ledger is signed with"),
    ] = None,
) -> None:
    """Issue a new site's kit signed by the existing CA and add it to the coordinator kit;
    every other kit stays as it is. With a council, an approved admit_site proposal for the
    site is needed (and consumed)."""
    try:
        kit = add_site(federation_dir, name, decisions=decisions, ledger_key=ledger_key)
    except (ConfigError, OSError, ValueError) as error:
        raise _fail(error) from None
    coordinator = federation_dir / COORDINATOR_DIR
    Console().print(
        f"site [bold]{name}[/] added: kit {kit.path} ({', '.join(kit.files)}).\n"
        f"Ship {kit.path}/ to the site. At the coordinator, replace federation.json, "
        f"register-sites.sh, README.txt and add site-keys/{name}.pub and "
        f"site-keys/{name}.attest.pub from {coordinator}/; its next `medsilo coordinator "
        f"start` registers the new key. Experiments list the site in data.hospitals, in "
        "roster order (last). The other sites' kits are unchanged."
    )


def revoke_site_command(
    federation_dir: FederationDir,
    name: Annotated[str, typer.Option("--name", help="the site to revoke")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded with the revocation)")],
) -> None:
    """Put a site on the coordinator kit's revocation list (signed by the CA): its node key
    is no longer registered, and a node claiming it is refused at enrolment and ledgered."""
    try:
        revocation = revoke_site(federation_dir, name, reason)
    except (ConfigError, OSError, ValueError) as error:
        raise _fail(error) from None
    listed = federation_dir / COORDINATOR_DIR / REVOCATION_FILE
    Console().print(
        f"site [bold]{name}[/] revoked at {revocation.revoked_at}. Copy {listed} to the "
        "coordinator kit and restart the coordinator: it no longer registers the site's node "
        "key, so the SuperLink refuses it, and enrolment refuses any node claiming the site "
        "(an `enrolment` record `revoked` in each run's ledger)."
    )


def check_expiry_command(
    folder: Annotated[Path, typer.Argument(help="a kit, or the folder `medsilo provision` wrote")],
    days: Annotated[
        int, typer.Option("--days", min=0, help="warn for certificates ending within this many")
    ] = WARN_DAYS,
) -> None:
    """List every certificate under FOLDER with its end date; exit 1 when one expires within
    --days (or has expired), 0 otherwise."""
    try:
        lives = folder_certificates(folder)
    except (ConfigError, OSError) as error:
        raise _fail(error) from None
    now = datetime.now(UTC)
    console = Console(width=200)
    for life in lives:
        console.print(
            f"{life.path}: {life.what()}, valid until {life.not_after:%Y-%m-%d %H:%M} UTC "
            f"({life.days_left(now):.0f} days)"
        )
    soon = expiring(lives, days, now)
    for life in soon:
        Console(stderr=True, width=200).print(f"[yellow]{escape(life.warning(now))}[/]")
    if not lives:
        console.print(f"no certificates under {folder}")
    raise typer.Exit(1 if soon else 0)


def renew_command(
    federation_dir: FederationDir,
    days: Annotated[
        int, typer.Option("--days", help="lifetime of the new certificate (capped at the CA's)")
    ] = 365,
) -> None:
    """Reissue the coordinator's TLS key and certificate from the same CA for the same names;
    the sites keep trusting it and need nothing new."""
    try:
        certificate = renew_server_certificate(federation_dir, days)
    except (ConfigError, OSError) as error:
        raise _fail(error) from None
    Console().print(
        f"renewed {federation_dir / COORDINATOR_DIR}/server.crt (and server.key), valid until "
        f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; copy both to the coordinator "
        "kit and restart the coordinator. The sites need nothing new."
    )
