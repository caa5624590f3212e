"""A job of a sweep: the runs of one design point and chunk of seeds, stored by point.

A run already complete is skipped; a run that raises is recorded as failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from tqdm import tqdm

from sim.runs.record import write_json, write_parquet
from sim.sweeps.directory import SweepError, read_sweep
from sim.sweeps.points import config_hash, job_overrides, point_config, seeds, swept_values
from sim.sweeps.tables import run_rows, step_means, step_means_of_runs

#: The files of one run (`DIR/points/<hash>/seed-NNNN/`): complete when both read back.
RUN_FILES = ("run.parquet", "steps.parquet")


def seed_run_dir(point_dir: Path, seed: int) -> Path:
    """The directory of one run of a design point: `seed-0003`."""
    return point_dir / f"seed-{seed:04d}"


def complete(run_dir: Path) -> bool:
    """Whether a run's directory holds both its files and their parquet footers read back."""
    try:
        for name in RUN_FILES:
            pq.read_metadata(run_dir / name)
    except (OSError, ValueError, pa.ArrowException):
        return False
    return True


def foreign_run_dir(run_dir: Path) -> bool:
    """Whether `run_dir` (a run's place) holds something a sweep's run never writes."""
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        return True
    return run_dir.is_dir() and any(p.name not in RUN_FILES for p in run_dir.iterdir())


def check_run_dirs(sweep_dir: Path, points: list[str], seeds: list[int]) -> None:
    """Raise SweepError if a run's folder of the design holds anything but a run's files.

    Such a folder (a plain run written there, say) is not the sweep's to remove or redo. A
    file in a run's place is left alone too: its run fails, and says why.
    """
    for point in points:
        for seed in seeds:
            run_dir = seed_run_dir(sweep_dir / "points" / point, seed)
            if run_dir.is_dir() and foreign_run_dir(run_dir):  # a file there: the run fails
                raise SweepError(f"{run_dir} holds files a sweep's run does not write (only "
                                 f"{', '.join(RUN_FILES)}); it was left untouched: move it "
                                 "away to run it again")  # fmt: skip


def _discard(run_dir: Path) -> None:
    """Remove a damaged run's files (only those a run writes), so that it is run again."""
    if not run_dir.is_dir() or foreign_run_dir(run_dir):
        return  # absent, or something else's files: left alone (the run then fails)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # anything else in it stays, and the run fails
        run_dir.rmdir()


def run_seed(cfg: DictConfig, seed: int, point_dir: Path) -> float:
    """Run one seed of a point and store it (atomically, as a renamed directory).

    Returns the seconds spent in the model's steps (what a sweep's overhead is measured
    against).
    """
    from sim.runs.run import simulate

    run_cfg = cfg.copy()
    run_cfg.seed = seed
    _, recorder = simulate(run_cfg, accounts=False)  # a sweep records no pairs
    store_seed(recorder.steps_frame(), seed, point_dir)
    return recorder.step_seconds


def run_batch(cfg: DictConfig, batch: list[int], point_dir: Path) -> float:
    """Run the seeds `batch` of a point as one model (`sim.runs.run.simulate_batch`), store each.

    Each seed's files are those `run_seed` writes for it. Returns the steps' seconds per run.
    """
    from sim.runs.run import simulate_batch

    _, recorders = simulate_batch(cfg, batch, accounts=False)  # a sweep records no pairs
    steps = [recorder.steps_frame() for recorder in recorders]
    for seed, frame, means in zip(batch, steps, step_means_of_runs(steps), strict=True):
        store_seed(frame, seed, point_dir, means)
    return recorders[0].step_seconds


