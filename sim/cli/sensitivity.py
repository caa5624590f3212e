"""`clientsim-sensitivity`: Morris screening and Sobol indices of the paired profit gap.

    clientsim-sensitivity morris [--trajectories R] [--levels L] [--seeds S] [overrides...]
    clientsim-sensitivity sobol [--samples N] [--params a,b,c] [overrides...]

`morris` writes morris.parquet and morris.md (mu, mu*, sigma, mu*_conf, rank per parameter and
output), morris.png (mu* against sigma) and morris_samples.parquet into `--out`; `sobol` takes
the top three parameters by mu* from `--out`/morris.parquet (or `--params`) and writes
sobol.parquet, sobol.md and sobol_samples.parquet. Overrides (Hydra syntax) change the base
market, e.g. `engine=agents market.price=120`. A bad value exits with code 2 and one line.

Files in `--out` replace only files clientsim wrote there (listed with their SHA-256 in
`--out`/.clientsim-outputs.json); a file of the same name that it did not write (or that was
changed since) makes the command refuse before any run. `--figure F` names its file: F is
replaced.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.cli.facts import UsageError, check_writable, record_outputs, refuse_foreign
from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose_checked
from sim.config.schema import ConfigError
from sim.runs.record import write_atomic, write_parquet
from sim.runs.run import package_version
from sim.runs.summary import SHORT_RUN_WEEK
from sim.validation import sensitivity as sa

PROG = "clientsim-sensitivity"
MORRIS = "Morris screening: mu, mu*, sigma of the paired profit gap per parameter"
SOBOL = "Sobol indices S1, ST (Saltelli sample) of the paired profit gap"


def check_out_dir(out: Path) -> None:
    """Raise UsageError unless the folder `out` can be made and written (before any run)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder")
    check_writable(out.absolute(), out)


def check_outputs(args: argparse.Namespace) -> None:
    """Raise UsageError unless every file of the method can be written (before any run).

    `--figure` must name a file in a writable folder; the files in `--out` must be new or
    clientsim's own (`sim.cli.facts.refuse_foreign`).
    """
    check_out_dir(args.out)
    figure = getattr(args, "figure", None)
    if figure is not None:
        if figure.is_dir():
            raise UsageError(f"--figure {figure}: is a directory; give a file name (.png)")
        check_writable(figure.absolute().parent, figure, "--figure")
    refuse_foreign(outputs(args), f"--out {args.out}")


