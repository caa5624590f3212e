"""Run one simulation from a validated config and write its results.

A run directory never holds files of two runs: a run writes everything into a hidden
staging directory beside its target (`.<name>.tmp-<pid>`) and renames it into place when
complete, replacing an older run's directory whole. A lock file beside the target
(`.<name>.lock`, holding the writer's pid) keeps two live runs out of one directory; the
next run into a directory removes what a killed writer left behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from sim.analysis import whale_summary
from sim.engines import engine_class
from sim.record import Recorder, clients_frame, write_atomic, write_json, write_parquet
from sim.summary import summarize

_HELD: set[Path] = set()  # locks this process holds (a run inside the CLI's lock)


class OutputBusy(RuntimeError):
    """Another live run holds the output directory."""

    def __init__(self, out: Path, pid: str) -> None:
        super().__init__(f"{out} is being written by another run (pid {pid})")
        self.out, self.pid = out, pid


def package_version() -> str:
    """The installed clientsim version (or "unknown" when run from an uninstalled tree)."""
    try:
        return version("clientsim")
    except PackageNotFoundError:
        return "unknown"


def build_model(cfg: DictConfig, seeds=None):
    """The model of `cfg.engine`, initialised but not run (of several markets: `seeds`)."""
    return engine_class(cfg.engine)(cfg) if seeds is None else engine_class(cfg.engine)(cfg, seeds)


def simulate(cfg: DictConfig, *, progress: bool = False):
    """Run the model for `cfg.steps` weeks; return (model, recorder).

    With `progress`, a run that lasts over 2 s shows a progress bar on a terminal, and a line
    every 15 s when stderr is a log file (no carriage returns). `recorder.step_seconds` is
    the time spent in the model's steps alone (what a sweep's overhead is measured against).
    """
    model = build_model(cfg)
    recorder = Recorder()
    recorder.step_seconds = 0.0
    with _progress(cfg.steps, enabled=progress) as tick:
        for _ in range(cfg.steps):
            started = time.perf_counter()
            model.step()
            recorder.step_seconds += time.perf_counter() - started
            recorder.collect(model)
            tick()
    return model, recorder


def simulate_batch(cfg: DictConfig, seeds: list[int]):
    """Run the markets of `seeds` (one design point) as one model; return (model, recorders).

    Recorder r holds exactly what `simulate` records for seed ``seeds[r]`` alone (the
    vectorized engine; `sim.model.MarketModel`); its `step_seconds` is its share of the
    steps' time.
    """
    model = build_model(cfg, seeds)
    recorders = [Recorder() for _ in seeds]
    seconds = 0.0
    for _ in range(cfg.steps):
        started = time.perf_counter()
        model.step()
        seconds += time.perf_counter() - started
        Recorder.collect_markets(model, recorders)
    for recorder in recorders:
        recorder.step_seconds = seconds / len(seeds)
    return model, recorders


LOG_EVERY_SECONDS = 15.0  # a progress line this often when stderr is not a terminal


@contextmanager
def _progress(weeks: int, *, enabled: bool):
    """A tick function: a tqdm bar on a terminal, else a plain line every 15 s."""
    if enabled and sys.stderr.isatty():
        with tqdm(total=weeks, unit="week", delay=2.0, file=sys.stderr) as bar:
            yield bar.update
        return
    started, shown, done = time.monotonic(), [time.monotonic()], [0]

    def tick() -> None:
        done[0] += 1
        now = time.monotonic()
        if enabled and now - shown[0] >= LOG_EVERY_SECONDS:
            shown[0] = now
            left = (now - started) / done[0] * (weeks - done[0])
            print(f"clientsim: week {done[0]}/{weeks}, {now - started:.0f} s elapsed, "
                  f"about {left:.0f} s left", file=sys.stderr, flush=True)  # fmt: skip

    yield tick


def staging_dir(out: Path, pid: int | None = None) -> Path:
    """The hidden directory beside `out` that a run (of process `pid`) writes into."""
    return out.parent / f".{out.name}.tmp-{os.getpid() if pid is None else pid}"


def staged_target(directory: Path) -> Path | None:
    """The target of a staging directory (`.<name>.tmp-<pid>` -> `<name>`), else None."""
    name, sep, pid = directory.name.rpartition(".tmp-")
    if sep and name.startswith(".") and pid.isdigit():
        return directory.parent / name[1:]
    return None


@contextmanager
def output_lock(out: str | Path, *, keep: Path | None = None) -> Iterator[None]:
    """Hold `out` for this process; raise `OutputBusy` if a live run holds it.

    The lock is an advisory lock on `.<name>.lock` beside `out`, released by the kernel when
    its holder dies, so a killed run never blocks the next. Taking it removes what killed
    writers left: their staging directories and half-replaced old runs (all but `keep`,
    this run's own staging directory).
    """
    out = Path(out).absolute()
    lock = out.parent / f".{out.name}.lock"
    if lock in _HELD:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OutputBusy(out, pid) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD.add(lock)
    try:
        for stale in out.parent.glob(f".{out.name}.*-*"):
            if stale.is_dir() and stale not in (staging_dir(out), keep):
                shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        _HELD.discard(lock)
        lock.unlink(missing_ok=True)
        os.close(fd)


def publish(stage: Path, out: Path) -> None:
    """Rename the complete `stage` into place as `out`, replacing an older run's directory.

    Between the two renames `out` is briefly absent, never a mix of two runs.
    """
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.is_dir():
        os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


def write_results(cfg: DictConfig, out: Path, model, recorder) -> dict:
    """Write config.yaml, steps/market/clients.parquet and summary.json (last) into `out`.

    summary.json holds `sim.summary.summarize` of the steps, the seed, the engine and the
    whale curve's readings (`sim.analysis.whale_summary`).
    """
    steps = recorder.steps_frame()
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["clientsim_version"] = package_version()
    write_atomic(out / "config.yaml", lambda tmp: tmp.write_text(OmegaConf.to_yaml(resolved)))
    write_parquet(out / "steps.parquet", steps)
    write_parquet(out / "market.parquet", recorder.market_frame())
    clients = clients_frame(model)
    write_parquet(out / "clients.parquet", clients)
    summary = summarize(steps)
    summary["seed"], summary["engine"] = cfg.seed, cfg.engine
    summary["whale"] = whale_summary(clients, steps)
    write_json(out / "summary.json", summary)
    return summary


def run(
    cfg: DictConfig, out_dir: str | Path, *, progress: bool = False, staging: Path | None = None
) -> dict:
    """Simulate and write the run's files into `out_dir`, all at once.

    The files go into `staging` (by default a hidden sibling of `out_dir`; the CLI passes
    the directory where Hydra already wrote `.hydra/`), which is renamed into place when
    complete: `out_dir` holds either the previous complete run or this one. An error or an
    interrupt removes the staging directory.
    """
    out = Path(out_dir).absolute()
    stage = Path(staging).absolute() if staging is not None else staging_dir(out)
    if stage == out:  # a directory the caller chose for everything: written in place
        model, recorder = simulate(cfg, progress=progress)
        return write_results(cfg, out, model, recorder)
    with output_lock(out, keep=stage):
        try:
            stage.mkdir(parents=True, exist_ok=True)
            model, recorder = simulate(cfg, progress=progress)
            summary = write_results(cfg, stage, model, recorder)
            publish(stage, out)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return summary
