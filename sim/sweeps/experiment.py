"""Experiments: every hypothesis as a designed sweep of Hydra's multirun.

An experiment (`experiments/NAME.yaml`, the Hydra group `experiment`) is a sweep: the
cartesian product of its `hydra.sweeper.params` and of any sweep on the command line, each
design point run over `experiment.seeds` seeds split into chunks (one job per design point
and chunk). Before anything runs, the whole design is checked (`check_design`: every
point's config, the seeds' range, the compared arms) and the sweep directory must be new,
empty or a sweep of the same experiment (`prepare`). Each submission gets an id that every
job carries (`experiment.sweep_id`) and the design's point hashes, so that the join accepts
exactly the runs asked for (`sim.sweeps`). The sweep runs through Hydra's designed sweeper
(`hydra/sweeper=designed`, the plugin `hydra_plugins.clientsim`), which launches the jobs
without composing each one first: `check_design` did. The command is
`clientsim-experiment` (`sim.cli.experiment`).
"""

from __future__ import annotations

import copy
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose, compose_checked, first_line, is_group
from sim.config.schema import ConfigError
from sim.runs.output import OutputRefused, hydra_quoted, output_lock
from sim.sweeps.directory import SweepError, check_sweep_dir, plan
from sim.sweeps.estimate import work_seconds, workers
from sim.sweeps.jobs import check_run_dirs
from sim.sweeps.points import (
    NOT_THE_POINT,
    check_experiment_overrides,
    check_seeds,
    config_hash,
    n_chunks,
)
from sim.sweeps.sampling import sample_overrides
from sim.sweeps.slurm import signal_delay
from sim.sweeps.tables import METRICS

EXPERIMENTS_DIR = CONFIG_DIR / "experiment"
LAUNCHERS = ("basic", "joblib", "submitit_local", "submitit_slurm")
#: --smoke: a small market over half a year, two seeds, the first and last value of every
#: swept axis (of a factorial's first `SMOKE_FACTORS` factors), so that every experiment runs
#: in seconds.
SMOKE = ("steps=26", "market.n_clients=300", "experiment.seeds=2", "experiment.chunk_size=2")
SMOKE_FACTORS = 2


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
    `overrides` (a value list `key=a,b`), as Hydra's basic sweeper forms it, crossed with
    the sampled points of `hydra.sweeper.sample` if it has one (`sim.sweeps.sampling`).
    Raises ConfigError (one line) for a file or an override that cannot be read.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as error:  # Hydra's grammar: say which override
        bad = next(o for o in overrides if not _parses(o))
        raise ConfigError(bad.partition("=")[0], bad.partition("=")[2], first_line(error)) from None
    fixed = _plain(parsed)
    cfg = _experiment(name, fixed, config_dir)
    axes = _axes(cfg, parsed)
    # a value given for one of the experiment's axes replaces that axis (as Hydra's sweeper)
    fixed = [o.input_line for o in parsed
             if not o.is_sweep_override() and o.get_key_element() not in axes]  # fmt: skip
    sampled = sample_overrides(cfg.hydra.sweeper.get("sample"))
    both = {o.partition("=")[0] for o in sampled[0]} & set(axes)
    if both:
        key = sorted(both)[0]
        raise ConfigError(f"hydra.sweeper.sample.ranges.{key}", key, "is swept too (params or "
                          "the command line): sample it or sweep it")  # fmt: skip
    return cfg, fixed, [[*grid, *more] for grid in product(*axes.values()) for more in sampled]


def _experiment(name: str, fixed: list[str], config_dir: Path) -> DictConfig:
    """The experiment's config with the overrides `fixed`; ConfigError naming what is wrong.

    Composed with the sweeper its sweep runs with (`SWEEPER`), as are its design points
    (`_point`): the sweep's pre-flight composes the same choices, and finds them remembered.
    """
    if name not in names(config_dir):
        allowed = ", ".join(names(config_dir))
        raise ConfigError("experiment", name, f"allowed: {allowed}, or the path of a .yaml file")
    register_sweeper()
    try:
        return compose([f"+experiment={name}", *fixed, SWEEPER], config_dir,
                       return_hydra_config=True)  # fmt: skip
    except Exception:
        _check_file(name, config_dir)
        return _composed([f"+experiment={name}", *fixed, SWEEPER], config_dir)  # names it


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
        path = path.resolve() if path.is_symlink() else path  # an own file: where it is
        raise ConfigError("experiment", str(path), reason or first_line(error)) from None


def _not_swept(overrides: list[str]) -> list[str]:
    """The overrides that are not sweeps (none, if one does not parse: `design` says which)."""
    try:
        return _plain(OverridesParser.create().parse_overrides(overrides))
    except Exception:
        return []


def _plain(parsed) -> list[str]:
    """The parsed overrides that are not sweeps, as typed."""
    return [o.input_line for o in parsed if not o.is_sweep_override()]


