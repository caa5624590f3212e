"""The command line: `clientsim [overrides]` (also `python -m sim`), a Hydra application.

Before Hydra runs anything, the command line is composed once and validated here (every
swept value too, applied onto the composed config), and the output directory is checked, so
that a bad value exits with code 2 and one line naming the key, the value and what is
allowed, with no traceback and nothing written. Runs are staged: Hydra writes `.hydra/` into
a hidden directory beside the output directory, the results join it there, and the whole
directory is published when complete (`sim.runs.output`: an output directory is replaced only if
it holds one earlier clientsim output of the same kind).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.cli.common import INTERRUPTED, fail, run_command
from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose_checked, first_line, is_group, register
from sim.config.schema import ConfigError
from sim.errors import UserError
from sim.runs import signals
from sim.runs.output import (
    OutputRefused,
    check_ancestors,
    check_replaceable,
    claimed,
    hydra_quoted,
    output_lock,
    staged_target,
    staging_dir,
    target_path,
    unwritable,
    write_marker,
)
from sim.sweeps.directory import typed

PROG = "clientsim"
#: The columns of the table printed after a run (summary.json's per policy outcomes).
TABLE = ("businesses", "acceptance", "profit_week_13", "profit_horizon", "reputation",
         "retention", "referral_share", "survival")  # fmt: skip
TERMINATED = 143  # the shell's code for a process ended by SIGTERM (`kill`, a time limit)


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so that nothing half-written is left."""


def _check_sweeps(cfg: DictConfig, parsed, config_dir: Path, config_name: str) -> None:
    """Validate every value of every swept key, the other keys at their first value.

    A swept key's values are applied one by one onto the composed config (cheap: no
    composing); a swept config group is composed once per option.
    """
    base = [o.input_line if not o.is_sweep_override() else None for o in parsed]
    base = [
        line if line is not None else f"{o.get_key_element()}={next(iter(o.sweep_iterator()))}"
        for o, line in zip(parsed, base, strict=True)
    ]
    for i, o in enumerate(parsed):
        if not o.is_sweep_override():
            continue
        values = list(dict.fromkeys(map(str, o.sweep_string_iterator())))[1:]
        if is_group(o.key_or_group, config_dir) or o.is_add() or o.is_force_add():
            for value in values:
                combo = [*base[:i], f"{o.get_key_element()}={value}", *base[i + 1 :]]
                trial = compose_checked(combo, config_dir, config_name)
                with open_dict(trial):
                    trial.pop("hydra")
                validate(trial)
            continue
        trial = copy.deepcopy(cfg)
        for value in dict.fromkeys(o.sweep_iterator()):
            try:
                OmegaConf.update(trial, o.key_or_group, value, merge=False)
            except Exception as error:  # a wrong type
                raise ConfigError(o.key_or_group, value, first_line(error)) from None
            validate(trial)


DIR_KEYS = ("output_dir", "hydra.run.dir", "hydra.sweep.dir")
#: Where an experiment's job writes its Hydra log (`experiment.sweep_id`: its submission).
JOB_LOGS = "logs/${oc.select:experiment.sweep_id,direct}/${hydra.job.num}"


def check_output_dir(path: str | Path, kind: str, key: str = "output_dir") -> Path:
    """The resolved directory a run of `kind` writes for `path`; ConfigError if it must not.

    Refused: a file, a mount point, a directory holding anything but one earlier clientsim
    output of the same kind (`sim.runs.output.check_replaceable`), a directory inside another
    live run's, and a place this process cannot write.
    """
    out = target_path(path)
    try:
        check_replaceable(out, kind)
        check_ancestors(out)
    except OutputRefused as error:
        raise ConfigError(key, str(path), str(error)) from None
    reason = unwritable(out)
    if reason is not None:
        raise ConfigError(key, str(path), reason)
    return out


