"""``medsilo reputation update RUN...`` and ``medsilo reputation show``: per-site reputation
across runs, from the reward shares ``medsilo contribution`` wrote (docs/contribution.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from medsilo.contribution.reputation import (
    Reputation,
    ReputationError,
    load_reputation,
    update_reputation,
)

reputation_app = typer.Typer(
    help="Per-site reputation across runs (exponentially weighted reward shares).",
    no_args_is_help=True,
)

FileOption = Annotated[Path, typer.Option("--file", help="the reputation file (JSON)")]
DEFAULT_FILE = Path("reputation.json")


@reputation_app.command("update")
def update(
    runs: Annotated[list[Path], typer.Argument(help="run directories with contribution.json")],
    file: FileOption = DEFAULT_FILE,
    alpha: Annotated[
        float | None,
        typer.Option(help="weight of the newest run (0 < alpha <= 1); fixed for a new file"),
    ] = None,
) -> None:
    """Fold the runs' reward shares into the reputation file, oldest run first."""
    console = Console()
    try:
        rep = update_reputation(file, runs, alpha)
    except ReputationError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    console.print(_table(rep))
    console.print(f"wrote {file}")


@reputation_app.command("show")
def show(file: FileOption = DEFAULT_FILE) -> None:
    """Print the reputation file."""
    console = Console()
    if not file.exists():
        console.print(f"[red]error:[/red] no reputation file {file}")
        raise typer.Exit(1)
    try:
        rep = load_reputation(file)
    except ReputationError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    console.print(_table(rep))


def _table(rep: Reputation) -> Table:
    table = Table(title=f"Reputation (alpha {rep.alpha}, {len(rep.runs)} runs; 1 = equal share)")
    for label in ("site", "reputation", "runs", "last share"):
        table.add_column(label, justify="left" if label == "site" else "right")
    for site, r in sorted(rep.sites.items()):
        table.add_row(site, f"{r.reputation:.3f}", str(r.runs), f"{r.last_share:.4f}")
    return table
