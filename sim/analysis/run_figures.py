"""The figures of one run (`clientsim-plot RUN_DIR` on what `clientsim` wrote).

Four figures into ``RUN_DIR/figures/``:

- ``policies``: mean cumulative profit per business and mean reputation, per policy, over the
  weeks (a business that exited keeps its last values: its frozen loss is still its profit);
- ``refusals``: the applicants each policy declined, by the reason (screen, full, deadline,
  prepayment), beside those it accepted;
- ``segments``: per client segment, the share of clients who had a job done and the mean
  profit a client gave its providers (payments less the hours spent at the loaded cost);
- ``whale``: the whale curve of the run's buyers, and each business's own curve over its
  clients (Cooper & Kaplan 1991), coloured by its policy.

Built on ``matplotlib.figure.Figure`` (Agg canvas); files are replaced only if clientsim
wrote them (`sim.analysis.figures.check_figures`).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sim.analysis.figure_style import (
    DPI,
    POLICY_COLOURS,
    number_ticks,
    policy_colour,
    save_figure,
)
from sim.analysis.figures import check_figures
from sim.analysis.stats import firm_whale
from sim.runs.owned import record_outputs
from sim.runs.summary import whale_curve

RUN_FILES = ("summary.json", "steps.parquet", "clients.parquet")  # and pairs.parquet, if written
FIGURES = ("policies", "refusals", "segments", "whale")
REASONS = {
    "declined_screen": "screened out",
    "declined_full": "no capacity",
    "declined_deadline": "deadline",
    "declined_prepayment": "prepayment refused",
}


def is_run_dir(path: Path) -> bool:
    """Whether `path` holds one run's output (what `clientsim` writes), not a sweep."""
    return (
        all((path / name).is_file() for name in RUN_FILES[:2])
        and not (path / "manifest.json").exists()
    )


def _policies(names) -> list[str]:
    known = [p for p in POLICY_COLOURS if p in set(names)]
    return known + sorted(set(names) - set(known))


def _heading(fig: Figure, summary: dict, what: str) -> None:
    fig.suptitle(f"One run: seed {summary.get('seed')}, {summary.get('weeks')} weeks\n{what}",
                 fontsize="medium")  # fmt: skip


def policies_figure(steps: pd.DataFrame, summary: dict) -> Figure:
    """Mean cumulative profit per business and mean reputation, per policy, over the weeks."""
    steps = steps.sort_values(["business_id", "step"])
    cum = steps.assign(cum_profit=steps.groupby("business_id")["profit"].cumsum())
    means = cum.groupby(["policy", "step"], observed=True)[["cum_profit", "reputation"]].mean()
    fig = Figure(figsize=(10, 4.4), dpi=DPI, layout="constrained")
    profit_ax, reputation_ax = fig.subplots(1, 2, sharex=True)
    for policy in _policies(means.index.get_level_values("policy").unique()):
        line = means.loc[policy]
        colour = policy_colour(policy)
        profit_ax.plot(line.index, line["cum_profit"], color=colour, label=policy)
        reputation_ax.plot(line.index, line["reputation"], color=colour, label=policy)
    profit_ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    profit_ax.yaxis.set_major_formatter(number_ticks())
    profit_ax.set_ylabel("mean cumulative profit per business (currency units)")
    reputation_ax.set_ylabel("mean reputation (stars, 1–5)")
    for ax in (profit_ax, reputation_ax):
        ax.set_xlabel("week")
    profit_ax.legend(loc="best", fontsize="small")
    _heading(fig, summary, "profit and reputation per policy (mean over its businesses)")
    return fig


def refusals_table(steps: pd.DataFrame) -> pd.DataFrame:
    """Per policy: applicants accepted and declined by reason, summed over businesses and weeks."""
    columns = ["accepted", *(c for c in REASONS if c in steps)]
    table = steps.groupby("policy", observed=True)[columns].sum().astype("int64")
    return table.loc[_policies(table.index)].rename(columns=REASONS)


