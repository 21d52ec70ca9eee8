"""PNG charts of one run or of a suite of runs (matplotlib, Agg backend, no display needed).

Every ``plot_*`` function takes a sequence of runs: with one run it draws that run's curves
(e.g. pooled and mean per-site accuracy together), with several it draws one line (or bar)
per config: a config run with several seeds is drawn as its mean with a ±1 std band (error
bars on bars), as the results table shows it, never as one line per seed. Each returns the
written path, or ``None`` when there was nothing to plot. Figures are always closed, so
building many reports in one process does not leak memory.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from medsilo.report.runs import RunResult
from medsilo.report.seeds import ConfigGroup, group_by_config, mean_std
from medsilo.runtime.round_record import EvalMetrics, RoundRecord

DPI = 120
COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]

Getter = Callable[[RoundRecord], float | None]


@dataclass(frozen=True)
class PlotFile:
    """A written chart: its path and a title for the report."""

    path: Path
    title: str

    @property
    def filename(self) -> str:
        return self.path.name


# --- round getters ----------------------------------------------------------------------


def _round_no(rec: RoundRecord) -> float | None:
    return float(rec.round)


def _sim_clock(rec: RoundRecord) -> float | None:
    return rec.sim_clock_s


def _pooled_accuracy(rec: RoundRecord) -> float | None:
    return rec.test.accuracy if rec.test is not None else None


def _mean_site_accuracy(rec: RoundRecord) -> float | None:
    return rec.mean_site_accuracy


def _train_loss(rec: RoundRecord) -> float | None:
    return rec.train_loss


def _test_loss(rec: RoundRecord) -> float | None:
    return rec.test.loss if rec.test is not None else None


def _extra(key: str) -> Getter:
    def get(rec: RoundRecord) -> float | None:
        return rec.extra.get(key)

    return get


def _series(run: RunResult, x: Getter, y: Getter) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for rec in run.rounds:
        xv, yv = x(rec), y(rec)
        if xv is None or yv is None or math.isnan(xv) or math.isnan(yv):
            continue
        xs.append(xv)
        ys.append(yv)
    return xs, ys


@dataclass(frozen=True)
class Band:
    """A config's curve over its seeds: per round, the mean x, mean y and std of y."""

    xs: list[float]
    mean: list[float]
    std: list[float]


def mean_band(runs: Sequence[RunResult], x: Getter, y: Getter) -> Band:
    """Average the runs round by round (x too: the simulated clock differs per seed); a round
    counts the runs that have both values there."""
    by_round: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for rec in run.rounds:
            xv, yv = x(rec), y(rec)
            if xv is None or yv is None or math.isnan(xv) or math.isnan(yv):
                continue
            by_round.setdefault(rec.round, []).append((xv, yv))
    band = Band([], [], [])
    for rnd in sorted(by_round):
        points = by_round[rnd]
        ys = mean_std([p[1] for p in points])
        assert ys is not None  # every round in by_round has a point
        band.xs.append(sum(p[0] for p in points) / len(points))
        band.mean.append(ys.mean)
        band.std.append(ys.std)
    return band


# --- figure helpers ---------------------------------------------------------------------


@contextmanager
def _figure(
    path: Path, ncols: int = 1, size: tuple[float, float] = (7.0, 4.5)
) -> Iterator[tuple[Figure, list[Any]]]:
    """A figure with ``ncols`` axes, saved to ``path`` on success and closed in any case."""
    fig, axes = plt.subplots(1, ncols, figsize=size, layout="constrained", squeeze=False)
    try:
        yield fig, list(axes[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, facecolor="white")
    finally:
        plt.close(fig)


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    # Wrap long titles (long run names, explanations) to the axes' width instead of clipping.
    fig_width_in = float(ax.get_figure().get_figwidth())
    columns = max(1, len(ax.get_figure().axes))
    ax.set_title(textwrap.fill(title, width=max(30, int(fig_width_in / columns * 10))))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.35)


def _integer_xaxis(ax: Any) -> None:
    ax.xaxis.get_major_locator().set_params(integer=True)


