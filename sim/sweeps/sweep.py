"""Sweeps that scale: chunked jobs, one tidy table, failure records and resume.

An experiment (`experiments/NAME.yaml`) is a Hydra multirun: each job is one design point
(the swept values) and a chunk of seeds, run one after another in the job's process, so a
sweep of thousands of runs is tens of jobs per core, whatever the launcher (basic, joblib,
submitit). Results are stored by design point, not by job::

    DIR/points/<hash>/point.json         the point's overrides, swept values, config
    DIR/points/<hash>/seed-0003/         one run: run.parquet (a row per policy),
                                         steps.parquet (policy means per week)
    DIR/points/<hash>/seed-0003.failed.json   a run that raised: the error and traceback
    DIR/jobs/<num>.json                  what job <num> of this sweep ran

`<hash>` is the hash of the point's resolved config (seed and chunk left out), so a rerun
of the same command into the same DIR skips every run that is complete (both files read
back) and runs only the missing, failed or damaged ones. A run's directory is written under
a temporary name and renamed into place, so a killed sweep loses at most the runs in flight.

`DIR/.sweep.json` says whose sweep DIR holds: its experiment, the id of its latest
submission and, from `clientsim-experiment run`, the design (the point hashes and seeds it
asked for). A sweep starts only in an empty directory or in a sweep of the same experiment,
and removes nothing but what an earlier sweep there wrote (job records, progress marks, the
joined tables). Every job carries its submission's id (`experiment.sweep_id`): a job of an
earlier submission (still queued when DIR was submitted again) writes nothing. When the
sweep ends, the `Collect` callback checks that the job records are exactly the design's
runs and joins them into `DIR/runs.parquet`, `DIR/steps.parquet` and `DIR/manifest.json`;
it exits non-zero with one line when any run failed, a requested run is missing, a record
is foreign or a run's file does not read back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import sys
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.config.schema import MAX_SEED, ConfigError
from sim.model import mechanics
from sim.runs.record import METRICS as METRIC_UNITS
from sim.runs.record import RUN_KEYS, STEP_SERIES, write_json, write_parquet
from sim.runs.summary import SHORT_RUN_WEEK, cumulative_profit, summarize

SWEEP_FILE = ".sweep.json"
#: The files of one run (`DIR/points/<hash>/seed-NNNN/`): complete when both read back.
RUN_FILES = ("run.parquet", "steps.parquet")
#: Keys that say how a point is run, not what it is: left out of its hash and its columns.
NOT_THE_POINT = (
    "seed", "progress", "output_dir", "experiment.seeds", "experiment.chunk_size",
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


class SweepError(RuntimeError):
    """A sweep directory, or a file in it, is not what the sweep needs (a one-line message).

    `reason`: the message without the place it names (what a caller naming it shows).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


#: runs.parquet's metrics (declared with their units in sim.analysis.stats) and their dtypes.
PACKAGE = Path(__file__).resolve().parents[1]  # sim/
METRICS = tuple(METRIC_UNITS)
METRIC_DTYPES = {"businesses": "Int64", "crossover_vs_serve_all": "Int64", "weeks": "Int64"}
#: steps.parquet (of a sweep): per week and policy, means per business unless said otherwise.
STEP_METRICS = STEP_SERIES


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


# --- one run's rows -------------------------------------------------------------------


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    total = weights.sum()
    return float((values.fillna(0) * weights).sum() / total) if total else float("nan")


