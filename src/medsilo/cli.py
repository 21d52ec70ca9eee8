"""The ``medsilo`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medsilo.anchor.chain import AnchorError
from medsilo.attestation.command import attest_app, registry_app
from medsilo.audit.command import audit_app
from medsilo.bundled import bundled_names, bundled_text, resolve_config
from medsilo.config import ConfigError, RunConfig
from medsilo.contribution.command import contribution as contribution_command
from medsilo.contribution.reputation_command import reputation_app
from medsilo.dashboard.command import dashboard as dashboard_command
from medsilo.data.base import DataFormatError
from medsilo.deploy.command import provision_app
from medsilo.deploy.run_commands import coordinator_app, site_start
from medsilo.experiment import RunDirError
from medsilo.governance.command import unlearn_command
from medsilo.governance.quorum_command import governance_app
from medsilo.progress import progress_bars
from medsilo.report.runs import ReportError
from medsilo.site_cli import site_app
from medsilo.suite import SuiteRow, run_suite, suite_title

app = typer.Typer(
    help="medsilo: federated learning across hospitals, no patient record leaves its site.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks that print side-by-side measurements.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
# `medsilo audit ...` (privacy attacks on a run); the group lives in medsilo.audit.command.
app.add_typer(audit_app, name="audit")
# `medsilo site ...` (schema checks, DP data reports, DICOM ingestion): medsilo.site_cli.
app.add_typer(site_app, name="site")
# `medsilo attest ...` / `medsilo registry update`: docs/attestation.md.
app.add_typer(attest_app, name="attest")
app.add_typer(registry_app, name="registry")
# `medsilo dashboard RUN` (live view of a run, per-site health DP-noised): docs/dashboard.md.
app.command("dashboard")(dashboard_command)
# `medsilo contribution RUN` (leave-one-out, GTG-Shapley): medsilo.contribution.command.
app.command("contribution")(contribution_command)
# `medsilo reputation update|show` (reward shares across runs): medsilo.contribution.
app.add_typer(reputation_app, name="reputation")
# `medsilo unlearn RUN --site NAME` (exact unlearning by retraining): docs/governance.md.
app.command("unlearn")(unlearn_command)
# `medsilo governance propose|approve|status` (council quorum decisions): docs/governance.md.
app.add_typer(governance_app, name="governance")
# `medsilo provision FEDERATION.yaml` (CA, TLS cert, node keys, kits) and its lifecycle
# subcommands (add-site, revoke-site, check-expiry, renew): docs/deployment.md.
app.add_typer(provision_app, name="provision")
# `medsilo coordinator start KIT` and `medsilo site start KIT --data PATH`: docs/deployment.md.
app.add_typer(coordinator_app, name="coordinator")
site_app.command("start")(site_start)
# Piped output (logs, CI) gets a wide console so result tables are never elided.
out = Console(width=None if sys.stdout.isatty() else 200)

DEMO_CONFIGS = [
    "heart_fedavg",
    "heart_fedprox",
    "heart_scaffold",
    "heart_fedadam",
    "heart_fedyogi",
    "heart_pooled",
    "heart_local",
]


def _fail(message: str) -> typer.Exit:
    # escaped: a message quoting the user's input ("[auroc, ...]") is not rich markup
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(2)


def _parse_seeds(text: str) -> list[int]:
    """``"0-2,7"`` -> ``[0, 1, 2, 7]``; anything else is refused with the part at fault."""
    seeds: list[int] = []
    example = "give seeds as 0 or 0-4 or 0,3,7"
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not part:
            continue
        if not (lo.isdigit() and (hi.isdigit() if dash else True)):
            raise typer.BadParameter(
                f"{part!r} is not a seed or a range; {example}", None, None, "--seeds"
            )
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise typer.BadParameter(f"range {part!r} is empty; {example}", None, None, "--seeds")
        seeds.extend(range(first, last + 1))
    if not seeds:
        raise typer.BadParameter(f"give at least one seed; {example}", None, None, "--seeds")
    return seeds


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    if stat is None:
        return "-"
    mean = f"{stat['mean']:.{digits}f}"
    return f"{mean} ± {stat['std']:.{digits}f}" if stat["std"] else mean


#: Metrics shown after the lead metric when the runs report them (hd95: segmentation).
CLINICAL_COLUMNS = ("sensitivity", "specificity", "ece", "hd95")


def _lead(d: dict[str, Any]) -> str:
    """The lead metric, mean ± std over seeds; with one seed, its 95% bootstrap interval."""
    text = _fmt(d["clinical"].get(d["lead_metric"]))
    if len(d["lead_interval"]) == 1 and text != "-":
        low, high = d["lead_interval"][0]
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def print_clinical_table(rows: list[SuiteRow], title: str) -> None:
    """The final model's pooled clinical metrics, led by ``evaluation.lead_metric``."""
    dicts = [r.as_dict() for r in rows if r.lead_metric]
    if not dicts:
        return
    leads = sorted({d["lead_metric"] for d in dicts})
    clinical = [
        c for c in CLINICAL_COLUMNS if c not in leads and any(d["clinical"].get(c) for d in dicts)
    ]
    table = Table(title=f"{title}: clinical metrics, pooled from the sites' states")
    for col in ["run", f"{'/'.join(leads)} [95% CI]", *clinical]:
        table.add_column(col, justify="left" if col == "run" else "right")
    for d in dicts:
        table.add_row(d["name"], _lead(d), *[_fmt(d["clinical"].get(c)) for c in clinical])
    out.print(table)


