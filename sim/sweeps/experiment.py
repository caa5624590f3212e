"""`clientsim-experiment`: every hypothesis as one command (the front door to Hydra's multirun).

    clientsim-experiment list
    clientsim-experiment run strategy                 # in parallel on this machine (joblib)
    clientsim-experiment run strategy --smoke         # a tiny version in seconds
    clientsim-experiment run threshold --launcher submitit_slurm --partition cpu --time 60

`run NAME` is `clientsim -m +experiment=NAME` with the seeds split into chunks (one job per
design point and chunk), a launcher chosen by a flag, and the sweep directory
`results/NAME/<timestamp>/` (or `--dir`, which also resumes an interrupted or failed sweep).

Before anything runs, the whole design is checked (every point's config, the seeds' range,
the compared arms, the options) and `--dir` must be new, empty or a sweep of the same
experiment: an error is one line and exit code 2. Each submission gets an id that every job
carries (`experiment.sweep_id`) and the design's point hashes, so that the join accepts
exactly the runs asked for (`sim.sweeps`). Ctrl-C (or SIGTERM) stops the workers and says how
many runs are kept (exit 130, or 143); a job that dies ends the sweep with one line. With
`--config-dir DIR` the configs (and experiments, `DIR/experiment/`) are read from a copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import product
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose, compose_checked, first_line
from sim.config.schema import ConfigError
from sim.runs.output import OutputRefused, hydra_quoted, output_lock
from sim.sweeps.collect import kept_runs
from sim.sweeps.directory import SweepError, check_sweep_dir, plan
from sim.sweeps.jobs import check_run_dirs, mark_submitter
from sim.sweeps.points import (
    NOT_THE_POINT,
    check_experiment_overrides,
    check_seeds,
    config_hash,
    n_chunks,
)
from sim.sweeps.slurm import signal_delay, submission
from sim.sweeps.tables import METRICS

EXPERIMENTS_DIR = CONFIG_DIR / "experiment"
LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")
#: --smoke: a small market over half a year, two seeds, the first and last value of every
#: swept axis, so that every experiment runs in seconds.
SMOKE = ("steps=26", "market.n_clients=300", "experiment.seeds=2", "experiment.chunk_size=2")


def names(config_dir: Path = CONFIG_DIR) -> list[str]:
    """The experiments, by name (the files of `experiments/`, or of `config_dir/experiment`).

    Raises ConfigError if there are none (a copy of `configs/` whose link `experiment` to
    `../experiments` dangles).
    """
    found = sorted(p.stem for p in (config_dir / "experiment").glob("*.yaml"))
    if not found:
        where = config_dir / "experiment"
        raise ConfigError("--config-dir", str(config_dir), f"{where} holds no experiments "
                          "(a dangling link? copy configs/ with cp -rL)")  # fmt: skip
    return found


def _composed(overrides: list[str], config_dir: Path) -> DictConfig:
    """The config of `overrides` with Hydra's settings; ConfigError naming a bad override."""
    return compose_checked(overrides, config_dir, "config")


def design(
    name: str, overrides: list[str] = (), config_dir: Path = CONFIG_DIR
) -> tuple[DictConfig, list[str], list[list[str]]]:
    """The experiment's composed config, its fixed overrides and its design points.

    A design point is the list of overrides of one job, before the seeds are chunked:
    the cartesian product of the experiment's `hydra.sweeper.params` and of any sweep in
    `overrides` (a value list `key=a,b`), as Hydra's basic sweeper forms it. Raises
    ConfigError (one line) for a file or an override that cannot be read.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as error:  # Hydra's grammar: say which override
        bad = next(o for o in overrides if not _parses(o))
        raise ConfigError(bad.partition("=")[0], bad.partition("=")[2], first_line(error)) from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    cfg = _experiment(name, fixed, config_dir)
    axes = _axes(cfg, parsed)
    # a value given for one of the experiment's axes replaces that axis (as Hydra's sweeper)
    fixed = [o.input_line for o in parsed
             if not o.is_sweep_override() and o.get_key_element() not in axes]  # fmt: skip
    return cfg, fixed, [list(point) for point in product(*axes.values())]


def _experiment(name: str, fixed: list[str], config_dir: Path) -> DictConfig:
    """The experiment's config with the overrides `fixed`; ConfigError naming what is wrong."""
    if name not in names(config_dir):
        raise ConfigError("experiment", name, f"allowed: {', '.join(names(config_dir))}")
    try:
        return compose([f"+experiment={name}", *fixed], config_dir, return_hydra_config=True)
    except Exception:
        _check_file(name, config_dir)
        return _composed([f"+experiment={name}", *fixed], config_dir)  # names the override