def outputs(args: argparse.Namespace) -> list[Path]:
    """The files the method writes into `--out` (the figure too, unless `--figure` names it)."""
    names = ["parquet", "md"] if args.method == "sobol" else ["parquet", "md", "png"]
    names = [f"{args.method}.{suffix}" for suffix in names] + [f"{args.method}_samples.parquet"]
    if getattr(args, "figure", None) is not None:
        names.remove("morris.png")
    return [args.out / name for name in names]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit code 2)."""

    def error(self, message: str):
        """Print `prog: message` on stderr and exit 2."""
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def _integer(low: int, *, power_of_two: bool = False, even: bool = False):
    def parse(text: str) -> int:
        allowed = f"must be an integer >= {low}"
        allowed += ", a power of 2" if power_of_two else ", even" if even else ""
        try:
            value = int(text)
        except ValueError:
            value = None
        ok = value is not None and value >= low
        ok = ok and (not power_of_two or value & (value - 1) == 0) and (not even or value % 2 == 0)
        if not ok:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
        return value

    return parse


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    declared = [p.name for p in sa.PARAMETERS]
    unknown = [n for n in names if n not in declared]
    if unknown or not names:
        allowed = f"a comma-separated list of {', '.join(declared)}"
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    return list(dict.fromkeys(names))


def parser() -> Parser:
    """The command line of `clientsim-sensitivity`."""
    table = "\n".join(
        f"  {p.name:<17} {p.key} in [{p.bounds[0]:g}, {p.bounds[1]:g}]"
        + ("" if p.enabled else "  (disabled)")
        for p in sa.PARAMETERS
    )
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""),
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=f"Parameters (sim/validation/sensitivity.yaml):\n{table}")  # fmt: skip
    common = Parser(add_help=False)
    common.add_argument(
        "--seeds",
        type=_integer(1),
        default=1,
        help="seeds per sample, the same for every sample (default 1)",
    )
    common.add_argument(
        "--clients", type=_integer(2), help="market.n_clients (default: the config's)"
    )
    common.add_argument(
        "--weeks", type=_integer(SHORT_RUN_WEEK), help="steps, at least 13 (default: the config's)"
    )
    common.add_argument(
        "--jobs",
        type=_integer(1),
        default=os.cpu_count() or 1,
        help="runs in parallel (default: the cores)",
    )
    common.add_argument(
        "--params",
        type=_names,
        help="parameters to vary, e.g. threshold,ad_reach (default: morris every "
        "enabled one, sobol the top three by mu* of --out/morris.parquet)",
    )
    common.add_argument(
        "--out",
        type=Path,
        default=Path("results/sensitivity"),
        help="directory of the results (default results/sensitivity); files there are "
        "replaced only if clientsim wrote them",
    )
    common.add_argument("overrides", nargs="*", help="Hydra overrides of the base market")
    sub = p.add_subparsers(dest="method", required=True)
    m = sub.add_parser("morris", parents=[common], help=MORRIS, description=MORRIS)
    m.add_argument(
        "--trajectories",
        "-r",
        type=_integer(2),
        default=10,
        help="trajectories (default 10): (parameters + 1) samples each",
    )
    m.add_argument(
        "--levels", type=_integer(2, even=True), default=4, help="grid levels, even (default 4)"
    )
    m.add_argument(
        "--figure",
        type=Path,
        help="the figure's path, replaced if it exists (default --out/morris.png)",
    )
    s = sub.add_parser("sobol", parents=[common], help=SOBOL, description=SOBOL)
    s.add_argument(
        "--samples",
        "-N",
        type=_integer(2, power_of_two=True),
        default=64,
        help="base samples N, a power of 2 (default 64): N (parameters + 2) runs",
    )
    s.add_argument(
        "--top",
        type=_integer(1),
        default=3,
        help="without --params: how many of Morris's top parameters (default 3)",
    )
    s.add_argument("--rank-by", choices=list(sa.OUTPUTS), default="horizon",
                   help="the output whose mu* ranks them (default horizon)")  # fmt: skip
    return p


def base_config(args: argparse.Namespace) -> DictConfig:
    """The composed, validated and resolved base market of the study."""
    given = {o.partition("=")[0].lstrip("+~") for o in args.overrides}
    study = [o for o in sa.STUDY_BASE if o.partition("=")[0] not in given]
    flags = [f"market.n_clients={args.clients}"] if args.clients else []
    flags += [f"steps={args.weeks}"] if args.weeks else []
    try:
        cfg = compose_checked([*study, "progress=false", *args.overrides, *flags],
                               CONFIG_DIR, "config")  # fmt: skip
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.pop("hydra")
    validate(cfg)
    OmegaConf.resolve(cfg)
    if cfg.steps < SHORT_RUN_WEEK:
        raise ConfigError("steps", cfg.steps, f"must be at least {SHORT_RUN_WEEK} (the gap is "
                          f"read at week {SHORT_RUN_WEEK})")  # fmt: skip
    return cfg


class Clock:
    """Progress lines on stdout: runs done, elapsed, left (at most one every `every` s)."""

    def __init__(self, *, every: float = 10.0) -> None:
        self.every = every
        self.started = self.shown = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        """Print a line if `every` seconds have passed since the last (and at the end)."""
        now = time.monotonic()
        if now - self.shown < self.every and done < total:
            return
        self.shown, elapsed = now, now - self.started
        print(f"{PROG}: {done}/{total} runs, {clock(elapsed)} elapsed, "
              f"about {clock(elapsed / done * (total - done))} left", flush=True)  # fmt: skip

    @property
    def seconds(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self.started


def clock(seconds: float) -> str:
    """Seconds as `1 h 02 min`, `3 min 05 s` or `42 s`."""
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _seeds(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"


def _run(args, base, params, x) -> tuple:
    """Evaluate every sample of `x`; return its outputs and the run's description."""
    configs = [sa.sample_config(base, params, row) for row in x]
    seeds = [base.seed + i for i in range(args.seeds)]
    runs = len(configs) * len(seeds)
    print(f"{PROG}: {args.method}: {len(params)} parameters, {len(configs)} samples x "
          f"{_n(len(seeds), 'seed')} = {runs} runs of {base.market.n_clients:,} clients x "
          f"{base.steps} weeks, {args.jobs} at a time -> {args.out}", flush=True)  # fmt: skip
    timer = Clock()
    y = sa.evaluate(configs, seeds, jobs=args.jobs, progress=timer)
    made = (f"{len(configs)} samples x {_n(len(seeds), 'seed')} (model {_seeds(seeds)}, "
            f"the same for every sample) = {runs} runs of {base.market.n_clients:,} clients x "
            f"{base.steps} weeks ({base.engine} engine), {_n(args.jobs, 'job')}, "
            f"{clock(timer.seconds)}")  # fmt: skip
    return y, made