@dataclass
class Plan:
    """How `main` runs a checked command line: Hydra's argv, and the directory it holds.

    `kind` is "run" or "multirun" for outputs staged and published whole (`out` is the
    target), None for an experiment's sweep directory (`out` is only locked: the sweep
    resumes in place, `sim.sweeps`) or for commands that write nothing (`out` is None).
    """

    argv: list[str]
    out: Path | None = None
    kind: str | None = None


def preflight(argv: list[str], swept_checked: bool = False) -> Plan:
    """Validate the command line before Hydra runs; raise a UserError (one line) if it is bad.

    `swept_checked`: every value of every swept key was validated already (the design points
    of `clientsim-experiment run`, `sim.sweeps.experiment.check_design`): only the first is.
    """
    args = _parse_args(argv)
    if args.help or args.hydra_help or args.version or args.shell_completion or args.info:
        return Plan(argv)
    config_dir = Path(args.config_dir) if args.config_dir else CONFIG_DIR
    name = args.config_name or "config"
    try:
        parsed = _parse_overrides(args.overrides)
        first = [
            f"{o.get_key_element()}={_first(o)}"
            if o.is_sweep_override() and args.multirun
            else o.input_line
            for o in parsed
        ]
        cfg = compose_checked(first, config_dir, name)
        with open_dict(cfg):
            settings = cfg.pop("hydra")
        validate(cfg)
        if args.multirun and not swept_checked:
            _check_sweeps(cfg, parsed, config_dir, name)
        if args.cfg:  # --cfg prints the config and runs nothing
            return Plan(argv)
        return _staging(args, argv, parsed, cfg, settings)
    except UserError:
        raise
    except Exception as error:  # e.g. a sweep syntax error
        raise UserError(f"invalid command line: {first_line(error)}") from None
    finally:
        GlobalHydra.instance().clear()


