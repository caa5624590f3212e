"""The Bass docking's figure: the adopter share's band over seeds against Bass's curves.

A sweep of `experiments/bass.yaml` (one business that keeps every client) is drawn here, into
``DIR/figures/bass.png`` (and ``bass.csv``); any other sweep by `sim.analysis.figures`.
`plot_sweep` draws whichever a sweep directory holds (`clientsim-plot DIR`).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from sim.analysis import stats as analysis
from sim.analysis.figures import (
    DPI,
    check_figures,
    plot_dir,
    policy_colour,
    read_manifest,
    save_figure,
    title,
)
from sim.runs.owned import record_outputs
from sim.validation import docking


def plot_sweep(path: str | PathLike, *, formats=("png", "svg")) -> list[Path]:
    """Write a sweep's figures into ``path/figures/``: a docking's, else the comparison's.

    Args:
        path: the sweep directory (manifest.json, runs.parquet, steps.parquet).
        formats: file formats of the figures, e.g. ``("png", "svg")``.

    Returns:
        The files written (`sim.analysis.figures.plot_dir` says which, and what it raises).
    """
    path = Path(path)
    experiment = read_manifest(path)["experiment"]
    if "bass" not in experiment.get("figures", ()):
        return plot_dir(path, formats=formats)
    steps = analysis.load_steps(path)
    if steps.empty:
        raise ValueError(f"no successful run in {path}")
    out = path / "figures"
    check_figures(out, [out / "bass.csv", *(out / f"bass.{f}" for f in formats)])
    out.mkdir(exist_ok=True)
    written = _bass_outputs(path, steps, experiment, formats)
    record_outputs(written)
    return written


def bass_table(steps: pd.DataFrame, config) -> pd.DataFrame:
    """Adopter shares over the seeds of a Bass docking sweep, with Bass's curves.

    With one business that keeps every client, a week's acquisitions are its new adopters,
    so their running sum over the weeks is the number of clients ever served.

    Args:
        steps: the sweep's steps.parquet (one design point).
        config: the point's config (`sim.validation.docking.bass_parameters` reads p and q from it).
    """
    n = config.market.n_clients
    wide = steps.pivot_table(index="step", columns="seed", values="acquisitions", aggfunc="sum")
    shares = wide.sort_index().cumsum() / n
    ref = docking.deterministic_map(*docking.bass_parameters(config), n, len(shares))
    return pd.DataFrame({
        "step": shares.index, "seeds": shares.shape[1], "mean": shares.mean(axis=1).to_numpy(),
        "low": shares.quantile(0.05, axis=1).to_numpy(),
        "high": shares.quantile(0.95, axis=1).to_numpy(),
        "closed_form": ref["closed_form"].to_numpy(), "discrete": ref["discrete"].to_numpy(),
    })  # fmt: skip


def bass_figure(table: pd.DataFrame, experiment: dict, config) -> Figure:
    """Docking to Bass: the adopter share's band over seeds against Bass's closed form."""
    p, q = docking.bass_parameters(config)
    fig = Figure(figsize=(7.5, 4.8), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    colour = policy_colour("serve_all")
    ax.fill_between(table["step"], table["low"], table["high"], color=colour, alpha=0.3,
                    linewidth=0, label="model: 5–95% of seeds")  # fmt: skip
    ax.plot(table["step"], table["mean"], color=colour, linewidth=1.5, label="model: mean")
    ax.plot(table["step"], table["closed_form"], color="black", linewidth=1.2,
            label="Bass closed form F((w + 1)/52)")  # fmt: skip
    ax.plot(table["step"], table["discrete"], color="#ee6677", linewidth=1.2, linestyle="--",
            label="one-step map of the discrete process")  # fmt: skip
    ax.set_xlabel("week")
    ax.set_ylabel("share of clients ever served (adopters / N)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, table["step"].max())
    ax.legend(loc="lower right", fontsize="small")
    error = (table["mean"] - table["closed_form"]).abs().max()
    seeds = int(table["seeds"].iloc[0])
    what = (f"p = {p:.3g}, q = {q:.3g} per year, N = {config.market.n_clients:,}, {seeds} "
            f"seeds; max |mean − closed form| = {error:.4f} of N")  # fmt: skip
    title(fig, experiment, what)
    return fig


def _bass_outputs(path: Path, steps: pd.DataFrame, experiment: dict, formats) -> list[Path]:
    """The docking figure and its table (`bass.csv`) of a Bass docking sweep."""
    point = read_manifest(path)["points"][0]
    config = json.loads((path / "points" / point["hash"] / "point.json").read_text())["config"]
    config = OmegaConf.create(config)
    table = bass_table(steps[steps["point"] == point["point"]], config)
    out = path / "figures"
    table.to_csv(out / "bass.csv", index=False)
    return [
        out / "bass.csv",
        *save_figure(bass_figure(table, experiment, config), out, "bass", formats),
    ]