def morris(args, base: DictConfig, params) -> None:
    """Run Morris's screening and write its table, figure and samples."""
    x = sa.morris_x(params, trajectories=args.trajectories, levels=args.levels)
    y, made = _run(args, base, params, x)
    table = sa.morris_table(params, x, y.mean(axis=1), levels=args.levels)
    write_parquet(args.out / "morris.parquet", table)
    write_parquet(args.out / "morris_samples.parquet", sa.samples_frame(params, x, y, base))
    made += f"; {args.trajectories} trajectories, {args.levels} levels"
    _write_text(args.out / "morris.md", morris_markdown(table, params, made, args))
    figure = args.figure or args.out / "morris.png"
    write_atomic(figure, lambda tmp: morris_figure(table, base.steps, tmp))
    record_outputs([*outputs(args), figure])
    for output in sa.OUTPUTS:
        print(f"{PROG}: top three by mu* ({output}): {', '.join(sa.top(table, 3, by=output))}")
    print(f"{PROG}: wrote morris.parquet, morris.md, morris_samples.parquet in {args.out}; "
          f"figure {figure}")  # fmt: skip


def sobol(args, base: DictConfig, params) -> None:
    """Compute Sobol indices and write their table and samples."""
    x = sa.sobol_x(params, samples=args.samples)
    y, made = _run(args, base, params, x)
    table = sa.sobol_table(params, y.mean(axis=1))
    write_parquet(args.out / "sobol.parquet", table)
    write_parquet(args.out / "sobol_samples.parquet", sa.samples_frame(params, x, y, base))
    made += f"; N = {args.samples} (Saltelli, no second order); {args.source}"
    _write_text(args.out / "sobol.md", sobol_markdown(table, params, made, args))
    record_outputs(outputs(args))
    print(f"{PROG}: wrote sobol.parquet, sobol.md, sobol_samples.parquet in {args.out}")


def _sobol_params(args, base: DictConfig) -> list[str]:
    if args.params:
        args.source = "parameters from --params"
        return args.params
    table = args.out / "morris.parquet"
    if not table.is_file():
        raise UsageError(f"--params not given, and no Morris table {table} to take the top "
                         f"{args.top} from: run morris first, or give --params")  # fmt: skip
    names = sa.top(pd.read_parquet(table), args.top, by=args.rank_by)
    args.source = f"the top {args.top} by mu* ({args.rank_by}) of {table}"
    print(f"{PROG}: {args.source}: {', '.join(names)}")
    return names


def main(argv: list[str] | None = None) -> None:
    """Entry point of `clientsim-sensitivity`."""
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args, extra = p.parse_known_args(argv)  # overrides may also follow the options
    unknown = [e for e in extra if e.startswith("-") or "=" not in e]
    if unknown:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*args.overrides, *extra]
    args.command = " ".join([PROG, *map(shlex.quote, argv)])
    try:
        check_outputs(args)
        base = base_config(args)
        names = _sobol_params(args, base) if args.method == "sobol" else args.params
        params, skipped = sa.select(names, base)
        for line in skipped:
            print(f"{PROG}: skipped {line}")
        if not params:
            raise UsageError(f"--params={','.join(names or [])}: no parameter left to vary")
        (morris if args.method == "morris" else sobol)(args, base, params)
    except (ConfigError, UsageError) as error:
        p.error(str(error))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        raise SystemExit(130) from None


