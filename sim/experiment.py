"""`clientsim-experiment`: every hypothesis as one command (the front door to Hydra's multirun).

    clientsim-experiment list
    clientsim-experiment run strategy                 # in parallel on this machine (joblib)
    clientsim-experiment run strategy --smoke         # a tiny version in seconds
    clientsim-experiment run threshold --launcher submitit_slurm --partition cpu --time 60

`run NAME` is `clientsim -m +experiment=NAME` with the seeds split into chunks (one job per
design point and chunk), a launcher chosen by a flag, and the sweep directory
`results/NAME/<timestamp>/` (or `--dir`, which also resumes an interrupted or failed sweep).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import product
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from sim.cli import CONFIG_DIR, compose
from sim.config import ConfigError
from sim.sweep import METRICS, n_chunks
from sim.validation import validate

EXPERIMENTS_DIR = CONFIG_DIR / "experiment"
LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")
#: --smoke: a small market over half a year, two seeds, the first and last value of every
#: swept axis, so that every experiment runs in seconds.
SMOKE = ("steps=26", "market.n_clients=300", "experiment.seeds=2", "experiment.chunk_size=2")


def names() -> list[str]:
    """The experiments, by name (the files of `experiments/`)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def design(name: str, overrides: list[str] = ()) -> tuple[object, list[str], list[list[str]]]:
    """The experiment's composed config, its fixed overrides and its design points.

    A design point is the list of overrides of one job, before the seeds are chunked:
    the cartesian product of the experiment's `hydra.sweeper.params` and of any sweep in
    `overrides` (a value list `key=a,b`), as Hydra's basic sweeper forms it.
    """
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    cfg = compose([f"+experiment={name}", *fixed], return_hydra_config=True)
    swept = {key: str(value) for key, value in cfg.hydra.sweeper.params.items()}
    for override in parsed:
        if override.is_sweep_override():
            swept[override.get_key_element()] = ",".join(override.sweep_string_iterator())
    axes = [[f"{key}={value}" for value in _values(text)] for key, text in swept.items()]
    return cfg, fixed, [list(point) for point in product(*axes)]


def smoke_axes(name: str) -> list[str]:
    """Sweep overrides that keep the first and last value of every axis (for --smoke)."""
    cfg = compose([f"+experiment={name}"], return_hydra_config=True)
    axes = []
    for key, text in cfg.hydra.sweeper.params.items():
        values = _values(str(text))
        axes.append(f"{key}={','.join(dict.fromkeys([values[0], values[-1]]))}")
    return axes


def _values(text: str) -> list[str]:
    parsed = OverridesParser.create().parse_override(f"x={text}")
    if parsed.is_sweep_override():
        return list(parsed.sweep_string_iterator())
    return [parsed.get_value_element_as_str()]


def check_design(name: str, overrides: list[str]) -> tuple[object, list[list[str]]]:
    """Validate every design point before the first job runs; raise ConfigError."""
    if name not in names():
        raise ConfigError("experiment", name, f"allowed: {', '.join(names())}")
    cfg, fixed, points = design(name, overrides)
    base = compose([f"+experiment={name}", *fixed])
    parser = OverridesParser.create()
    for point in points:
        parsed = parser.parse_overrides(point)
        if any("/" in o.get_key_element() for o in parsed):  # a group choice: compose it
            validate(compose([f"+experiment={name}", *fixed, *point]))
            continue
        candidate = base.copy()  # a plain value: cheaper to set on the composed config
        for override in parsed:
            OmegaConf.update(candidate, override.get_key_element(), override.value())
        validate(candidate)
    exp = cfg.experiment
    if exp.seeds < 1 or exp.chunk_size < 1:
        raise ConfigError("experiment.seeds", exp.seeds, "seeds and chunk_size must be >= 1")
    for metric in exp.metrics:
        if metric not in METRICS:
            raise ConfigError("experiment.metrics", metric, f"allowed: {', '.join(METRICS)}")
    return cfg, points


def launcher_overrides(args: argparse.Namespace) -> list[str]:
    """Hydra overrides that choose and set up the launcher."""
    jobs = args.jobs or os.cpu_count() or 1
    if args.launcher == "basic":
        return []
    if args.launcher == "joblib":
        return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    common = [f"hydra/launcher={args.launcher}", f"hydra.launcher.timeout_min={args.time}",
              f"hydra.launcher.cpus_per_task={args.cpus}"]  # fmt: skip
    if args.launcher == "submitit_local":
        return common
    slurm = [f"hydra.launcher.array_parallelism={args.array_parallelism}",
             f"hydra.launcher.mem_gb={args.mem_gb}"]  # fmt: skip
    if args.partition:
        slurm.append(f"hydra.launcher.partition={args.partition}")
    return common + slurm


