"""`hydra/sweeper=designed`: Hydra's basic sweep of a design that was checked before it starts.

A sampled design (`sample`: `sim.sweeps.sampling`) is crossed with the product of `params`,
as `sim.sweeps.experiment.design` forms it.

`clientsim-experiment run` validates every design point (`sim.sweeps.experiment.check_design`)
before the sweep starts, and every job validates its own config where it runs. Hydra's basic
sweeper would also compose every job's config in the submitting process before the first job
starts (one after another, every core idle); this sweeper launches the same jobs, in the same
order and with the same job numbers, without that first composition, and its launcher
composes each job's group choices once per process (`sim.config.compose.RememberingLoader`).
It is built on Hydra's public plugin API (`hydra.plugins.sweeper.Sweeper`, the launcher from
`Plugins`, `hydra.types.HydraContext`).
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, and a dataclass with string annotations then fails to build.
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from sim.config.compose import RememberingLoader
from sim.sweeps.sampling import sample_overrides


@dataclass
class DesignedSweeperConf:
    """The sweeper's settings: those of Hydra's basic sweeper, and a sampled design."""

    _target_: str = "hydra_plugins.clientsim.designed_sweeper.DesignedSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None
    sample: dict[str, Any] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="designed", node=DesignedSweeperConf, provider="clientsim"
)


def job_overrides(overrides: list[str], config_loader=None) -> list[list[str]]:
    """Every job's overrides: the product of the swept values, a later key replacing an earlier.

    As Hydra's basic sweeper forms them: `a=1,2 b=x` gives `[a=1, b=x]`, `[a=2, b=x]`.
    `config_loader` (Hydra's) lets a sweep of group options use `glob(...)`.
    """
    by_key: dict[str, list[str]] = {}
    parser = OverridesParser.create(config_loader=config_loader)
    for override in parser.parse_overrides(overrides):
        key = override.get_key_element()  # given again: new values, the first place
        if override.is_sweep_override() and not override.is_discrete_sweep():
            raise HydraException(f"{override.input_line}: a sweep of values is needed")
        if override.is_sweep_override():
            by_key[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            by_key[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*by_key.values())]


class DesignedSweeper(Sweeper):
    """Launch the product of `params` and the command line's sweeps, batch after batch."""

    def __init__(
        self, max_batch_size: int | None = None, params: dict | None = None, sample=None
    ) -> None:
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.sample = sample
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Take the config and the launcher it names.

        The launcher composes each job's config through `RememberingLoader`: the job's group
        choices once per process, its values set on a copy.
        """
        loader = RememberingLoader(hydra_context.config_loader)
        hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        """Launch every job; a failed job's error is raised (as by the basic sweeper)."""
        params = [f"{key}={value}" for key, value in self.params.items()]
        jobs = job_overrides([*params, *arguments], self.hydra_context.config_loader)
        sampled = sample_overrides(self.sample)
        jobs = [[*job, *more] for job in jobs for more in sampled]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        returns = []
        for start in range(0, len(jobs), max(size, 1)):
            results = self.launcher.launch(jobs[start : start + size], initial_job_idx=start)
            for result in results:
                _ = result.return_value  # raises the job's error
            returns.append(results)
        return returns
