"""The end of a sweep: the job records checked against the design, joined into tidy tables."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sim.config.schema import ConfigError
from sim.runs.record import write_json, write_parquet
from sim.sweeps.directory import SweepError, is_record, read_sweep, remove_marks, start_sweep
from sim.sweeps.jobs import mark_submitter, seed_run_dir
from sim.sweeps.points import check_experiment_overrides, check_seeds
from sim.sweeps.tables import design_hash, make_manifest, swept_keys, tidy_runs, tidy_steps


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


def _job_records(sweep_dir: Path) -> list[dict]:
    """The sweep's job records; a damaged `<num>.json` is named (SweepError), others skipped."""
    records = []
    for path in sorted((sweep_dir / "jobs").glob("*.json")):
        if path.stem.isdigit() and not is_record(path):
            record = _read_json(path)  # names a file that does not read back
            if isinstance(record, dict) and "sweep" in record:  # a damaged record of ours
                raise SweepError(f"{path} is not a whole job record; rerun the same command "
                                 "to write it again")  # fmt: skip
            continue
        if is_record(path):
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
    """A point's stored runs and steps (one table each, by seed, a `seed` column) and failures."""
    done, failures = [], []
    for seed_text in sorted(seed_status, key=int):
        seed = int(seed_text)
        run_dir = seed_run_dir(point_dir, seed)
        if run_dir.is_dir():
            done.append((seed, run_dir))
        else:
            failed = point_dir / f"{run_dir.name}.failed.json"
            error = json.loads(failed.read_text())["error"] if failed.exists() else "missing"
            failures.append((seed, error, failed))
    if not done:
        return [], [], failures
    runs = _read_seeds([(seed, d / "run.parquet") for seed, d in done]).assign(status="ok")
    steps = _read_seeds([(seed, d / "steps.parquet") for seed, d in done])
    return [runs], [steps], failures


def _read_seeds(files: list[tuple[int, Path]]) -> pd.DataFrame:
    """The parquet files of a point's seeds as one table, in order, with a `seed` column.

    Read at once (the files of a point are of one code: one schema; pandas hands the list
    to `pyarrow.parquet.read_table`); if that fails, one by one, so that the file which does
    not read back is named.
    """
    seeds, paths = zip(*files, strict=True)
    try:
        frame = pd.read_parquet([str(path) for path in paths])
        rows = [pq.read_metadata(path).num_rows for path in paths]
    except (OSError, ValueError, TypeError, pa.ArrowException):
        frames = [_read(path) for path in paths]  # a SweepError naming the file, or:
        frame, rows = pd.concat(frames, ignore_index=True), [len(f) for f in frames]
    return frame.assign(seed=np.repeat(np.array(seeds, dtype=np.int64), rows))


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
    of_point: dict[str, list[dict]] = {h: [] for h in hashes}
    for record in records:
        of_point[record["point_hash"]].append(record)
    for index, (point_hash, its) in enumerate(of_point.items()):  # a point's runs, read at once
        job = {int(seed): record["job"] for record in its for seed in record["runs"]}
        status = {seed: done for record in its for seed, done in record["runs"].items()}
        values = {k: points[index]["values"].get(k) for k in params}
        runs, steps, failures = _point_runs(sweep_dir / "points" / point_hash, status)
        keys = {"point": index, "point_hash": point_hash, **values}
        all_runs += [r.assign(**keys, job=r["seed"].map(job), error=None) for r in runs]
        all_steps += [s.assign(point=index, point_hash=point_hash, **values) for s in steps]
        mix = points[index]["config"]["market"]["policy_mix"]
        for seed, error, path in failures:
            rows = pd.DataFrame({"policy": [p for p, n in mix.items() if n > 0]})
            all_runs.append(rows.assign(seed=seed, status="failed", error=error, job=job[seed],
                                        **keys))  # fmt: skip
            errors.append(str(path))
    name = exp.get("name", "")
    sweep_hash = design_hash(name, hashes, [int(s) for r in records for s in r["runs"]])
    runs = tidy_runs(all_runs, name, params, sweep_hash)
    steps = tidy_steps(all_steps, name, params, sweep_hash)
    write_parquet(sweep_dir / "steps.parquet", steps)
    write_parquet(sweep_dir / "runs.parquet", runs)
    exp = {**exp, "seeds": len({seed for r in records for seed in r["runs"]})}
    manifest = make_manifest(sweep, exp, params, points, len(errors))
    write_json(sweep_dir / "manifest.json", manifest)
    remove_marks(sweep_dir)
    return {"runs": runs, "failed": len(errors), "errors": errors, "manifest": manifest}


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
