"""``medsilo unlearn RUN --site NAME | --cohort SITE:VERSION`` (docs/governance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medsilo.config import ConfigError, load_config
from medsilo.data.base import DataFormatError
from medsilo.governance.unlearn import Withdrawal, unlearn
from medsilo.progress import progress_bars
from medsilo.runtime.round_record import RoundRecord


def unlearn_command(
    run: Annotated[Path, typer.Argument(help="a finished run directory")],
    site: Annotated[str | None, typer.Option(help="withdraw this site entirely")] = None,
    cohort: Annotated[str | None, typer.Option(help="withdraw one cohort, as SITE:VERSION")] = None,
    out: Annotated[Path | None, typer.Option(help="new run directory")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Withdraw a site or cohort: retrain without it from the last checkpoint before its
    first contribution, retire the old model and record the event."""
    console = Console()
    try:
        withdrawal = Withdrawal.parse(site, cohort)
        with progress_bars(progress) as bars:
            rounds = load_config(run / "config.yaml").training.rounds
            task = bars.add_task(f"unlearn {withdrawal.label}", total=rounds, status="")

            def on_round(rec: RoundRecord) -> None:
                bars.update(task, completed=rec["round"], status=f"round {rec['round']}")

            outcome = unlearn(run, withdrawal, out, on_round)
    except (ConfigError, DataFormatError) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    console.print(outcome.message)
