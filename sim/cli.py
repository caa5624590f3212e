"""The command line: `clientsim [overrides]` (also `python -m sim`), a Hydra application.

Before Hydra runs anything, the overrides are composed and validated here, so that a bad
value exits with code 2 and one line naming the key, the value and what is allowed, with no
traceback and nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sim.config import ConfigError, register_configs, validate

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
MAX_CHECKED_VALUES = 64  # per swept key: validating more only slows a big sweep's start


def _first_line(error: BaseException) -> str:
    lines = [str(e).strip().splitlines() for e in (error.__cause__, error) if e is not None]
    for line in (line for group in lines for line in group):
        if line and not line.startswith(("full_key", "object_type", "reference_type")):
            return line.strip()
    return type(error).__name__


def compose(overrides: list[str], config_dir: Path = CONFIG_DIR, config_name: str = "config"):
    """Compose the config with Hydra's compose API (as tests and notebooks do)."""
    register_configs()
    GlobalHydra.instance().clear()
    with hydra.initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra.compose(config_name, overrides=overrides)


def _check(overrides: list[str], config_dir: Path, config_name: str) -> None:
    """Compose and validate; raise ConfigError naming the first bad override."""
    try:
        cfg = compose(overrides, config_dir, config_name)
    except ConfigError:
        raise
    except Exception as error:  # Hydra/OmegaConf: unknown key, wrong type, bad syntax
        for i in range(len(overrides)):
            try:
                compose(overrides[: i + 1], config_dir, config_name)
            except Exception:
                key, _, value = overrides[i].partition("=")
                raise ConfigError(key, value, _first_line(error)) from None
        raise ConfigError("overrides", " ".join(overrides), _first_line(error)) from None
    validate(cfg)


def _expand(overrides: list[str]) -> list[list[str]]:
    """Override lists to check: each swept value once, the other keys at their first value."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    first = [o.input_line if not o.is_sweep_override() else None for o in parsed]
    values = []
    for o in parsed:
        options = list(o.sweep_string_iterator()) if o.is_sweep_override() else [None]
        values.append(options[:MAX_CHECKED_VALUES])
    base = [
        f"{o.get_key_element()}={v[0]}" if f is None else f
        for o, f, v in zip(parsed, first, values, strict=True)
    ]
    combos = [base]
    for i, (o, options) in enumerate(zip(parsed, values, strict=True)):
        for option in options[1:]:
            combos.append(base[:i] + [f"{o.get_key_element()}={option}"] + base[i + 1 :])
    return combos


def preflight(argv: list[str]) -> None:
    """Validate the command line's overrides before Hydra runs; exit 2 on a bad value."""
    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.shell_completion or args.info:
        return
    overrides = [o for o in args.overrides if not o.lstrip("+~").startswith("hydra")]
    config_dir = Path(args.config_dir) if args.config_dir else CONFIG_DIR
    try:
        for combo in _expand(overrides) if args.multirun else [overrides]:
            _check(combo, config_dir, args.config_name or "config")
    except ConfigError as error:
        print(f"clientsim: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as error:  # e.g. a sweep syntax error
        print(f"clientsim: invalid command line: {_first_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        GlobalHydra.instance().clear()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _app(cfg: DictConfig) -> None:
    from sim.run import run
    from sim.summary import summary_table

    try:
        validate(cfg)
    except ConfigError as error:
        print(f"clientsim: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if cfg.experiment is not None:
        from sim.sweep import run_job

        run_job(cfg)
        return
    out_dir = cfg.output_dir or HydraConfig.get().runtime.output_dir
    summary = run(cfg, out_dir, progress=cfg.progress)
    print(f"clientsim: {cfg.engine} engine, seed {cfg.seed}, {cfg.steps} weeks, "
          f"{cfg.market.n_clients} clients -> {out_dir}")  # fmt: skip
    print(summary_table(summary))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `clientsim` command."""
    argv = sys.argv[1:] if argv is None else argv
    register_configs()
    experiment = [a for a in argv if a.lstrip("+").startswith("experiment=")]
    if experiment and not {"-m", "--multirun"} & set(argv):
        name = experiment[-1].partition("=")[2]
        print(f"clientsim: {experiment[-1]}: an experiment is a sweep; add -m, or use "
              f"clientsim-experiment run {name}", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    preflight(argv)
    out = [a.partition("=")[2] for a in argv if a.startswith("output_dir=")]
    if (
        out
        and out[-1] not in ("", "null")
        and not any(a.startswith("hydra.run.dir=") for a in argv)
    ):
        argv = [*argv, f"hydra.run.dir={out[-1]}"]  # keep Hydra's .hydra/ with the results
    sys.argv = [sys.argv[0], *argv]
    _app()


__all__ = ["main", "compose", "OmegaConf"]