def _check_file(name: str, config_dir: Path) -> None:
    """Raise ConfigError, with the reason, if the experiment's file does not compose alone."""
    try:
        compose([f"+experiment={name}"], config_dir, return_hydra_config=True)
    except Exception as error:
        lines = [line.strip() for line in str(error).splitlines()]
        reason = " ".join(
            line for line in lines
            if line and not line.endswith("while composing config:")
            and not line.startswith(("full_key", "object_type", "reference_type"))
        )  # fmt: skip
        path = config_dir / "experiment" / f"{name}.yaml"
        raise ConfigError("experiment", str(path), reason or first_line(error)) from None


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_override(override)
    except Exception:
        return False
    return True


def _axes(cfg: DictConfig, parsed) -> dict[str, list[str]]:
    """Every swept key and its `key=value` overrides: the experiment's, then the command's."""
    swept = {}
    for key, text in cfg.hydra.sweeper.params.items():
        if key in NOT_THE_POINT or key.startswith("experiment"):  # the sweep's own keys
            raise ConfigError(f"hydra.sweeper.params.{key}", text, "cannot be swept: it says "
                              "how the runs are made, not what a design point is")  # fmt: skip
        swept[key] = _values(key, text)
    for override in parsed:
        if override.is_sweep_override():
            swept[override.get_key_element()] = list(override.sweep_string_iterator())
        elif override.get_key_element() in swept:  # the command line's value wins
            swept[override.get_key_element()] = [override.get_value_element_as_str()]
    return {key: [f"{key}={value}" for value in values] for key, values in swept.items()}


