"""A sensitivity study run and written: its tables, samples, markdown and the Morris figure.

`morris` and `sobol` (the library side of `clientsim-sensitivity`) evaluate a sample
(`sim.validation.sensitivity`), analyse it with SALib and write into a folder:
`<method>.parquet` (the indices), `<method>_samples.parquet` (one row per sample),
`<method>_positive.parquet` (P(gap > 0) over the points, and with each binary factor off and
on: `sa.positive`), `<method>.md` (the command, the runs, the tables) and, for Morris, the
figure of mu* against sigma drawn by SALib's `covariance_plot`. Every file is noted as clientsim's
(`sim.runs.owned`), so a later study may replace it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig
from SALib.plotting.morris import covariance_plot
from tqdm import tqdm

from sim.analysis.markdown import markdown_table
from sim.runs.owned import record_outputs
from sim.runs.record import package_version, write_atomic, write_parquet
from sim.runs.summary import SHORT_RUN_WEEK
from sim.validation import sensitivity as sa


@dataclass(frozen=True)
class Study:
    """How a study runs and where it writes.

    Attributes:
        base: the base market's validated config (`sim.validation.sensitivity.base_config`).
        params: the parameters varied.
        seeds: seeds per sample, the same for every sample (common random numbers).
        jobs: runs in parallel (joblib).
        out: the folder of the results.
        command: the command line that made it (shown in the markdown).
        progress: called with (runs done, runs in all) as each run finishes.
    """

    base: DictConfig
    params: list[sa.Parameter]
    seeds: int
    jobs: int
    out: Path
    command: str
    progress: Callable[[int, int], None] | None = None

    def runs(self, samples: int) -> str:
        """What `samples` samples run: samples x seeds = runs of clients x weeks."""
        return (f"{samples} samples x {_n(self.seeds, 'seed')} = {samples * self.seeds} runs "
                f"of {self.base.market.n_clients:,} clients x {self.base.steps} weeks")  # fmt: skip


def morris(study: Study, *, trajectories: int, levels: int, figure: Path | None = None):
    """Morris's screening of the study's parameters; write its files; return its tables.

    `figure`: the figure's path (default `out/morris.png`). Returns the table of mu, mu*,
    sigma, mu*'s 95% half-width and the rank by mu* per output and parameter
    (`sa.morris_table`), and that of P(gap > 0) (`sa.positive`).
    """
    x = sa.morris_x(study.params, trajectories=trajectories, levels=levels)
    y, made = _evaluate(study, x)
    table = sa.morris_table(study.params, x, y.mean(axis=1), levels=levels)
    chance = sa.positive(study.params, x, y)
    made += f"; {trajectories} trajectories, {levels} levels"
    text = morris_markdown(table, study, made) + positive_markdown(chance, "Morris's points")
    figure = figure or study.out / "morris.png"
    written = _write(study, "morris", (table, chance), x, y, text)
    binary = {p.name for p in study.params if p.binary}
    write_atomic(figure, lambda tmp: morris_figure(table, study.base.steps, tmp, binary=binary))
    record_outputs([*written, figure])
    return table, chance


def sobol(study: Study, *, samples: int, source: str):
    """Sobol indices (S1, ST) of the study's parameters; write its files; return its tables.

    `source`: where the parameters came from (shown in the markdown). Returns the indices'
    table (`sa.sobol_table`) and that of P(gap > 0) (`sa.positive`).
    """
    x = sa.sobol_x(study.params, samples=samples)
    y, made = _evaluate(study, x)
    table = sa.sobol_table(study.params, y.mean(axis=1))
    chance = sa.positive(study.params, x, y)
    made += f"; N = {samples} (Saltelli, no second order); {source}"
    text = sobol_markdown(table, study, made) + positive_markdown(chance, "Saltelli's points")
    record_outputs(_write(study, "sobol", (table, chance), x, y, text))
    return table, chance


def outputs(method: str, out: Path, *, figure: bool = True) -> list[Path]:
    """The files `method` writes into `out` (Morris's figure too, if `figure`)."""
    suffixes = ["parquet", "md", "png"] if method == "morris" and figure else ["parquet", "md"]
    return [out / f"{method}.{s}" for s in suffixes] + [
        out / f"{method}_samples.parquet",
        out / f"{method}_positive.parquet",
    ]


def _evaluate(study: Study, x: np.ndarray) -> tuple[np.ndarray, str]:
    """The outputs of every sample of `x` (samples, seeds, outputs), and how they were made."""
    configs = [sa.sample_config(study.base, study.params, row) for row in x]
    seeds = [study.base.seed + i for i in range(study.seeds)]
    started = time.monotonic()
    y = sa.evaluate(configs, seeds, jobs=study.jobs, progress=study.progress)
    first, last = seeds[0], seeds[-1]
    which = f"seed {first}" if first == last else f"seeds {first}–{last}"
    made = (f"{study.runs(len(configs))} ({study.base.engine} engine; model {which}, the same "
            f"for every sample), {_n(study.jobs, 'job')}, "
            f"{tqdm.format_interval(time.monotonic() - started)}")  # fmt: skip
    return y, made


def _write(study, method, tables, x, y, text) -> list[Path]:
    table, chance = tables
    write_parquet(study.out / f"{method}.parquet", table)
    write_parquet(study.out / f"{method}_positive.parquet", chance)
    samples = sa.samples_frame(study.params, x, y, study.base)
    write_parquet(study.out / f"{method}_samples.parquet", samples)
    write_atomic(study.out / f"{method}.md", lambda tmp: tmp.write_text(text))
    return outputs(method, study.out, figure=False)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- markdown ---------------------------------------------------------------------------


def _header(title: str, made: str, study: Study) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"# {title}\n\nMade by `{study.command}` on {stamp} (clientsim "
            f"{package_version()}): {made}.\n\n")  # fmt: skip