def print_table(rows: list[SuiteRow], title: str) -> None:
    print_clinical_table(rows, title)
    dicts = [r.as_dict() for r in rows]
    sites = sorted({s for d in dicts for s in d["per_site"]})
    table = Table(title=title)
    extra = ["LOHO mean", "uplink kB/round", "leakage R", "DP epsilon", "rejected updates"]
    for col in ["run", "seeds", "pooled test acc", "mean per-site acc", *sites, *extra]:
        table.add_column(col, justify="left" if col == "run" else "right")
    for d in dicts:
        flags = [f"FAILED x{len(d['failures'])}"] if d["failures"] else []
        flags += [f"incomplete x{len(d['incomplete'])}"] if d["incomplete"] else []
        table.add_row(
            " ".join([d["name"], *flags]),
            str(len(d["seeds"])),
            _fmt(d["pooled_accuracy"]),
            _fmt(d["mean_site_accuracy"]),
            *[_fmt(d["per_site"].get(s)) for s in sites],
            _fmt(d["loho_mean_accuracy"]),
            _fmt(d["uplink_kb_per_round"], 1),
            _fmt(d["leakage"]),
            _fmt(d.get("epsilon"), 2),
            _fmt(d["rejected_fraction"], 2),
            style="bold red" if d["failures"] else "yellow" if d["incomplete"] else None,
        )
    out.print(table)


def _failed_runs(rows: list[SuiteRow]) -> dict[str, str]:
    """Run folder -> why it failed, over the suite."""
    return {folder: why for row in rows for folder, why in row.failures.items()}


def _run_and_report(
    configs: list[RunConfig], seeds: list[int], suite_dir: Path, title: str, progress: bool
) -> None:
    from medsilo.report import build_report

    with progress_bars(progress) as bars:
        rows = run_suite(configs, seeds, suite_dir, title, bars)
    print_table(rows, title)
    html = build_report(suite_dir)
    out.print(f"results: [bold]{suite_dir}[/]   report: [bold]{html}[/]")
    failed = _failed_runs(rows)
    for folder, why in failed.items():
        Console(stderr=True).print(f"[bold red]run {folder} failed:[/] {why}")
    if failed:
        raise typer.Exit(1)


