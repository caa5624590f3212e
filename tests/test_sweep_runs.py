"""Sweeps that start a process of their own (sim.sweeps): failure records and resume, a killed
sweep, the local launchers and a plain Hydra multirun of an experiment.

Split from tests/test_sweep.py, whose module-scoped smoke sweeps keep one worker busy, so that
under `pytest -n 2 --dist loadfile` these run on the other worker.
"""

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import sweeper


def run_experiment(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`clientsim-experiment args` in a subprocess, as a user would run it."""
    code = "from sim.cli.experiment import main; raise SystemExit(main())"
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_a_failed_run_is_recorded_and_a_rerun_completes_only_what_is_missing(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "diagnosis", "--smoke", "--launcher", "basic", "--dir", str(sweep_dir)]
    assert run_experiment(args, tmp_path).returncode == 0
    complete = pd.read_parquet(sweep_dir / "runs.parquet")
    point = next((sweep_dir / "points").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in (sweep_dir / "points").glob("*/seed-*/run.parquet")}
    blocked, redone = point / "seed-0001", point / "seed-0000"
    for run_dir in (blocked, redone):  # both seeds run again, as one batch (experiment.batch)
        shutil.rmtree(run_dir)
    blocked.write_text("a file where the run's directory must go")  # a real fault: rename fails
    failed = run_experiment(args, tmp_path)
    assert failed.returncode == 1
    assert (redone / "run.parquet").exists()  # the batch's other seed is stored, not lost
    lines = [line for line in failed.stderr.splitlines() if line.startswith("clientsim")]
    assert len(lines) == 1 and "1 of" in lines[0] and "failed" in lines[0]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    bad = runs[runs["status"] == "failed"]
    assert set(bad["seed"]) == {1} and bad["error"].str.contains("NotADirectoryError").all()
    assert len(bad[["point", "seed"]].drop_duplicates()) == 1  # one run: a row per policy
    assert bad["profit_horizon"].isna().all() and set(bad["policy"]) == set(runs["policy"])
    assert (point / "seed-0001.failed.json").exists()

    blocked.unlink()
    rerun = run_experiment(args, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    records = [json.loads(p.read_text()) for p in (sweep_dir / "jobs").glob("*.json")]
    statuses = sorted(s for r in records for s in r["runs"].values())
    assert statuses == ["ok", "skipped", "skipped", "skipped"]  # only the missing run ran
    for path, stamp in stamps.items():
        if path.parent not in (blocked, redone):
            assert path.stat().st_mtime_ns == stamp  # complete runs were not redone
    assert not (point / "seed-0001.failed.json").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(sweep_dir / "runs.parquet"), complete)


def test_a_killed_sweep_keeps_finished_runs_and_leaves_no_table_that_looks_complete(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "hard_sell", "--launcher", "basic", "--dir", str(sweep_dir),
            "experiment.seeds=8", "experiment.batch=1", "market.n_clients=300",
            "steps=60"]  # fmt: skip
    code = "from sim.cli.experiment import main; raise SystemExit(main())"
    command = [sys.executable, "-c", code, *args]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "2/8 runs done" in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (sweep_dir / "runs.parquet").exists() and not (sweep_dir / "manifest.json").exists()
    done = list((sweep_dir / "points").glob("*/seed-*/"))
    assert len(done) >= 2
    assert all({p.name for p in d.iterdir()} == {"run.parquet", "steps.parquet"} for d in done)
    started = time.time()
    resumed = run_experiment(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert sorted(runs["seed"].unique()) == list(range(8)) and (runs["status"] == "ok").all()
    assert not list((sweep_dir / "points").glob("*/.seed-*.tmp"))
    assert time.time() - started < 120


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_local_launchers_run_an_experiment(tmp_path, launcher):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "referrals", "--smoke", "--launcher", launcher, "--jobs", "2",
            "--dir", str(sweep_dir)]  # fmt: skip
    result = run_experiment(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert (runs["status"] == "ok").all() and runs["seed"].nunique() == 2


def test_hydra_multirun_runs_an_experiment_directly(tmp_path):
    command = [sys.executable, "-m", "sim", "-m", "+experiment=hard_sell", "steps=13",
               "market.n_clients=200", "experiment.seeds=2", "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (runs,) = tmp_path.glob("results/hard_sell/*/runs.parquet")
    assert pd.read_parquet(runs)["seed"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert sweeper(runs.parent).endswith(".BasicSweeper")  # Hydra's own, composing each job
    manifest = json.loads((runs.parent / "manifest.json").read_text())
    assert shlex.split(manifest["command"]) == ["clientsim", *command[3:]]  # as typed


def test_an_experiment_without_multirun_is_refused(tmp_path):
    command = [sys.executable, "-m", "sim", "+experiment=strategy"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "clientsim-experiment run strategy" in result.stderr
    assert not (tmp_path / "results").exists()
