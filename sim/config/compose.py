"""Composing a run's config with Hydra's compose API, as the command line, tests and notebooks do.

The YAML configs ship inside the package as `sim.configs` (the repository's `configs/`, with
`configs/experiment` a link to `experiments/`), so an installed `clientsim` finds them from
any directory. `compose_valid` is what every console script runs on its overrides: the
config composed and validated, or a `ConfigError` naming the first bad key.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

import sim.configs
from sim.config.checks import validate
from sim.config.schema import ConfigError, register_configs

CONFIG_DIR = Path(sim.configs.__file__).resolve().parent


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
    """Compose the config with Hydra's compose API (as tests and notebooks do).

    A composed config is remembered (the last `REMEMBERED`): composing the same overrides
    of the same files again returns a copy, in about 8 ms instead of about 0.2 s, with the
    two settings Hydra reads from the process set anew (`hydra.runtime.cwd`, the working
    directory, and `hydra.job.env_set` from `hydra.job.env_copy`; tests/test_config.py
    checks that a remembered config equals a fresh one). A sweep's checks compose the
    experiment alone, with the command's values and with each option of a swept group,
    some of them more than once, and so do tests.
    """
    register()
    GlobalHydra.instance().clear()
    files = _files(Path(config_dir))
    if files is None:
        return _compose(overrides, config_dir, config_name, return_hydra_config)
    key = (str(config_dir), config_name, tuple(overrides), return_hydra_config, files)
    if key not in _composed:
        _composed[key] = _compose(overrides, config_dir, config_name, return_hydra_config)
        while len(_composed) > REMEMBERED:
            _composed.pop(next(iter(_composed)))
    _composed[key] = _composed.pop(key)  # the most recently used last
    cfg = copy.deepcopy(_composed[key])
    if return_hydra_config:  # as Hydra's config loader sets them
        with open_dict(cfg.hydra):
            cfg.hydra.runtime.cwd = os.getcwd()
            for name in cfg.hydra.job.env_copy:
                cfg.hydra.job.env_set[name] = os.environ[name]
    return cfg


def _compose(overrides, config_dir, config_name, return_hydra_config) -> DictConfig:
    with hydra.initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra.compose(
            config_name, overrides=overrides, return_hydra_config=return_hydra_config
        )


#: How many composed configs `compose` remembers (each a few hundred kB).
REMEMBERED = 32
#: A config directory of more files than this is not read to remember its configs.
MAX_FILES = 2000
_composed: dict[tuple, DictConfig] = {}


def _files(config_dir: Path) -> str | None:
    """A digest of the config files under `config_dir` (links followed): names and contents.

    None (nothing is remembered) for a directory of over `MAX_FILES` files, say a user's
    `--config-dir` pointed at a large tree: reading it for every compose would cost more
    than composing.
    """
    digest = hashlib.blake2b(digest_size=16)
    seen = 0
    for root, dirs, files in os.walk(config_dir, followlinks=True):
        dirs.sort()
        seen += len(files) + len(dirs)
        if seen > MAX_FILES:
            return None
        for name in sorted(f for f in files if f.endswith((".yaml", ".yml"))):
            path = Path(root, name)
            digest.update(str(path.relative_to(config_dir)).encode() + b"\0")
            with contextlib.suppress(OSError):  # a dangling link: Hydra will say so
                digest.update(path.read_bytes())
    return digest.hexdigest()


def compose_checked(overrides: list[str], config_dir: Path, config_name: str) -> DictConfig:
    """Compose with Hydra's settings; raise ConfigError naming the first bad override."""
    try:
        return compose(overrides, config_dir, config_name, return_hydra_config=True)
    except Exception as error:  # Hydra/OmegaConf: unknown key, wrong type, bad syntax
        raise bad_override(overrides, config_dir, config_name, error) from None


def bad_override(
    overrides: list[str], config_dir: Path, config_name: str, error: Exception
) -> ConfigError:
    """The ConfigError naming the first override after which `overrides` no longer compose.

    `error` is what composing all of them raised. The shortest failing prefix is found by
    bisection (a prefix that fails fails longer too): a few composes, not one per override.
    """
    good, bad = 0, len(overrides)  # overrides[:good] compose; overrides[:bad] do not
    while bad - good > 1:
        middle = (good + bad) // 2
        try:
            compose(overrides[:middle], config_dir, config_name, return_hydra_config=True)
        except Exception:
            bad = middle
        else:
            good = middle
    if bad == 0:  # not even the defaults compose
        return ConfigError("overrides", " ".join(overrides), first_line(error))
    key, _, value = overrides[bad - 1].partition("=")
    return ConfigError(key.lstrip("+~"), value, first_line(error))


def compose_valid(
    overrides: list[str], config_dir: Path = CONFIG_DIR, config_name: str = "config"
) -> DictConfig:
    """The validated config of `overrides`, without Hydra's settings.

    Raises:
        ConfigError: an override that does not compose (naming it) or a value not allowed.
    """
    cfg = compose_checked(overrides, config_dir, config_name)
    with open_dict(cfg):
        cfg.pop("hydra")
    validate(cfg)
    return cfg


def register() -> None:
    """Store the schemas in Hydra's ConfigStore and register the resolvers the configs use.

    Once per process (about 25 ms each time: every compose calls it).
    """
    if OmegaConf.has_resolver("clientsim.config_groups"):
        return
    register_configs()
    OmegaConf.register_new_resolver("clientsim.config_groups", config_groups)


def config_groups() -> str:
    """The config groups and their options, a line `group: a, b` each, for `clientsim --help`.

    Read with Hydra's public config loader; the schemas (`base_*`), which the YAML files
    extend, are not options to choose and are left out. configs/config.yaml's help template
    shows it as `${clientsim.config_groups:}`.
    """
    if not GlobalHydra.instance().is_initialized():
        return ""
    loader = GlobalHydra.instance().config_loader()
    lines = []
    for group in sorted(_groups(loader, "")):
        options = [o for o in loader.get_group_options(group) if not o.startswith("base_")]
        if options:
            lines.append(f"{group}: {', '.join(sorted(options))}")
    return "\n".join(lines) + "\n"


def _groups(loader, parent: str) -> Iterator[str]:
    """Every config group below `parent` (Hydra's own `hydra/...` groups left out)."""
    for name in loader.list_groups(parent):
        group = f"{parent}/{name}" if parent else name
        if group != "hydra":
            yield group
            yield from _groups(loader, group)