def _parses(override: str) -> bool:
    try:
        OverridesParser.create().parse_override(override)
    except Exception:
        return False
    return True


def _axes(cfg: DictConfig, parsed) -> dict[str, list[str]]:
    """Every swept key and its `key=value` overrides: the experiment's, then the command's."""
    swept = {}
    for key, text in (cfg.hydra.sweeper.params or {}).items():
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


def smoke_axes(name: str, config_dir: Path = CONFIG_DIR, fixed: list[str] = ()) -> list[str]:
    """Sweep overrides that keep the first and last value of every axis (for --smoke).

    A factorial's factors after its first `SMOKE_FACTORS` keep their first value only, so that
    a smoke run of 2^k cells stays small. `fixed`: the run's other values (not sweeps), with
    which the design composes the experiment too (`compose` remembers it).
    """
    cfg = _experiment(name, list(fixed), config_dir)
    held = list(cfg.experiment.factorial or {})[SMOKE_FACTORS:]
    axes = ["hydra.sweeper.sample.n=2"] if cfg.hydra.sweeper.get("sample") else []
    for key, text in (cfg.hydra.sweeper.params or {}).items():
        values = _values(key, text)
        kept = [values[0]] if key in held else [values[0], values[-1]]
        axes.append(f"{key}={','.join(dict.fromkeys(kept))}")
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
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    check_experiment_overrides(parsed)
    exp = cfg.experiment
    for key in ("seeds", "chunk_size"):
        if exp[key] < 1:
            raise ConfigError(f"experiment.{key}", exp[key], "must be an integer >= 1")
    if fixed == _plain(parsed):
        composed = copy.deepcopy(cfg)  # `design` composed these overrides: not again
    else:  # a value given for an axis left `fixed`
        composed = _composed([f"+experiment={name}", *fixed, SWEEPER], config_dir)
    base = _without_hydra(composed)
    configs = [_point(name, fixed, point, config_dir) for point in points]
    hashes = [config_hash(config) for config in configs]
    for metric in exp.metrics:
        if metric not in METRICS:
            raise ConfigError("experiment.metrics", metric, f"allowed: {', '.join(METRICS)}")
    _check_compare(base, exp.compare, points)
    _check_arms(exp.compare, configs)
    _check_factorial(exp.factorial, points)
    return cfg, points, hashes


def _point(name: str, fixed: list[str], point: list[str], config_dir: Path) -> DictConfig:
    """One design point's config, validated (and its seeds in range); ConfigError.

    Composed as its job's is: `compose` composes the point's choices of config groups (the
    same choices once: it remembers them) and sets its plain values after, as Hydra does.
    """
    overrides = [f"+experiment={name}", *fixed, *point, SWEEPER]
    candidate = _without_hydra(_composed(overrides, config_dir))
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
        swept = _swept_values(points)
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


def _swept_values(points: list[list[str]]) -> dict[str, list]:
    """Every swept key of the design points and its values, in order."""
    swept: dict[str, list] = {}
    for override in OverridesParser.create().parse_overrides([o for p in points for o in p]):
        values = swept.setdefault(override.get_key_element(), [])
        if override.value() not in values:
            values.append(override.value())
    return swept


def _check_factorial(factorial: DictConfig | None, points: list[list[str]]) -> None:
    """Each factor of a factorial is a swept key of two values, one of them its `on` level.

    A factor held at one value (as in a smoke run, `smoke_axes`) is allowed.
    """
    if factorial is None:
        return
    swept = _swept_values(points)
    for key, on in factorial.items():
        where = f"experiment.factorial.{key}"
        if key not in swept:
            raise ConfigError(where, on, f"not a swept key; swept: {', '.join(swept)}")
        values = swept[key]
        if len(values) > 2 or on not in values and len(values) == 2:
            raise ConfigError(where, on, f"a factor has two swept values, one of them its on "
                              f"level; swept: {', '.join(map(str, values))}")  # fmt: skip


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


def launcher_overrides(
    args: Any, sweep_jobs: int | None = None, work: float | None = None
) -> list[str]:
    """Hydra overrides that choose and set up the launcher; raise ConfigError on a bad flag.

    They come before the user's overrides when the design is checked, so that any of the
    launcher's settings (`hydra.launcher.qos=...`, `account`, `constraint`, `setup`...) can
    be set on the command line; a setting the user gives wins over the flag's.
    `sweep_jobs`: the sweep's jobs, once known. joblib starts no more workers than that (a
    worker without a job is a process started for nothing), and runs a sweep of one job in
    this process (joblib's `n_jobs=1`), as Hydra's basic launcher does. `work`: its seconds
    of work, once known; without `--jobs`, joblib starts only the workers that finish it
    sooner than fewer would (`sim.sweeps.estimate.workers`: a smoke run runs here).
    """
    jobs = min(args.jobs or os.cpu_count() or 1, sweep_jobs or sys.maxsize)
    if args.jobs is None and work is not None:
        jobs = workers(work, jobs)
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


