"""The figures that answer an experiment's question (`clientsim-plot DIR`: `sim.cli.plot`).

Three figures per sweep, into ``DIR/figures/``: the paired difference of the compared arms
against the swept parameter (``paired``), mean cumulative profit per policy over the weeks
(``profit``), and the spread of crossover weeks over seeds (``crossover``); when two policies
are compared and the runs record its factors, the profit gap decomposed into quality, volume
and exits (``decomposition``), and for a factorial experiment its effects (``effects``): both
drawn by ``sim.analysis.gap_figures``. Every figure colours a policy the same way
(``sim.analysis.figure_style``). A Bass docking sweep (`experiments/bass.yaml`, one business)
gets its own figure instead (`sim.validation.docking_figures`).
Figures are built on ``matplotlib.figure.Figure`` (Agg canvas), so nothing here touches
pyplot's global state.

A file in ``figures/`` is replaced only if clientsim wrote it (it is listed with its SHA-256
in ``figures/.clientsim-outputs.json``); a file of the same name that it did not write, or
that was changed since, makes the command refuse before drawing anything.
"""

from __future__ import annotations

import json
import textwrap
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from sim.analysis import decompose, factorial
from sim.analysis import stats as analysis
from sim.analysis.figure_style import (
    CONFIDENCE,
    DPI,
    POLICY_COLOURS,
    categorical_ticks,
    design_order,
    number_ticks,
    point_label,
    policy_colour,
    save_figure,
    short_key,
    title,
)
from sim.analysis.gap_figures import decomposition_figure, effects_figure
from sim.errors import UserError
from sim.runs.output import unwritable
from sim.runs.owned import not_ours, record_outputs

PROFIT_LABEL = "mean cumulative profit per business (currency units)"


def _point_labels(steps: pd.DataFrame) -> dict[int, str]:
    """A short label per design point from its swept values."""
    swept = analysis.swept_columns(steps)
    design = steps[["point", *swept]].drop_duplicates("point").set_index("point")
    return {
        point: point_label(row.to_dict()) or f"point {point}" for point, row in design.iterrows()
    }


def _ylabel(metric: str) -> str:
    what, unit = analysis.METRICS.get(metric, (metric, "metric units"))
    return textwrap.fill(f"paired difference in {what} ({unit})", 48)


def _comparison(experiment: dict) -> tuple[str, object, object, str | None]:
    compare = experiment["compare"]
    return compare["on"], compare["a"], compare["b"], compare.get("policy")


def paired_table(runs: pd.DataFrame, experiment: dict) -> pd.DataFrame:
    """The manifest's comparison, a − b, for every metric it names, per design point."""
    on, a, b, policy = _comparison(experiment)
    tables = [
        analysis.paired(runs, a, b, metric, on=on, policy=policy)
        for metric in experiment["metrics"]
    ]
    return pd.concat(tables, ignore_index=True)


def _arm_colour(experiment: dict) -> str:
    on, a, _, policy = _comparison(experiment)
    return policy_colour(a if on == "policy" else policy)


def _by_columns(table: pd.DataFrame) -> list[str]:
    """The design columns of a paired table: those before ``metric``."""
    return list(table.columns[: list(table.columns).index("metric")])


def _lines(table: pd.DataFrame, x: str):
    """The rows of one panel split into lines: one per value of the other by-columns."""
    keys = [column for column in _by_columns(table) if column != x]
    for values, line in analysis.groups(table, keys):
        yield values, line.sort_values(x)


def _draw_band(ax, table: pd.DataFrame, x: str, colour) -> None:
    lines = list(_lines(table, x))
    colours = [colour] if len(lines) == 1 else _sequence(len(lines))
    for (values, line), colour in zip(lines, colours, strict=True):
        ax.fill_between(line[x], line["ci_low"], line["ci_high"], color=colour, alpha=0.2)
        ax.plot(line[x], line["mean_diff"], "o-", color=colour, label=point_label(values))
    ax.set_xlabel(short_key(x))


def _sequence(n: int) -> list:
    return [colormaps["viridis"](v) for v in np.linspace(0.15, 0.75, n)]


def _draw_points(ax, table: pd.DataFrame, colour) -> None:
    keys = _by_columns(table)
    table = table.loc[design_order(table[keys]).index]
    error = [table["mean_diff"] - table["ci_low"], table["ci_high"] - table["mean_diff"]]
    ax.errorbar(range(len(table)), table["mean_diff"], yerr=error, fmt="o", color=colour, capsize=4)
    categorical_ticks(ax, table[keys])


def _paired_panel(ax, rows: pd.DataFrame, metric: str, experiment: dict) -> None:
    x = experiment.get("x")
    dtype = rows[x].dtype if x in rows else object
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        _draw_band(ax, rows, x, _arm_colour(experiment))
    else:
        _draw_points(ax, rows, _arm_colour(experiment))
    ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.yaxis.set_major_formatter(number_ticks())
    ax.set_ylabel(_ylabel(metric))
    ax.set_title(metric, fontsize="medium")


