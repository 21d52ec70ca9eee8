"""``medsilo unlearn RUN --site NAME | --cohort SITE:VERSION | --site NAME --patient ID``
(docs/governance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medsilo.config import ConfigError, load_config
from medsilo.data.base import DataFormatError
from medsilo.governance.patient_unlearn import unlearn_patient
from medsilo.governance.unlearn import UnlearnOutcome, Withdrawal, unlearn
from medsilo.progress import progress_bars
from medsilo.runtime.round_record import RoundRecord


def unlearn_command(
    run: Annotated[Path, typer.Argument(help="a finished run directory")],
    site: Annotated[str | None, typer.Option(help="withdraw this site entirely")] = None,
    cohort: Annotated[str | None, typer.Option(help="withdraw one cohort, as SITE:VERSION")] = None,
    patient: Annotated[
        str | None,
        typer.Option(help="with --site: the pseudonymous id of a patient who revoked consent"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="new run directory")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Withdraw a site, a cohort or a patient: retrain without it from the last checkpoint
    before its first contribution, retire the old model and record the event."""
    console = Console()
    try:
        if patient is not None and (site is None or cohort is not None):
            raise ConfigError("--patient ID needs --site NAME (the patient's site) and no --cohort")
        withdrawal = None if patient is not None else Withdrawal.parse(site, cohort)
        with progress_bars(progress) as bars:
            rounds = load_config(run / "config.yaml").training.rounds
            task = bars.add_task("unlearn", total=rounds, status="")

            def on_round(rec: RoundRecord) -> None:
                bars.update(task, completed=rec["round"], status=f"round {rec['round']}")

            outcome: UnlearnOutcome
            if withdrawal is None:
                assert site is not None and patient is not None
                outcome = unlearn_patient(run, site, patient, out, on_round)
            else:
                outcome = unlearn(run, withdrawal, out, on_round)
    except (ConfigError, DataFormatError) as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    console.print(outcome.message)
