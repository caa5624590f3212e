"""Design points: a point's config and hash, the hash of the code that produces results, seeds.

A point is one combination of the swept values; its hash keys its stored runs, so a rerun of
the same command skips what is complete, and a changed model redoes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sim.config.schema import MAX_SEED, ConfigError

#: Keys that say how a point is run, not what it is: left out of its hash and its columns.
NOT_THE_POINT = (
    "seed", "progress", "pairs", "output_dir", "experiment.seeds", "experiment.chunk_size",
    "experiment.chunk", "experiment.total_runs", "experiment.batch", "experiment.sweep_id",
)  # fmt: skip


#: Keys of the experiment that only `clientsim-experiment run` sets (never the user).
SET_BY_THE_SWEEP = ("experiment.sweep_id", "experiment.total_runs", "experiment.chunk")


def check_experiment_overrides(parsed: list, user: bool = True) -> None:
    """Raise ConfigError for an override that would run a sweep's runs twice or mislabel it.

    `parsed`: Hydra's parsed overrides of the command line. Refused: a sweep (`a,b`) of
    `seed` or of any key of the experiment (`experiment.*`), which would run the same
    point's seeds in several jobs (only distinct `experiment.chunk` values, which
    `clientsim-experiment run` sets, split the seeds), and setting `experiment.name`. With
    `user`, also setting a key of SET_BY_THE_SWEEP.
    """
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if override.is_sweep_override() and (key in NOT_THE_POINT or key.startswith("experiment")):
            values = [str(v) for v in override.sweep_string_iterator()]
            if key == "experiment.chunk" and not user and len(set(values)) == len(values):
                continue
            advice = (
                "give one seed: the sweep runs seed, seed+1, ... (experiment.seeds of them)"
                if key == "seed"
                else "give one value (a sweep of it would run the same runs in several jobs)"
            )
            raise ConfigError(key, ",".join(values), f"cannot be swept; {advice}")
        if key == "experiment.name" or (user and key in SET_BY_THE_SWEEP):
            value = override.input_line.partition("=")[2]
            raise ConfigError(key, value, "is set by the experiment, not on the command line")


#: runs.parquet's metrics (declared with their units in sim.analysis.stats) and their dtypes.
PACKAGE = Path(__file__).resolve().parents[1]  # sim/


def point_config(cfg: DictConfig) -> dict:
    """The resolved config of a design point: what its runs share (no seed, no chunk)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    for key in NOT_THE_POINT:
        *parents, leaf = key.split(".")
        node = resolved
        for parent in parents:
            node = node.get(parent) or {}
        node.pop(leaf, None)
    return resolved


#: The code that produces a job's stored results, relative to the package: the model, the
#: config schema and the names it registers, and one run's record and summary. `code_hash`
#: hashes these and nothing else, so that editing a command line, a figure or the analysis
#: keeps every stored sweep, and editing the model redoes it.
RESULT_CODE = (
    "model", "config/registry.py", "config/schema.py",
    "runs/run.py", "runs/record.py", "runs/summary.py",
)  # fmt: skip


def result_files(root: Path = PACKAGE) -> list[Path]:
    """The source files `code_hash` hashes (`RESULT_CODE`), in a stable order."""
    found = []
    for name in RESULT_CODE:
        path = root / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def code_hash(root: Path = PACKAGE) -> str:
    """A hash of the code that produces results: a changed model never reuses older results."""
    digest = hashlib.sha256()
    for path in result_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def config_hash(cfg: DictConfig) -> str:
    """A short hash of the point's resolved config and of the code that runs it."""
    text = json.dumps([point_config(cfg), code_hash()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seeds(cfg: DictConfig) -> list[int]:
    """The seeds a job runs: `seed + i` for its chunk of i in [0, experiment.seeds)."""
    exp = cfg.experiment
    every = [cfg.seed + i for i in range(exp.seeds)]
    if exp.chunk is None:
        return every
    return every[exp.chunk * exp.chunk_size : (exp.chunk + 1) * exp.chunk_size]


def check_seeds(cfg: DictConfig) -> None:
    """Raise ConfigError unless every seed of the sweep is one a single run accepts.

    The last, `seed + experiment.seeds - 1`, must be at most `MAX_SEED` (tables store a
    run's seed as an int64).
    """
    last = cfg.seed + cfg.experiment.seeds - 1
    if last > MAX_SEED:
        allowed = f"the sweep's last seed (seed + experiment.seeds - 1) is {last:,}"
        raise ConfigError("seed", cfg.seed, f"{allowed}; must be at most {MAX_SEED:,}")


def n_chunks(cfg: DictConfig) -> int:
    """How many chunks of `chunk_size` seeds make `experiment.seeds`."""
    return -(-cfg.experiment.seeds // cfg.experiment.chunk_size)


def job_overrides(hc) -> list[str]:
    """The job's own overrides (Hydra's `hc.overrides.task`), without hydra.* ones."""
    return [o for o in hc.overrides.task if not o.lstrip("+~").startswith("hydra")]


def swept_values(cfg: DictConfig, hc) -> dict[str, Any]:
    """The values of this job's overrides that define the point (group choices by name)."""
    values = {}
    for override in OverridesParser.create().parse_overrides(job_overrides(hc)):
        key = override.get_key_element().lstrip("+~")
        if key in NOT_THE_POINT or key == "experiment" or override.is_delete():
            continue
        if key in hc.runtime.choices:  # a config group: its option's name
            values[key] = hc.runtime.choices[key]
        else:
            values[key] = OmegaConf.select(cfg, key, default=None)
    return {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
            for k, v in values.items()}  # fmt: skip