def _curves(
    runs: Sequence[RunResult],
    panels: Sequence[tuple[str, Getter]],
    *,
    x: Getter,
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    small: bool = False,
) -> Path | None:
    """Line chart of ``panels`` (name, getter) against ``x``.

    One run: a single axes with one line per panel. Several runs: one axes per panel that
    has data, one line per config (same colour per config everywhere; the seeds' mean with a
    ±1 std band when it has several), a shared legend below.
    """
    by_round = x is _round_no
    if len(runs) == 1:
        run = runs[0]
        lines = [(name, _series(run, x, getter)) for name, getter in panels]
        lines = [(name, xy) for name, xy in lines if xy[0]]
        if not lines:
            return None
        size = (6.0, 3.6) if small else (7.0, 4.5)
        with _figure(path, size=size) as (_fig, axes):
            ax = axes[0]
            for i, (name, (xs, ys)) in enumerate(lines):
                ax.plot(xs, ys, color=COLORS[i % 10], marker=MARKERS[i % 10], ms=4, label=name)
            _style(ax, f"{title} — {run.name}", xlabel, ylabel)
            if by_round:
                _integer_xaxis(ax)
            if len(lines) > 1 or not small:
                ax.legend(loc="best")
        return path

    active = [
        (name, getter) for name, getter in panels if any(_series(run, x, getter)[0] for run in runs)
    ]
    if not active:
        return None
    width = 6.0 if small else 5.8 * len(active) + 0.6
    height = 4.0 if small else 4.8
    with _figure(path, ncols=len(active), size=(width, height)) as (fig, axes):
        handles: dict[str, Any] = {}
        for ax, (name, getter) in zip(axes, active, strict=True):
            for i, group in enumerate(group_by_config(runs)):
                band = mean_band(group.runs, x, getter)
                if not band.xs:
                    continue
                color, label = COLORS[i % 10], _group_label(group)
                (line,) = ax.plot(
                    band.xs, band.mean, color=color, marker=MARKERS[i % 10], ms=4, label=label
                )
                if len(group.runs) > 1:
                    low = [m - d for m, d in zip(band.mean, band.std, strict=True)]
                    high = [m + d for m, d in zip(band.mean, band.std, strict=True)]
                    ax.fill_between(band.xs, low, high, color=color, alpha=0.18, linewidth=0)
                handles.setdefault(label, line)
            _style(ax, name if len(active) > 1 else title, xlabel, ylabel)
            if by_round:
                _integer_xaxis(ax)
        if len(active) > 1:
            fig.suptitle(title)
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(len(handles), 5),
        )
    return path


@dataclass(frozen=True)
class BarSeries:
    """One bar per group: ``values`` (None: no bar) and, for a config's mean over seeds,
    ``errors`` (the std, drawn as error bars)."""

    name: str
    values: Sequence[float | None]
    errors: Sequence[float | None] | None = None


