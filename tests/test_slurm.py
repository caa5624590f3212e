"""Sweeps on a real Slurm through Hydra's submitit_slurm launcher (sim.sweeps.slurm).

The tests marked `slurm` need a Slurm cluster with accounting that this machine can submit
to, with the sweep directory on a file system its nodes share (`.ci/slurm.sh up` starts a
single-node one on localhost). Without one they are skipped, saying why; with
CLIENTSIM_REQUIRE_SLURM=1 (set by `.ci/run`) they fail instead, so that CI never passes
without them.
"""

import functools
import itertools
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.sweeps.slurm import PROGRESS_SECONDS, JobLost, Watch, _ended, signal_delay

SMOKE = ["run", "strategy", "--smoke", "--launcher", "submitit_slurm", "--time", "1",
         "--mem-gb", "1"]  # fmt: skip
HOLD = "+hydra.launcher.additional_parameters.hold=true"  # queued until released


@functools.cache
def unreachable() -> str | None:
    """Why no Slurm can take a job from here, or None."""
    try:
        info = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True,
                              text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no Slurm here: sinfo: {error}"
    if info.returncode != 0:
        return f"no Slurm reachable: {(info.stderr or info.stdout).strip()}"
    states = set(info.stdout.split())
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no Slurm node takes jobs (states: {', '.join(sorted(states)) or 'none'})"
    return None


@pytest.fixture
def slurm():
    """A reachable Slurm, or a skip (a failure under CLIENTSIM_REQUIRE_SLURM=1)."""
    reason = unreachable()
    if reason is not None:
        if os.environ.get("CLIENTSIM_REQUIRE_SLURM") == "1":
            pytest.fail(f"CLIENTSIM_REQUIRE_SLURM=1 but {reason} (start one: .ci/slurm.sh up)")
        pytest.skip(f"{reason} (start one with .ci/slurm.sh up)")


@pytest.fixture
def sweep_dir(tmp_path):
    """A sweep directory; any Slurm job submitted into it is cancelled at the end."""
    yield tmp_path / "sweep"
    ids = [p.name for p in (tmp_path / "sweep" / ".submitit").glob("*") if p.name.isdigit()]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


@pytest.fixture
def submitters():
    """Submitting processes started in the background; killed at the end if still alive."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def command(args: list[str]) -> list[str]:
    code = "from sim.cli.experiment import main; raise SystemExit(main())"
    return [sys.executable, "-c", code, *args]


def submit(args: list[str], cwd: Path, started: list[subprocess.Popen]) -> subprocess.Popen:
    """`clientsim-experiment args` in the background, its output in pipes."""
    process = subprocess.Popen(command(args), cwd=cwd, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    started.append(process)
    return process


def experiment(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 240):
    """`clientsim-experiment args` in a subprocess, as a user runs it."""
    return subprocess.run(command(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def submitted_array(sweep_dir: Path, process: subprocess.Popen, timeout: float = 60) -> str:
    """The id of the array the submitter `process` submitted, once Slurm queues it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert process.poll() is None, process.communicate()
        ids = [p.name for p in (sweep_dir / ".submitit").glob("*") if p.name.isdigit()]
        if ids and queued(ids[0]):
            return ids[0]
        time.sleep(0.3)
    raise AssertionError("the submitter submitted no array")


def queued(job: str) -> list[str]:
    """The array tasks of `job` that are queued or running."""
    out = subprocess.run(["squeue", "--noheader", "--format=%i", f"--jobs={job}"],
                         capture_output=True, text=True, timeout=30).stdout  # fmt: skip
    return out.split()


