"""``medsilo contribution RUN``: score each site's contribution to a finished run's model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from medsilo.config import ConfigError, load_config
from medsilo.contribution.free_riders import free_rider_lines
from medsilo.contribution.gtg import GTGSettings
from medsilo.contribution.metric import METRICS, Metric
from medsilo.progress import progress_bars

if TYPE_CHECKING:
    from medsilo.contribution.scores import Method
    from medsilo.runtime.round_record import RoundRecord


def contribution(
    run: Annotated[Path, typer.Argument(help="run directory (has config.yaml)")],
    method: Annotated[str, typer.Option(help="loo, shapley or both")] = "both",
    metric: Annotated[str, typer.Option(help="accuracy or neg_loss (minus mean loss)")] = (
        "accuracy"
    ),
    permutations: Annotated[
        int, typer.Option(help="Monte Carlo permutations per round (more than --exact-up-to)")
    ] = 50,
    exact_up_to: Annotated[int, typer.Option(help="exact Shapley up to this many sites")] = 4,
    seed: Annotated[int | None, typer.Option(help="Monte Carlo seed (default: run seed)")] = None,
    truncation: Annotated[
        float,
        typer.Option(help="GTG truncation tolerance, rounds and permutations (0: exact)"),
    ] = 0.0,
    noise_orders: Annotated[
        int,
        typer.Option(
            help="also re-run the full federation in this many site orders (>= 2) "
            "to measure leave-one-out's random-stream noise floor"
        ),
    ] = 0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Leave-one-out (retrain without each site) and GTG-Shapley scores, free-rider flags and
    reward shares; writes RUN/contribution.json and RUN/contribution.png, and the flags to
    the run's ledger (docs/contribution.md)."""
    if method not in ("loo", "shapley", "both"):
        raise typer.BadParameter(f"--method must be loo, shapley or both, not {method!r}")
    if noise_orders == 1 or noise_orders < 0:
        raise typer.BadParameter("--noise-orders must be 0 or at least 2")
    if truncation < 0:
        raise typer.BadParameter("--truncation must be >= 0")
    if metric not in METRICS:
        raise typer.BadParameter(f"--metric must be one of {list(METRICS)}, not {metric!r}")
    from medsilo.contribution.figure import CHART_FILE, plot_contribution, score_columns
    from medsilo.contribution.scores import load_scores, score_run_dir

    console = Console()
    try:
        cfg = load_config(run / "config.yaml")
    except (ConfigError, FileNotFoundError, OSError) as err:
        console.print(f"[red]error:[/red] {run} is not a readable run directory: {err}")
        raise typer.Exit(1) from err
    settings = GTGSettings(
        exact_up_to=exact_up_to,
        permutations=permutations,
        seed=cfg.seed if seed is None else seed,
        tolerance=truncation,
        round_tolerance=truncation,
    )
    runs = 1 + (0 if method == "shapley" else len(_site_names(run))) + noise_orders
    with progress_bars(progress) as bars:
        task = bars.add_task("contribution", total=runs * cfg.training.rounds, status="full run")

        def advance(phase: str, record: RoundRecord) -> None:
            status = (
                "full run"
                if phase == "full"
                else phase
                if phase.startswith("rotation")
                else f"without {phase}"
            )
            bars.update(task, advance=1, status=f"{status}, round {record['round']}")

        try:
            path = score_run_dir(
                run, _method(method), _metric(metric), settings, advance, noise_orders
            )
        except ValueError as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from err
    scores = load_scores(run)
    assert scores is not None
    chart = plot_contribution(scores, run / CHART_FILE)
    table = Table(title=f"Contribution to {scores['metric']} (full model: {scores['full']:.4f})")
    table.add_column("site")
    columns = score_columns(scores)
    for label in columns:
        table.add_column(label, justify="right")
    shares = scores["shares"]["values"]
    table.add_column(f"reward share (from {scores['shares']['from']})", justify="right")
    for site in scores["sites"]:
        row = [f"{values.get(site, 0.0):+.4f}" for values in columns.values()]
        table.add_row(site, *row, f"{shares.get(site, 0.0):.4f}")
    console.print(table)
    console.print(free_rider_lines(scores["free_riders"]))
    if "site_order_noise" in scores:
        noise = scores["site_order_noise"]
        console.print(
            f"leave-one-out noise floor (site orders): std {noise['std']:.4f}, "
            f"range {noise['range']:.4f}"
        )
    console.print(f"wrote {path} and {chart}")


def _site_names(run: Path) -> list[str]:
    from medsilo.data.registry import build_federation

    cfg = load_config(run / "config.yaml")
    return build_federation(cfg.data, cfg.seed).site_names


def _method(text: str) -> Method:
    return "loo" if text == "loo" else "shapley" if text == "shapley" else "both"


def _metric(text: str) -> Metric:
    return "neg_loss" if text == "neg_loss" else "accuracy"
