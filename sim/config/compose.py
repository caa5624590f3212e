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
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
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

    The overrides that choose an option of a config group (or add, delete or sweep) are
    composed, with Hydra's settings, and that config remembered; the plain values,
    `key=value` of a key the config has, are then set on a copy as Hydra's config loader
    sets them after composing (`OmegaConf.update`, merged), and every override recorded as
    it records them (`hydra.overrides`, `hydra.job.override_dirname`). So commands that
    differ in values alone (a notebook's `sim.run` of other sizes, a sweep's directory, a
    test's markets), or in the order of their choices of options (`_choices_key`), compose
    once. A value that cannot be set so is composed with the rest, and Hydra says what is
    wrong with it. tests/test_config.py checks that the config is what Hydra composes.
    """
    register()
    GlobalHydra.instance().clear()
    files = _files(Path(config_dir))
    if files is None:
        return _compose(overrides, config_dir, config_name, return_hydra_config)
    parts = _parts(overrides, config_dir)
    cfg = None
    if parts is not None:
        parsed, chosen, values = parts
        key = (str(config_dir), config_name, _choices_key(parsed, chosen, config_dir), files)
        cfg = _remember(key, lambda: _compose(chosen, config_dir, config_name, True))
        try:
            _set_values(cfg, values)
        except Exception:  # no such key, a wrong type: composed whole below, Hydra says so
            cfg = None
        else:
            _record(cfg.hydra, parsed)
            if not return_hydra_config:
                with open_dict(cfg):
                    del cfg["hydra"]
    if cfg is None:
        cfg = _remembered(overrides, config_dir, config_name, return_hydra_config, files)
    if return_hydra_config:
        _process_settings(cfg.hydra)
    return cfg


def _remembered(
    overrides: list[str], config_dir: Path, config_name: str, return_hydra_config: bool, files
) -> DictConfig:
    """A copy of the config of `overrides`, composed once per `files` (their digest)."""
    key = (str(config_dir), config_name, tuple(overrides), return_hydra_config, files)
    return _remember(key, lambda: _compose(overrides, config_dir, config_name, return_hydra_config))


def _remember(key: tuple, make) -> DictConfig:
    """A copy of the config remembered under `key`, made by `make()` the first time."""
    if key not in _composed:
        _composed[key] = make()
        while len(_composed) > REMEMBERED:
            _composed.pop(next(iter(_composed)))
    _composed[key] = _composed.pop(key)  # the most recently used last
    return copy.deepcopy(_composed[key])


def _set_values(cfg: DictConfig, values) -> None:
    """Set the plain values `(key, value)` on `cfg` as Hydra's config loader sets them.

    Raises KeyError for a key that is a group of Hydra's or the ConfigStore's (it must be
    composed), and whatever OmegaConf raises for a key or type it refuses.
    """
    for key, value in values:
        if key in cfg.hydra.runtime.choices:
            raise KeyError(key)
        OmegaConf.update(cfg, key, value, merge=True)


def _process_settings(settings: DictConfig) -> None:
    """Set the two settings Hydra's config loader reads from the process (cwd, `env_copy`)."""
    with open_dict(settings):
        settings.runtime.cwd = os.getcwd()
        for name in settings.job.env_copy:
            settings.job.env_set[name] = os.environ[name]


class RememberingLoader(ConfigLoader):
    """Hydra's config loader, with each job of a sweep composed as `compose` composes.

    A launcher composes every job's config (`load_sweep_config`: the sweep's Hydra overrides
    and the job's), about 0.2 s each. Here the overrides that choose group options are
    composed by Hydra's loader once per process and remembered; the job's plain values are
    then set on a copy and the overrides recorded, as that loader does after composing
    (tests/test_config.py checks that the two give the same config). The designed sweeper
    (`hydra_plugins/clientsim`) hands it to the launcher, through Hydra's public
    `HydraContext`; the joblib launcher's workers each remember their own. A sweep whose
    configs come from more than one directory, a search path set on the command line, or
    a value that cannot be set so is composed whole by Hydra's loader.
    """

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        """The config of one job of the sweep of `master_config` (see the class)."""
        cfg = self._remembered_job(master_config, list(sweep_overrides))
        if cfg is None:
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def _remembered_job(self, master: DictConfig, sweep_overrides: list[str]):
        dirs = [Path(s.path) for s in master.hydra.runtime.config_sources if s.schema == "file"]
        if len(dirs) != 1:
            return None
        overrides = [*OmegaConf.to_container(master.hydra.overrides.hydra), *sweep_overrides]
        parts, files = _parts(overrides, dirs[0]), _files(dirs[0])
        if parts is None or files is None:
            return None
        parsed, chosen, values = parts
        if any(o.key_or_group == "hydra.searchpath" for o in parsed):
            return None
        name = master.hydra.job.config_name
        sources = tuple((s.provider, s.path) for s in self.loader.get_sources())
        key = ("sweep job", sources, name, _choices_key(parsed, chosen, dirs[0]), files)
        cfg = _remember(key, lambda: self.loader.load_configuration(name, chosen, RunMode.RUN))
        try:
            _set_values(cfg, values)
        except Exception:  # composed whole, and Hydra says what is wrong
            return None
        _record(cfg.hydra, parsed)
        _process_settings(cfg.hydra)
        return cfg

    # --- the rest is Hydra's loader's own -----------------------------------------------------
    def load_configuration(self, *args, **kwargs) -> DictConfig:
        """Hydra's loader's `load_configuration`."""
        return self.loader.load_configuration(*args, **kwargs)

    def get_search_path(self):
        """Hydra's loader's search path."""
        return self.loader.get_search_path()

    def get_sources(self):
        """Hydra's loader's config sources."""
        return self.loader.get_sources()

    def list_groups(self, parent_name: str):
        """Hydra's loader's `list_groups`."""
        return self.loader.list_groups(parent_name)

    def get_group_options(self, *args, **kwargs):
        """Hydra's loader's `get_group_options`."""
        return self.loader.get_group_options(*args, **kwargs)

    def compute_defaults_list(self, *args, **kwargs):
        """Hydra's loader's `compute_defaults_list`."""
        return self.loader.compute_defaults_list(*args, **kwargs)


def is_group(key: str, config_dir: Path = CONFIG_DIR) -> bool:
    """Whether the override key `key` names a config group, so that it chooses an option.

    A group is a folder of `config_dir` (`clients`, `market/network`...), `experiment` in
    any config directory (an experiment may come from elsewhere: `+experiment=PATH`), or
    one of Hydra's own (`hydra/...`). The one rule of what a group is: for composing, for
    checking a command's sweeps, and for an experiment's design points.
    """
    key = key.lstrip("+~")
    if key in ("experiment", "hydra") or key.startswith("hydra/"):
        return True
    return bool(key) and not key.startswith(("/", ".")) and (Path(config_dir) / key).is_dir()


def is_composed(override, config_dir: Path = CONFIG_DIR) -> bool:
    """Whether a parsed override shapes the defaults list, so it must be composed.

    A choice of a config group's option (`is_group`), or an add (`+`), delete (`~`), sweep
    or package (`@`). Any other override is a plain value, which Hydra's config loader sets
    on the config after composing (`OmegaConf.update`, merged).
    """
    return _placed(override) or is_group(override.key_or_group, config_dir)


def _placed(override) -> bool:
    """A sweep, add (`+`, `++`), delete (`~`) or package (`@`): its place in the list counts."""
    return (
        override.is_sweep_override()
        or override.is_add()
        or override.is_force_add()
        or override.is_delete()
        or override.package is not None
    )


def _parts(overrides: list[str], config_dir: Path):
    """The overrides parsed, those to compose, and the plain values `(key, value)` to set after.

    None if the overrides do not parse. `compose` checks the values against the groups of
    the config composed (`hydra.runtime.choices`).
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # Hydra says what is wrong
        return None
    chosen, values = [], []
    for override in parsed:
        if is_composed(override, config_dir):
            chosen.append(override.input_line)
        else:
            values.append((override.key_or_group, override.value()))
    return parsed, chosen, values


def _choices_key(parsed, chosen: list[str], config_dir: Path) -> tuple[str, ...]:
    """`chosen` (the overrides composed) in the one order that names their config.

    Hydra reads a choice of a config group's option (`market/policy_mix=half_half`,
    `hydra/sweeper=designed`) into a table by group before it builds the defaults list, so
    choices of distinct groups compose the same config in any order; an add (`+`), a delete
    (`~`), a sweep or a package keeps its place. So a sweep's pre-flight, which names a
    design point's choices in the command line's order, finds the config its design checks
    composed (tests/test_config.py composes both orders).
    """
    kept = set(chosen)
    choices = [o for o in parsed if o.input_line in kept and _is_choice(o, config_dir)]
    if len({o.key_or_group for o in choices}) < len(choices):  # a group chosen twice
        return tuple(chosen)
    lines = {o.input_line for o in choices}
    return (*(o for o in chosen if o not in lines), *sorted(lines))


def _is_choice(override, config_dir: Path) -> bool:
    """Whether a parsed override is a plain choice of a config group's option."""
    return not _placed(override) and is_group(override.key_or_group, config_dir)