@app.command()
def simulate(
    configs: Annotated[list[str], typer.Argument(help="config files or bundled config names")],
    seeds: Annotated[str, typer.Option(help="seeds, e.g. 0 or 0-4 or 0,3,7")] = "",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="suite directory (new, or an earlier suite to add runs to)"),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="override training.rounds of every config")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="override any config key, e.g. --set training.lr=0.05 (repeatable); "
            "applied before validation and recorded in each run's config.yaml",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    mlflow: Annotated[
        bool, typer.Option("--mlflow", help="also log each run to MLflow (docs/tracking.md)")
    ] = False,
    mlflow_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI, implies --mlflow (docs/tracking.md)")
    ] = None,
) -> None:
    """Run one or more federations in-process and write a suite directory with a report."""
    changes = list(overrides or [])
    if rounds is not None:
        changes.append(f"training.rounds={rounds}")
    try:
        cfgs = [resolve_config(c, changes) for c in configs]
        if mlflow or mlflow_uri is not None:
            from medsilo.tracking.sinks import with_mlflow

            cfgs = [with_mlflow(c, mlflow_uri) for c in cfgs]
    except (ConfigError, DataFormatError) as err:
        raise _fail(str(err)) from None
    seed_list = _parse_seeds(seeds) if seeds else [cfgs[0].seed]
    from medsilo.experiment import new_run_dir

    suite_dir = out_dir or new_run_dir(cfgs[0].output_dir, "-".join(c.name for c in cfgs)[:60])
    try:
        _run_and_report(
            cfgs,
            seed_list,
            suite_dir,
            suite_title(cfgs, seed_list),
            progress,
        )
    except (DataFormatError, ConfigError, RunDirError, ReportError, AnchorError) as err:
        raise _fail(str(err)) from None  # found before anything was written (but ReportError)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the demo suite")] = Path(
        "runs/demo"
    ),
    seeds: Annotated[str, typer.Option(help="seeds to average over")] = "0",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Four heart-disease hospitals: five federated algorithms vs pooled and local-only."""
    cfgs = [resolve_config(name) for name in DEMO_CONFIGS]
    if out_dir.exists() and any(out_dir.iterdir()):
        from medsilo.experiment import new_run_dir

        out_dir = new_run_dir(out_dir.parent, out_dir.name)
    _run_and_report(
        cfgs, _parse_seeds(seeds), out_dir, "Fed-Heart-Disease: 4 hospitals (UCI)", progress
    )


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="a run or suite directory")],
    out_dir: Annotated[Path | None, typer.Option("--out")] = None,
) -> None:
    """Write PNG plots and an HTML page for a finished (or interrupted) run."""
    from medsilo.governance.retire import retired_message
    from medsilo.report import ReportError, build_report

    retired = retired_message(run)  # a model replaced after a withdrawal (docs/governance.md)
    if retired is not None:
        Console(stderr=True).print(f"[bold yellow]warning:[/] {retired}")
    try:
        html = build_report(run, out_dir)
    except ReportError as err:
        raise _fail(str(err)) from None
    out.print(f"report: [bold]{html}[/]")


configs_app = typer.Typer(
    help="List the bundled configs; 'medsilo configs show NAME' prints one.",
    invoke_without_command=True,
)
app.add_typer(configs_app, name="configs")


@configs_app.callback()
def list_configs(ctx: typer.Context) -> None:
    """List the bundled configs; 'medsilo configs show NAME' prints one."""
    if ctx.invoked_subcommand is None:
        for name in bundled_names():
            out.print(name)


@configs_app.command("show")
def show_config(name: Annotated[str, typer.Argument(help="a bundled config name")]) -> None:
    """Print a bundled config's YAML (save it as a starting point for your own)."""
    try:
        text = bundled_text(name)
    except ConfigError as err:
        raise _fail(str(err)) from None
    typer.echo(text, nl=False)


