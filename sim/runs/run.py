"""Run one simulation from a validated config and write its results.

A run directory never holds files of two runs, and a run never replaces a directory it did
not write: the run is written into a hidden staging directory and published whole
(`sim.runs.output`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sim.model import kernels
from sim.model.engines import engine_class
from sim.progress import Progress
from sim.runs import signals
from sim.runs.output import claimed, target_path
from sim.runs.record import (
    Recorder,
    clients_frame,
    package_version,
    pairs_frame,
    write_atomic,
    write_json,
    write_parquet,
)
from sim.runs.summary import summarize, whale_summary

#: Said before a run whose model has no compiled kernels yet (`sim.model.kernels.compiled`).
COMPILING = (
    "clientsim: compiling the model's kernels (numba), once after an install or an update: "
    "about 10 s"
)


def build_model(cfg: DictConfig, seeds=None, *, accounts: bool = True):
    """The model of `cfg.engine`, initialised but not run (of several markets: `seeds`).

    `accounts`: keep the pair accounts pairs.parquet records (`sim.model.market.MarketModel`).
    """
    return engine_class(cfg.engine)(cfg, seeds, accounts=accounts)


def simulate(
    cfg: DictConfig,
    *,
    progress: bool = False,
    observe: Callable | None = None,
    accounts: bool = True,
):
    """Run the model for `cfg.steps` weeks; return (model, recorder).

    `accounts`: keep the pair accounts pairs.parquet records (`build_model`); a run whose
    pairs are not read leaves them out, and saves their memory and their writes.

    `observe(model)`, if given, is called after each week (e.g. the demand facts' yearly
    purchases, `sim.validation.demand.Purchases`).

    With `progress`, a run that lasts over 2 s shows a progress bar on a terminal, and a line
    every 15 s when stderr is a log file (no carriage returns). `recorder.step_seconds` is
    the time spent in the model's steps alone (what a sweep's overhead is measured against).
    """
    if progress and not kernels.compiled():
        print(COMPILING, file=sys.stderr, flush=True)
    model = build_model(cfg, accounts=accounts)
    recorder = Recorder()
    with _progress(cfg.steps, enabled=progress) as tick:
        for _ in range(cfg.steps):
            started = time.perf_counter()
            model.step()
            recorder.step_seconds += time.perf_counter() - started
            signals.check()
            recorder.collect(model)
            if observe is not None:
                observe(model)
            tick()
    return model, recorder


def simulate_batch(cfg: DictConfig, seeds: list[int], *, accounts: bool = True):
    """Run the markets of `seeds` (one design point) as one model; return (model, recorders).

    Recorder r holds exactly what `simulate` records for seed ``seeds[r]`` alone (the
    vectorized engine; `sim.model.market.MarketModel`); its `step_seconds` is its share of the
    steps' time. `accounts`: as `simulate`'s.
    """
    model = build_model(cfg, seeds, accounts=accounts)
    recorders = Recorder.of_markets(len(seeds))
    seconds = 0.0
    for _ in range(cfg.steps):
        started = time.perf_counter()
        model.step()
        seconds += time.perf_counter() - started
        signals.check()
        recorders[0].collect(model)  # every market's rows, once
    for recorder in recorders:
        recorder.step_seconds = seconds / len(seeds)
    return model, recorders


LOG_EVERY_SECONDS = 15.0  # a progress line this often when stderr is not a terminal
PROGRESS_DELAY = 2.0  # a run shorter than this shows no progress


@contextmanager
def _progress(weeks: int, *, enabled: bool):
    """A tick function: the weeks' progress (`sim.progress.Progress`) if `enabled`."""
    if not enabled:
        yield lambda: None
        return
    show = Progress("clientsim", unit="week", every=LOG_EVERY_SECONDS, delay=PROGRESS_DELAY)
    done = [0]

    def tick() -> None:
        done[0] += 1
        show(done[0], weeks)

    yield tick


def results(
    cfg: DictConfig, model, recorder, market: int = 0, *, free: bool = False
) -> tuple[dict, dict]:
    """The run's tables and its summary, as `write_results` writes them.

    Returns ``({"steps": ..., "market": ..., "clients": ..., "pairs": ...}, summary)``: the
    tables of steps/market/clients/pairs.parquet (DataFrames) and summary.json, which holds
    `sim.runs.summary.summarize` of the steps, the seed, the engine and the whale curve's
    readings (`sim.runs.summary.whale_summary`). ``"pairs"`` is None for a model built
    without the pair accounts (``cfg.pairs`` false). `market`: the market of a batch
    (`simulate_batch`) whose seed is `cfg.seed`.

    `free`: once pairs.parquet's table is built, free the model's pair state and network
    (`sim.model.market.MarketModel.free_pair_state`), most of a large model's
    memory, before clients.parquet's table is built: the model cannot step after.
    """
    steps = recorder.steps_frame()
    pairs = None if model.left_out else pairs_frame(model, market)
    if free:
        model.free_pair_state()
    clients = clients_frame(model, market)
    summary = summarize(steps)
    summary["seed"], summary["engine"] = cfg.seed, cfg.engine
    summary["whale"] = whale_summary(clients, steps)
    tables = {"steps": steps, "market": recorder.market_frame(), "clients": clients,
              "pairs": pairs}  # fmt: skip
    return tables, summary


def write_results(cfg: DictConfig, out: Path, model, recorder, *, free: bool = False) -> dict:
    """Write config.yaml, steps/market/clients/pairs.parquet and summary.json (last) into `out`.

    pairs.parquet is left out for a model without the pair accounts (``cfg.pairs`` false).
    `free`: as `results`'s.
    """
    tables, summary = results(cfg, model, recorder, free=free)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["clientsim_version"] = package_version()
    write_atomic(out / "config.yaml", lambda tmp: tmp.write_text(OmegaConf.to_yaml(resolved)))
    for name, table in tables.items():
        if table is not None:
            write_parquet(out / f"{name}.parquet", table)
    write_json(out / "summary.json", summary)
    return summary


def write_run(cfg: DictConfig, directory: Path, *, progress: bool = False) -> dict:
    """Simulate `cfg` and write the run's files into `directory` as they come (no staging).

    The CLI calls it on the staging directory Hydra made for the run; use `run` otherwise.
    The model's pair state is freed once pairs.parquet's table is built (`results`).
    """
    model, recorder = simulate(cfg, progress=progress, accounts=cfg.pairs)
    return write_results(cfg, Path(directory), model, recorder, free=True)


def run(cfg: DictConfig, out_dir: str | Path, *, progress: bool = False) -> dict:
    """Simulate and write the run's files into `out_dir`, all at once; return the summary.

    `out_dir` must be new, empty or hold one earlier clientsim run (else
    `sim.runs.output.OutputRefused`); it holds either that earlier run or this one, never a mix,
    and a link to a directory is written through (`sim.runs.output.claimed`).
    """
    with claimed(target_path(out_dir), "run") as stage:
        return write_run(cfg, stage, progress=progress)