def _record(settings: DictConfig, parsed) -> None:
    """Record the overrides in Hydra's settings as its config loader does.

    `hydra.overrides.task` and `.hydra` (the command's overrides, Hydra's apart), and
    `hydra.job.override_dirname`: the task's overrides sorted, those of
    `hydra.job.config.override_dirname.exclude_keys` left out, joined with its separators.
    """
    task = [o for o in parsed if not o.is_hydra_override()]
    hydra_own = [o for o in parsed if o.is_hydra_override()]
    for name, lines in (("task", task), ("hydra", hydra_own)):
        recorded = settings.overrides[name]
        del recorded[:]
        recorded.extend([o.input_line for o in lines])
    dirname = settings.job.config.override_dirname
    kept = sorted(o.input_line for o in task if o.key_or_group not in dirname.exclude_keys)
    settings.job.override_dirname = dirname.item_sep.join(kept).replace("=", dirname.kv_sep)


def _compose(overrides, config_dir, config_name, return_hydra_config) -> DictConfig:
    with hydra.initialize_config_dir(str(config_dir), version_base="1.3"):
        return hydra.compose(
            config_name, overrides=overrides, return_hydra_config=return_hydra_config
        )


#: How many composed configs `compose` remembers (each about 350 kB: 64 hold about 22 MB). A
#: sweep's checks and `clientsim-experiment list` compose a dozen experiments, and their options.
REMEMBERED = 64
#: A config directory of more files than this is not read to remember its configs.
MAX_FILES = 2000
_composed: dict[tuple, DictConfig] = {}


def _files(config_dir: Path) -> str | None:
    """A digest of the config files under `config_dir`: their names and contents.

    Links are followed. None (nothing is remembered) for a directory of over `MAX_FILES`
    files, say a user's `--config-dir` pointed at a large tree: reading it for every
    compose would cost more than composing.
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
