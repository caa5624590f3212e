"""The command line: `clientsim [overrides]` (also `python -m sim`), a Hydra application.

Before Hydra runs anything, the command line is composed once and validated here (every
swept value too, applied onto the composed config), and the output directory is checked, so
that a bad value exits with code 2 and one line naming the key, the value and what is
allowed, with no traceback and nothing written. Runs are staged: Hydra writes `.hydra/` into
a hidden directory beside the output directory, the results join it there, and the whole
directory is renamed into place when complete (`sim.run`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.config import ConfigError, register_configs
from sim.run import OutputBusy, output_lock, staged_target, staging_dir
from sim.validation import validate

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


def first_line(error: BaseException) -> str:
    """The first informative line of an error (or of its cause): what a one-line message shows."""
    lines = [str(e).strip().splitlines() for e in (error.__cause__, error) if e is not None]
    for line in (line for group in lines for line in group):
        if line and not line.startswith(("full_key", "object_type", "reference_type")):
            return line.strip()
    return type(error).__name__


def compose(
    overrides: list[str],
    config_dir: Path = CONFIG_DIR,
    config_name: str = "config",
    *,
    return_hydra_config: bool = False,
):
    """Compose the config with Hydra's compose API (as tests and notebooks do)."""
    register_configs()
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra.compose(
            config_name, overrides=overrides, return_hydra_config=return_hydra_config
        )


def compose_checked(overrides: list[str], config_dir: Path, config_name: str) -> DictConfig:
    """Compose with Hydra's settings; raise ConfigError naming the first bad override."""
    try:
        return compose(overrides, config_dir, config_name, return_hydra_config=True)
    except Exception as error:  # Hydra/OmegaConf: unknown key, wrong type, bad syntax
        for i in range(len(overrides)):
            try:
                compose(overrides[: i + 1], config_dir, config_name)
            except Exception:
                key, _, value = overrides[i].partition("=")
                raise ConfigError(key.lstrip("+~"), value, first_line(error)) from None
        raise ConfigError("overrides", " ".join(overrides), first_line(error)) from None


def _is_group(key: str, config_dir: Path) -> bool:
    """Whether `key` names a config group (`clients`, `market/network`, `experiment`...)."""
    return "/" in key or (config_dir / key).is_dir() or key == "experiment"


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
        if _is_group(o.key_or_group, config_dir) or o.is_add() or o.is_force_add():
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


def check_output_dir(path: Path) -> None:
    """Raise ConfigError unless a run can create and write `path` (a directory)."""
    if path.exists() and not path.is_dir():
        raise ConfigError("output_dir", str(path), "is an existing file, not a directory")
    parent = path if path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError("output_dir", str(path), f"{parent} is a file, not a directory")
    try:  # the only sure test of writability: create (and remove) a directory there
        os.rmdir(tempfile.mkdtemp(prefix=".clientsim-probe-", dir=parent))
    except OSError as error:
        allowed = f"cannot write in {parent}: {error.strerror or error}"
        raise ConfigError("output_dir", str(path), allowed) from None


def preflight(argv: list[str]) -> tuple[list[str], Path | None]:
    """Validate the command line before Hydra runs; exit 2 on a bad value.

    Returns the extra Hydra overrides that stage the run and the directory the run (or the
    sweep) must hold while it writes (none for help and info).
    """
    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.shell_completion or args.info:
        return [], None
    config_dir = Path(args.config_dir) if args.config_dir else CONFIG_DIR
    name = args.config_name or "config"
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
        first = [
            f"{o.get_key_element()}={next(iter(o.sweep_iterator()))}"
            if o.is_sweep_override() and args.multirun
            else o.input_line
            for o in parsed
        ]
        cfg = compose_checked(first, config_dir, name)
        with open_dict(cfg):
            settings = cfg.pop("hydra")
        validate(cfg)
        if args.multirun:
            _check_sweeps(cfg, parsed, config_dir, name)
        if args.cfg:  # --cfg prints the config and runs nothing
            return [], None
        return _staging(args, cfg, settings)
    except ConfigError as error:
        _fail(str(error))
    except Exception as error:  # e.g. a sweep syntax error
        _fail(f"invalid command line: {first_line(error)}")
    finally:
        GlobalHydra.instance().clear()


