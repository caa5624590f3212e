"""Composing a run's config with Hydra's compose API, as the command line, tests and notebooks do.

The YAML configs ship inside the package as `sim.configs` (the repository's `configs/`, with
`configs/experiment` a link to `experiments/`), so an installed `clientsim` finds them from
any directory. `compose_valid` is what every console script runs on its overrides: the
config composed and validated, or a `ConfigError` naming the first bad key.
"""

from __future__ import annotations

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
    """Compose the config with Hydra's compose API (as tests and notebooks do)."""
    register()
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
    """Store the schemas in Hydra's ConfigStore and register the resolvers the configs use."""
    register_configs()
    if not OmegaConf.has_resolver("clientsim.config_groups"):
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