def _declared(params) -> pd.DataFrame:
    return pd.DataFrame({
        "parameter": [p.name for p in params], "key": [f"`{p.key}`" for p in params],
        "bounds": [bounds_text(p) for p in params],
    })  # fmt: skip


def bounds_text(p: sa.Parameter) -> str:
    """A parameter's range as shown: `[low, high]`, a switch's `off/on above 0.5`, a choice's."""
    if p.map == "switch":
        return f"off/on above {sa.CUT:g}"
    if p.map == "choice":
        return f"{p.options[0]}/{p.options[1]} above {sa.CUT:g}"
    return f"[{p.bounds[0]:g}, {p.bounds[1]:g}]"


def positive_line(chance: pd.DataFrame, output: str = "horizon") -> str:
    """P(gap > 0) over every point of `output`, in one line with its interval and runs."""
    row = chance[(chance["output"] == output) & (chance["factor"] == "all")].iloc[0]
    return (f"P(gap > 0) {output}: {row['share']:.2f} [{row['ci_low']:.2f}, "
            f"{row['ci_high']:.2f}] of {row['points']} points (seed means; 95% Clopper–Pearson), "
            f"{row['run_share']:.2f} of {row['runs']} runs")  # fmt: skip


def _of(counts, totals) -> list[str]:
    return [f"{k} of {n}" for k, n in zip(counts, totals, strict=True)]


def positive_markdown(chance: pd.DataFrame, points: str) -> str:
    """The P(gap > 0) section of a study's markdown: over all points, and per binary factor."""
    pairs = zip(chance["ci_low"], chance["ci_high"], strict=True)
    shown = chance.assign(
        interval=[f"[{lo:.2f}, {hi:.2f}]" for lo, hi in pairs],
        points=_of(chance["positive"], chance["points"]),
        runs=_of(chance["runs_positive"], chance["runs"]),
    )
    shown = shown[["output", "factor", "level", "points", "share", "interval", "runs", "run_share"]]
    return (f"\n\n## P(gap > 0)\n\nThe share of {points} whose gap (mean over the seeds) is "
            "above 0, with its 95% Clopper–Pearson interval (the points taken as independent "
            "draws), and the share of single (point, seed) runs above 0; over every point "
            "(`all`) and with each binary factor off and on.\n\n"
            + markdown_table(shown, {"share": ".2f", "run_share": ".2f"}))  # fmt: skip


def morris_markdown(table: pd.DataFrame, study: Study, made: str) -> str:
    """morris.md: the command, the runs, and mu, mu*, sigma per output ranked by mu*."""
    shown = table.merge(_declared(study.params), on="parameter")
    shown = shown[["output", "rank", "parameter", "key", "bounds",
                   "mu_star", "mu_star_conf", "mu", "sigma"]]  # fmt: skip
    money = dict.fromkeys(("mu_star", "mu_star_conf", "mu", "sigma"), ",.0f")
    return (_header(f"Morris screening of the paired profit gap {sa.A} − {sa.B}", made, study)
            + "mu, mu* (mean absolute elementary effect), its 95% half-width and sigma are in "
            "currency units: the change of the gap (mean cumulative profit per business) per "
            "move across a parameter's whole range. Rank 1 = largest mu*.\n\n"
            + markdown_table(shown, money))  # fmt: skip