# --- markdown ---------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def markdown_table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    """A GitHub markdown table of `frame`, numbers right-aligned, each column's format given."""
    cells = [[format(v, formats.get(c, "")) for c, v in row.items()] for _, row in frame.iterrows()]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rule = ["---:" if n else "---" for n in numeric]
    lines = [list(frame.columns), rule, *cells]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines) + "\n"


def _header(title: str, made: str, args) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"# {title}\n\nMade by `{args.command}` on {stamp} (clientsim "
            f"{package_version()}): {made}.\n\n")  # fmt: skip


def _declared(params) -> pd.DataFrame:
    return pd.DataFrame({
        "parameter": [p.name for p in params], "key": [f"`{p.key}`" for p in params],
        "bounds": [f"[{p.bounds[0]:g}, {p.bounds[1]:g}]" for p in params],
    })  # fmt: skip


def morris_markdown(table: pd.DataFrame, params, made: str, args) -> str:
    """morris.md: the command, the runs, and mu, mu*, sigma per output ranked by mu*."""
    shown = table.merge(_declared(params), on="parameter")
    shown = shown[["output", "rank", "parameter", "key", "bounds",
                   "mu_star", "mu_star_conf", "mu", "sigma"]]  # fmt: skip
    money = {c: ",.0f" for c in ("mu_star", "mu_star_conf", "mu", "sigma")}
    return (_header(f"Morris screening of the paired profit gap {sa.A} − {sa.B}", made, args)
            + "mu, mu* (mean absolute elementary effect), its 95% half-width and sigma are in "
            "currency units: the change of the gap (mean cumulative profit per business) per "
            "move across a parameter's whole range. Rank 1 = largest mu*.\n\n"
            + markdown_table(shown, money))  # fmt: skip


def sobol_markdown(table: pd.DataFrame, params, made: str, args) -> str:
    """sobol.md: the command, the runs, and S1, ST with their 95% half-widths per output."""
    shown = table.merge(_declared(params), on="parameter")
    shown = shown[["output", "parameter", "key", "bounds", "S1", "S1_conf", "ST", "ST_conf"]]
    fixed = "every other parameter at the base market's value"
    return (
        _header(f"Sobol indices of the paired profit gap {sa.A} − {sa.B}", made, args)
        + f"First-order (S1) and total (ST) indices with 95% half-widths; {fixed}.\n\n"
        + markdown_table(shown, dict.fromkeys(["S1", "S1_conf", "ST", "ST_conf"], ".3f"))
    )


# --- the figure -------------------------------------------------------------------------


def morris_figure(table: pd.DataFrame, weeks: int, path: Path) -> None:
    """mu* against sigma, one panel per output, points labelled, in thousands of currency units.

    Points far right matter most; points above the line sigma = mu* act through interactions
    or non-linearly (their effects change with the other parameters).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    when = {"week_13": f"at week {SHORT_RUN_WEEK}", "horizon": f"at the horizon (week {weeks})"}
    for ax, (output, rows) in zip(axes, table.groupby("output", sort=False), strict=True):
        mu_star, sigma = rows["mu_star"] / 1e3, rows["sigma"] / 1e3
        ax.errorbar(mu_star, sigma, xerr=rows["mu_star_conf"] / 1e3, fmt="o", ms=5,
                    color="tab:blue", ecolor="tab:blue", elinewidth=0.8, alpha=0.8)  # fmt: skip
        top = max(mu_star.max(), sigma.max()) * 1.15 or 1.0
        for name, xy, text in _labels(rows["parameter"], mu_star / top, sigma / top):
            ax.annotate(
                name,
                xy,
                xytext=text,
                xycoords="axes fraction",
                fontsize=8,
                textcoords="axes fraction",
                arrowprops=_LEADER if xy != text else None,
            )
        ax.plot([0, top], [0, top], ls=":", color="grey", lw=1, label="σ = μ*")
        ax.set(xlim=(0, top), ylim=(0, top), title=f"gap {when[str(output)]}",
               xlabel="μ*, mean |elementary effect| (thousand currency units)",
               ylabel="σ of the elementary effects (thousand currency units)")  # fmt: skip
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(f"Morris screening of the paired profit gap {sa.A} − {sa.B} "
                 "(mean cumulative profit per business)")  # fmt: skip
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


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