def store_seed(steps: pd.DataFrame, seed: int, point_dir: Path, means=None) -> None:
    """Write one run's rows (of its steps) into its seed directory, renamed into place.

    `means`: its `step_means`, if already computed.
    """
    final = seed_run_dir(point_dir, seed)
    for stale in point_dir.glob(f".{final.name}.*.tmp"):  # left by a killed job
        shutil.rmtree(stale, ignore_errors=True)
    tmp = point_dir / f".{final.name}.{os.getpid()}.tmp"
    try:
        write_parquet(tmp / "run.parquet", run_rows(steps))
        write_parquet(tmp / "steps.parquet", step_means(steps) if means is None else means)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: A batch holds at most this many clients (about 250 MB of state): larger markets are
#: batched fewer at a time, and one of 200,000 clients or more runs alone.
BATCH_CLIENTS = 200_000


def batches(cfg: DictConfig, todo: list[int]) -> list[list[int]]:
    """The seeds `todo` in batches of `experiment.batch` (the vectorized engine; else one).

    A batch holds at most `BATCH_CLIENTS` clients, so batching never multiplies the memory
    of a large market.
    """
    size = cfg.experiment.batch if cfg.engine == "vectorized" else 1
    size = max(1, min(size, BATCH_CLIENTS // cfg.market.n_clients))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _seed_failure(point_dir: Path, seed: int) -> Path:
    return point_dir / f"{seed_run_dir(point_dir, seed).name}.failed.json"


def _run_alone(cfg: DictConfig, seed: int, point_dir: Path, record: dict) -> str:
    """Run one seed; record a failure (error and traceback) instead of raising."""
    try:
        record["seconds"][str(seed)] = run_seed(cfg, seed, point_dir)
    except Exception as error:  # recorded, and the other runs go on
        write_json(_seed_failure(point_dir, seed), {
            "seed": seed, "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        })  # fmt: skip
        return "failed"
    _seed_failure(point_dir, seed).unlink(missing_ok=True)
    return "ok"


_clock = tqdm.format_interval  # seconds as 01:05 or 1:02:05, as tqdm shows them


class Progress:
    """Lines of runs done / total and time left, written to stdout (a log can hold them)."""

    def __init__(self, sweep_dir: Path, sweep: dict, total: int) -> None:
        self.dir = sweep_dir / ".progress"
        self.sweep, self.total = sweep, total
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, point_hash: str, seeds: list[int], status: str) -> None:
        """Mark runs done (a batch's seeds finish together) and print one line for them."""
        for seed in seeds:
            (self.dir / f"{self.sweep['id']}.{point_hash}.{seed}.{status}").touch()
        marks = list(self.dir.glob(f"{self.sweep['id']}.*"))
        failed = sum(m.suffix == ".failed" for m in marks)
        elapsed = time.time() - self.sweep["t0"]
        kept = sum(m.suffix == ".skipped" for m in marks)
        line = f"clientsim-experiment: {len(marks)}"
        rate = self._rate(len(marks) - kept)
        if self.total and rate is not None:
            left = rate * max(self.total - len(marks), 0)
            line += f"/{self.total} runs done, {_clock(elapsed)} elapsed, about {_clock(left)} left"
        else:
            line += f"/{self.total or '?'} runs done, {_clock(elapsed)} elapsed"
        notes = [f"{kept} kept from before"] * bool(kept) + [f"{failed} failed"] * bool(failed)
        print(line + (f" ({', '.join(notes)})" if notes else ""), flush=True)

    def _rate(self, ran: int) -> float | None:
        """Seconds a run: the time since the sweep began over the `ran` runs it has run.

        Seeds stepped as one batch finish together, so a rate timed between runs would read
        zero inside a batch and the estimate would fall to nothing until the next one; the
        average since the start counts each batch's time once (its start-up too, so early
        lines err long). Runs kept from an earlier sweep cost nothing and do not count; with
        none run yet there is no rate (None).
        """
        return (time.time() - self.sweep["t0"]) / ran if ran else None


#: The process that launches a sweep's jobs, as `<pid>@<host>` (set by `mark_submitter`).
SUBMITTER_ENV = "CLIENTSIM_SUBMITTER"


_WATCHED: list[int] = []  # the parent this process watches (at most one)


def mark_submitter() -> None:
    """Name this process as the one launching jobs (in the environment they inherit)."""
    os.environ[SUBMITTER_ENV] = f"{os.getpid()}@{socket.gethostname()}"


def die_with_submitter(interval: float = 0.5) -> None:
    """In a job's process started by the submitter (joblib, submitit_local): die with it.

    A daemon thread checks the parent every `interval` seconds and ends this process
    (`os._exit(1)`) once it is reparented, i.e. the submitter died (even by SIGKILL, which
    leaves it no time to stop its workers): a worker never writes into a directory that a
    later submission has taken over. Nothing happens in the submitter itself, in a process
    it did not start (a Slurm job) or on another host.
    """
    pid, _, host = os.environ.get(SUBMITTER_ENV, "").partition("@")
    if not pid.isdigit() or host != socket.gethostname() or _WATCHED:
        return
    parent = os.getppid()
    if int(pid) == os.getpid() or parent != int(pid):
        return
    _WATCHED.append(parent)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-submitter", daemon=True).start()


def run_job(cfg: DictConfig) -> dict:
    """One sweep job: a design point and a chunk of seeds; never raises for a failed run.

    A job of an earlier submission of the sweep directory (its `experiment.sweep_id` is not
    the directory's) writes nothing.
    """
    die_with_submitter()
    hc = HydraConfig.get()
    sweep_dir = Path(hc.sweep.dir)
    sweep = read_sweep(sweep_dir)
    mine = cfg.experiment.get("sweep_id")
    if mine is not None and mine != sweep["id"]:
        print(f"clientsim-experiment: job {hc.job.num} of sweep {mine} wrote nothing: "
              f"{sweep_dir} now holds sweep {sweep['id']}", file=sys.stderr)  # fmt: skip
        return {}
    return _run_point(cfg, hc, sweep_dir, sweep)


def _run_point(cfg: DictConfig, hc, sweep_dir: Path, sweep: dict) -> dict:
    point_hash = config_hash(cfg)
    point_dir = sweep_dir / "points" / point_hash
    try:
        json.loads((point_dir / "point.json").read_text())
    except (OSError, ValueError):  # absent, or damaged: (re)written
        point = {"hash": point_hash, "overrides": job_overrides(hc)}
        point |= {"values": swept_values(cfg, hc), "config": point_config(cfg)}
        write_json(point_dir / "point.json", point)
    progress = Progress(sweep_dir, sweep, cfg.experiment.total_runs)
    record = {"sweep": sweep["id"], "job": hc.job.num, "point_hash": point_hash, "runs": {},
              "seconds": {}, "pid": os.getpid()}  # fmt: skip
    todo, skipped = [], []
    for seed in seeds(cfg):
        if complete(seed_run_dir(point_dir, seed)):  # from an earlier sweep into DIR
            record["runs"][str(seed)] = "skipped"
            skipped.append(seed)
        else:
            _discard(seed_run_dir(point_dir, seed))
            todo.append(seed)
    if skipped:
        progress.done(point_hash, skipped, "skipped")
    for batch in batches(cfg, todo):
        if len(batch) > 1:
            try:
                seconds = run_batch(cfg, batch, point_dir)
            except Exception:  # some seed fails: run them one by one, to say which
                pass
            else:
                for seed in batch:
                    _seed_failure(point_dir, seed).unlink(missing_ok=True)
                    record["seconds"][str(seed)], record["runs"][str(seed)] = seconds, "ok"
                progress.done(point_hash, batch, "ok")
                continue
        for seed in batch:
            if complete(seed_run_dir(point_dir, seed)):  # stored by the batch before it failed
                status = "ok"
            else:
                status = _run_alone(cfg, seed, point_dir, record)
            record["runs"][str(seed)] = status
            progress.done(point_hash, [seed], status)
    write_json(sweep_dir / "jobs" / f"{hc.job.num}.json", record)
    return record