def smoke_axes(name: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Sweep overrides that keep the first and last value of every axis (for --smoke)."""
    cfg = _experiment(name, [], config_dir)
    axes = []
    for key, text in cfg.hydra.sweeper.params.items():
        values = _values(key, text)
        axes.append(f"{key}={','.join(dict.fromkeys([values[0], values[-1]]))}")
    return axes


def _values(key: str, text) -> list[str]:
    """The values of one swept key of `hydra.sweeper.params` (`a,b,c`, `range(0,5)`...)."""
    where = f"hydra.sweeper.params.{key}"
    if text is None or not str(text).strip():
        raise ConfigError(where, text, "an empty sweep: give its values, e.g. a,b,c")
    try:
        parsed = OverridesParser.create().parse_override(f"x={text}")
    except Exception as error:
        raise ConfigError(where, str(text), first_line(error)) from None
    if parsed.is_sweep_override():
        return list(parsed.sweep_string_iterator())
    return [parsed.get_value_element_as_str()]


def check_design(
    name: str, overrides: list[str], config_dir: Path = CONFIG_DIR
) -> tuple[DictConfig, list[list[str]], list[str]]:
    """Validate every design point before the first job runs; raise ConfigError.

    Returns the composed config, the design points and their hashes
    (`sim.sweeps.points.config_hash`, the hash each point's jobs compute).
    """
    cfg, fixed, points = design(name, overrides, config_dir)
    check_experiment_overrides(OverridesParser.create().parse_overrides(list(overrides)))
    exp = cfg.experiment
    for key in ("seeds", "chunk_size"):
        if exp[key] < 1:
            raise ConfigError(f"experiment.{key}", exp[key], "must be an integer >= 1")
    base = _without_hydra(_composed([f"+experiment={name}", *fixed], config_dir))
    configs = [_point(base, name, fixed, point, config_dir) for point in points]
    hashes = [config_hash(config) for config in configs]
    for metric in exp.metrics:
        if metric not in METRICS:
            raise ConfigError("experiment.metrics", metric, f"allowed: {', '.join(METRICS)}")
    _check_compare(base, exp.compare, points)
    _check_arms(exp.compare, configs)
    return cfg, points, hashes


def _point(base: DictConfig, name: str, fixed: list[str], point: list[str], config_dir: Path):
    """One design point's config, validated (and its seeds in range); ConfigError."""
    parsed = OverridesParser.create().parse_overrides(point)
    if any("/" in o.get_key_element() for o in parsed):  # a group choice: compose it
        candidate = _without_hydra(_composed([f"+experiment={name}", *fixed, *point], config_dir))
    else:
        candidate = base.copy()  # a plain value: cheaper to set on the composed config
        for override in parsed:
            key, value = override.get_key_element(), override.value()
            try:
                OmegaConf.update(candidate, key, value, merge=False)
            except Exception as error:  # no such key, or a value of the wrong type
                raise ConfigError(key, value, first_line(error)) from None
    validate(candidate)
    check_seeds(candidate)
    return candidate


def _without_hydra(cfg: DictConfig) -> DictConfig:
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def _check_compare(base: DictConfig, compare: DictConfig, points: list[list[str]]) -> None:
    """The compared arms exist: two policies, or two values of the swept key `axis`."""
    if compare.axis == "policy":
        allowed = list(base.policies)
    else:
        swept: dict[str, list] = {}
        for override in OverridesParser.create().parse_overrides([o for p in points for o in p]):
            values = swept.setdefault(override.get_key_element(), [])
            if override.value() not in values:
                values.append(override.value())
        if compare.axis not in swept:
            keys = ", ".join(["policy", *swept])
            raise ConfigError("experiment.compare.axis", compare.axis, f"allowed: {keys}")
        if compare.policy not in base.policies:
            policies = ", ".join(base.policies)
            raise ConfigError("experiment.compare.policy", compare.policy, f"allowed: {policies}")
        allowed = swept[compare.axis]
    for arm in ("a", "b"):
        if compare[arm] not in allowed:
            values = ", ".join(map(str, allowed))
            raise ConfigError(f"experiment.compare.{arm}", compare[arm], f"allowed: {values}")


def _check_arms(compare: DictConfig, configs: list[DictConfig]) -> None:
    """Every design point has businesses of each compared policy (a policy_mix count > 0)."""
    arms = ("a", "b") if compare.axis == "policy" else ("policy",)
    for config in configs:
        for arm in arms:
            policy = compare[arm]
            if not config.market.policy_mix.get(policy, 0):
                raise ConfigError(f"experiment.compare.{arm}", policy, "has no businesses "
                                  f"(market.policy_mix.{policy}=0) in a design point; give "
                                  "it businesses or compare other policies")  # fmt: skip


def launcher_overrides(args: argparse.Namespace) -> list[str]:
    """Hydra overrides that choose and set up the launcher; raise ConfigError on a bad flag.

    They come before the user's overrides when the design is checked, so that any of the
    launcher's settings (`hydra.launcher.qos=...`, `account`, `constraint`, `setup`...) can
    be set on the command line; a setting the user gives wins over the flag's.
    """
    jobs = args.jobs or os.cpu_count() or 1
    if args.launcher == "basic":
        return []
    if args.launcher == "joblib":
        return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    for flag in ("time", "cpus", "mem_gb", "array_parallelism"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')}", getattr(args, flag), "must be >= 1")
    settings = {"timeout_min": args.time, "cpus_per_task": args.cpus}
    if args.launcher == "submitit_slurm":
        settings |= {"mem_gb": args.mem_gb, "array_parallelism": args.array_parallelism,
                     "signal_delay_s": signal_delay(args.time),
                     "partition": args.partition}  # fmt: skip
    given = {o.partition("=")[0].lstrip("+~") for o in args.overrides}
    return [f"hydra/launcher={args.launcher}"] + [
        f"hydra.launcher.{key}={value}"
        for key, value in settings.items()
        if value is not None and f"hydra.launcher.{key}" not in given
    ]


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


def check_options(args: argparse.Namespace) -> None:
    """Raise ConfigError for an option out of its range (the launcher's: `launcher_overrides`)."""
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs", args.jobs, "must be an integer >= 1 (default: the cores)")


class SweepInterrupted(BaseException):
    """SIGINT or SIGTERM reached the sweeping process.

    Not a KeyboardInterrupt: the sweep says itself what it kept.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted ({signal.Signals(signum).name})")
        self.signum = signum


def _interrupt(signum: int, frame) -> None:
    raise SweepInterrupted(signum)


@contextmanager
def _stoppable() -> Iterator[None]:
    """While a sweep runs, SIGINT and SIGTERM raise SweepInterrupted.

    A job's error reaches the caller too (`HYDRA_FULL_ERROR`), instead of Hydra's printed
    traceback. joblib ends its workers when an exception crosses its wait for results, so none
    outlives the sweep. A SIGINT that the shell set to be ignored stays ignored.
    """
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        signals = []
    previous = {signum: signal.signal(signum, _interrupt) for signum in signals}
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
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


def _fail(message: str, code: int) -> None:
    print(f"clientsim-experiment: {message}", file=sys.stderr)
    raise SystemExit(code)


def run(args: argparse.Namespace) -> None:
    """Run (or resume) an experiment's sweep; exit non-zero if any run failed."""
    from sim.cli.clientsim import main as clientsim

    config_dir = Path(args.config_dir).absolute() if args.config_dir else CONFIG_DIR
    try:
        check_options(args)
        smoke = [*SMOKE, *smoke_axes(args.name, config_dir)] if args.smoke else []
        overrides = [*smoke, *args.overrides]
        cfg, points, hashes = check_design(
            args.name, [*launcher_overrides(args), *overrides], config_dir
        )
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        where = args.dir or f"results/{args.name}{'-smoke' if args.smoke else ''}/{stamp}"
        sweep_dir = Path(where).absolute()
        _check_dir(sweep_dir, where)
        check_sweep_dir(sweep_dir, cfg.experiment.name)
        check_run_dirs(sweep_dir, hashes, list(range(cfg.seed, cfg.seed + cfg.experiment.seeds)))
    except (ConfigError, SweepError) as error:
        _fail(str(error), 2)
    chunks = n_chunks(cfg)
    total = len(points) * cfg.experiment.seeds
    sweep_id = uuid.uuid4().hex[:12]
    plan(sweep_id, hashes, cfg.seed, cfg.experiment.seeds)
    print(f"clientsim-experiment: {args.name} ({cfg.experiment.hypothesis}): {len(points)} "
          f"design points x {cfg.experiment.seeds} seeds = {total} runs in "
          f"{len(points) * chunks} jobs ({args.launcher}) -> {where}", flush=True)  # fmt: skip
    argv = ["-m", f"+experiment={args.name}", *overrides,
            f"hydra.sweep.dir={hydra_quoted(str(sweep_dir))}", f"experiment.sweep_id={sweep_id}",
            f"experiment.chunk=range(0,{chunks})", f"experiment.total_runs={total}",
            "progress=false", *launcher_overrides(args)]  # fmt: skip
    if args.config_dir:
        argv = ["--config-dir", str(config_dir), *argv]
    again = "the same command" if args.dir else f"the same command with --dir {shlex.quote(where)}"
    mark_submitter()  # the jobs' processes die with this one (sim.sweeps.jobs.die_with_submitter)
    rerun = f"rerun {again} to finish"
    try:
        with designed_sweep(), _stoppable(), submission(args, sweep_dir, total):
            clientsim(argv)
    except SweepInterrupted as stop:
        _fail(f"{stop}; {kept_runs(sweep_dir)} runs kept; {rerun}", 128 + stop.signum)
    except Exception as error:  # a job died (killed, out of memory) or could not write
        _fail(f"{_reason(error)}; {kept_runs(sweep_dir)} runs kept; {rerun}", 1)
    print(f"clientsim-experiment: done; figures: clientsim-plot {shlex.quote(where)}")


def _check_dir(sweep_dir: Path, where: str) -> None:
    """Raise SweepError, naming --dir, if the sweep directory cannot be this sweep's.

    Refused: a path under a file, and a directory (or one containing it) that a live run
    holds.
    """
    for parent in sweep_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise SweepError(f"--dir {where}: {parent} is a file, not a directory")
    if not sweep_dir.is_dir():
        return  # a new directory: nothing holds it (the sweep takes its lock)
    try:
        with output_lock(sweep_dir):
            pass
    except OutputRefused as error:
        raise SweepError(f"--dir {where}: {error}") from None


def show_list(config_dir: Path = CONFIG_DIR) -> None:
    """Print every experiment: name, hypothesis, size and question (or why it cannot run)."""
    print(f"{'experiment':<14} {'H':<4} {'points':>6} {'seeds':>5} {'runs':>5}  question")
    for name in names(config_dir):
        try:
            cfg, _, points = design(name, config_dir=config_dir)
            _check_axes(cfg, points)
        except ConfigError as error:
            print(f"{name:<14} error: {error}")
            continue
        exp = cfg.experiment
        print(f"{name:<14} {exp.hypothesis:<4} {len(points):>6} {exp.seeds:>5} "
              f"{len(points) * exp.seeds:>5}  {exp.question}")  # fmt: skip


def _check_axes(cfg: DictConfig, points: list[list[str]]) -> None:
    """Every plain swept key exists and takes each of its values (cheap: nothing composed)."""
    trial = _without_hydra(cfg.copy())
    values = {o for point in points for o in point if "/" not in o.partition("=")[0]}
    for override in OverridesParser.create().parse_overrides(sorted(values)):
        key, value = override.get_key_element(), override.value()
        try:
            OmegaConf.update(trial, key, value, merge=False)
        except Exception as error:
            raise ConfigError(key, value, first_line(error)) from None


def parser() -> argparse.ArgumentParser:
    """The command line of `clientsim-experiment`."""
    p = argparse.ArgumentParser(prog="clientsim-experiment", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Results: DIR/runs.parquet, DIR/steps.parquet, "
                                "DIR/manifest.json; figures: clientsim-plot DIR")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    configs = argparse.ArgumentParser(add_help=False)
    configs.add_argument("--config-dir", help="read the configs (and DIR/experiment/) from "
                         "DIR, e.g. a copy of configs/ (default: the package's)")  # fmt: skip
    sub.add_parser("list", help="every experiment, its question and its size", parents=[configs])
    r = sub.add_parser("run", help="run (or resume, with --dir) one experiment's sweep",
                       parents=[configs])  # fmt: skip
    r.add_argument("name", help="an experiment of `clientsim-experiment list`")
    r.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment.seeds=5")
    r.add_argument("--smoke", action="store_true",
                   help="300 clients, 26 weeks, 2 seeds, each axis at its ends")  # fmt: skip
    r.add_argument("--dir", help="sweep directory: new, empty, or a sweep of this experiment "
                   "(resumed)")  # fmt: skip
    r.add_argument("--launcher", choices=LAUNCHERS, default="joblib",
                   help="Hydra launcher (default joblib, one job per core)")  # fmt: skip
    r.add_argument("--jobs", type=int, help="joblib: parallel jobs (default: the cores)")
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of `clientsim-experiment`."""
    p = parser()
    args, extra = p.parse_known_args(argv)  # overrides may also follow the options
    unknown = [e for e in extra if e.startswith("-") or "=" not in e or args.command != "run"]
    if unknown:
        p.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        args.overrides = [*args.overrides, *extra]
    try:
        if args.command == "list":
            show_list(Path(args.config_dir).absolute() if args.config_dir else CONFIG_DIR)
        else:
            run(args)
    except ConfigError as error:  # no experiments to list or run
        _fail(str(error), 2)