class _HydraFlags(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{message} (flags such as -m come first: clientsim -m key=a,b ...; "
                        "see --help)")  # fmt: skip


def hydra_flags() -> argparse.ArgumentParser:
    """The flags of a Hydra application (`clientsim --hydra-help` lists them), and overrides.

    The command line is read with these before Hydra runs, to check it; Hydra then reads it
    again. A mistake is a UserError (one line), not argparse's usage.
    """
    p = _HydraFlags(prog=PROG, add_help=False)
    p.add_argument("overrides", nargs="*")
    for flag in ("--help/-h", "--hydra-help", "--version", "--resolve", "--run/-r",
                 "--multirun/-m", "--shell-completion/-sc"):  # fmt: skip
        p.add_argument(*flag.split("/"), action="store_true")
    for option in ("--package/-p", "--config-path/-cp", "--config-name/-cn",
                   "--config-dir/-cd", "--experimental-rerun"):  # fmt: skip
        p.add_argument(*option.split("/"))
    p.add_argument("--cfg", "-c", choices=["job", "hydra", "all"])
    info = ["all", "config", "defaults", "defaults-tree", "plugins", "searchpath"]
    p.add_argument("--info", "-i", nargs="?", const="all", choices=info)
    return p


def _parse_args(argv: list[str]) -> argparse.Namespace:
    return hydra_flags().parse_args(argv)


#: Hydra settings that name a place inside a run's (or a job's) directory.
INSIDE_KEYS = ("hydra.sweep.subdir", "hydra.output_subdir", "hydra.job.name")


def _parse_overrides(overrides: list[str]) -> list:
    """The parsed overrides; ConfigError for one that cannot be parsed or must not be set.

    A directory cannot be swept, and a place inside a run's directory must stay inside it.
    """
    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        key, _, value = line.partition("=")
        try:
            parsed.append(parser.parse_override(line))
        except Exception:
            raise ConfigError(key.lstrip("+~"), value, "cannot be parsed; quote a value with "
                              f"""special characters: '{key}="{value}"'""") from None  # fmt: skip
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        value = o.input_line.partition("=")[2]
        if o.is_sweep_override() and key in DIR_KEYS:
            raise ConfigError(key, value, "a directory cannot be swept (under -m every job "
                              "writes into <output_dir>/<job number>); quote a path that has "
                              """a comma: 'output_dir="a,b"'""")  # fmt: skip
        if key in INSIDE_KEYS and not o.is_sweep_override() and o.value() is not None:
            inside = Path(str(o.value()))
            if (
                inside.is_absolute()
                or ".." in inside.parts
                or (key == "hydra.job.name" and len(inside.parts) > 1)
            ):
                raise ConfigError(key, value, "must name a place inside the run's directory "
                                  "(a relative path without '..')")  # fmt: skip
            if key == "hydra.sweep.subdir" and "hydra.job." not in str(o.value()):
                raise ConfigError(key, value, "must differ from job to job, e.g. "
                                  "hydra.sweep.subdir=${hydra.job.num} or "
                                  "${hydra.job.override_dirname}")  # fmt: skip
    return parsed


def _first(override) -> object:
    """The first value of a swept override; ConfigError for a sweep of no value."""
    for value in override.sweep_iterator():
        return value
    raise ConfigError(override.get_key_element(), override.input_line.partition("=")[2],
                      "sweeps over no value")  # fmt: skip


def _staging(args, argv: list[str], parsed, cfg: DictConfig, settings: DictConfig) -> Plan:
    """The plan that makes every run write into a staging directory of its own.

    A run is staged in `.<name>.tmp-<pid>` beside its output directory (`output_dir`, else
    `hydra.run.dir`); a plain `-m` sweep likewise as a whole, each job in `<job number>/`
    inside it. An experiment's sweep directory is written in place (it resumes), its jobs'
    Hydra logs in `logs/<submission id>/<job number>/`.
    """
    given = {o.get_key_element().lstrip("+~"): o.input_line for o in parsed}
    where = "hydra.sweep.dir" if args.multirun else "hydra.run.dir"
    key = "output_dir" if cfg.output_dir else where
    path = cfg.output_dir or (settings.sweep.dir if args.multirun else settings.run.dir)
    if args.multirun and cfg.experiment is not None:
        from sim.sweeps.directory import SweepError, check_sweep_dir

        out = target_path(path)
        try:  # new, empty, or a sweep of the same experiment (resumed)
            check_sweep_dir(out, cfg.experiment.name)
        except SweepError as error:
            raise ConfigError(key, str(path), error.reason) from None
        extra = [f"hydra.sweep.dir={hydra_quoted(str(out))}"]
        if "hydra.sweep.subdir" not in given:
            # a job's Hydra log, apart for each submission (a stale job never overwrites one)
            extra.append(f"hydra.sweep.subdir={JOB_LOGS}")
        kept = [a for a in argv if a not in (given.get("hydra.sweep.dir"),)]
        return Plan([*kept, *extra], out)
    kind = "multirun" if args.multirun else "run"
    out = check_output_dir(path, kind, key)
    own = {given[k] for k in ("hydra.run.dir", "hydra.sweep.dir") if k in given}
    kept = [a for a in argv if a not in own]
    return Plan([*kept, f"{where}={hydra_quoted(str(staging_dir(out)))}"], out, kind)


def _shown(runtime: Path) -> Path:
    """Where the run in `runtime` (a staging directory, or a job's inside one) is published."""
    for staged in (runtime, *runtime.parents):
        target = staged_target(staged)
        if target is not None:
            return target / runtime.relative_to(staged)
    return runtime


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    from sim.runs.run import write_run
    from sim.sweeps.jobs import die_with_submitter

    die_with_submitter()  # a joblib worker of a `-m` sweep never outlives its submitter
    try:
        validate(cfg)
    except ConfigError as error:
        fail(PROG, str(error))
    if cfg.experiment is not None:  # a job of an experiment's sweep (sim.sweeps)
        from sim.sweeps.jobs import run_job

        run_job(cfg)
        return
    runtime = Path(HydraConfig.get().runtime.output_dir).absolute()
    out = _shown(runtime)
    try:
        summary = write_run(cfg, runtime, progress=cfg.progress)
        if HydraConfig.get().mode == RunMode.MULTIRUN:  # a job's own directory, in the sweep's
            write_marker(runtime, "run")
    except OSError as error:  # a full disk, a directory removed under the run
        fail(PROG, f"cannot write the results of this run into {out}: {error.strerror or error}", 1)
    try:
        print(f"clientsim: {cfg.engine} engine, seed {cfg.seed}, {cfg.steps} weeks, "
              f"{cfg.market.n_clients} clients -> {out}")  # fmt: skip
        print(summary_table(summary), flush=True)
    except BrokenPipeError:  # `clientsim | head`: the reader left; the results still count
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def summary_table(summary: dict) -> str:
    """The table printed after a run: a row per policy, counts as integers, NaN explained.

    A footnote line explains each NaN: a policy whose businesses all exited has no
    reputation (it is the mean over the businesses still open), and a run shorter than
    `SHORT_RUN_WEEK` weeks has no profit at that week.
    """
    import pandas as pd

    from sim.runs.summary import SHORT_RUN_WEEK

    frame = pd.DataFrame(summary["policies"]).T.loc[:, list(TABLE)].astype(float)
    text = frame.to_string(formatters={"businesses": "{:.0f}".format},
                           float_format=lambda x: f"{x:,.2f}")  # fmt: skip
    notes = []
    if frame["reputation"].isna().any():
        gone = ", ".join(frame.index[frame["reputation"].isna()])
        notes.append(f"reputation of {gone}: every business exited (it is the mean over the "
                     "businesses still open)")  # fmt: skip
    if frame["profit_week_13"].isna().all():
        notes.append(f"profit_week_13: the run is shorter than {SHORT_RUN_WEEK} weeks")
    explained = ("reputation", "profit_week_13")
    unexplained = [c for c in TABLE if c not in explained and frame[c].isna().any()]
    notes += [f"{column}: nothing to count" for column in unexplained]
    return text + (f"\nNaN: {'; '.join(notes)}." if notes else "")


def main(argv: list[str] | None = None, *, swept_checked: bool = False) -> int:
    """Entry point of the `clientsim` command; returns the exit code.

    `swept_checked`: the caller validated every swept value (`preflight`).
    """
    return run_command(PROG, functools.partial(_run, swept_checked=swept_checked), argv)


def _run(argv: list[str], swept_checked: bool = False) -> None:
    register()
    experiment = [a for a in argv if a.lstrip("+").startswith("experiment=")]
    if experiment and not {"-m", "--multirun"} & set(argv):
        name = experiment[-1].partition("=")[2]
        raise UserError(f"{experiment[-1]}: an experiment is a sweep; add -m, or use "
                        f"clientsim-experiment run {name}")  # fmt: skip
    plan = preflight(argv, swept_checked)
    sys.argv = [sys.argv[0], *plan.argv]
    try:
        # SIGTERM unwinds like Ctrl-C: nothing half-written is left
        with signals.raising({signal.SIGTERM: lambda _: Terminated(),
                              signal.SIGINT: lambda _: KeyboardInterrupt()}):  # fmt: skip
            if plan.kind is not None:
                with (
                    claimed(plan.out, plan.kind, staging_dir(plan.out)),
                    typed([PROG, *argv]),
                ):
                    _app()
            else:
                with (
                    output_lock(plan.out) if plan.out else contextlib.nullcontext(),
                    typed([PROG, *argv]),
                ):
                    _app()
    except OutputRefused as error:
        raise UserError(f"output_dir={plan.out}: {error}") from None
    except OSError as error:
        fail(PROG, f"cannot write {plan.out}: {error.strerror or error}", 1)
    except (KeyboardInterrupt, Terminated) as error:
        what = "this sweep's results were" if plan.kind == "multirun" else "this run's results were"
        if plan.kind is None and plan.out:
            what = "the runs in flight were"  # an experiment's sweep keeps its finished runs
        stopped, code = (("interrupted", INTERRUPTED) if isinstance(error, KeyboardInterrupt)
                         else ("terminated", TERMINATED))  # fmt: skip
        fail(PROG, f"{stopped}; {what} not written", code)


if __name__ == "__main__":
    raise SystemExit(main())