def sobol_markdown(table: pd.DataFrame, study: Study, made: str) -> str:
    """sobol.md: the command, the runs, and S1, ST with their 95% half-widths per output."""
    shown = table.merge(_declared(study.params), on="parameter")
    shown = shown[["output", "parameter", "key", "bounds", "S1", "S1_conf", "ST", "ST_conf"]]
    fixed = "every other parameter at the base market's value"
    return (
        _header(f"Sobol indices of the paired profit gap {sa.A} − {sa.B}", made, study)
        + f"First-order (S1) and total (ST) indices with 95% half-widths; {fixed}.\n\n"
        + markdown_table(shown, dict.fromkeys(["S1", "S1_conf", "ST", "ST_conf"], ".3f"))
    )


# --- the figure -------------------------------------------------------------------------


#: The figure labels the parameters with the largest mu* in each panel, this many.
LABELLED = 12


def morris_figure(table: pd.DataFrame, weeks: int, path: Path, *, binary=frozenset()) -> None:
    """mu* against sigma, one panel per output (SALib's `covariance_plot`), points labelled.

    In thousands of currency units. Points far right matter most; points above the line
    sigma = mu* act through interactions or non-linearly (their effects change with the
    other parameters). The `LABELLED` largest mu* of each panel are labelled; the parameters
    named in `binary` (switches, the composition) are drawn as red squares.
    """
    fig = Figure(figsize=(12, 5.6), layout="constrained")
    axes = fig.subplots(1, 2)
    when = {"week_13": f"at week {SHORT_RUN_WEEK}", "horizon": f"at the horizon (week {weeks})"}
    for ax, (output, rows) in zip(axes, table.groupby("output", sort=False), strict=True):
        si = {key: rows[key].to_numpy() / 1e3 for key in ("mu_star", "sigma", "mu_star_conf")}
        si["names"] = list(rows["parameter"])
        covariance_plot(ax, si, unit="(thousand currency units)")
        ax.errorbar(si["mu_star"], si["sigma"], xerr=si["mu_star_conf"], fmt="none",
                    ecolor="grey", elinewidth=0.8)  # fmt: skip
        on = np.isin(si["names"], sorted(binary))
        ax.scatter(si["mu_star"][on], si["sigma"][on], marker="s", c="tab:red", zorder=3)
        right, top = ax.get_xlim()[1], ax.get_ylim()[1]
        shown = np.argsort(-si["mu_star"], kind="stable")[:LABELLED]
        names = [si["names"][i] for i in shown]
        xs, ys = si["mu_star"][shown] / right, si["sigma"][shown] / top
        for name, xy, text in _labels(names, xs, ys):
            ax.annotate(name, xy, xytext=text, xycoords="axes fraction", fontsize=8,
                        textcoords="axes fraction", color="tab:red" if name in binary else "k",
                        arrowprops=_LEADER if xy != text else None)  # fmt: skip
        ax.set_title(f"gap {when[str(output)]}")
        ax.set_ylabel("σ of the elementary effects (thousand currency units)")
    fig.suptitle(f"Morris screening of the paired profit gap {sa.A} − {sa.B} "
                 "(mean cumulative profit per business)\n"
                 f"labelled: the {LABELLED} largest μ* of each panel; red squares: binary "
                 "factors (a structural switch, the market's composition), on above 0.5",
                 fontsize=11)  # fmt: skip
    fig.savefig(path, dpi=110, format="png")


_LEADER = {"arrowstyle": "-", "color": "grey", "lw": 0.5}


def _labels(names, xs, ys, *, width=0.2, height=0.04):
    """Label positions (axes fractions) that do not overlap: moved down until free."""
    placed: list[tuple[float, float]] = []
    for name, x, y in sorted(zip(names, xs, ys, strict=True), key=lambda p: -p[2]):
        lx, ly = x + 0.01, y + 0.01
        while any(abs(lx - px) < width and abs(ly - py) < height for px, py in placed):
            ly -= height
        placed.append((lx, ly))
        yield name, (x, y), (lx, ly)