@contextmanager
def designed_sweep() -> Iterator[None]:
    """While a designed sweep runs, Hydra's sweeper does not compose every job first.

    Hydra composes each job's config in the sweeping process before the first job starts
    (`Sweeper.validate_batch_is_legal`, one job after another with every core idle) and
    again where the job runs. Every design point was validated by `check_design` already,
    and each job validates its own config, so the first composition is skipped; any other
    use of Hydra keeps it. (The check is replaced on Hydra's `Sweeper` base class: Hydra's
    plugin scan re-imports the basic sweeper's module, so its class is not the one imported
    here.)
    """
    Sweeper.validate_batch_is_legal = _validated_by_check_design
    try:
        yield
    finally:
        Sweeper.validate_batch_is_legal = _HYDRAS_CHECK


_HYDRAS_CHECK = Sweeper.validate_batch_is_legal


def _validated_by_check_design(self, batch) -> None:
    """The designed sweep's jobs: validated by `check_design` before the sweep started."""


def run(args: argparse.Namespace) -> None:
    """Run (or resume) an experiment's sweep; exit non-zero if any run failed."""
    from sim.cli import main as clientsim

    smoke = [*SMOKE, *smoke_axes(args.name)] if args.smoke and args.name in names() else []
    overrides = [*smoke, *args.overrides]
    try:
        cfg, points = check_design(args.name, overrides)
    except ConfigError as error:
        print(f"clientsim-experiment: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    chunks = n_chunks(cfg)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    sweep_dir = Path(args.dir or f"results/{args.name}{'-smoke' if args.smoke else ''}/{stamp}")
    total = len(points) * cfg.experiment.seeds
    print(f"clientsim-experiment: {args.name} ({cfg.experiment.hypothesis}): {len(points)} "
          f"design points x {cfg.experiment.seeds} seeds = {total} runs in "
          f"{len(points) * chunks} jobs ({args.launcher}) -> {sweep_dir}", flush=True)  # fmt: skip
    argv = ["-m", f"+experiment={args.name}", *overrides, f"hydra.sweep.dir={sweep_dir}",
            f"experiment.chunk=range(0,{chunks})", f"experiment.total_runs={total}",
            "progress=false", *launcher_overrides(args)]  # fmt: skip
    with designed_sweep():
        clientsim(argv)
    print(f"clientsim-experiment: done; figures: clientsim-plot {sweep_dir}")


def show_list() -> None:
    """Print every experiment: name, hypothesis, size and question."""
    print(f"{'experiment':<14} {'H':<4} {'points':>6} {'seeds':>5} {'runs':>5}  question")
    for name in names():
        cfg, _, points = design(name)
        exp = cfg.experiment
        print(f"{name:<14} {exp.hypothesis:<4} {len(points):>6} {exp.seeds:>5} "
              f"{len(points) * exp.seeds:>5}  {exp.question}")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    """The command line of `clientsim-experiment`."""
    p = argparse.ArgumentParser(prog="clientsim-experiment", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Results: DIR/runs.parquet, DIR/steps.parquet, "
                                "DIR/manifest.json; figures: clientsim-plot DIR")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every experiment, its question and its size")
    r = sub.add_parser("run", help="run (or resume, with --dir) one experiment's sweep")
    r.add_argument("name", help="an experiment of `clientsim-experiment list`")
    r.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment.seeds=5")
    r.add_argument("--smoke", action="store_true",
                   help="300 clients, 26 weeks, 2 seeds, each axis at its ends")  # fmt: skip
    r.add_argument("--dir", help="sweep directory; an existing one is resumed")
    r.add_argument("--launcher", choices=LAUNCHERS, default="joblib",
                   help="Hydra launcher (default joblib, one job per core)")  # fmt: skip
    r.add_argument("--jobs", type=int, help="joblib: parallel jobs (default: the cores)")
    g = r.add_argument_group("submitit (Slurm or local)")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--time", type=int, default=60, help="minutes per job (default 60)")
    g.add_argument("--cpus", type=int, default=1, help="cpus per job (default 1)")
    g.add_argument("--mem-gb", type=int, default=4, help="memory per job in GB (default 4)")
    g.add_argument("--array-parallelism", type=int, default=256,
                   help="Slurm array jobs running at once (default 256)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of `clientsim-experiment`."""
    p = parser()
    args, extra = p.parse_known_args(argv)  # overrides may also follow the options
    unknown = [e for e in extra if e.startswith("-") or "=" not in e or args.command != "run"]
    if unknown:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        args.overrides = [*args.overrides, *extra]
    if args.command == "list":
        show_list()
    else:
        run(args)