@app.command()
def datasets() -> None:
    """List the bundled datasets with their sizes (loads each, offline)."""
    from medsilo.data.registry import DATASET_NAMES, load_central

    table = Table(title="bundled datasets")
    for col in ["name", "train", "test", "input", "classes"]:
        table.add_column(col)
    for name in DATASET_NAMES:
        try:
            d = load_central(name)
        except DataFormatError as err:
            table.add_row(name, "error", str(err), "", "")
            continue
        table.add_row(
            name, str(len(d.train)), str(len(d.test)), str(d.input_shape), str(d.num_classes)
        )
    out.print(table)


@bench_app.command("engine")
def bench_engine(
    steps: Annotated[int, typer.Option(help="local steps per site per round")] = 100,
    rounds: Annotated[int, typer.Option()] = 15,
    flower: Annotated[bool, typer.Option(help="also compare against Flower run_simulation")] = True,
    hospital_model: Annotated[
        str,
        typer.Option(
            help="model of the engine-vs-plain-PyTorch and memory workload ('none' skips it)"
        ),
    ] = "resnet18",
) -> None:
    """Engine overhead vs centralised training, this engine vs Flower's simulation, and the
    engine on a hospital model (ResNet-18) vs a plain PyTorch loop, with its peak memory."""
    from medsilo.bench.engine import run_engine_benchmark

    run_engine_benchmark(
        steps=steps,
        rounds=rounds,
        with_flower=flower,
        console=out,
        hospital_model=None if hospital_model == "none" else hospital_model,
    )


@bench_app.command("scale")
def bench_scale(
    sites: Annotated[
        list[int] | None, typer.Option(help="roster sizes (default 10, 100, 1000, 10000)")
    ] = None,
    cohort: Annotated[int, typer.Option(min=1, help="sites sampled per round")] = 10,
    rounds: Annotated[int, typer.Option(min=2)] = 5,
    local_steps: Annotated[int, typer.Option(min=1)] = 5,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    evaluate_sites: Annotated[
        str, typer.Option(help="evaluation.sites: cohort (the round's sites) or all")
    ] = "cohort",
) -> None:
    """The in-process engine at 10 to 10,000 sites with a fixed cohort: time per round, peak
    memory (ru_maxrss) and time per step against centralised training (docs/scale.md)."""
    from medsilo.bench.scale import DEFAULT_SIZES, run_scale_benchmark

    sizes = sites or list(DEFAULT_SIZES)
    if evaluate_sites not in ("all", "cohort"):
        raise typer.BadParameter(f"--evaluate-sites is 'all' or 'cohort', not {evaluate_sites!r}")
    if min(sizes) < cohort:
        raise typer.BadParameter(f"every roster size must hold the cohort of {cohort} sites")
    run_scale_benchmark(sizes, cohort, rounds, local_steps, batch_size, evaluate_sites, out)


