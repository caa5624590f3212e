"""The Python API: run the model from a notebook as the `clientsim` command runs it.

Every function takes Hydra overrides written as on the command line
(``["market.n_clients=2000", "steps=104"]``) and validates the config exactly as
`clientsim` does before anything runs: a value that is not allowed raises the `ConfigError`
whose text the command prints (it exits with code 2). Nothing is written to disk, and the
tables are those `clientsim` writes into its output directory for the same overrides. Time is
in weeks, work in hours and money in currency units (docs/ODD.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sim.analysis.stats import load_manifest, load_runs, load_steps
from sim.config.checks import validate
from sim.config.compose import compose_valid
from sim.config.schema import ConfigError
from sim.runs.run import build_model as _model_of
from sim.runs.run import results, simulate, simulate_batch
from sim.sweeps.jobs import BATCH_CLIENTS


@dataclass(frozen=True)
class RunResult:
    """One run's results: what `clientsim` writes into its output directory, in memory.

    Attributes:
        steps: steps.parquet, one row per week and business: revenue, costs and profit (in
            currency units, that week), cash, reputation (stars, 1-5), clients and jobs
            (counts), hours.
        market: market.parquet, one row per week: the market's totals of the week.
        clients: clients.parquet, one row per client: its traits, then what happened to it
            (spend in currency units, hours worked on it, jobs, reviews, its provider).
        pairs: pairs.parquet, one row per client and business that dealt with each other:
            the client's jobs, spend (currency units) and hours with that business, and the
            profit it contributed to it (a firm's own whale curve: `firm_whale`); None with
            ``pairs=false``.
        summary: summary.json: per policy, mean cumulative profit per business (currency
            units) at week 13 and at the horizon, reputation (stars), retention, acceptance,
            referral share and survival (shares, 0-1); crossover weeks; seed; engine; the
            whale curve's readings.
        config: the run's validated config, interpolations resolved (config.yaml).
    """

    steps: pd.DataFrame
    market: pd.DataFrame
    clients: pd.DataFrame
    pairs: pd.DataFrame | None
    summary: dict
    config: DictConfig


@dataclass(frozen=True)
class Sweep:
    """An experiment's sweep, read back (`clientsim-experiment run NAME --dir DIR`).

    Attributes:
        runs: runs.parquet, one row per design point, seed and policy (failed runs too, by
            `status`), each naming its sweep (`sweep_hash`); its metrics' units are in
            `sim.runs.record.METRICS`.
        steps: steps.parquet, the weekly policy means per design point and seed.
        manifest: manifest.json: the experiment, its design points, versions and times.
    """

    runs: pd.DataFrame
    steps: pd.DataFrame
    manifest: dict


def make_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The validated config of `overrides`, composed as `clientsim OVERRIDES` composes it.

    Args:
        overrides: Hydra overrides, e.g. ``["market.n_clients=2000", "steps=104"]``
            (a market of 2,000 clients over 104 weeks).

    Returns:
        The config, without Hydra's own settings.

    Raises:
        ConfigError: an override that does not parse or names no key, a value that is not
            allowed (its text is the line `clientsim` prints), or an experiment (a sweep:
            ``clientsim-experiment run NAME``).
    """
    cfg = compose_valid(list(overrides))
    if cfg.experiment is not None:
        name = cfg.experiment.name
        allowed = f"an experiment is a sweep: clientsim-experiment run {name}"
        raise ConfigError("experiment", name, allowed)
    return cfg


def build_model(overrides: Sequence[str] = ()):
    """The model of `overrides`, built but not stepped: ``model.step()`` runs one week.

    A Mesa model of the config's engine: `sim.model.engines.vectorized.VectorizedModel`
    (the default) or, with ``engine=agents``, `sim.model.engines.agents.AgentsModel`.
    ``model.cfg`` is its config; `run` steps the same model ``cfg.steps`` weeks.

    Raises:
        ConfigError: as `make_config`.
    """
    return _model_of(make_config(overrides))


def run(overrides: Sequence[str] = ()) -> RunResult:
    """Run one simulation; return what ``clientsim OVERRIDES`` writes, as tables.

    Args:
        overrides: Hydra overrides, e.g. ``["market.n_clients=2000", "steps=104"]``. As
            with the command, ``progress=true`` (the default) reports on stderr the progress
            of a run that lasts over 2 s.

    Raises:
        ConfigError: as `make_config`; nothing runs.
    """
    cfg = make_config(overrides)
    model, recorder = simulate(cfg, progress=cfg.progress, accounts=cfg.pairs)
    return _result(cfg, model, recorder)


def run_batch(
    overrides: Sequence[str], seeds: Iterable[int], *, batch: int = 10
) -> list[RunResult]:
    """Run one config for several seeds; result i is exactly `run` with ``seed=seeds[i]``.

    With the vectorized engine up to `batch` seeds (and 200,000 clients) are stepped as one
    model, as a sweep does, which is faster per run; with ``engine=agents`` one by one.

    Args:
        overrides: Hydra overrides, as for `run`; the seeds replace any ``seed=``.
        seeds: the runs' seeds (non-negative integers).
        batch: at most this many seeds in one model.

    Raises:
        ConfigError: as `make_config`, for the config or any seed; nothing runs.
    """
    cfg = make_config(overrides)
    configs = [_seeded(cfg, int(seed)) for seed in seeds]
    size = (
        1
        if cfg.engine != "vectorized"
        else max(1, min(batch, BATCH_CLIENTS // cfg.market.n_clients))
    )
    out = []
    for start in range(0, len(configs), size):
        group = configs[start : start + size]
        if len(group) == 1:
            out.append(_result(group[0], *simulate(group[0], accounts=cfg.pairs)))
            continue
        model, recorders = simulate_batch(cfg, [c.seed for c in group], accounts=cfg.pairs)
        out += [
            _result(c, model, recorder, market)
            for market, (c, recorder) in enumerate(zip(group, recorders, strict=True))
        ]
    return out


def load_sweep(directory: str | PathLike) -> Sweep:
    """The tables of an experiment's sweep directory (`Sweep`).

    Raises:
        FileNotFoundError: `directory` holds no joined sweep (runs.parquet, steps.parquet,
            manifest.json): the sweep is unfinished, or it is not a sweep.
    """
    return Sweep(load_runs(directory), load_steps(directory), load_manifest(directory))


def _seeded(cfg: DictConfig, seed: int) -> DictConfig:
    """`cfg` with its seed replaced, validated."""
    seeded = cfg.copy()
    seeded.seed = seed
    validate(seeded)
    return seeded


def _result(cfg: DictConfig, model, recorder, market: int = 0) -> RunResult:
    """The `RunResult` of market `market` of a model stepped with `recorder`."""
    tables, summary = results(cfg, model, recorder, market)
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    return RunResult(**tables, summary=summary, config=config)