def _bars(
    groups: Sequence[str],
    series: Sequence[BarSeries],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    path: Path,
) -> Path | None:
    """Grouped bar chart: one group per ``groups`` entry, one bar per series in each."""
    series = [
        bars for bars in series if any(v is not None and not math.isnan(v) for v in bars.values)
    ]
    if not groups or not series:
        return None
    n = len(series)
    bar_w = 0.8 / n
    width = max(6.0, min(16.0, 1.2 + len(groups) * (0.5 + 0.35 * n)))
    with _figure(path, size=(width, 4.8)) as (fig, axes):
        ax = axes[0]
        label_bars = len(groups) * n <= 32
        for i, bars in enumerate(series):
            heights = [math.nan if v is None else v for v in bars.values]
            xs = [g + (i - (n - 1) / 2) * bar_w for g in range(len(groups))]
            errors = None
            if bars.errors is not None:
                errors = [0.0 if e is None else e for e in bars.errors]
            container = ax.bar(
                xs,
                heights,
                bar_w * 0.95,
                color=COLORS[i % 10],
                label=bars.name,
                yerr=errors,
                capsize=3 if errors else 0,
            )
            if label_bars:
                labels = ["" if math.isnan(h) else f"{h:.2f}" for h in heights]
                ax.bar_label(container, labels=labels, fontsize=7, padding=2)
        ax.set_xticks(range(len(groups)))
        rotate = len(groups) > 6 or max(len(g) for g in groups) > 14
        ax.set_xticklabels(groups, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        _style(ax, title, xlabel, ylabel)
        ax.grid(False, axis="x")
        values_all = [
            v for bars in series for v in bars.values if v is not None and not math.isnan(v)
        ]
        if values_all and min(values_all) >= 0 and max(values_all) <= 1:
            ax.set_ylim(0, 1.12)
        fig.legend(loc="outside lower center", ncols=min(n, 5))
    return path


# --- public charts ----------------------------------------------------------------------


def plot_accuracy(runs: Sequence[RunResult], path: Path) -> Path | None:
    """Pooled test accuracy and mean per-site accuracy per round."""
    return _curves(
        runs,
        [
            ("Pooled test accuracy", _pooled_accuracy),
            ("Mean per-site accuracy", _mean_site_accuracy),
        ],
        x=_round_no,
        xlabel="Round",
        ylabel="Accuracy",
        title="Accuracy per round",
        path=path,
    )


def plot_loss(runs: Sequence[RunResult], path: Path) -> Path | None:
    """Training loss and pooled test loss per round."""
    return _curves(
        runs,
        [("Train loss", _train_loss), ("Pooled test loss", _test_loss)],
        x=_round_no,
        xlabel="Round",
        ylabel="Loss",
        title="Loss per round",
        path=path,
    )


def plot_accuracy_vs_time(runs: Sequence[RunResult], path: Path) -> Path | None:
    """Accuracy against the simulated clock (``sim_clock_s``: compute and communication
    since the start; synchronous rounds and asynchronous aggregations alike)."""
    return _curves(
        runs,
        [
            ("Pooled test accuracy", _pooled_accuracy),
            ("Mean per-site accuracy", _mean_site_accuracy),
        ],
        x=_sim_clock,
        xlabel="Simulated time (s)",
        ylabel="Accuracy",
        title="Accuracy vs simulated time",
        path=path,
    )


def plot_extra(runs: Sequence[RunResult], key: str, path: Path) -> Path | None:
    """A small chart of one numeric ``extra`` metric (e.g. ``epsilon``) per round."""
    return _curves(
        runs,
        [(key, _extra(key))],
        x=_round_no,
        xlabel="Round",
        ylabel=key,
        title=key,
        path=path,
        small=True,
    )


def plot_site_accuracy(runs: Sequence[RunResult], path: Path) -> Path | None:
    """Final per-site accuracy. One run: final vs LOHO bars per site; several: one bar per
    config (several seeds: their mean with the std as error bar)."""
    sites = _union(run.site_names for run in runs)
    if len(runs) == 1:
        run = runs[0]
        final = run.final_per_site
        loho = run.summary.loho or {}
        series = [BarSeries("Final (model each site would use)", [_acc(final, s) for s in sites])]
        if loho:
            series.append(BarSeries("Leave-one-hospital-out", [_acc(loho, s) for s in sites]))
        title = f"Final accuracy per site — {run.name}"
    else:
        series = [
            site_bars(group, sites, lambda run: run.final_per_site)
            for group in group_by_config(runs)
        ]
        title = "Final accuracy per site"
    return _bars(sites, series, title=title, xlabel="Site", ylabel="Accuracy", path=path)


def plot_loho(runs: Sequence[RunResult], path: Path) -> Path | None:
    """Leave-one-hospital-out accuracy per held-out site, one bar per config (runs with LOHO;
    several seeds: their mean with the std as error bar)."""
    with_loho = [run for run in runs if run.summary.loho]
    sites = _union(list(run.summary.loho or {}) for run in with_loho)
    series = [
        site_bars(group, sites, lambda run: run.summary.loho or {})
        for group in group_by_config(with_loho)
    ]
    return _bars(
        sites,
        series,
        title="Leave-one-hospital-out accuracy (trained without the site, tested on it)",
        xlabel="Held-out site",
        ylabel="Accuracy",
        path=path,
    )


def final_curves(run: RunResult) -> dict[str, Any] | None:
    """The ROC and calibration curves of a run's final model (the last record that has
    them, :func:`medsilo.runtime.clinical.curves`): scope (``pooled`` or a site) -> curves."""
    for rec in reversed(run.rounds):
        if rec.metrics is not None and rec.metrics.get("curves"):
            return dict(rec.metrics["curves"])
    return None


def plot_clinical_curves(group: ConfigGroup, path: Path) -> Path | None:
    """ROC curves (left) and reliability diagram (right) of a config's first seed: pooled
    over the sites (bold) and per site, from the merged metric states."""
    run = group.runs[0]
    curves = final_curves(run)
    if not curves:
        return None
    seed = f" (seed {run.summary.seed})" if len(group.runs) > 1 else ""
    with _figure(path, ncols=2, size=(11.0, 4.8)) as (_, (roc, calibration)):
        for i, (scope, c) in enumerate(curves.items()):
            pooled = scope == "pooled"
            style: dict[str, Any] = {
                "color": "black" if pooled else COLORS[i % len(COLORS)],
                "linewidth": 2.4 if pooled else 1.3,
                "label": scope,
            }
            if "roc" in c:
                roc.plot(c["roc"]["fpr"], c["roc"]["tpr"], **style)
            if "calibration" in c:
                cal = c["calibration"]
                calibration.plot(cal["predicted"], cal["observed"], marker="o", **style)
        for ax in (roc, calibration):
            ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.legend(fontsize=8, loc="lower right")
        _style(roc, f"ROC: {group.name}{seed}", "1 - specificity", "sensitivity")
        _style(calibration, f"Calibration: {group.name}{seed}", "predicted risk", "observed rate")
    return path


def write_plots(runs: Sequence[RunResult], out_dir: Path) -> list[PlotFile]:
    """Write every chart that has data into ``out_dir``; return them in report order.

    Files: ``accuracy.png``, ``loss.png``, ``site_accuracy.png``, ``loho_accuracy.png``
    (several runs only; one run shows LOHO inside ``site_accuracy.png``),
    ``clinical_<config>.png`` (ROC and calibration of each config's final model, pooled and
    per site),
    ``accuracy_vs_time.png`` (when any round has ``sim_time_s``) and ``extra_<key>.png`` per
    numeric ``extra`` metric. Files of those names left by an earlier build that this one
    did not write (e.g. a metric no longer present) are removed, so that the folder holds
    exactly the charts of the report.
    """
    out: list[PlotFile] = []

    def add(written: Path | None, title: str) -> None:
        if written is not None:
            out.append(PlotFile(written, title))

    add(plot_accuracy(runs, out_dir / "accuracy.png"), "Accuracy per round")
    add(plot_loss(runs, out_dir / "loss.png"), "Loss per round")
    add(plot_site_accuracy(runs, out_dir / "site_accuracy.png"), "Final accuracy per site")
    if len(runs) > 1:
        add(plot_loho(runs, out_dir / "loho_accuracy.png"), "Leave-one-hospital-out accuracy")
    if any(run.has_sim_time for run in runs):
        add(
            plot_accuracy_vs_time(runs, out_dir / "accuracy_vs_time.png"),
            "Accuracy vs simulated time",
        )
    used: set[str] = set()
    for group in group_by_config(runs):
        name = _unique(f"clinical_{_slug(group.name)}", used)
        add(
            plot_clinical_curves(group, out_dir / f"{name}.png"),
            f"ROC and calibration: {group.name}",
        )
    for key in _union(run.extra_keys for run in runs):
        name = _unique(f"extra_{_slug(key)}", used)
        add(plot_extra(runs, key, out_dir / f"{name}.png"), f"Extra metric: {key}")
    _remove_stale(out_dir, {p.path.name for p in out})
    return out


_OWN_FILES = {
    "accuracy.png",
    "loss.png",
    "site_accuracy.png",
    "loho_accuracy.png",
    "accuracy_vs_time.png",
}


def _remove_stale(out_dir: Path, written: set[str]) -> None:
    if not out_dir.is_dir():
        return
    for png in out_dir.glob("*.png"):
        own = png.name in _OWN_FILES or png.name.startswith(("extra_", "clinical_"))
        if own and png.name not in written and png.is_file():
            png.unlink()


# --- small helpers ----------------------------------------------------------------------


def site_bars(
    group: ConfigGroup,
    sites: Sequence[str],
    metrics: Callable[[RunResult], Mapping[str, EvalMetrics]],
) -> BarSeries:
    """A config's bars per site: the accuracy of its one run, or its seeds' mean and std."""
    if len(group.runs) == 1:
        return BarSeries(group.name, [_acc(metrics(group.runs[0]), s) for s in sites])
    stats = [mean_std([_acc(metrics(run), s) for run in group.runs]) for s in sites]
    return BarSeries(
        _group_label(group),
        [None if st is None else st.mean for st in stats],
        [None if st is None else st.std for st in stats],
    )


def _group_label(group: ConfigGroup) -> str:
    n = len(group.runs)
    return group.name if n == 1 else f"{group.name} (mean ± std of {n} seeds)"


def _acc(per_site: Mapping[str, EvalMetrics], site: str) -> float | None:
    metrics = per_site.get(site)
    return None if metrics is None else metrics.accuracy


def _union(lists: Iterable[Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._") or "metric"


def _unique(name: str, used: set[str]) -> str:
    candidate, i = name, 2
    while candidate in used:
        candidate, i = f"{name}_{i}", i + 1
    used.add(candidate)
    return candidate
