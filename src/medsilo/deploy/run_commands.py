"""``medsilo coordinator start`` and ``medsilo site start``: the two ends of a deployment.

Thin CLI wrappers over :mod:`medsilo.deploy.coordinator` and :mod:`medsilo.deploy.site_node`
(docs/deployment.md): check arguments, print what is about to happen and how it ended, exit
non-zero on failure. Both warn first when a certificate of their kit expires within
:data:`~medsilo.deploy.expiry.WARN_DAYS` days (:mod:`medsilo.deploy.expiry`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from medsilo.config import ConfigError
from medsilo.deploy.expiry import kit_expiry_warnings
from medsilo.deploy.processes import DeploymentError

coordinator_app = typer.Typer(
    help="Run the coordinator of a deployed federation (Flower SuperLink + medsilo ServerApp).",
    no_args_is_help=True,
)
err = Console(stderr=True)

INSECURE_HELP = "no TLS, no site authentication (debugging on one machine only)"


@coordinator_app.command("start")
def coordinator_start(
    kit: Annotated[Path, typer.Argument(help="the coordinator kit from `medsilo provision`")],
    config: Annotated[Path, typer.Option("--config", help="experiment YAML to run")],
    out: Annotated[Path, typer.Option("--out", help="run folder (rounds, checkpoints, ledger)")],
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")
    ] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help=INSECURE_HELP)] = False,
    round_timeout: Annotated[
        float, typer.Option(help="seconds to wait for a site's reply before dropping it")
    ] = 600.0,
    connect_timeout: Annotated[
        float, typer.Option(help="seconds to wait for every site to connect and enrol")
    ] = 300.0,
    poll_interval: Annotated[
        float, typer.Option(help="seconds between polls for site replies (Flower: 3)")
    ] = 0.1,
    min_sites: Annotated[
        int, typer.Option(help="sites that must enrol before round 1 (0: all of them)", min=0)
    ] = 0,
    straggler_timeout: Annotated[
        float | None,
        typer.Option(
            help="once training.min_sites sites have replied in a round, seconds to wait for "
            "the rest before dropping them (default: up to --round-timeout; not with secure "
            "aggregation)",
            min=0.0,
        ),
    ] = None,
    separate_evaluation: Annotated[
        bool,
        typer.Option(
            help="evaluate each round in an exchange of its own instead of with the next "
            "round's training message (twice the messages; for comparison)"
        ),
    ] = False,
) -> None:
    """Start the SuperLink (TLS + site authentication), register the sites' keys, run the
    experiment with attestation-gated enrolment, checkpoint every round; exit 1 on failure."""
    from medsilo.deploy.coordinator import start_coordinator

    if insecure:
        err.print(
            "[bold red]WARNING: --insecure: the coordinator runs WITHOUT TLS and WITHOUT site "
            "authentication. Updates travel in clear text and any process can join. Never "
            "with patient data.[/]"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        _warn_expiry(kit, insecure)
        result = start_coordinator(
            kit,
            config,
            out,
            resume=resume,
            insecure=insecure,
            round_timeout_s=round_timeout,
            connect_timeout_s=connect_timeout,
            poll_interval_s=poll_interval,
            min_sites=min_sites,
            train_with_evaluation=not separate_evaluation,
            straggler_timeout_s=straggler_timeout,
        )
    except (ConfigError, DeploymentError, OSError) as error:
        err.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from None
    if not result.ok:
        err.print(f"[bold red]run failed:[/] {result.message}")
        raise typer.Exit(1)
    Console().print(
        f"[green]run finished[/] in {result.wall_s:.1f}s: {result.message}; results in "
        f"{result.run_dir}"
    )


def _warn_expiry(kit: Path, insecure: bool) -> None:
    """Print a warning for each certificate of ``kit`` near (or past) its end date."""
    if not insecure:
        for warning in kit_expiry_warnings(kit):
            err.print(f"[bold yellow]{escape(warning)}[/]")


def site_start(
    kit: Annotated[Path, typer.Argument(help="this site's kit from `medsilo provision`")],
    data: Annotated[
        Path | None, typer.Option("--data", help="this site's data (file or folder)")
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help=INSECURE_HELP)] = False,
    poll_interval: Annotated[
        float, typer.Option(help="seconds between polls for work when idle (Flower: 3)")
    ] = 0.2,
    runtime_port: Annotated[
        int | None, typer.Option(help="local Runtime API port (default: a free one)")
    ] = None,
    platform: Annotated[
        str | None, typer.Option(help="claimed TEE platform for software attestation")
    ] = None,
    tcb_version: Annotated[str | None, typer.Option(help="claimed TCB version")] = None,
    cold_clientapps: Annotated[
        bool,
        typer.Option(
            help="start each message's ClientApp process from scratch (Flower's subprocess "
            "isolation) instead of forking one that imported medsilo already"
        ),
    ] = False,
    proxy: Annotated[
        str | None,
        typer.Option(help="http://HOST:PORT: reach the coordinator through this forward proxy"),
    ] = None,
) -> None:
    """Run this site's SuperNode: it dials out to the coordinator (TLS, node key), enrols
    with attestation evidence and trains on --data only. Runs until stopped (Ctrl-C)."""
    from medsilo.deploy.site_node import INSECURE_WARNING, run_site, site_launch

    try:
        _warn_expiry(kit, insecure)
        launch = site_launch(
            kit,
            data,
            insecure=insecure,
            poll_interval_s=poll_interval,
            runtime_port=runtime_port,
            platform=platform,
            tcb_version=tcb_version,
            warm=not cold_clientapps,
            proxy=proxy,
        )
    except (ConfigError, OSError) as error:
        err.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from None
    if insecure:
        err.print(f"[bold red]{INSECURE_WARNING}[/]")
    via = f", through the proxy {launch.proxy}" if launch.proxy else ""
    err.print(f"site {launch.site}: connecting to {launch.coordinator} (outbound only{via})")
    code = run_site(launch, say=lambda text: err.print(f"[yellow]{text}[/]"))
    raise typer.Exit(code)