def run_rows(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per policy of one run: the summary's metrics and a few more (see METRICS)."""
    cum = cumulative_profit(steps)
    summary = summarize(steps, cum)
    revenue = steps.groupby(["step", "policy"], observed=True)["revenue"].mean()
    revenue = revenue.unstack("policy").cumsum()
    rows = []
    for policy, group in steps.groupby("policy", observed=True):
        row = {"policy": str(policy), **summary["policies"][policy]}
        early = revenue[policy].iloc[SHORT_RUN_WEEK - 1] if len(revenue) >= SHORT_RUN_WEEK else None
        row["revenue_week_13"] = early
        row["revenue_horizon"] = float(revenue[policy].iloc[-1])
        row["satisfaction"] = _weighted(group["satisfaction"], group["completed"])
        row["first_sales"] = group["acquisitions"].sum() / group["business_id"].nunique()
        row["crossover_vs_serve_all"] = (
            mechanics.crossover_week(cum[policy].to_numpy(), cum["serve_all"].to_numpy())
            if "serve_all" in cum and policy != "serve_all"
            else None
        )
        row["weeks"] = summary["weeks"]
        rows.append(row)
    return _typed(pd.DataFrame(rows, columns=["policy", *METRICS]))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    dtypes = {m: METRIC_DTYPES.get(m, "float64") for m in METRICS}
    return frame.astype({"policy": "string", **dtypes})


def step_means(steps: pd.DataFrame) -> pd.DataFrame:
    """Per week and policy: mean per business (sums for counts, active businesses)."""
    return step_means_of_runs([steps])[0]


def step_means_of_runs(runs: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """`step_means` of several runs' steps, in one pass of groupbys (a batch's runs).

    Each group (run, policy, week) is aggregated on its own, so every run's table is
    exactly its `step_means` alone.
    """
    steps = pd.concat(runs, keys=range(len(runs)), names=["run", None]).reset_index(level=0)
    frame = steps.assign(
        policy=steps["policy"].astype(str),
        active_reputation=steps["reputation"].where(steps["active"].astype(bool)),
        satisfaction_sum=steps["satisfaction"].fillna(0) * steps["completed"],
    )
    grouped = frame.groupby(["run", "policy", "step"], sort=True)
    out = grouped[["profit", "revenue"]].mean()
    out["reputation"] = grouped["active_reputation"].mean()
    sums = grouped[["satisfaction_sum", "completed"]].sum()  # mean S weighted by completed jobs
    out["satisfaction"] = (sums["satisfaction_sum"] / sums["completed"]).where(
        sums["completed"] > 0
    )
    out[["active", "acquisitions", "referral_acquisitions"]] = grouped[
        ["active", "acquisitions", "referral_acquisitions"]
    ].sum()
    cumulative = out.groupby(level=["run", "policy"])[["profit", "revenue"]].cumsum()
    out["cum_profit"], out["cum_revenue"] = cumulative["profit"], cumulative["revenue"]
    out = out.reset_index()
    counts = {"step": "int64", "active": "int64", "acquisitions": "int64"}
    counts["referral_acquisitions"] = "int64"
    out = out[["run", "policy", "step", *STEP_METRICS]].astype({"policy": "string", **counts})
    bounds = np.searchsorted(out["run"].to_numpy(), np.arange(len(runs) + 1))
    return [
        out.iloc[start:end].drop(columns="run").reset_index(drop=True)
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]


# --- a job ------------------------------------------------------------------------------


def _overrides(hc) -> list[str]:
    return [o for o in hc.overrides.task if not o.lstrip("+~").startswith("hydra")]


def swept_values(cfg: DictConfig, hc) -> dict[str, Any]:
    """The values of this job's overrides that define the point (group choices by name)."""
    values = {}
    for override in OverridesParser.create().parse_overrides(_overrides(hc)):
        key = override.get_key_element().lstrip("+~")
        if key in NOT_THE_POINT or key == "experiment" or override.is_delete():
            continue
        if key in hc.runtime.choices:  # a config group: its option's name
            values[key] = hc.runtime.choices[key]
        else:
            values[key] = OmegaConf.select(cfg, key, default=None)
    return {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
            for k, v in values.items()}  # fmt: skip


def _seed_dir(point_dir: Path, seed: int) -> Path:
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
            run_dir = _seed_dir(sweep_dir / "points" / point, seed)
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
    _, recorder = simulate(run_cfg)
    store_seed(recorder.steps_frame(), seed, point_dir)
    return recorder.step_seconds


def run_batch(cfg: DictConfig, batch: list[int], point_dir: Path) -> float:
    """Run the seeds `batch` of a point as one model (`sim.runs.run.simulate_batch`), store each.

    Each seed's files are those `run_seed` writes for it. Returns the steps' seconds per run.
    """
    from sim.runs.run import simulate_batch

    _, recorders = simulate_batch(cfg, batch)
    steps = [recorder.steps_frame() for recorder in recorders]
    for seed, frame, means in zip(batch, steps, step_means_of_runs(steps), strict=True):
        store_seed(frame, seed, point_dir, means)
    return recorders[0].step_seconds


def store_seed(steps: pd.DataFrame, seed: int, point_dir: Path, means=None) -> None:
    """Write one run's rows (of its steps) into its seed directory, renamed into place.

    `means`: its `step_means`, if already computed.
    """
    final = _seed_dir(point_dir, seed)
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
    return point_dir / f"{_seed_dir(point_dir, seed).name}.failed.json"


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


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


#: A progress mark's name (`Progress.done`): `<sweep id>.<point hash>.<seed>.<status>`.
MARK = re.compile(r"[^.]+\.[0-9a-f]{16}\.-?[0-9]+\.(ok|skipped|failed)")


class Progress:
    """Lines of runs done / total and time left, written to stdout (a log can hold them)."""

    def __init__(self, sweep_dir: Path, sweep: dict, total: int) -> None:
        self.dir = sweep_dir / ".progress"
        self.sweep, self.total = sweep, total
        self.dir.mkdir(parents=True, exist_ok=True)
        self._first: float | None = None  # when the sweep's first run was done

    def done(self, point_hash: str, seed: int, status: str) -> None:
        """Mark one run done and print where the sweep stands."""
        (self.dir / f"{self.sweep['id']}.{point_hash}.{seed}.{status}").touch()
        marks = list(self.dir.glob(f"{self.sweep['id']}.*"))
        failed = sum(m.suffix == ".failed" for m in marks)
        elapsed = time.time() - self.sweep["t0"]
        line = f"clientsim-experiment: {len(marks)}"
        if self.total:
            left = self._rate(marks) * max(self.total - len(marks), 0)
            line += f"/{self.total} runs done, {_clock(elapsed)} elapsed, about {_clock(left)} left"
        else:
            line += f" runs done, {_clock(elapsed)} elapsed"
        print(line + (f" ({failed} failed)" if failed else ""), flush=True)

    def _rate(self, marks: list[Path]) -> float:
        """Seconds a run, timed from the first run done (so the start-up does not count).

        The first mark's time is looked up once (it never changes), not every run.
        """
        if len(marks) < 2:
            return time.time() - self.sweep["t0"]
        if self._first is None:
            self._first = min(m.stat().st_mtime for m in marks)
        return max(time.time() - self._first, 0.0) / (len(marks) - 1)


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
        point = {"hash": point_hash, "overrides": _overrides(hc)}
        point |= {"values": swept_values(cfg, hc), "config": point_config(cfg)}
        write_json(point_dir / "point.json", point)
    progress = Progress(sweep_dir, sweep, cfg.experiment.total_runs)
    record = {"sweep": sweep["id"], "job": hc.job.num, "point_hash": point_hash, "runs": {},
              "seconds": {}, "pid": os.getpid()}  # fmt: skip
    todo = []
    for seed in seeds(cfg):
        if complete(_seed_dir(point_dir, seed)):  # from an earlier sweep into DIR
            record["runs"][str(seed)] = "skipped"
            progress.done(point_hash, seed, "skipped")
        else:
            _discard(_seed_dir(point_dir, seed))
            todo.append(seed)
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
                    progress.done(point_hash, seed, "ok")
                continue
        for seed in batch:
            if complete(_seed_dir(point_dir, seed)):  # stored by the batch before it failed
                status = "ok"
            else:
                status = _run_alone(cfg, seed, point_dir, record)
            record["runs"][str(seed)] = status
            progress.done(point_hash, seed, status)
    write_json(sweep_dir / "jobs" / f"{hc.job.num}.json", record)
    return record


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


# --- the sweep's start and end ----------------------------------------------------------


def read_sweep(sweep_dir: Path) -> dict:
    """The current sweep's identity (written when the sweep starts)."""
    path = sweep_dir / SWEEP_FILE
    if path.exists():
        return json.loads(path.read_text())
    return {"id": "unknown", "t0": time.time(), "started": _now(), "command": ""}


def sweep_of(sweep_dir: Path) -> str | None:
    """The experiment whose sweep `sweep_dir` holds (None: it holds none)."""
    try:
        sweep = json.loads((sweep_dir / SWEEP_FILE).read_text())
    except (OSError, ValueError):  # removed or damaged: the points still say whose it is
        sweep = {}
    if isinstance(sweep, dict) and "experiment" in sweep:
        return sweep["experiment"]
    for point in sorted(sweep_dir.glob("points/*/point.json")):  # of an earlier clientsim
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return json.loads(point.read_text())["config"]["experiment"]["name"]
    return None


def check_sweep_dir(sweep_dir: Path, experiment: str) -> None:
    """Raise SweepError unless `sweep_dir` is absent, empty or a sweep of `experiment`."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        reason = "is a file, not a directory"
        raise SweepError(f"sweep directory {sweep_dir}: {reason}", reason)
    if not sweep_dir.exists() or not any(sweep_dir.iterdir()):
        return
    found = sweep_of(sweep_dir)
    if found == experiment:
        return
    held = (
        f"holds a sweep of experiment {found!r}, not {experiment!r}"
        if found
        else f"is not empty and holds no sweep (no {SWEEP_FILE})"
    )
    reason = f"{held}; nothing in it was touched (give a new or empty directory)"
    raise SweepError(f"sweep directory {sweep_dir}: {reason}", reason)


#: Designs planned in this process (`plan`), by sweep id: `Collect` records them.
_PLANS: dict[str, dict] = {}


def plan(sweep_id: str, points: list[str], first_seed: int, n_seeds: int) -> None:
    """Declare the design of the sweep `sweep_id` that this process is about to launch.

    `points` are the design points' hashes (`config_hash`), the seeds
    `first_seed + i` for i in [0, n_seeds). The sweep's start records them in `.sweep.json`
    and its join checks every job record against them.
    """
    _PLANS[sweep_id] = {"points": list(points), "seed": first_seed, "seeds": n_seeds}


def start_sweep(sweep_dir: Path, experiment: str, sweep_id: str | None = None) -> dict:
    """Give the sweep of `experiment` starting in `sweep_dir` its identity.

    Refuses (SweepError) a directory that is not empty and not a sweep of `experiment`.
    Then forgets the last sweep's jobs there: removes its job records, progress marks and
    joined tables (never a table that looks complete), and nothing else.
    """
    check_sweep_dir(sweep_dir, experiment)
    sweep = {"id": sweep_id or uuid.uuid4().hex[:12], "experiment": experiment}
    sweep |= {"t0": time.time(), "started": _now(), **_PLANS.get(sweep_id, {})}
    sweep["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    for record in sweep_dir.glob("jobs/*.json"):
        if _is_record(record):  # a user's other files there stay
            record.unlink()
    _remove_empty(sweep_dir / "jobs")
    _remove_marks(sweep_dir)
    for stale in ("runs.parquet", "steps.parquet", "manifest.json"):
        (sweep_dir / stale).unlink(missing_ok=True)  # never a table that looks complete
    write_json(sweep_dir / SWEEP_FILE, sweep)
    return sweep


def _remove_marks(sweep_dir: Path) -> None:
    """Remove the progress marks (`.progress/`), which only a running sweep needs."""
    for mark in (sweep_dir / ".progress").glob("*"):
        if MARK.fullmatch(mark.name) and mark.is_file():  # nothing else there is removed
            mark.unlink(missing_ok=True)
    _remove_empty(sweep_dir / ".progress")


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SweepError(f"{path} does not read back ({reason}); rerun the same command "
                         "to run it again") from None  # fmt: skip


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SweepError(f"{path} does not read back ({error}); rerun the same command to "
                         "write it again") from None  # fmt: skip


def kept_runs(sweep_dir: Path) -> int:
    """How many runs of the sweep's design (`.sweep.json`) are stored in `sweep_dir`.

    A run's directory is renamed into place whole, so its presence is what counts (cheap
    enough to poll); a file damaged later is found, and redone, by the next sweep.
    """
    sweep = read_sweep(sweep_dir)
    if "points" not in sweep:
        return sum(1 for d in sweep_dir.glob("points/*/seed-*") if d.is_dir())
    first, last = sweep["seed"], sweep["seed"] + sweep["seeds"]
    kept = 0
    for point in sweep["points"]:
        for run_dir in (sweep_dir / "points" / point).glob("seed-*"):
            seed = run_dir.name.removeprefix("seed-")
            kept += seed.isdigit() and first <= int(seed) < last and run_dir.is_dir()
    return kept


#: The keys of a job record (`DIR/jobs/<num>.json`): a JSON file without them is not one.
RECORD_KEYS = ("sweep", "job", "point_hash", "runs")


def _is_record(path: Path) -> bool:
    """Whether `path` is a job record of a sweep (`<num>.json` holding RECORD_KEYS)."""
    if not path.stem.isdigit() or not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(key in record for key in RECORD_KEYS)


def _job_records(sweep_dir: Path) -> list[dict]:
    """The sweep's job records; a damaged `<num>.json` is named (SweepError), others skipped."""
    records = []
    for path in sorted((sweep_dir / "jobs").glob("*.json")):
        if path.stem.isdigit() and not _is_record(path):
            record = _read_json(path)  # names a file that does not read back
            if isinstance(record, dict) and "sweep" in record:  # a damaged record of ours
                raise SweepError(f"{path} is not a whole job record; rerun the same command "
                                 "to write it again")  # fmt: skip
            continue
        if _is_record(path):
            records.append(_read_json(path))
    return records


def _check_twice(records: list[dict], sweep_dir: Path) -> None:
    """Raise SweepError if two jobs recorded the same run (the same point and seed)."""
    seen: dict[tuple[str, int], int] = {}
    for record in records:
        for seed in record["runs"]:
            run = (record["point_hash"], int(seed))
            if run in seen:
                raise SweepError(f"{sweep_dir}: jobs {seen[run]} and {record['job']} both ran "
                                 f"point {run[0]} seed {run[1]}: the sweep ran some runs twice "
                                 "(was a key of the experiment swept?); its tables were not "
                                 "written")  # fmt: skip
            seen[run] = record["job"]


def _check_design(sweep: dict, records: list[dict], sweep_dir: Path) -> None:
    """Raise SweepError unless the job records are exactly the runs the design asked for."""
    if "points" not in sweep:  # a plain `clientsim -m +experiment=...`: no design recorded
        return
    seeds = range(sweep["seed"], sweep["seed"] + sweep["seeds"])
    for record in records:
        foreign = [s for s in record["runs"] if int(s) not in seeds]
        if record["point_hash"] not in sweep["points"] or foreign:
            raise SweepError(f"{sweep_dir}/jobs/{record['job']}.json: point "
                             f"{record['point_hash']} seeds {foreign or list(record['runs'])} "
                             "are not runs this sweep asked for")  # fmt: skip
    done = {(r["point_hash"], int(s)) for r in records for s in r["runs"]}
    missing = [(p, s) for p in sweep["points"] for s in seeds if (p, s) not in done]
    if missing:
        point, seed = missing[0]
        raise SweepError(f"{len(missing)} of {len(sweep['points']) * len(seeds)} runs this "
                         f"sweep asked for are missing (no job recorded them; the first: "
                         f"point {point} seed {seed}); rerun the same command to run "
                         "them")  # fmt: skip


def _point_runs(point_dir: Path, seed_status: dict[str, str]) -> tuple[list, list, list]:
    runs, steps, failures = [], [], []
    for seed_text in sorted(seed_status, key=int):
        seed = int(seed_text)
        done = _seed_dir(point_dir, seed)
        if done.is_dir():
            runs.append(_read(done / "run.parquet").assign(seed=seed, status="ok"))
            steps.append(_read(done / "steps.parquet").assign(seed=seed))
        else:
            failed = point_dir / f"{done.name}.failed.json"
            error = json.loads(failed.read_text())["error"] if failed.exists() else "missing"
            failures.append((seed, error, failed))
    return runs, steps, failures


def collect(sweep_dir: Path, sweep_id: str | None = None) -> dict:
    """Join the runs of the current sweep into runs.parquet, steps.parquet, manifest.json.

    `sweep_id`: the sweep this process launched; a SweepError if a later submission has
    taken the directory over, if a job record is not of the design, if a requested run is
    missing or if a run's file does not read back. Removes the progress marks when done.
    """
    sweep = read_sweep(sweep_dir)
    if sweep_id is not None and sweep_id != sweep["id"]:
        raise SweepError(f"{sweep_dir} now holds sweep {sweep['id']} (a later submission), "
                         f"not this one ({sweep_id}); its tables were not written")  # fmt: skip
    records = [r for r in _job_records(sweep_dir) if r["sweep"] == sweep["id"]]
    _check_twice(records, sweep_dir)
    _check_design(sweep, records, sweep_dir)
    hashes = list(dict.fromkeys(r["point_hash"] for r in records))
    points = [_read_json(sweep_dir / "points" / h / "point.json") for h in hashes]
    params = swept_keys([p["values"] for p in points])
    exp = points[0]["config"]["experiment"] if points else {}
    all_runs, all_steps, errors = [], [], []
    for record in records:
        index = hashes.index(record["point_hash"])
        values = {k: points[index]["values"].get(k) for k in params}
        runs, steps, failures = _point_runs(sweep_dir / "points" / hashes[index], record["runs"])
        keys = {"point": index, "point_hash": hashes[index], "job": record["job"], **values}
        all_runs += [r.assign(**keys, error=None) for r in runs]
        all_steps += [s.assign(point=index, **values) for s in steps]
        mix = points[index]["config"]["market"]["policy_mix"]
        for seed, error, path in failures:
            rows = pd.DataFrame({"policy": [p for p, n in mix.items() if n > 0]})
            all_runs.append(rows.assign(seed=seed, status="failed", error=error, **keys))
            errors.append(str(path))
    runs = tidy_runs(all_runs, exp.get("name", ""), params)
    steps = tidy_steps(all_steps, params)
    write_parquet(sweep_dir / "steps.parquet", steps)
    write_parquet(sweep_dir / "runs.parquet", runs)
    exp = {**exp, "seeds": len({seed for r in records for seed in r["runs"]})}
    manifest = make_manifest(sweep, exp, params, points, len(errors))
    write_json(sweep_dir / "manifest.json", manifest)
    _remove_marks(sweep_dir)
    return {"runs": runs, "failed": len(errors), "errors": errors, "manifest": manifest}


def swept_keys(values: list[dict]) -> list[str]:
    """The keys whose values differ between points (a single point: every key it sets)."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    if len(values) <= 1:
        return keys
    return [k for k in keys if len({json.dumps(v.get(k), default=str) for v in values}) > 1]


def tidy_runs(frames: list[pd.DataFrame], experiment: str, params: list[str]) -> pd.DataFrame:
    """runs.parquet: RUN_KEYS, the swept parameters, then METRICS, with stable dtypes."""
    columns = [*RUN_KEYS, *params, *METRICS]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    frame = frame.assign(experiment=experiment).reindex(columns=columns)
    frame = frame.sort_values(["point", "seed", "policy"], kind="stable", ignore_index=True)
    keys = {"point": "int64", "job": "int64", "seed": "int64"}
    strings = {k: "string" for k in ("experiment", "point_hash", "policy", "status", "error")}
    return _typed_params(_typed(frame.astype(keys | strings)), params)


def tidy_steps(frames: list[pd.DataFrame], params: list[str]) -> pd.DataFrame:
    """steps.parquet of a sweep: point, seed, policy, step, STEP_METRICS, swept parameters."""
    columns = ["point", "seed", "policy", "step", *STEP_METRICS, *params]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    frame = frame.reindex(columns=columns).astype({"point": "int64", "seed": "int64"})
    frame = frame.sort_values(["point", "seed", "policy", "step"], ignore_index=True)
    return _typed_params(frame, params)


def _typed_params(frame: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    for key in params:
        column = frame[key].dropna()
        if column.map(type).eq(bool).all() and len(column):
            frame[key] = frame[key].astype("boolean")
        elif column.map(lambda v: isinstance(v, int) and not isinstance(v, bool)).all():
            frame[key] = frame[key].astype("Int64")
        elif column.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all():
            frame[key] = frame[key].astype("float64")
        else:  # group choices are names; anything else is stored as its JSON text
            frame[key] = frame[key].map(_as_text).astype("string")
    return frame


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else json.dumps(value, sort_keys=True)


def make_manifest(sweep: dict, exp: dict, params: list, points: list, failed: int) -> dict:
    """manifest.json: what ran, with which code and packages, and when."""
    from importlib.metadata import PackageNotFoundError, version

    from sim.runs.run import package_version

    packages = {}
    for name in ("numpy", "pandas", "pyarrow", "mesa", "hydra-core", "networkx", "scipy"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    compare = dict(exp.get("compare") or {})
    compare["on"] = compare.pop("axis", "policy")
    return {
        "experiment": {**exp, "compare": compare},
        "params": params,
        "points": [
            {"point": i, "hash": p["hash"], "overrides": p["overrides"], "values": p["values"]}
            for i, p in enumerate(points)
        ],
        "command": sweep.get("command", ""),
        "clientsim_version": package_version(),
        "git_commit": _git_commit(),
        "packages": packages,
        "python": sys.version.split()[0],
        "started": sweep.get("started"),
        "ended": _now(),
        "failed": failed,
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class Collect(Callback):
    """Hydra callback of every experiment: identifies the sweep, then joins its results."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Write the sweep's identity before the first job (exit 2 if DIR is not its own)."""
        mark_submitter()  # its jobs' processes die with this one (`die_with_submitter`)
        exp = config.get("experiment")
        if exp is None:
            return  # a plain `clientsim -m` sweep: every job writes a whole run of its own
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            overrides = [o for o in config.hydra.overrides.task if not o.startswith("hydra")]
            check_experiment_overrides(
                OverridesParser.create().parse_overrides(overrides), user=False
            )
            check_seeds(config)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            start_sweep(sweep_dir, exp.name, exp.get("sweep_id"))
        except (ConfigError, SweepError, OSError) as error:
            _stop(error, 2)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write runs.parquet, steps.parquet and manifest.json; exit 1 if any run failed.

        A sweep that cannot be joined (see `collect`) exits 1 with one line; Hydra would
        otherwise turn the error into a warning.
        """
        exp = config.get("experiment")
        if exp is None:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            result = collect(sweep_dir, exp.get("sweep_id"))
        except (SweepError, OSError) as error:
            _stop(error, 1)
        n = result["runs"][["point", "seed"]].drop_duplicates().shape[0]
        print(f"clientsim-experiment: {n} runs of {len(result['manifest']['points'])} design "
              f"points -> {sweep_dir}/runs.parquet")  # fmt: skip
        if result["failed"]:
            again = shlex.quote(str(sweep_dir))
            print(f"clientsim-experiment: {result['failed']} of {n} runs failed; errors in "
                  f"{sweep_dir}/points/*/seed-*.failed.json; rerun the same command with "
                  f"--dir {again} to run only those", file=sys.stderr)  # fmt: skip
            raise SystemExit(1)


def _stop(error: BaseException, code: int) -> None:
    """End the sweep with one line (a callback's exception would become Hydra's warning)."""
    print(f"clientsim-experiment: {error}", file=sys.stderr)
    raise SystemExit(code) from None