@bench_app.command("ray")
def bench_ray(
    address: Annotated[
        str | None,
        typer.Option(
            help="run once on this Ray cluster (auto, HOST:PORT or ray://HOST:PORT) instead "
            "of on two loopback clusters with 1 and 2 worker nodes"
        ),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    local_steps: Annotated[int, typer.Option(min=1, help="SGD steps per site per round")] = 100,
) -> None:
    """Flower's simulation on a Ray cluster: rounds/s and site-steps/s with one worker node
    vs two (docs/scale.md)."""
    from medsilo.bench.ray_cluster import run_ray_benchmark
    from medsilo.runtime.flower.ray_cluster import RayClusterError

    try:
        run_ray_benchmark(out, rounds, local_steps, address)
    except RayClusterError as err:
        raise _fail(str(err)) from None


@bench_app.command("medmnist")
def bench_medmnist(
    rounds: Annotated[int, typer.Option(min=1, help="rounds (one local epoch each)")] = 20,
    seeds: Annotated[int, typer.Option(min=1, help="seeds 0..N-1")] = 3,
    dataset: Annotated[
        list[str] | None, typer.Option(help="breastmnist, pneumoniamnist (default both)")
    ] = None,
    model: Annotated[str, typer.Option(help="model name")] = "resnet18",
    max_train: Annotated[
        int | None, typer.Option(min=8, help="cap on training rows (quick runs)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="batch size")] = 32,
) -> None:
    """ResNet-18 over 4 non-IID sites vs the MedMNIST v2 paper and our pooled run."""
    from medsilo.bench.medmnist import run_medmnist_benchmark

    run_medmnist_benchmark(
        out,
        tuple(dataset or ("breastmnist", "pneumoniamnist")),
        tuple(range(seeds)),
        rounds,
        model,
        max_train,
        batch_size,
    )


@bench_app.command("lora")
def bench_lora(
    model: Annotated[str, typer.Option(help="the backbone's model.name")] = "cnn",
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank r")] = 4,
    alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha")] = 8,
    dataset: Annotated[str, typer.Option(help="the bundled dataset fine-tuned on")] = "mnist",
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    local_steps: Annotated[int, typer.Option(min=1, help="SGD steps per site per round")] = 20,
    lr_full: Annotated[float, typer.Option(min=0, help="learning rate, full fine-tuning")] = 0.05,
    lr_lora: Annotated[float, typer.Option(min=0, help="learning rate, LoRA")] = 0.1,
    pretrain_steps: Annotated[
        int, typer.Option(min=0, help="central steps on Fashion-MNIST before (0: as built)")
    ] = 300,
) -> None:
    """Bytes per round and accuracy: LoRA adapters vs full fine-tuning of one backbone."""
    from medsilo.bench.lora import LoraBench, run_lora_benchmark

    bench = LoraBench(
        model={"name": model},
        lora={"r": rank, "alpha": alpha},
        dataset=dataset,
        rounds=rounds,
        local_steps=local_steps,
        lr_full=lr_full,
        lr_lora=lr_lora,
        pretrain_steps=pretrain_steps,
    )
    run_lora_benchmark(bench, out)


@bench_app.command("deployment")
def bench_deployment(
    rounds: Annotated[int, typer.Option(min=2, help="federated rounds")] = 5,
    local_steps: Annotated[int, typer.Option(min=1, help="SGD steps per site per round")] = 20,
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the JSON")] = Path(
        "runs/bench-deployment"
    ),
    workload: Annotated[
        str,
        typer.Option(
            help="heart (logistic, 3 hospitals; four runtimes) or resnet18-pneumonia "
            "(ResNet-18 on PneumoniaMNIST; engine vs deployed with warm processes)"
        ),
    ] = "heart",
    max_train: Annotated[
        int, typer.Option(min=30, help="resnet18-pneumonia: training images in all")
    ] = 600,
    max_test: Annotated[int, typer.Option(min=10, help="resnet18-pneumonia: test images")] = 200,
) -> None:
    """Seconds per round: deployed on loopback (3 site processes, TLS) vs in-process."""
    if workload == "resnet18-pneumonia":
        from medsilo.bench.deployment_resnet import run_resnet_deployment_benchmark

        run_resnet_deployment_benchmark(rounds, local_steps, max_train, max_test, out_dir, out)
        return
    if workload != "heart":
        raise typer.BadParameter(
            f"unknown workload {workload!r}: heart or resnet18-pneumonia", param_hint="--workload"
        )
    from medsilo.bench.deployment import run_deployment_benchmark

    run_deployment_benchmark(rounds, local_steps, out_dir, out)


@bench_app.command("large")
def bench_large(
    params: Annotated[
        list[str] | None, typer.Option("--params", help="model sizes, e.g. 25M (repeatable)")
    ] = None,
    sites: Annotated[int, typer.Option(min=2, help="sites in the round")] = 3,
    deployed: Annotated[bool, typer.Option(help="also run deployed on loopback")] = True,
    local_steps: Annotated[int, typer.Option(min=1, help="deployed: SGD steps per site")] = 2,
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the JSON")] = Path(
        "runs/bench-large"
    ),
) -> None:
    """One round of secure aggregation and of top-k + error feedback with a large model:
    peak memory per site and at the coordinator, and wall time, in-process and deployed."""
    from medsilo.bench.large_updates import parse_params, run_large_updates_benchmark

    try:
        sizes = [parse_params(p) for p in params or ["25M", "100M"]]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--params") from None
    run_large_updates_benchmark(sizes, sites, deployed, local_steps, out_dir, out)


@bench_app.command("paper")
def bench_paper(
    quick: Annotated[
        bool, typer.Option(help="second pass, one seed, corners and centre (< 10 min)")
    ] = False,
    standard: Annotated[
        bool, typer.Option(help="second pass as pre-registered: 3 seeds, every setting")
    ] = False,
    full: Annotated[bool, typer.Option(help="second pass on the full data, 50 rounds")] = False,
    first_pass: Annotated[
        bool, typer.Option(help="the first pass (docs/ccpgd.md §7); with --quick: its quick plan")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, help="runs in parallel (second pass)")] = 2,
    out_dir: Annotated[
        Path, typer.Option("--out", help="where to write the table and plot")
    ] = Path("runs/bench-paper"),
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    empirical: Annotated[
        bool, typer.Option(help="measure leakage by attack (off: the leakage columns are n/a)")
    ] = True,
) -> None:
    """CC-PGD against FedAvg + codecs, DP-FL, FedProx and pooled (docs/ccpgd.md §10)."""
    if first_pass:
        if standard or full:
            raise typer.BadParameter("--first-pass takes --quick or nothing")
        from medsilo.bench.paper import run_paper_benchmark

        run_paper_benchmark(
            quick=quick, out_dir=out_dir, console=out, progress=progress, empirical=empirical
        )
        return
    modes = [m for m, on in (("quick", quick), ("standard", standard), ("full", full)) if on]
    if len(modes) != 1:
        raise typer.BadParameter("give exactly one of --quick, --standard, --full")
    from dataclasses import replace

    from medsilo.bench.paper_plan import second_plan
    from medsilo.bench.paper_report import write_second_outputs
    from medsilo.bench.paper_second import run_second_pass

    plan = replace(second_plan(modes[0]), workers=workers)
    if not empirical:
        plan = replace(plan, leakage=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "paper2_runs.jsonl"
    log.unlink(missing_ok=True)
    result = run_second_pass(plan, progress=progress, log=log)
    write_second_outputs(result, out_dir, out)


@bench_app.command("robustness")
def bench_robustness(
    quick: Annotated[bool, typer.Option(help="a tiny budget (seconds), for smoke tests")] = False,
    seeds: Annotated[str, typer.Option(help="e.g. 0 or 0-2 or 0,3")] = "0",
    only: Annotated[
        str | None, typer.Option(help="comma-separated scenario keys (clean always runs)")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the tables")] = Path(
        "runs/bench-robustness"
    ),
    rounds: Annotated[
        int | None, typer.Option(min=1, help="rounds per run (default 10; quick: 1)")
    ] = None,
    max_train: Annotated[
        int | None, typer.Option(min=100, help="training rows used (default 20000)")
    ] = None,
) -> None:
    """Sign-flip, noise, label-flip and backdoor attacks vs robust rules; codecs' bytes."""
    from dataclasses import replace

    from medsilo.bench.robustness import FULL, QUICK, run_robustness_benchmark

    keys = [k.strip() for k in only.split(",") if k.strip()] if only else None
    budget = QUICK if quick else FULL
    if rounds is not None:
        budget = replace(budget, rounds=rounds)
    if max_train is not None:
        budget = replace(budget, max_train_samples=max_train)
    try:
        run_robustness_benchmark(
            seeds=_parse_seeds(seeds), out_dir=out_dir, console=out, only=keys, budget=budget
        )
    except ValueError as err:
        raise _fail(str(err)) from None


@bench_app.command("async")
def bench_async(
    quick: Annotated[bool, typer.Option(help="a tiny budget (seconds), for smoke tests")] = False,
    seeds: Annotated[str, typer.Option(help="e.g. 0 or 0-2 or 0,3")] = "0",
    modes: Annotated[
        str, typer.Option(help="comma-separated: sync, sync_timeout, fedbuff, fedasync")
    ] = "sync,fedbuff,fedasync",
    target: Annotated[
        float | None, typer.Option(help="pooled test accuracy to reach (default 0.97)")
    ] = None,
    max_train_samples: Annotated[
        int | None, typer.Option(help="cap on MNIST training samples (default: all)")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the tables")] = Path(
        "runs/bench-async"
    ),
) -> None:
    """Time to accuracy: synchronous FedAvg vs FedBuff and FedAsync with two 10x slower sites."""
    from dataclasses import replace

    from medsilo.bench.asynchronous import FULL, QUICK, run_async_benchmark

    budget = QUICK if quick else FULL
    if target is not None:
        budget = replace(budget, target=target)
    if max_train_samples is not None:
        budget = replace(budget, max_train_samples=max_train_samples)
    try:
        run_async_benchmark(
            seeds=_parse_seeds(seeds),
            out_dir=out_dir,
            console=out,
            modes=[m.strip() for m in modes.split(",") if m.strip()],
            budget=budget,
        )
    except ValueError as err:
        raise _fail(str(err)) from None


@bench_app.command("secagg")
def bench_secagg(
    quick: Annotated[bool, typer.Option(help="10 sites x 10k parameters (seconds)")] = False,
    sites: Annotated[int | None, typer.Option(help="masking: sites (default 100)")] = None,
    params: Annotated[int | None, typer.Option(help="parameters per site (default 1M)")] = None,
    dropout: Annotated[float, typer.Option(help="share of sites dropping after key sharing")] = 0.1,
    ckks_sites: Annotated[int | None, typer.Option(help="CKKS: sites measured")] = None,
    ckks_params: Annotated[int | None, typer.Option(help="CKKS: parameters measured")] = None,
    compare_sites: Annotated[
        str | None, typer.Option(help="SecAgg+ vs complete graph: sizes, e.g. 100,500,1000")
    ] = None,
    compare_params: Annotated[
        int | None, typer.Option(help="SecAgg+ vs complete graph: parameters a site")
    ] = None,
    complete_max_sites: Annotated[
        int | None, typer.Option(help="largest size the complete graph runs (extrapolated above)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Secure aggregation costs: masking (site and coordinator time, bytes) vs CKKS, and
    SecAgg+ vs the complete graph."""
    from dataclasses import replace

    from medsilo.bench.secagg import FULL, QUICK, parse_sizes, run_secagg_benchmark
    from medsilo.secure.protocol import SecAggError

    size = QUICK if quick else FULL
    given: dict[str, Any] = {
        "sites": sites,
        "params": params,
        "ckks_sites": ckks_sites,
        "ckks_params": ckks_params,
        "compare_params": compare_params,
        "complete_max_sites": complete_max_sites,
    }
    size = replace(size, dropout=dropout, **{k: v for k, v in given.items() if v is not None})
    try:
        if compare_sites is not None:
            size = replace(size, compare_sites=parse_sizes(compare_sites))
        with progress_bars(progress) as bars:
            run_secagg_benchmark(size, console=out, progress=bars)
    except (ValueError, SecAggError) as err:
        raise _fail(str(err)) from None


@bench_app.command("omop")
def bench_omop(
    patients: Annotated[int, typer.Option(min=1, help="synthetic patients")] = 100_000,
    seed: Annotated[int, typer.Option(help="seed of the synthetic population")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="where to write the JSON")] = Path(
        "runs/bench-omop"
    ),
) -> None:
    """One OMOP site's cohort extraction on a synthetic CDM in a throwaway PostgreSQL."""
    from medsilo.bench.omop import run_omop_benchmark

    try:
        run_omop_benchmark(patients, seed, out_dir, out)
    except RuntimeError as err:
        raise _fail(str(err)) from None


def main() -> Any:  # pragma: no cover - console entry point
    return app()