def _paired_caption(table: pd.DataFrame, experiment: dict) -> str:
    on, a, b, policy = _comparison(experiment)
    arms = (
        f"{a} − {b}" if on == "policy" else f"{short_key(on)}={a} − {short_key(on)}={b}, {policy}"
    )
    low, high = (int(table["n"].min()), int(table["n"].max())) if len(table) else (0, 0)
    seeds = f"{low}" if low == high else f"{low}–{high}"
    return f"{arms}: mean over {seeds} paired seeds, band/bar: {CONFIDENCE:.0%} paired t interval"


def paired_figure(table: pd.DataFrame, experiment: dict) -> Figure:
    """Paired difference a − b with its t interval, one panel per metric.

    Against the swept parameter ``x`` (one line per ``group`` value) when x is numeric, else
    a point with its error bar per design point.
    """
    metrics = list(dict.fromkeys(table["metric"]))
    width = 5.2 if len(table) > 2 * len(metrics) else 4.0  # a panel or two of points: narrow
    fig = Figure(figsize=(width * len(metrics), 4.6), dpi=DPI, layout="constrained")
    for ax, metric in zip(np.atleast_1d(fig.subplots(1, len(metrics))), metrics, strict=True):
        _paired_panel(ax, table[table["metric"] == metric], metric, experiment)
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > 1:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4))
    title(fig, experiment, _paired_caption(table, experiment))
    return fig