def refusals_figure(steps: pd.DataFrame, summary: dict) -> Figure:
    """Applicants accepted and declined by reason, per policy (stacked bars, counts)."""
    table = refusals_table(steps)
    fig = Figure(figsize=(7.5, 4.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(table))
    colours = ["#bbbbbb", "#ee6677", "#4477aa", "#ccbb44", "#66ccee"]
    for column, colour in zip(table.columns, colours, strict=False):
        ax.bar(table.index, table[column], bottom=bottom, color=colour, label=column)
        bottom += table[column].to_numpy()
    ax.set_xlabel("policy")
    ax.set_ylabel("applicants over the run (count)")
    ax.legend(loc="best", fontsize="small")
    _heading(fig, summary, "applicants accepted and declined, by reason")
    return fig


def segments_table(clients: pd.DataFrame) -> pd.DataFrame:
    """Per segment: clients, share with a job done, mean profit contributed per client."""
    grouped = clients.groupby("segment", observed=True)
    return pd.DataFrame({
        "clients": grouped.size().astype("int64"),
        "served_share": grouped["jobs"].apply(lambda jobs: float((jobs > 0).mean())),
        "profit_per_client": grouped["profit_contributed"].mean(),
    })  # fmt: skip


def segments_figure(clients: pd.DataFrame, summary: dict) -> Figure:
    """Per client segment: the share served and the mean profit a client gave."""
    table = segments_table(clients)
    labels = [f"{s}\n({n})" for s, n in zip(table.index, table["clients"], strict=True)]
    fig = Figure(figsize=(10, 4.4), dpi=DPI, layout="constrained")
    served_ax, profit_ax = fig.subplots(1, 2)
    served_ax.bar(labels, table["served_share"], color="#4477aa")
    served_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    served_ax.set_ylabel("clients with a job done (share of the segment)")
    profit_ax.bar(labels, table["profit_per_client"], color="#228833")
    profit_ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    profit_ax.yaxis.set_major_formatter(number_ticks())
    profit_ax.set_ylabel("mean profit contributed per client (currency units)")
    for ax in (served_ax, profit_ax):
        ax.set_xlabel("segment (clients)")
    _heading(fig, summary, "who is served, and what a client of each segment gives")
    return fig


def whale_figure(clients: pd.DataFrame, pairs: pd.DataFrame | None, summary: dict) -> Figure:
    """The run's whale curve over its buyers, and each business's own over its clients.

    A business whose clients gave no positive total has no whale curve (shares of a total
    at or below zero mean nothing): it is left out, and the panel's title counts it. Without
    `pairs` (a run with ``pairs=false``) the second panel says so.
    """
    fig = Figure(figsize=(10, 4.6), dpi=DPI, layout="constrained")
    market_ax, firm_ax = fig.subplots(1, 2)
    curve = whale_curve(clients)
    market_ax.plot([0, *curve["client_share"]], [0, *curve["profit_share"]], color="black")
    market_ax.set_title("the market's buyers", fontsize="medium")
    if pairs is None:
        firm_ax.set_title("each business's own clients", fontsize="medium")
        firm_ax.text(0.5, 0.5, "not recorded: the run was made with pairs=false\n"
                     "(no pairs.parquet)", ha="center", va="center",
                     transform=firm_ax.transAxes)  # fmt: skip
    else:
        _firm_curves(firm_ax, pairs)
    for ax in (market_ax, firm_ax):
        ax.axhline(1, color="grey", linewidth=0.8, linestyle="--")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("clients, most profitable first (cumulative share)")
        ax.set_ylabel("cumulative share of total profit")
    _heading(fig, summary, "whale curves: above 100% the best clients pay for the loss-makers")
    return fig


def _firm_curves(ax, pairs: pd.DataFrame) -> None:
    """Each business's own whale curve (`firm_whale`), on a log scale, coloured by policy."""
    readings, curves = firm_whale(pairs)
    drawn = readings.dropna(subset=["peak"])["business_id"]
    labelled = set()
    for (business, policy), line in curves.groupby(["business_id", "policy"], observed=True):
        if business not in set(drawn):
            continue
        label = None if policy in labelled else policy
        labelled.add(policy)
        positive = line[line["profit_share"] > 0]  # a log scale: a firm's peak may be 40 times
        ax.plot(positive["client_share"], positive["profit_share"],
                color=policy_colour(policy), alpha=0.7, linewidth=1, label=label)  # fmt: skip
    ax.set_yscale("log")
    ax.set_title(f"each business's own clients, log scale\n({len(drawn)} of "
                 f"{len(readings)} businesses: those with a positive total)",
                 fontsize="medium")  # fmt: skip
    if labelled:
        ax.legend(loc="lower right", fontsize="small")


def plot_run(path: str | PathLike, *, formats=("png", "svg")) -> list[Path]:
    """Write one run's figures and tables into ``path/figures/``; return the files written.

    Raises:
        ValueError: `path` does not hold a run's output.
        UserError: ``figures`` holds a file of a figure's name that clientsim did not write.
    """
    path = Path(path)
    if not is_run_dir(path):
        raise ValueError(f"{path} holds no run (summary.json, steps.parquet): give what "
                         "clientsim wrote")  # fmt: skip
    summary = json.loads((path / "summary.json").read_text())
    steps = pd.read_parquet(path / "steps.parquet")
    clients = pd.read_parquet(path / "clients.parquet")
    written_pairs = path / "pairs.parquet"
    pairs = pd.read_parquet(written_pairs) if written_pairs.is_file() else None
    out = path / "figures"
    tables = ["refusals.csv", "segments.csv"]
    check_figures(out, [out / t for t in tables] + [out / f"{n}.{f}" for n in FIGURES
                                                    for f in formats])  # fmt: skip
    out.mkdir(exist_ok=True)
    written: list[Path] = []
    try:
        refusals_table(steps).to_csv(out / "refusals.csv")
        segments_table(clients).to_csv(out / "segments.csv")
        written += [out / t for t in tables]
        figures = {
            "policies": policies_figure(steps, summary),
            "refusals": refusals_figure(steps, summary),
            "segments": segments_figure(clients, summary),
            "whale": whale_figure(clients, pairs, summary),
        }
        for name, fig in figures.items():
            written += save_figure(fig, out, name, formats)
    finally:
        record_outputs(written)
    return written
