"""`clientsim-experiment`: every hypothesis as one command (the front door to Hydra's multirun).

    clientsim-experiment list
    clientsim-experiment run strategy                 # in parallel on this machine (joblib)
    clientsim-experiment run strategy --smoke         # a tiny version in seconds
    clientsim-experiment run threshold --launcher submitit_slurm --partition cpu --time 60
    clientsim-experiment run path/to/mine.yaml --smoke  # an experiment of one's own
    clientsim-experiment list --experiments DIR       # with one's own, DIR/NAME.yaml
    clientsim-experiment report results/strategy/<timestamp>  # its claims judged
    clientsim-experiment plausible strategy --vectors 15 --seeds 4  # over plausible markets

`run NAME` is `clientsim -m +experiment=NAME` with the seeds split into chunks (one job per
design point and chunk), a launcher chosen by a flag, and the sweep directory
`results/NAME/<timestamp>/` (or `--dir`, which also resumes an interrupted or failed sweep).
The whole design is checked before anything runs (`sim.sweeps.experiment.prepare`): an error
is one line and exit code 2. Ctrl-C (or SIGTERM) stops the workers and says how many runs
are kept (exit 130, or 143); a job that dies ends the sweep with one line. With
`--config-dir DIR` the configs (and experiments, `DIR/experiment/`) are read from a copy;
an experiment of one's own (a file, or `--experiments DIR`) is composed beside the built-in
ones (`sim.sweeps.own`). `plausible NAME` runs the design at N vectors of the plausible set
(one sweep each, resumed) and says in what share of them each claim holds
(`sim.explore.verdicts`).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from sim.analysis.expect import check_claims
from sim.cli import clientsim
from sim.cli.common import (
    Parser,
    add_plausible_draw,
    fail,
    parse_with_overrides,
    positive,
    run_command,
)
from sim.config.compose import CONFIG_DIR, first_line
from sim.errors import UserError
from sim.runs import signals
from sim.sweeps.collect import kept_runs
from sim.sweeps.directory import SWEEP_FILE, typed
from sim.sweeps.estimate import duration, sweep_seconds
from sim.sweeps.experiment import LAUNCHERS, names, overview, prepare
from sim.sweeps.jobs import mark_submitter
from sim.sweeps.own import is_path, overlay, own_files
from sim.sweeps.points import n_chunks
from sim.sweeps.slurm import submission
from sim.sweeps.tables import METRICS

PROG = "clientsim-experiment"


def parser() -> Parser:
    """The command line of `clientsim-experiment`."""
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""),
               epilog="Results: DIR/runs.parquet, DIR/steps.parquet, DIR/manifest.json; "
               "figures: clientsim-plot DIR")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    configs = Parser(add_help=False)
    configs.add_argument("--config-dir", help="read the configs (and DIR/experiment/) from "
                         "DIR, e.g. a copy of configs/ (default: the package's)")  # fmt: skip
    configs.add_argument("--experiments", action="append", default=[], metavar="DIR",
                         help="also one's own experiments DIR/NAME.yaml (repeatable)")  # fmt: skip
    sub.add_parser("list", help="every experiment, its question and its size", parents=[configs])
    v = sub.add_parser("report", help="a finished sweep's claims judged and its paired table "
                       "(nothing written)")  # fmt: skip
    v.add_argument("dir", help="the sweep's directory (clientsim-experiment run --dir DIR)")
    plausible_parser(sub)
    r = sub.add_parser("run", help="run (or resume, with --dir) one experiment's sweep",
                       parents=[configs])  # fmt: skip
    r.add_argument("name", help="an experiment of `clientsim-experiment list`, or the path "
                   "of an experiment's .yaml file of one's own")  # fmt: skip
    r.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment.seeds=5")
    r.add_argument("--smoke", action="store_true",
                   help="300 clients, 26 weeks, 2 seeds, each axis at its ends")  # fmt: skip
    r.add_argument("--dir", help="sweep directory: new, empty, or a sweep of this experiment "
                   "(resumed)")  # fmt: skip
    r.add_argument("--launcher", choices=LAUNCHERS, default="joblib",
                   help="Hydra launcher (default joblib, one job per core)")  # fmt: skip
    r.add_argument("--jobs", type=int, help="joblib: parallel jobs (default: the cores; no more "
                   "than the sweep's jobs, and none for less work than workers take to start "
                   "(about 5 s, a smoke run): then the jobs run in this process)")  # fmt: skip
    g = r.add_argument_group("submitit (Slurm or local)",
                             "any other setting of the launcher as an override, e.g. "
                             "hydra.launcher.account=NAME hydra.launcher.qos=NAME "
                             "hydra.launcher.constraint=FEATURE "
                             "'hydra.launcher.setup=[\"module load python\"]'")  # fmt: skip
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--time", type=int, default=60, help="minutes per job (default 60)")
    g.add_argument("--cpus", type=int, default=1, help="cpus per job (default 1)")
    g.add_argument("--mem-gb", type=int, default=4, help="memory per job in GB (default 4)")
    g.add_argument("--array-parallelism", type=int, default=256,
                   help="Slurm array jobs running at once (default 256)")  # fmt: skip
    g.add_argument("--cancel-running", action="store_true",
                   help="Slurm: cancel jobs of an earlier submission into --dir that are still "
                   "queued or running (without it, the sweep refuses to start)")  # fmt: skip
    return p


def plausible_parser(sub) -> None:
    """The subcommand `plausible`: an experiment's claims over vectors of the plausible set."""
    p = sub.add_parser("plausible", help="in what share of plausible markets each claim holds: "
                       "the design at N vectors of the plausible set, S seeds each")  # fmt: skip
    p.add_argument("name", help="an experiment of `clientsim-experiment list`, e.g. strategy")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every vector's sweep, "
                   "e.g. market.n_clients=1000")  # fmt: skip
    add_plausible_draw(p, "--vectors", "--seeds", "--set", type=positive,
                       help="vectors drawn from the set by weight, without replacement "
                       "while they last (default %(default)s: each of the shipped set's "
                       "once)")  # fmt: skip
    p.add_argument("--draw-seed", type=int, default=0, metavar="K",
                   help="seed of the draw (default 0)")  # fmt: skip
    p.add_argument("--dir", help="output folder, resumed (default results/NAME/plausible/"
                   "NxS-drawK/): a sweep per vector in DIR/vector-i/")  # fmt: skip
    p.add_argument("--launcher", choices=("basic", "joblib"), default="joblib",
                   help="each sweep's Hydra launcher (default joblib)")  # fmt: skip
    p.add_argument("--jobs", type=positive, help="joblib: parallel jobs (default: the cores)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `clientsim-experiment`; returns the exit code."""
    return run_command(PROG, _experiment, argv)


def _experiment(argv: list[str]) -> int:
    args = parse_with_overrides(parser(), argv)
    if args.command not in ("run", "plausible") and args.overrides:
        raise UserError(f"unrecognized arguments: {' '.join(args.overrides)}")
    if args.command == "report":
        from sim.analysis.report import sweep_report  # matplotlib: only when reporting

        print(sweep_report(Path(args.dir)), end="")
        return 0
    if args.command == "plausible":
        return plausible(args)
    config_dir = Path(args.config_dir).absolute() if args.config_dir else CONFIG_DIR
    own = own_files(args.name if args.command == "run" else None, args.experiments)
    with overlay(own, config_dir) as configs:
        if args.command == "list":
            show_list(configs, own)
            return 0
        if is_path(args.name):
            args.name = Path(args.name).stem
        with typed([PROG, *argv]):  # the manifest's command: pasted into a shell, it reruns
            return run(args, configs)


def show_list(config_dir: Path = CONFIG_DIR, own: dict[str, Path] | None = None) -> None:
    """Print every experiment: name, hypothesis, size and question (or why it cannot run).

    An experiment of one's own (`own`, by name) is marked `own` and followed by its file;
    the others are `built-in`.
    """
    own = own or {}
    cores = os.cpu_count() or 1
    print(f"{'experiment':<14} {'H':<4} {'points':>6} {'seeds':>5} {'runs':>5} "
          f"{'time':>13} {'from':<8}  question")  # fmt: skip
    for name, cfg, points, error in overview(config_dir):
        where = f"own: {own[name]}" if name in own else ""
        if cfg is None:
            print(f"{name:<14} error: {error}" + (f"  ({where})" if where else ""))
            continue
        exp = cfg.experiment
        time = duration(estimate(cfg, points, cores))
        print(f"{name:<14} {exp.hypothesis:<4} {points:>6} {exp.seeds:>5} "
              f"{points * exp.seeds:>5} {time:>13} {'own' if where else 'built-in':<8}  "
              f"{exp.question}" + (f"  ({own[name]})" if where else ""))  # fmt: skip
    print(
        f"(time: on {cores} cores with joblib, from per-run costs measured on a 2-core "
        "machine (sim/sweeps/estimate.py); yours may differ)"
    )


def estimate(cfg, points: int, parallel: int, done: int = 0) -> float:
    """Wall seconds of an experiment's sweep of `points` design points, `done` runs kept."""
    jobs = points * n_chunks(cfg)
    runs = points * cfg.experiment.seeds - done
    return sweep_seconds(runs, jobs, parallel, clients=cfg.market.n_clients, weeks=cfg.steps,
                         engine=cfg.engine)  # fmt: skip


def _parallel(args) -> int:
    """How many jobs run at once: joblib's --jobs (the cores), one for basic, the array's."""
    if args.launcher == "basic":
        return 1
    if args.launcher == "submitit_slurm":
        return args.array_parallelism
    return args.jobs or os.cpu_count() or 1


def run(args, config_dir: Path = CONFIG_DIR) -> int:
    """Run (or resume) an experiment's sweep; return non-zero if any run failed."""
    sweep = prepare(args, config_dir)
    swept = {o.partition("=")[0] for point in sweep.points for o in point}
    check_claims(OmegaConf.to_container(sweep.cfg.experiment), [*METRICS, *swept])
    kept = kept_runs(sweep.sweep_dir) if (sweep.sweep_dir / SWEEP_FILE).exists() else 0
    left = estimate(sweep.cfg, len(sweep.points), _parallel(args), kept)
    resumed = f"{kept} kept, " if kept else ""
    print(f"{PROG}: {args.name} ({sweep.cfg.experiment.hypothesis}): {len(sweep.points)} "
          f"design points x {sweep.cfg.experiment.seeds} seeds = {sweep.total} runs in "
          f"{len(sweep.points) * sweep.chunks} jobs ({args.launcher}) -> {sweep.where}; "
          f"{resumed}{duration(left)} at measured per-run costs", flush=True)  # fmt: skip
    again = "the same command" if args.dir else (
        f"the same command with --dir {shlex.quote(sweep.where)}")  # fmt: skip
    rerun = f"rerun {again} to finish"
    mark_submitter()  # the jobs' processes die with this one (sim.sweeps.jobs.die_with_submitter)
    try:
        with _stoppable(), submission(args, sweep.sweep_dir, sweep.total):
            code = clientsim.main(sweep.argv, swept_checked=True)  # by prepare: every point
    except SweepInterrupted as stop:
        fail(PROG, f"{stop}; {kept_runs(sweep.sweep_dir)} runs kept; {rerun}", 128 + stop.signum)
    except Exception as error:  # a job died (killed, out of memory) or could not write
        fail(PROG, f"{_reason(error)}; {kept_runs(sweep.sweep_dir)} runs kept; {rerun}", 1)
    if code == 0:
        print(f"{PROG}: done; figures: clientsim-plot {shlex.quote(sweep.where)}")
    return code


def plausible(args, root: Path = Path("results")) -> int:
    """Run an experiment over vectors of the plausible set; print each claim's share."""
    from sim.analysis.report import SWEEP_NAME
    from sim.explore import verdict_text, verdicts
    from sim.validation.plausible import load_plausible

    if args.draw_seed < 0:
        raise UserError(f"--draw-seed {args.draw_seed}: must be an integer >= 0")
    if args.name not in names():
        raise UserError(f"experiment {args.name!r}: allowed: {', '.join(names())}")
    found = load_plausible(args.set)
    out = Path(args.dir) if args.dir else verdicts.default_dir(
        root, args.name, args.vectors, args.seeds, args.draw_seed)  # fmt: skip
    print(
        f"{PROG}: {args.name} at {args.vectors} plausible vectors x {args.seeds} seeds "
        f"(draw seed {args.draw_seed}, set {args.set or 'shipped'}) -> {out}",
        flush=True,
    )
    if args.vectors > len(found.table):  # `PlausibleSet.draw`: with replacement, repeats
        print(f"{PROG}: the set holds {len(found.table)} vectors; {args.vectors} are drawn with "
              "replacement, so some repeat", flush=True)  # fmt: skip
    launch = ["--launcher", args.launcher, *(["--jobs", str(args.jobs)] if args.jobs else [])]

    def run_sweep(where: Path, overrides: list[str]) -> int:
        code = main(["run", args.name, "--dir", str(where), *launch, *overrides])
        if code:  # the sweep said why (interrupted, a job died, a failed run)
            raise SystemExit(code)
        return code

    table, swept = verdicts.run_vectors(
        args.name, found, vectors=args.vectors, seeds=args.seeds, seed=args.draw_seed,
        out=out, overrides=args.overrides, run_sweep=run_sweep)  # fmt: skip
    defaults = verdict_text.defaults_verdicts(root / args.name / SWEEP_NAME)
    print(verdict_text.text(table, found.parameters, defaults, swept))
    print(f"{PROG}: written {out / verdicts.GAPS}, {out / verdicts.SHARES}")
    return 0


class SweepInterrupted(BaseException):
    """SIGINT or SIGTERM reached the sweeping process.

    Not a KeyboardInterrupt: the sweep says itself what it kept.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted ({signal.Signals(signum).name})")
        self.signum = signum


@contextmanager
def _stoppable() -> Iterator[None]:
    """While a sweep runs, SIGINT and SIGTERM raise SweepInterrupted.

    A job's error reaches the caller too (`HYDRA_FULL_ERROR`), instead of Hydra's printed
    traceback. joblib ends its workers when an exception crosses its wait for results, so none
    outlives the sweep. A SIGINT that the shell set to be ignored stays ignored.
    """
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with signals.raising(dict.fromkeys((signal.SIGTERM, signal.SIGINT), SweepInterrupted)):
            yield
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error


def _reason(error: Exception) -> str:
    """What ended a sweep, in a few words (joblib's dead worker: how it died)."""
    if type(error).__name__ == "TerminatedWorkerError":  # joblib: a worker was killed
        found = re.search(r"exit codes of the workers are (.*)", str(error))
        codes = f" (exit codes {found[1]})" if found else ""
        return f"a job's process died{codes}: killed, e.g. out of memory"
    return first_line(error)


if __name__ == "__main__":
    raise SystemExit(main())