def runs(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(sweep_dir / "runs.parquet")


def test_the_time_out_signal_leaves_a_short_job_its_time():
    assert signal_delay(1) == 6 and signal_delay(2) == 12
    assert signal_delay(60) == 120 and signal_delay(10_000) == 120


@pytest.mark.slurm
def test_a_smoke_sweep_on_slurm_passes_every_launcher_setting_and_shows_progress(
    slurm, sweep_dir, tmp_path
):
    setup = f"hydra.launcher.setup=['echo ran on $(hostname) > {tmp_path}/setup.txt']"
    result = experiment([*SMOKE, "--dir", str(sweep_dir), "hydra.launcher.qos=normal",
                         "hydra.launcher.comment=clientsim-test", setup], tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = runs(sweep_dir)
    assert len(table[["point", "seed"]].drop_duplicates()) == 4 and (table.status == "ok").all()
    (script,) = sweep_dir.glob(".submitit/*/*_submission.sh")
    text = script.read_text()
    assert "--qos=normal" in text and "--comment=clientsim-test" in text
    assert "#SBATCH --signal=USR2@6" in text  # not Hydra's 120 s: the whole of a 1-minute job
    assert (tmp_path / "setup.txt").read_text().startswith("ran on ")
    lines = [line for line in result.stdout.splitlines() if "runs done" in line]
    assert lines and lines[-1].startswith("clientsim-experiment: 4/4 runs done")
    assert "\r" not in result.stdout


@pytest.mark.slurm
def test_a_rerun_refuses_while_an_earlier_submission_is_queued_or_cancels_it(
    slurm, sweep_dir, tmp_path, submitters
):
    first = submit([*SMOKE, "--dir", str(sweep_dir), HOLD], tmp_path, submitters)
    array = submitted_array(sweep_dir, first)
    first.kill()  # the submitter dies; its array stays queued
    first.wait()
    sweep = (sweep_dir / ".sweep.json").read_text()
    changed = [*SMOKE, "--dir", str(sweep_dir), "experiment.seeds=3", "experiment.chunk_size=3"]
    for launcher in ("submitit_slurm", "joblib"):
        refused = experiment([*changed, "--launcher", launcher], tmp_path)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr[-3000:]
        assert array in refused.stderr and "--cancel-running" in refused.stderr
        assert (sweep_dir / ".sweep.json").read_text() == sweep and queued(array)

    result = experiment([*changed, "--cancel-running"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cancelled Slurm jobs" in result.stdout and not queued(array)
    assert not list(sweep_dir.glob(f".submitit/{array}_*/*_result.pkl"))  # none of it ran
    table = runs(sweep_dir)
    assert sorted(set(table.seed)) == [0, 1, 2] and (table.status == "ok").all()
    assert len(table[["point", "seed"]].drop_duplicates()) == 6


@pytest.mark.slurm
def test_a_cancelled_job_ends_the_sweep_with_one_line_and_the_resume_completes_it(
    slurm, sweep_dir, tmp_path, submitters
):
    args = [*SMOKE, "--dir", str(sweep_dir), "experiment.seeds=4", "experiment.chunk_size=2"]
    submitter = submit([*args, HOLD], tmp_path, submitters)
    array = submitted_array(sweep_dir, submitter)
    subprocess.run(["scancel", f"{array}_0"], check=True, timeout=30)
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 1, err[-3000:]
    assert err.count("\n") == 1 and "Traceback" not in err, err[-3000:]
    assert f"Slurm job {array}_0 left the queue before it ran" in err and str(sweep_dir) in err
    assert "cancelled the sweep's other jobs" in err
    assert not queued(array)  # the array's other jobs do not run on
    assert not (sweep_dir / "runs.parquet").exists()

    resumed = experiment(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    table = runs(sweep_dir)
    assert len(table[["point", "seed"]].drop_duplicates()) == 8 and (table.status == "ok").all()


@pytest.mark.slurm
def test_a_failed_job_ends_the_sweep_with_one_line_naming_it_and_its_error(
    slurm, sweep_dir, tmp_path
):
    # job 0's Python cannot start (a broken environment on its node): the same error every
    # time, where a job starved of memory dies in one of several ways (MemoryError, a
    # segfault); the others wait, so that they are still live when the sweep ends
    broken = ("hydra.launcher.setup=['if [ $SLURM_ARRAY_TASK_ID = 0 ]; then export "
              "PYTHONHOME=/nonexistent; else sleep 60; fi']")  # fmt: skip
    args = [*SMOKE, "--dir", str(sweep_dir), "experiment.seeds=4", "experiment.chunk_size=2",
            "--array-parallelism", "1", broken]  # fmt: skip
    result = experiment(args, tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    (array,) = [p.name for p in (sweep_dir / ".submitit").glob("*") if p.name.isdigit()]
    found = rf"Slurm job {array}_0 (ended FAILED|failed) \(.*ModuleNotFoundError"
    assert re.search(found, result.stderr), result.stderr
    assert "log: " in result.stderr and "cancelled the sweep's other jobs" in result.stderr
    assert not queued(array) and not (sweep_dir / "runs.parquet").exists()


@pytest.mark.slurm
def test_a_killed_submitter_cancels_its_jobs(slurm, sweep_dir, tmp_path, submitters):
    submitter = submit([*SMOKE, "--dir", str(sweep_dir), HOLD], tmp_path, submitters)
    array = submitted_array(sweep_dir, submitter)
    submitter.terminate()  # SIGTERM, as `kill` or a login node's shutdown sends it
    out, err = submitter.communicate(timeout=60)
    assert submitter.returncode == 143 and err.count("\n") == 1, err[-3000:]
    assert f"cancelled this sweep's Slurm jobs {array}" in out and not queued(array)


@pytest.mark.slurm
def test_without_accounting_the_sweep_is_refused_before_anything_is_submitted(
    slurm, sweep_dir, tmp_path
):
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    lines = [line for line in conf.read_text().splitlines()
             if not line.startswith("AccountingStorage")]  # fmt: skip
    (tmp_path / "slurm.conf").write_text(
        "\n".join([*lines, "AccountingStorageType=accounting_storage/none", ""])
    )
    env = {**os.environ, "SLURM_CONF": str(tmp_path / "slurm.conf")}
    result = experiment([*SMOKE, "--dir", str(sweep_dir)], tmp_path, env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert "needs Slurm accounting (sacct)" in result.stderr
    assert not (sweep_dir / ".submitit").exists()


@pytest.mark.slurm
@pytest.mark.parametrize("given", [["--partition", "nosuch"], ["hydra.launcher.partition=nosuch"]])
def test_an_unknown_partition_is_refused_before_anything_is_submitted(
    slurm, sweep_dir, tmp_path, given
):
    result = experiment([*SMOKE, "--dir", str(sweep_dir), *given], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert "partition='nosuch': not a partition of this cluster; allowed: " in result.stderr
    assert not sweep_dir.exists()


@pytest.mark.slurm
def test_a_setting_sbatch_refuses_exits_2_with_one_line(slurm, sweep_dir, tmp_path):
    result = experiment([*SMOKE, "--dir", str(sweep_dir), "hydra.launcher.constraint=nosuch"],
                        tmp_path)  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert result.stderr.startswith("clientsim-experiment: sbatch refused the jobs: ")
    assert "Invalid feature specification" in result.stderr  # the constraint reached sbatch


def test_a_submitit_sweep_shows_progress_lines_in_the_submitter(tmp_path):
    args = ["run", "hard_sell", "--smoke", "--launcher", "submitit_local", "--time", "5",
            "--dir", str(tmp_path / "sweep")]  # fmt: skip
    result = experiment(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if "runs done" in line]
    assert lines and lines[-1].startswith("clientsim-experiment: 2/2 runs done")


@pytest.mark.parametrize("flag", ["--time", "--cpus", "--mem-gb", "--array-parallelism"])
def test_a_submitit_setting_below_one_exits_2_with_one_line(tmp_path, flag):
    args = ["run", "hard_sell", "--smoke", "--launcher", "submitit_local", flag, "0",
            "--dir", str(tmp_path / "sweep")]  # fmt: skip
    result = experiment(args, tmp_path, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert result.stderr.startswith(f"clientsim-experiment: invalid config: {flag}=0")
    assert not (tmp_path / "sweep").exists()


def test_the_watcher_looks_soon_after_submitting_then_every_few_seconds():
    """A job that cannot start is named within seconds; a long sweep is asked every 5 s."""
    waits = list(itertools.islice(Watch.waits(), 8))
    assert waits == [0.5, 1.0, 2.0, 4.0, *[PROGRESS_SECONDS] * 4]
    assert sum(waits[:2]) < 2  # two looks (a vanished job is seen twice) within 2 s


def test_a_job_slurm_saw_fail_before_submitit_did_is_named_with_the_error_of_its_log(
    tmp_path, capsys
):
    """The watcher's way to a failed job (`JobLost`) says its error, as submitit's does."""
    log = tmp_path / ".submitit" / "7_0" / "7_0_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback (most recent call last):\n  ...\nMemoryError: no room\n")
    with pytest.raises(SystemExit) as stop:
        _ended(JobLost({"7_0": "FAILED"}), tmp_path, {"7"}, slurm=False)
    (line,) = capsys.readouterr().err.splitlines()
    assert stop.value.code == 1
    assert f"Slurm job 7_0 ended FAILED (MemoryError: no room; log: {log})" in line


def test_a_log_whose_exception_was_dumped_as_an_object_is_named_by_it(tmp_path, capsys):
    """An interpreter out of memory may print its exception as an object dump, not raise it."""
    log = tmp_path / ".submitit" / "7_0" / "7_0_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("submitit ERROR (2026-12-06 17:10:20,459) - Could not dump error:\n"
                   "Traceback (most recent call last):\n  ...\nobject type name: MemoryError\n"
                   "object repr     : MemoryError()\n")  # fmt: skip
    with pytest.raises(SystemExit):
        _ended(JobLost({"7_0": "FAILED"}), tmp_path, {"7"}, slurm=False)
    assert "ended FAILED (object repr     : MemoryError(); log:" in capsys.readouterr().err