def _staging(args, cfg: DictConfig, settings: DictConfig) -> tuple[list[str], Path | None]:
    """Hydra overrides that make every run write into its own staging directory.

    Under `-m` every job gets its own directory, `<output_dir>/<job number>` (Hydra's sweep
    layout), staged as `<output_dir>/.<job number>.tmp-<pid>`.
    """
    given = {o.partition("=")[0].lstrip("+") for o in args.overrides}
    out = cfg.output_dir or None
    if args.multirun:
        sweep = Path(out or settings.sweep.dir).absolute()
        check_output_dir(sweep)
        extra = [f"hydra.sweep.dir={sweep}"] if out and "hydra.sweep.dir" not in given else []
        if "hydra.sweep.subdir" not in given:
            extra.append(f"hydra.sweep.subdir=.${{hydra.job.num}}.tmp-{os.getpid()}")
        return extra, sweep
    if "hydra.run.dir" in given:
        check_output_dir(Path(out or settings.run.dir))
        return [], None
    final = Path(out or settings.run.dir).absolute()
    check_output_dir(final)
    return [f"hydra.run.dir={staging_dir(final)}"], final


def _fail(message: str, code: int = 2) -> None:
    print(f"clientsim: {message}", file=sys.stderr)
    raise SystemExit(code)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    from sim.run import run
    from sim.summary import summary_table

    try:
        validate(cfg)
    except ConfigError as error:
        _fail(str(error))
    if cfg.experiment is not None:  # a job of an experiment's sweep (sim.sweep)
        from sim.sweep import run_job

        run_job(cfg)
        return
    runtime = Path(HydraConfig.get().runtime.output_dir).absolute()
    target = staged_target(runtime)
    if target is not None:  # staged by `preflight`: publish the whole directory
        out = target
        summary = run(cfg, out, progress=cfg.progress, staging=runtime)
    else:
        single = HydraConfig.get().mode == RunMode.RUN
        out = Path(cfg.output_dir) if single and cfg.output_dir else runtime
        summary = run(cfg, out, progress=cfg.progress, staging=runtime if out == runtime else None)
    print(f"clientsim: {cfg.engine} engine, seed {cfg.seed}, {cfg.steps} weeks, "
          f"{cfg.market.n_clients} clients -> {out}")  # fmt: skip
    print(summary_table(summary))


def _help(argv: list[str]) -> None:
    """Hydra's --help without the schemas (`base_*`), which are not options to choose."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        sys.argv = [sys.argv[0], *argv]
        _app()
    head, sep, rest = text.getvalue().partition("== Configuration groups ==")
    groups, sep2, tail = rest.partition("== Config ==")
    lines = []
    for line in groups.splitlines():
        group, colon, options = line.partition(": ")
        if colon:
            kept = [o for o in options.split(", ") if not o.startswith("base_")]
            line = f"{group}: {', '.join(kept)}"
        lines.append(line)
    print(head + sep + "\n".join(lines) + "\n" + sep2 + tail, end="")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `clientsim` command."""
    argv = sys.argv[1:] if argv is None else argv
    register_configs()
    if get_args_parser().parse_args(argv).help:
        _help(argv)
        return
    experiment = [a for a in argv if a.lstrip("+").startswith("experiment=")]
    if experiment and not {"-m", "--multirun"} & set(argv):
        name = experiment[-1].partition("=")[2]
        _fail(f"{experiment[-1]}: an experiment is a sweep; add -m, or use "
              f"clientsim-experiment run {name}")  # fmt: skip
    staging, held = preflight(argv)
    sys.argv = [sys.argv[0], *argv, *staging]
    try:
        with output_lock(held) if held else contextlib.nullcontext():
            _app()
    except OutputBusy as error:
        _fail(f"output_dir={error.out}: {error}")
    except KeyboardInterrupt:
        _fail("interrupted; this run's results were not written", INTERRUPTED)


__all__ = ["main", "compose", "OmegaConf"]
