"""The ``medsilo audit`` sub-command group (``audit privacy RUN``).

Kept out of :mod:`medsilo.cli` so that the group can grow (e.g. ``audit verify``) without
touching the top-level CLI; heavy imports happen inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from medsilo.progress import progress_bars

audit_app = typer.Typer(help="Empirical audits of a finished run.", no_args_is_help=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def print_privacy_table(report: dict[str, Any]) -> None:
    table = Table(title=f"privacy audit: {report['config']['name']} ({report['run']})")
    for col in ("attack", "metric", "value", "reference / note"):
        table.add_column(col, justify="left" if col != "value" else "right")
    inv = report.get("inversion")
    if inv and "skipped" not in inv:
        setting = (
            f"site {inv['site']}, batch {inv['batch_size']}, {inv['local_steps']} step(s): "
            f"{inv['setting_source']}"
        )
        guess = f"{inv['baseline']} guess {_num(inv['baseline_psnr_mean'], 2)} dB"
        if (inv["psnr_mean"] or 0.0) <= (inv["baseline_psnr_mean"] or 0.0):
            guess += " (the attack does no better than this guess)"
        table.add_row("gradient inversion", "PSNR mean (dB)", _num(inv["psnr_mean"], 2), guess)
        table.add_row("", "attacked round", "", setting)
        if inv["ssim_mean"] is not None:  # images only
            table.add_row("", "SSIM mean", _num(inv["ssim_mean"]), "1 = identical")
        table.add_row("", "label accuracy", _num(inv["label_accuracy"], 2), inv["labels"])
    mem = report.get("membership")
    if mem:
        for name in ("loss_threshold", "lira_offline"):
            if name not in mem:
                continue
            m = mem[name]
            note = f"{m['members']} members / {m['non_members']} non-members"
            if m.get("resolution_limited"):
                note += " (TPR@0.1%FPR resolution-limited)"
            table.add_row(name.replace("_", " "), "AUC", _num(m["auc"]), "0.5 = chance")
            table.add_row("", "TPR @ 0.1% FPR", _num(m["tpr_at_low_fpr"]), note)
    eps = report.get("recorded_privacy") or {}
    if "epsilon" in eps:
        shown = {k: eps[k] for k in ("delta", "mechanism", "unit", "noise") if k in eps}
        table.add_row(
            "run's DP record",
            "epsilon",
            _num(eps["epsilon"], 2),
            ", ".join(f"{k} {v}" for k, v in shown.items()),
        )
    out.print(table)


@audit_app.command("privacy")
def privacy(
    run: Annotated[Path, typer.Argument(help="a finished run directory (with config.yaml)")],
    attack: Annotated[str, typer.Option(help="inversion, membership or all")] = "all",
    site: Annotated[
        str | None,
        typer.Option(help="site attacked (default: first site for inversion, all for MIA)"),
    ] = None,
    images: Annotated[
        int | None, typer.Option(help="rows to reconstruct (default: one batch, at least 4)")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="victim batch size (default: the run's)")
    ] = None,
    local_steps: Annotated[
        int | None, typer.Option(help="site's local steps on the batch (default: the run's)")
    ] = None,
    iterations: Annotated[int, typer.Option(help="attacker's optimisation steps")] = 400,
    restarts: Annotated[int, typer.Option(help="random restarts per batch")] = 1,
    tv_weight: Annotated[float, typer.Option(help="total-variation prior weight")] = 1e-2,
    labels: Annotated[str, typer.Option(help="known, or idlg (infer; batch 1 only)")] = "known",
    weights_at: Annotated[
        str, typer.Option(help="invert a round at the initial or final global weights")
    ] = "initial",
    members: Annotated[int, typer.Option(help="members (= non-members) attacked, at most")] = 1000,
    shadows: Annotated[int, typer.Option(help="LiRA shadow models (0: skip LiRA)")] = 8,
    shadow_epochs: Annotated[float, typer.Option(help="epochs per shadow model")] = 3.0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Gradient inversion (PSNR/SSIM) and membership inference (AUC, TPR@0.1%FPR) on a run."""
    from medsilo.audit.inversion import InversionSettings
    from medsilo.audit.inversion_audit import InversionAuditSettings
    from medsilo.audit.lira import LiraSettings
    from medsilo.audit.privacy import AuditError, PrivacyAuditOptions, audit_privacy, load_run

    choices: dict[str, tuple[str, ...]] = {
        "--attack": ("inversion", "membership", "all"),
        "--labels": ("known", "idlg"),
        "--weights-at": ("initial", "final"),
    }
    for flag, value in (("--attack", attack), ("--labels", labels), ("--weights-at", weights_at)):
        if value not in choices[flag]:
            raise _fail(f"{flag} must be one of {', '.join(choices[flag])}; got {value!r}")
    try:
        options = PrivacyAuditOptions(
            attack=attack,  # type: ignore[arg-type]
            site=site,
            weights_at=weights_at,  # type: ignore[arg-type]
            inversion=InversionAuditSettings(
                images=images,
                batch_size=batch_size,
                local_steps=local_steps,
                labels=labels,  # type: ignore[arg-type]
                attack=InversionSettings(
                    iterations=iterations, restarts=restarts, tv_weight=tv_weight
                ),
            ),
            members_per_side=members,
            lira=LiraSettings(shadows=shadows, epochs=shadow_epochs) if shadows > 0 else None,
        )
        loaded = load_run(run)
    except (AuditError, ValueError) as err:
        raise _fail(str(err)) from None
    with progress_bars(progress) as bars:
        tasks: dict[str, Any] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total, status="")
            bars.update(tasks[step], completed=done)

        try:
            result = audit_privacy(loaded, options, report)
        except (AuditError, ValueError) as err:
            raise _fail(str(err)) from None
    print_privacy_table(result.report)
    shown = ", ".join(str(p.name) for p in result.figures)
    out.print(f"wrote [bold]{result.out_dir / 'privacy.json'}[/]" + (f", {shown}" if shown else ""))


# `audit verify` / `audit show`: the signed audit ledger of a run (docs/audit-ledger.md).
from medsilo.ledger.command import show as _ledger_show  # noqa: E402
from medsilo.ledger.command import verify as _ledger_verify  # noqa: E402

audit_app.command("verify")(_ledger_verify)
audit_app.command("show")(_ledger_show)
