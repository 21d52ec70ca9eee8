"""``medsilo provision FEDERATION.yaml``: make the CA, certificates, node keys and kits.

``medsilo provision`` is a command group: its subcommands (``add-site``, ``revoke-site``,
``check-expiry``, ``renew``; :mod:`medsilo.deploy.lifecycle_command`) change a provisioned
federation, and arguments that do not start with a subcommand's name go to ``create``, so
``medsilo provision FEDERATION.yaml`` means ``medsilo provision create FEDERATION.yaml``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from medsilo.config import ConfigError
from medsilo.deploy.kit_files import load_enrolment_policy
from medsilo.deploy.kits import COORDINATOR_DIR, KitExistsError, provision
from medsilo.deploy.lifecycle_command import (
    add_site_command,
    check_expiry_command,
    renew_command,
    revoke_site_command,
)
from medsilo.deploy.spec import load_federation

CREATE = "create"


class ProvisionGroup(TyperGroup):
    """Sends ``provision ARGS`` to ``provision create ARGS`` unless ARGS name a subcommand."""

    #: The subcommand that ARGS naming none go to (read by the docs' command-line test too).
    default_command = CREATE

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


provision_app = typer.Typer(
    cls=ProvisionGroup,
    no_args_is_help=True,
    help="Provision a federation (CA, certificates, keys, kits) and change it later: "
    "add or revoke a site, check certificate expiry, renew the coordinator's certificate.",
)


def provision_command(
    federation: Annotated[Path, typer.Argument(help="FEDERATION.yaml (coordinator, sites)")],
    out: Annotated[
        Path | None, typer.Option(help="output folder (default: `output` in the file)")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace existing kits (new CA, new keys)")
    ] = False,
) -> None:
    """Create the certificate authority, the coordinator's TLS certificate, each site's
    SuperNode key and one startup kit per site (docs/deployment.md)."""
    err = Console(stderr=True)
    try:
        spec = load_federation(federation)
        kits = provision(spec, out or spec.output, force=force)
    except (ConfigError, KitExistsError) as error:
        err.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from None

    table = Table(title=f"federation {spec.federation}: kits in {out or spec.output}")
    table.add_column("kit")
    table.add_column("folder")
    table.add_column("files")
    for kit in kits:
        label = kit.role if kit.role != "site" else f"site {kit.name}"
        table.add_row(label, str(kit.path), ", ".join(kit.files))
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    policy = load_enrolment_policy((out or spec.output) / COORDINATOR_DIR)
    software = (
        " (software: NO hardware root of trust)" if "software" in policy.allowed_backends else ""
    )
    console.print(
        f"Enrolment policy: backends {', '.join(policy.allowed_backends)}{software}; "
        f"measurements {', '.join(m[:16] + '...' for m in policy.allowed_measurements)}"
    )
    console.print(
        "Ship [bold]coordinator/[/] to the coordinator and [bold]sites/NAME/[/] to each site "
        "over a trusted channel; keep [bold]authority/ca.key[/] offline (node.key and attest.key "
        "never leave their site)."
    )


provision_app.command(CREATE, help="(default) " + (provision_command.__doc__ or ""))(
    provision_command
)
provision_app.command("add-site")(add_site_command)
provision_app.command("revoke-site")(revoke_site_command)
provision_app.command("check-expiry")(check_expiry_command)
provision_app.command("renew")(renew_command)
