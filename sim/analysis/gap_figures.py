"""The figures of what decides an answer: a profit gap decomposed, a factorial's effects.

``decomposition_figure`` draws ``sim.analysis.decompose.decompose_gap``'s table, and
``effects_figure`` ``sim.analysis.factorial.experiment_effects``'; `sim.analysis.figures.plot_dir`
writes both into a sweep's ``figures/`` when the sweep has them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.analysis import stats as analysis
from sim.analysis.figure_style import (
    DPI,
    FALLBACK_COLOURS,
    categorical_ticks,
    design_order,
    number_ticks,
    point_label,
    title,
)

PART_COLOURS = {"quality": "#228833", "volume": "#4477aa", "capacity": "#ccbb44",
                "exits": "#aa3377"}  # fmt: skip


def decomposition_figure(table: pd.DataFrame, experiment: dict) -> Figure:
    """The gap a − b at the horizon split into its parts (``decompose.PARTS``), per point.

    `table` is ``sim.analysis.decompose.decompose_gap``'s: a bar per part with its paired t
    interval, the gap as a black diamond with its own; the bars add up to the diamond.
    """
    keys = list(table.columns[: list(table.columns).index("a")])
    table = table.loc[design_order(table[keys]).index] if keys else table
    points = table[keys].drop_duplicates() if keys else pd.DataFrame(index=[0])
    fig = Figure(figsize=(max(6.4, 1.6 * len(points) + 2), 4.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for offset, part in zip((-0.32, -0.16, 0.0, 0.16), PART_COLOURS, strict=True):
        rows = table[table["part"] == part]
        error = [rows["mean_diff"] - rows["ci_low"], rows["ci_high"] - rows["mean_diff"]]
        at = np.arange(len(rows)) + offset
        ax.bar(at, rows["mean_diff"], width=0.15, color=PART_COLOURS[part], label=part)
        ax.errorbar(at, rows["mean_diff"], yerr=error, fmt="none", color="black", capsize=3)
    gap = table[table["part"] == "gap"]
    error = [gap["mean_diff"] - gap["ci_low"], gap["ci_high"] - gap["mean_diff"]]
    ax.errorbar(np.arange(len(gap)) + 0.32, gap["mean_diff"], yerr=error, fmt="D", color="black",
                capsize=5, label="gap")  # fmt: skip
    categorical_ticks(ax, points.reset_index(drop=True)[keys] if keys else points.iloc[:, :0])
    ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.yaxis.set_major_formatter(number_ticks())
    ax.set_ylabel("gap in profit per business (currency units)")
    ax.legend(fontsize="small")
    a, b = table["a"].iloc[0], table["b"].iloc[0]
    title(
        fig,
        experiment,
        f"{a} − {b} at the horizon = quality (margin per billed hour) + volume (billed "
        "hours) + capacity (fixed costs) + exits (failed businesses); 95% paired t intervals",
    )
    return fig


def effects_figure(table: pd.DataFrame, experiment: dict) -> Figure:
    """A factorial's main effects and two-way interactions on the gap, one panel per metric.

    `table` is ``sim.analysis.factorial.experiment_effects``': a point per term and group
    (e.g. market) with its paired t interval; main effects first.
    """
    metrics = list(dict.fromkeys(table["metric"]))
    by = [c for c in table.columns[1 : list(table.columns).index("term")]]
    terms = list(dict.fromkeys(table["term"]))
    fig = Figure(figsize=(4.2 * len(metrics) + 1, 0.32 * len(terms) + 2.2), dpi=DPI,
                 layout="constrained")  # fmt: skip
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    groups = list(analysis.groups(table, by))
    labels = {values and point_label(values) or "all" for values, _ in groups}
    for ax, metric in zip(axes, metrics, strict=True):
        for i, (values, group) in enumerate(analysis.groups(table[table["metric"] == metric], by)):
            at = np.arange(len(group)) + (i - (len(groups) - 1) / 2) * 0.25
            error = [group["effect"] - group["ci_low"], group["ci_high"] - group["effect"]]
            ax.errorbar(group["effect"], at, xerr=error, fmt="o", capsize=3,
                        color=FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)],
                        label=point_label(values) or "all")  # fmt: skip
        ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.xaxis.set_major_formatter(number_ticks())
        ax.set_title(metric, fontsize="medium")
        ax.set_xlabel("effect on the gap (metric units)")
    axes[0].set_yticks(range(len(terms)), terms)
    axes[0].invert_yaxis()
    if len(labels) > 1:
        axes[-1].legend(fontsize="small")
    compare = experiment["compare"]
    title(
        fig,
        experiment,
        f"effects on {compare['a']} − {compare['b']}: switching a factor on "
        "(main), half the change of one's effect with another on (×); 95% paired t intervals",
    )
    return fig
