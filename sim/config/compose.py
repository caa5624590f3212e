"""Composing a run's config with Hydra's compose API, as the command line, tests and notebooks do.

The YAML configs ship inside the package as `sim.configs` (the repository's `configs/`, with
`configs/experiment` a link to `experiments/`), so an installed `clientsim` finds them from
any directory.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import sim.configs
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