def _spread_over_seeds(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean cumulative profit per (policy, week) over seeds, with its t interval."""
    from scipy import stats  # here, not at the top: a run's figures need none of it (0.4 s)

    summary = steps.groupby(["policy", "step"])["cum_profit"].agg(["mean", "sem", "count"])
    low, high = stats.t.interval(CONFIDENCE, summary["count"] - 1, summary["mean"], summary["sem"])
    return summary.assign(low=low, high=high).reset_index()


def _point_order(steps: pd.DataFrame, experiment: dict) -> list[int]:
    """Every design point of the sweep, ordered by its swept values (`design_order`)."""
    swept = analysis.swept_columns(steps)
    design = steps[["point", *swept]].drop_duplicates("point").set_index("point").sort_index()
    return design_order(design, experiment.get("x")).index.tolist()


def _policies(names) -> list[str]:
    known = [p for p in POLICY_COLOURS if p in set(names)]
    return known + sorted(set(names) - set(known))


def profit_figure(steps: pd.DataFrame, experiment: dict) -> Figure:
    """Mean cumulative profit per policy over the weeks, one panel per design point.

    Every design point has its panel, in the order of its swept values.
    """
    points = _point_order(steps, experiment)
    labels = _point_labels(steps)
    cols = min(4 if len(points) > 9 else 3, len(points))
    rows = -(-len(points) // cols)
    size = (max(3.8 * cols, 6.4), max(2.7 * rows + 1.0, 4.6))
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax, point in zip(axes, points, strict=False):
        spread = _spread_over_seeds(steps[steps["point"] == point])
        for policy in _policies(spread["policy"].unique()):
            line = spread[spread["policy"] == policy]
            colour = policy_colour(policy)
            ax.fill_between(line["step"], line["low"], line["high"], color=colour, alpha=0.25)
            ax.plot(line["step"], line["mean"], color=colour, label=policy, linewidth=1.2)
        ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(textwrap.fill(labels[point], 45), fontsize="small")
        ax.yaxis.set_major_formatter(number_ticks())
    for ax in axes[len(points) :]:
        ax.set_visible(False)
    fig.supxlabel("week", fontsize="medium")
    fig.supylabel(PROFIT_LABEL, fontsize="medium")
    axes[0].legend(loc="upper left", fontsize="small")
    seeds = steps.groupby("point")["seed"].nunique().max()
    title(
        fig,
        experiment,
        f"line: mean over {seeds} seeds; band: {CONFIDENCE:.0%} t interval of the mean",
    )
    return fig


def crossover_figure(steps: pd.DataFrame, experiment: dict) -> Figure:
    """Crossover week of policy a over policy b per seed, one strip per design point."""
    _, a, b, _ = _comparison(experiment)
    weeks = analysis.crossover_weeks(steps, a, b)
    points = [p for p in _point_order(steps, experiment) if p in set(weeks["point"])]
    fig = Figure(figsize=(max(7.5, 0.9 * len(points) + 2), 4.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    jitter = np.random.default_rng(0)
    top = steps["step"].max()
    for at, point in enumerate(points):
        crossed = weeks.loc[weeks["point"] == point, "crossover_week"]
        values = crossed.dropna().to_numpy(dtype=float)
        offsets = at + jitter.uniform(-0.15, 0.15, len(values))
        ax.plot(offsets, values, "o", color=policy_colour(a), alpha=0.6, markersize=4)
        if len(values):
            ax.plot([at - 0.3, at + 0.3], [np.median(values)] * 2, color="black", linewidth=1.5)
        ax.annotate(f"never {crossed.isna().sum()}/{len(crossed)}", (at, top), ha="center",
                    va="bottom", fontsize="small")  # fmt: skip
    swept = analysis.swept_columns(steps)
    categorical_ticks(
        ax, steps[["point", *swept]].drop_duplicates("point").set_index("point").loc[points]
    )
    ax.set_ylim(0, top * 1.08 + 1)
    ax.set_ylabel(f"crossover week of {a} over {b} (week)")
    what = f"week after which {a}'s cumulative profit stays above {b}'s; dot: a seed, bar: median"
    title(fig, experiment, what)
    return fig


def plot_dir(path: str | PathLike, *, formats=("png", "svg")) -> list[Path]:
    """Write a sweep's figures and its paired table into ``path/figures/``.

    Args:
        path: the sweep directory (manifest.json, runs.parquet, steps.parquet).
        formats: file formats of the figures, e.g. ``("png", "svg")``.

    Returns:
        The files written: ``paired.csv`` and every figure in every format.

    Raises:
        FileNotFoundError: a file of the sweep is missing.
        ValueError: `path` is not a sweep directory, or the sweep has no successful run.
        UserError: ``figures`` is a file, or holds a file of a figure's name that clientsim
            did not write.
        PermissionError: ``figures`` cannot be written.
    """
    path = Path(path)
    experiment = read_manifest(path)["experiment"]
    if "bass" in experiment.get("figures", ()):  # one business: no comparison to draw
        raise ValueError(f"{path} is a docking sweep: sim.validation.docking_figures draws it")
    runs, steps = analysis.load_runs(path), analysis.load_steps(path)
    if not (runs["status"] == "ok").any() or steps.empty:
        raise ValueError(f"no successful run in {path}")
    out = path / "figures"
    check_figures(out, _figure_files(out, experiment, formats, _decomposed(runs, experiment)))
    out.mkdir(exist_ok=True)
    written: list[Path] = []
    try:
        _draw(out, runs, steps, experiment, formats, written)
    finally:  # what was written is clientsim's, even if a later figure failed
        record_outputs(written)
    return written


def _draw(out, runs, steps, experiment, formats, written: list[Path]) -> None:
    """Write the figures and tables into `out`, adding each file to `written` once written."""
    table = paired_table(runs, experiment)
    table.to_csv(out / "paired.csv", index=False)
    written.append(out / "paired.csv")
    written += save_figure(paired_figure(table, experiment), out, "paired", formats)
    written += save_figure(profit_figure(steps, experiment), out, "profit", formats)
    if experiment["compare"]["on"] == "policy":
        written += save_figure(crossover_figure(steps, experiment), out, "crossover", formats)
    if experiment.get("factorial"):
        table = factorial.experiment_effects(runs, experiment)
        table.to_csv(out / "effects.csv", index=False)
        written.append(out / "effects.csv")
        written += save_figure(effects_figure(table, experiment), out, "effects", formats)
    if _decomposed(runs, experiment):
        compare = experiment["compare"]
        table = decompose.decompose_gap(runs, compare["a"], compare["b"])
        table.to_csv(out / "decomposition.csv", index=False)
        written.append(out / "decomposition.csv")
        figure = decomposition_figure(table, experiment)
        written += save_figure(figure, out, "decomposition", formats)


def _decomposed(runs: pd.DataFrame, experiment: dict) -> bool:
    """Whether the sweep's gap is decomposed: two policies compared, factors recorded."""
    return experiment["compare"].get("on") == "policy" and decompose.has_factors(runs)


def read_manifest(path: Path) -> dict:
    """The sweep's manifest; ValueError naming the file if it is not one."""
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise ValueError(f"{path} {what}: give a sweep directory (with manifest.json)")
    file = path / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{file} does not exist: not a sweep directory") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON ({error})") from None
    experiment = manifest.get("experiment") if isinstance(manifest, dict) else None
    if not isinstance(experiment, dict) or not isinstance(experiment.get("compare"), dict):
        raise ValueError(f"{file} has no experiment with its comparison: not the manifest "
                         "of a clientsim-experiment sweep")  # fmt: skip
    return manifest


def _figure_files(out: Path, experiment: dict, formats, decomposed: bool = False) -> list[Path]:
    """The files `plot_dir` writes into `out` for `experiment` (`decomposed`: its gap too)."""
    names = ["paired", "profit"] + (["crossover"] if experiment["compare"].get("on") ==
                                      "policy" else [])  # fmt: skip
    tables = ["paired.csv"] + ["decomposition.csv"] * decomposed
    names += ["decomposition"] * decomposed
    if experiment.get("factorial"):
        tables, names = [*tables, "effects.csv"], [*names, "effects"]
    return [out / t for t in tables] + [out / f"{n}.{f}" for n in names for f in formats]


def check_figures(out: Path, files: list[Path]) -> None:
    """Raise UserError unless the `files` in the folder `out` can be written.

    `out` must be a folder (or absent) that can be written, and each file new or one that
    clientsim wrote (`sim.runs.owned.not_ours`); PermissionError if `out` is not writable.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder: move it to draw the figures")
    reason = unwritable(out)
    if reason is not None:
        raise PermissionError(reason)
    found = not_ours(files)
    if found is not None:
        raise UserError(f"{out} holds {found.name}, which clientsim did not write (or which "
                         "was changed since): move it to draw the figures")  # fmt: skip
