"""Run one simulation from a validated config and write its results."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from sim.engines import engine_class
from sim.record import Recorder, clients_frame, write_atomic, write_json, write_parquet
from sim.summary import summarize


def package_version() -> str:
    """The installed clientsim version (or "unknown" when run from an uninstalled tree)."""
    try:
        return version("clientsim")
    except PackageNotFoundError:
        return "unknown"


def build_model(cfg: DictConfig):
    """The model of `cfg.engine`, initialised but not run."""
    return engine_class(cfg.engine)(cfg)


def simulate(cfg: DictConfig, *, progress: bool = False):
    """Run the model for `cfg.steps` weeks; return (model, recorder).

    A progress bar (stderr) appears when `progress` is set and the run lasts over 2 s.
    """
    model = build_model(cfg)
    recorder = Recorder()
    interval = 0.5 if sys.stderr.isatty() else 15.0  # a log file gets a line every 15 s
    bar = tqdm(total=cfg.steps, unit="week", delay=2.0, mininterval=interval,
               disable=not progress, file=sys.stderr)  # fmt: skip
    with bar:
        for _ in range(cfg.steps):
            model.step()
            recorder.collect(model)
            bar.update()
    return model, recorder


def run(cfg: DictConfig, out_dir: str | Path, *, progress: bool = False) -> dict:
    """Simulate and write config.yaml, steps/market/clients.parquet and summary.json.

    Every file is written atomically; summary.json comes last, so its presence marks a
    complete run.
    """
    out = Path(out_dir)
    model, recorder = simulate(cfg, progress=progress)
    steps = recorder.steps_frame()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["clientsim_version"] = package_version()
    write_atomic(out / "config.yaml", lambda tmp: tmp.write_text(OmegaConf.to_yaml(resolved)))
    write_parquet(out / "steps.parquet", steps)
    write_parquet(out / "market.parquet", recorder.market_frame())
    write_parquet(out / "clients.parquet", clients_frame(model))
    summary = summarize(steps)
    summary["seed"], summary["engine"] = cfg.seed, cfg.engine
    write_json(out / "summary.json", summary)
    return summary