def check_options(args: Any) -> None:
    """Raise ConfigError for an option out of its range (the launcher's: `launcher_overrides`)."""
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs", args.jobs, "must be an integer >= 1 (default: the cores)")


#: The Hydra sweeper of a designed sweep (`hydra_plugins/clientsim/designed_sweeper.py`).
SWEEPER = "hydra/sweeper=designed"


def register_sweeper() -> None:
    """Make Hydra's designed sweeper (`hydra/sweeper=designed`) known to this process.

    Importing the plugin stores its config in Hydra's ConfigStore. Hydra finds plugins by
    scanning the `hydra_plugins` namespace, which cannot see a package installed in editable
    mode (hydra issue #3252), so the class is also registered with Hydra's public
    `Plugins.register`.
    """
    from hydra_plugins.clientsim.designed_sweeper import DesignedSweeper

    Plugins.instance().register(DesignedSweeper)


@dataclass
class Submission:
    """A checked sweep, ready to launch: what `clientsim -m` runs, and what it says."""

    name: str
    cfg: DictConfig
    points: list[list[str]]
    where: str
    sweep_dir: Path
    sweep_id: str
    total: int
    chunks: int
    argv: list[str]


def prepare(options: Any, config_dir: Path = CONFIG_DIR) -> Submission:
    """Check an experiment's sweep before anything runs; plan its design; return its launch.

    `options` are `clientsim-experiment run`'s (name, overrides, smoke, dir, launcher and
    the launcher's settings). Raises a UserError (ConfigError, SweepError) with one line.
    """
    check_options(options)
    launcher = launcher_overrides(options)
    smoke = []
    if options.smoke:
        fixed = _not_swept([*launcher, *SMOKE, *options.overrides])
        smoke = [*SMOKE, *smoke_axes(options.name, config_dir, fixed)]
    overrides = [*smoke, *options.overrides]
    cfg, points, hashes = check_design(options.name, [*launcher, *overrides], config_dir)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    where = options.dir or f"results/{options.name}{'-smoke' if options.smoke else ''}/{stamp}"
    sweep_dir = Path(where).absolute()
    check_dir(sweep_dir, where)
    check_sweep_dir(sweep_dir, cfg.experiment.name)
    check_run_dirs(sweep_dir, hashes, list(range(cfg.seed, cfg.seed + cfg.experiment.seeds)))
    chunks = n_chunks(cfg)
    total = len(points) * cfg.experiment.seeds
    sweep_id = uuid.uuid4().hex[:12]
    plan(sweep_id, hashes, cfg.seed, cfg.experiment.seeds)
    work = work_seconds(total, len(points) * chunks, clients=cfg.market.n_clients,
                        weeks=cfg.steps, engine=cfg.engine)  # fmt: skip
    launcher = launcher_overrides(options, len(points) * chunks, work)
    argv = ["-m", f"+experiment={options.name}", *overrides,
            f"hydra.sweep.dir={hydra_quoted(str(sweep_dir))}", f"experiment.sweep_id={sweep_id}",
            f"experiment.chunk=range(0,{chunks})", f"experiment.total_runs={total}",
            "progress=false", SWEEPER, *launcher]  # fmt: skip
    if config_dir != CONFIG_DIR:
        argv = ["--config-dir", str(config_dir), *argv]
    register_sweeper()
    return Submission(options.name, cfg, points, where, sweep_dir, sweep_id, total, chunks, argv)


def check_dir(sweep_dir: Path, where: str) -> None:
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


def overview(config_dir: Path = CONFIG_DIR) -> list[tuple[str, DictConfig | None, int, str]]:
    """Every experiment: (name, its config, its design points, why it cannot run or "")."""
    rows = []
    for name in names(config_dir):
        try:
            cfg, _, points = design(name, config_dir=config_dir)
            _check_axes(cfg, points, config_dir)
        except ConfigError as error:
            rows.append((name, None, 0, str(error)))
            continue
        rows.append((name, cfg, len(points), ""))
    return rows


def _check_axes(cfg: DictConfig, points: list[list[str]], config_dir: Path) -> None:
    """Every plain swept key exists and takes each of its values (cheap: nothing composed).

    A choice of a config group (`structure=before`, `market/policy_mix=half_half`) is not a
    plain key: `check_design` composes those.
    """
    trial = _without_hydra(cfg.copy())
    values = {o for point in points for o in point
              if not is_group(o.partition("=")[0], config_dir)}  # fmt: skip
    for override in OverridesParser.create().parse_overrides(sorted(values)):
        key, value = override.get_key_element(), override.value()
        try:
            OmegaConf.update(trial, key, value, merge=False)
        except Exception as error:
            raise ConfigError(key, value, first_line(error)) from None
