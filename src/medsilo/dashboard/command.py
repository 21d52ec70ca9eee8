"""``medsilo dashboard RUN``: serve the live dashboard of a run with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medsilo.dashboard.release import ReleasePolicy


def dashboard(
    run: Annotated[Path, typer.Argument(help="a run directory (or where a run is being written)")],
    port: Annotated[int, typer.Option(help="port to listen on")] = 8765,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    epsilon: Annotated[
        float, typer.Option(help="DP epsilon per site per round for the released health")
    ] = 10.0,
    loss_clip: Annotated[float, typer.Option(help="local loss clipped to [0, this]")] = 2.0,
    norm_clip: Annotated[float, typer.Option(help="update norm clipped to [0, this]")] = 2.0,
    seed: Annotated[int | None, typer.Option(help="noise seed (default: OS entropy)")] = None,
) -> None:
    """Serve a web page that follows a running federation (docs/dashboard.md)."""
    import uvicorn

    from medsilo.dashboard.app import create_app
    from medsilo.dashboard.state import DashboardState

    try:
        policy = ReleasePolicy(epsilon=epsilon, loss_clip=loss_clip, norm_clip=norm_clip)
    except ValueError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}")
        raise typer.Exit(2) from None
    app = create_app(DashboardState(run, policy, seed))
    Console().print(f"dashboard of [bold]{run}[/]: [bold]http://{host}:{port}/[/]  (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
