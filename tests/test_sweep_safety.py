"""A sweep never deletes or mixes what it did not write, and every error is one line.

`clientsim-experiment run` in real subprocesses (or in this process where that is the same
thing): foreign directories, damaged run files, seeds out of range, design errors in the
command line and in experiment files, awkward paths, bad options, interrupts, killed workers
and a full disk.
"""

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import in_process
from omegaconf import OmegaConf

from sim.cli.experiment import main as experiment_main
from sim.sweeps.collect import Collect, collect
from sim.sweeps.directory import SweepError

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["--smoke", "--launcher", "basic"]


def run_experiment(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`clientsim-experiment args` in a subprocess, as a user would run it."""
    code = "from sim.cli.experiment import main; raise SystemExit(main())"
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def here(capsys, monkeypatch):
    """`clientsim-experiment args` run in this process from `cwd`, as `run_experiment` does.

    The same main, exit code and output, without starting Python and importing everything
    again; the tests that need a real process (signals, kills, a lock held by the test) and one
    end-to-end run per kind keep `run_experiment`.
    """

    return in_process(experiment_main, capsys, monkeypatch)


def start_experiment(args: list[str], cwd: Path) -> subprocess.Popen:
    """`clientsim-experiment args` started in the background, Ctrl-C as from a terminal."""
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    code += "from sim.cli.experiment import main; raise SystemExit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr[-3000:]
    assert result.stderr.count("\n") == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every file and folder below `directory` with its bytes (folders: None)."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture(scope="module")
def hard_sell_sweep(tmp_path_factory) -> Path:
    """A finished smoke sweep of hard_sell (one point, two seeds)."""
    sweep_dir = tmp_path_factory.mktemp("hard_sell") / "sweep"
    result = run_experiment(["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)], ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


# --- 1. a directory that is not this experiment's sweep -----------------------------------


def _users_jobs_folder(directory: Path) -> None:
    (directory / "jobs").mkdir(parents=True)
    (directory / "jobs" / "application.txt").write_text("my job applications")


def _single_run(directory: Path) -> None:
    directory.mkdir(parents=True)
    pd.DataFrame({"step": [0, 1]}).to_parquet(directory / "steps.parquet")
    (directory / "summary.json").write_text("{}")


def _another_experiments_sweep(directory: Path, hard_sell_sweep: Path) -> None:
    shutil.copytree(hard_sell_sweep, directory, symlinks=True)


@pytest.mark.parametrize("content", ["users_jobs_folder", "single_run", "another_experiment"])
def test_a_dir_that_is_not_a_sweep_of_the_experiment_is_refused_and_left_untouched(
    here, tmp_path, hard_sell_sweep, content
):
    target = tmp_path / "target"
    if content == "users_jobs_folder":
        _users_jobs_folder(target)
    elif content == "single_run":
        _single_run(target)
    else:
        _another_experiments_sweep(target, hard_sell_sweep)
    before = snapshot(target)
    result = here(["run", "diagnosis", *SMOKE, "--dir", str(target)], tmp_path)
    assert_one_line(result, 2, str(target))
    assert snapshot(target) == before


def test_a_rerun_into_the_same_experiments_sweep_is_accepted(tmp_path, hard_sell_sweep):
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(hard_sell_sweep, sweep_dir, symlinks=True)
    result = run_experiment(["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert pd.read_parquet(sweep_dir / "runs.parquet")["seed"].nunique() == 2


# --- 2. a damaged run file ---------------------------------------------------------------


DAMAGED = ["seed-*/run.parquet", "seed-*/steps.parquet", "point.json"]


def _damaged_copy(sweep: Path, tmp_path: Path, pattern: str) -> tuple[Path, Path]:
    """A copy of `sweep` in tmp_path/sweep with its first file matching `pattern` truncated."""
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(sweep, sweep_dir, symlinks=True)
    damaged = sorted(sweep_dir.glob(f"points/*/{pattern}"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    return sweep_dir, damaged


@pytest.mark.parametrize("pattern", DAMAGED)
def test_the_join_fails_with_one_line_naming_a_run_file_that_does_not_read_back(
    tmp_path, hard_sell_sweep, capsys, pattern
):
    sweep_dir, damaged = _damaged_copy(hard_sell_sweep, tmp_path, pattern)
    with pytest.raises(SweepError, match=str(damaged)):
        collect(sweep_dir)
    config = OmegaConf.create({"experiment": {"name": "hard_sell", "sweep_id": None},
                               "hydra": {"sweep": {"dir": str(sweep_dir)}}})  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        Collect().on_multirun_end(config)
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(damaged) in err


@pytest.mark.parametrize("pattern", DAMAGED)
def test_a_rerun_redoes_a_run_whose_files_do_not_read_back(
    here, tmp_path, hard_sell_sweep, pattern
):
    sweep_dir, damaged = _damaged_copy(hard_sell_sweep, tmp_path, pattern)
    result = here(["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    clean = hard_sell_sweep / damaged.relative_to(sweep_dir)
    if damaged.suffix == ".json":  # its overrides name the submission: the rest is the same
        again, first = json.loads(damaged.read_text()), json.loads(clean.read_text())
        assert again["config"] == first["config"] and again["values"] == first["values"]
    else:
        assert damaged.read_bytes() == clean.read_bytes()
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    pd.testing.assert_frame_equal(runs, pd.read_parquet(hard_sell_sweep / "runs.parquet"))


# --- 3. seeds out of range ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [str(2**63 - 1), str(2**63), "-1"])
def test_a_sweep_whose_seeds_leave_the_seed_range_is_refused(here, tmp_path, seed):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir), f"seed={seed}"]
    assert_one_line(here(args, tmp_path), 2, "seed")
    assert not sweep_dir.exists()


def test_a_plain_hydra_sweep_of_an_experiment_refuses_seeds_beyond_the_range(tmp_path):
    command = [sys.executable, "-m", "sim", "-m", "+experiment=hard_sell", "steps=8",
               "market.n_clients=300", "experiment.seeds=2", f"seed={2**63 - 1}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert_one_line(result, 2, "seed")
    assert not list((tmp_path / "sweep").glob("points/*"))


# --- 4. design errors: the command line and experiment files -----------------------------


@pytest.mark.parametrize(
    "override", ["experiment.seeds=abc", "market.pricee=1,2", "market.pricee=3", "seed=1,x,("]
)
def test_a_design_error_on_the_command_line_is_one_line(here, tmp_path, override):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir), override]
    assert_one_line(here(args, tmp_path), 2, override.partition("=")[0])
    assert not sweep_dir.exists()


BROKEN = {
    "typo_key": "market:\n  n_clientz: 300\n",
    "no_such_swept_key": "hydra:\n  sweeper:\n    params:\n      market.pricee: 1,2\n",
    "empty_sweep": "hydra:\n  sweeper:\n    params:\n      market.price:\n",
    "mistyped_sweep": "hydra:\n  sweeper:\n    params:\n      market.price: cheap,dear\n",
    "invalid_yaml": "market: {n_clients: [300\n",
    "swept_seed": "hydra:\n  sweeper:\n    params:\n      seed: 1,2\n",
}


@pytest.fixture(scope="module")
def config_copy(tmp_path_factory) -> Path:
    """A copy of configs/ (its experiments too) with one broken experiment per BROKEN."""
    configs = tmp_path_factory.mktemp("copy") / "configs"
    shutil.copytree(ROOT / "configs", configs, symlinks=False)
    base = (configs / "experiment" / "hard_sell.yaml").read_text()
    base = base.split("\nhydra:")[0].replace("name: hard_sell", "name: NAME")
    for name, text in BROKEN.items():
        body = text if name == "invalid_yaml" else base.replace("NAME", name) + "\n" + text
        (configs / "experiment" / f"{name}.yaml").write_text(body)
    return configs


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_design_error_in_an_experiment_file_is_one_line(here, tmp_path, config_copy, name):
    sweep_dir = tmp_path / "sweep"
    args = ["run", name, *SMOKE, "--config-dir", str(config_copy), "--dir", str(sweep_dir)]
    assert_one_line(here(args, tmp_path), 2, "clientsim-experiment: ")
    assert not sweep_dir.exists()


def test_a_broken_experiment_file_does_not_break_list(here, tmp_path, config_copy):
    result = here(["list", "--config-dir", str(config_copy)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for name in ("hard_sell", "strategy", "threshold"):
        assert any(line.startswith(f"{name} ") and "error" not in line for line in lines)
    for name in BROKEN:
        (line,) = [line for line in lines if line.startswith(f"{name} ")]
        assert "error" in line


def test_an_experiment_of_another_config_dir_runs(here, tmp_path, config_copy):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "hard_sell", *SMOKE, "--config-dir", str(config_copy), "--dir", str(sweep_dir)]
    result = here(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert pd.read_parquet(sweep_dir / "runs.parquet")["seed"].nunique() == 2


# --- 5. awkward paths --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ünï", "out (1)", "a,b", "it's"])
def test_a_sweep_dir_with_quotes_commas_or_non_ascii_characters_works(here, tmp_path, name):
    result = here(["run", "hard_sell", *SMOKE, "--dir", name], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert pd.read_parquet(tmp_path / name / "runs.parquet")["seed"].nunique() == 2
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [name]


# --- 6. an unwritable --out is refused before anything is computed ----------------------


@pytest.mark.parametrize("module", ["facts", "calibrate", "sensitivity"])
@pytest.mark.parametrize("where", ["under_a_file", "in_proc"])
def test_an_unwritable_out_is_refused_before_computing(tmp_path, capsys, module, where):
    (tmp_path / "afile").write_text("a file, not a folder")
    out = tmp_path / "afile" / "x.md" if where == "under_a_file" else Path("/proc/clientsim/x.md")
    size = ["--seeds", "1", "--clients", "300", "--weeks", "8", "--out", str(out)]
    if module == "calibrate":
        size += ["--samples", "1"]
    if module == "sensitivity":
        size = ["morris", "--trajectories", "2", "--out", str(out.parent)]
    main = importlib.import_module(f"sim.cli.{module}").main
    started = time.monotonic()
    code = main(size)
    out, err = capsys.readouterr()
    assert_one_line(subprocess.CompletedProcess(size, code, out, err), 2, "--out")
    assert out == "" and time.monotonic() - started < 20


# --- 7. bad options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--launcher", "joblib", "--jobs", "0"],
        ["--launcher", "joblib", "--jobs", "-5"],
        ["experiment.compare.a=nosuch"],
        ["experiment.compare.b=nosuch"],
        ["--launcher", "submitit_local", "--time", "0"],
    ],
)
def test_bad_options_are_refused_with_one_line(here, tmp_path, args):
    sweep_dir = tmp_path / "sweep"
    full = ["run", "hard_sell", "--smoke", "--dir", str(sweep_dir), *args]
    assert_one_line(here(full, tmp_path), 2)
    assert not sweep_dir.exists()


def test_a_compare_of_an_unknown_value_of_the_swept_axis_is_refused(here, tmp_path):
    args = ["run", "diagnosis", "--smoke", "--dir", str(tmp_path / "s")]
    args.append("experiment.compare.a=maybe")
    assert_one_line(here(args, tmp_path), 2, "compare.a")


def test_a_factor_swept_without_its_on_level_is_refused(here, tmp_path):
    args = ["run", "instruments", "--smoke", "--dir", str(tmp_path / "s")]
    args.append("policies.fit_filter.threshold=0.3,0.7")  # fit_filter's 0.55 is not swept
    assert_one_line(here(args, tmp_path), 2, "factorial.policies.fit_filter.threshold")


# --- 8. interrupts -----------------------------------------------------------------------

LONG = ["run", "hard_sell", "--launcher", "joblib", "--jobs", "2", "experiment.seeds=40",
        "experiment.chunk_size=2", "experiment.batch=1", "market.n_clients=300",
        "steps=60"]  # fmt: skip


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command's name: state, parent pid, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (read from /proc), with its command line."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child in [c for c, p in parents.items() if p == parent]:
            with contextlib.suppress(OSError):
                found[child] = Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ")
            frontier.append(child)
    return found


def _wait_for_runs(process: subprocess.Popen, done: int) -> dict[int, str]:
    """Wait until `done` runs are done; return the process's descendants then."""
    for line in process.stdout:
        if f"{done}/40 runs done" in line:
            break
    children = _descendants(process.pid)
    assert children  # the joblib workers
    return children


def _alive(processes, within: float = 10.0) -> list[int]:
    """The processes still running once `within` seconds have passed (or none is)."""
    deadline = time.monotonic() + within
    while True:
        alive = [pid for pid in processes if (_stat(pid) or ["Z"])[0] not in "ZX"]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_killed_sweep_leaves_no_worker_running_and_says_what_it_kept(tmp_path, sig):
    sweep_dir = tmp_path / "sweep"
    process = start_experiment([*LONG, "--dir", str(sweep_dir)], tmp_path)
    try:
        children = _wait_for_runs(process, 3)
        process.send_signal(sig)
        err = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert not _alive(children)
    assert process.returncode == 128 + sig
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert not (sweep_dir / "runs.parquet").exists()
    kept = [d for d in sweep_dir.glob("points/*/seed-*") if d.is_dir()]
    assert f"{len(kept)} runs kept" in lines[0] and "rerun the same command" in lines[0]


def test_a_worker_killed_as_by_the_oom_killer_gives_one_line_and_a_rerun_hint(tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = start_experiment([*LONG, "--dir", str(sweep_dir)], tmp_path)
    try:
        children = _wait_for_runs(process, 3)
        workers = [pid for pid, line in children.items() if "--pipe" in line]  # not trackers
        os.kill(workers[0], signal.SIGKILL)
        err = process.communicate(timeout=120)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "rerun the same command" in lines[0], err[-3000:]
    assert not _alive(children)


# --- 9. a finished sweep leaves no scratch -----------------------------------------------


def test_a_finished_sweep_leaves_no_hidden_job_or_progress_folders(hard_sell_sweep):
    hidden = sorted(p.name for p in hard_sell_sweep.iterdir() if p.name.startswith("."))
    assert hidden == [".sweep.json"]
    assert not list(hard_sell_sweep.glob("points/*/.*"))


# --- 10. a full disk ---------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root and a kernel that lets this sandbox mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_ends_a_sweep_with_one_line(tmp_path, small_disk):
    filler = small_disk / "filler"
    with open(filler, "wb") as out:  # leave about 40 kB: room to start, none to finish
        out.write(b"\0" * (shutil.disk_usage(small_disk).free - 40_000))
    args = ["run", "diagnosis", *SMOKE, "--dir", str(small_disk / "sweep")]
    result = run_experiment(args, tmp_path)
    assert result.returncode != 0
    assert_one_line(result, result.returncode, "No space left")


# --- 11. every job carries its sweep's identity and design -------------------------------


def _copy(sweep: Path, tmp_path: Path) -> Path:
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(sweep, sweep_dir, symlinks=True)
    return sweep_dir


def test_the_join_refuses_a_job_record_of_a_point_the_sweep_did_not_ask_for(
    tmp_path, hard_sell_sweep
):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    record = json.loads((sweep_dir / "jobs" / "0.json").read_text())
    record["point_hash"], record["job"] = "0123456789abcdef", 7
    point = next((sweep_dir / "points").iterdir())
    shutil.copytree(point, sweep_dir / "points" / record["point_hash"])
    (sweep_dir / "jobs" / "7.json").write_text(json.dumps(record))
    with pytest.raises(SweepError, match="0123456789abcdef"):
        collect(sweep_dir)


def test_the_join_refuses_a_sweep_that_lacks_a_requested_run(tmp_path, hard_sell_sweep):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    record_path = sweep_dir / "jobs" / "0.json"
    record = json.loads(record_path.read_text())
    record["runs"].pop(sorted(record["runs"])[-1])
    record_path.write_text(json.dumps(record))
    with pytest.raises(SweepError, match="missing"):
        collect(sweep_dir)


def test_a_job_of_an_earlier_submission_writes_nothing(tmp_path, hard_sell_sweep, capsys):
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from sim.config.compose import compose
    from sim.sweeps.jobs import run_job

    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    shutil.rmtree(sweep_dir / "points")
    before = snapshot(sweep_dir)
    overrides = ["+experiment=hard_sell", "steps=26", "market.n_clients=300",
                 "experiment.seeds=2", "experiment.sweep_id=an-earlier-one",
                 f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    cfg = compose(overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.job.num = 0
        cfg.hydra.runtime.output_dir = str(sweep_dir / "0")
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    run_job(cfg)
    assert snapshot(sweep_dir) == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an-earlier-one" in err


# --- 12. what a new user tried: keys of the sweep itself, empty arms, foreign files ------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("experiment.seeds=1,3", "experiment.seeds"),
        ("experiment.chunk_size=1,2", "experiment.chunk_size"),
        ("experiment.chunk=0,0", "experiment.chunk"),
        ("seed=1,2", "seed"),
        ("experiment.name=threshold", "experiment.name"),
        ("experiment.sweep_id=abc", "experiment.sweep_id"),
        ("experiment.total_runs=4", "experiment.total_runs"),
        ("experiment.chunk_size=0", "experiment.chunk_size"),
        ("market.policy_mix.fit_filter=0", "experiment.compare.a"),
    ],
)
def test_an_override_that_would_run_runs_twice_or_mislabel_the_sweep_is_refused(
    here, tmp_path, override, key
):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "strategy", *SMOKE, "--dir", str(sweep_dir), override]
    assert_one_line(here(args, tmp_path), 2, f"{key}=")
    assert not sweep_dir.exists()


@pytest.mark.parametrize("override", ["experiment.chunk=0,0", "experiment.seeds=1,2", "seed=1,2"])
def test_a_plain_hydra_sweep_of_an_experiment_refuses_sweeping_its_own_keys(
    tmp_path, monkeypatch, capsys, override
):
    from sim.cli.clientsim import main

    args = ["-m", "+experiment=hard_sell", "steps=8", "market.n_clients=300",
            "experiment.seeds=2", override, f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["clientsim"])  # main sets it for Hydra
    handler = signal.getsignal(signal.SIGTERM)
    try:
        code = main(args)
    finally:
        signal.signal(signal.SIGTERM, handler)  # main sets its own when none was set
    out, err = capsys.readouterr()
    assert_one_line(subprocess.CompletedProcess(args, code, out, err), 2, override.split("=")[0])
    assert not list((tmp_path / "sweep").glob("points/*"))


def test_the_join_refuses_two_jobs_that_ran_the_same_run(tmp_path, hard_sell_sweep):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    record = json.loads((sweep_dir / "jobs" / "0.json").read_text())
    (sweep_dir / "jobs" / "1.json").write_text(json.dumps({**record, "job": 1}))
    with pytest.raises(SweepError, match="twice"):
        collect(sweep_dir)


def test_a_value_for_an_axis_of_the_experiment_replaces_that_axis(here, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["run", "strategy", *SMOKE, "--dir", str(sweep_dir), "market/policy_mix=half_half"]
    result = here(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert runs["point"].nunique() == 1 and runs["seed"].nunique() == 2
    assert "fit_filter" in set(runs["policy"])


def test_a_seed_folder_holding_other_files_is_named_and_left_alone(here, tmp_path, hard_sell_sweep):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    run_dir = sorted(sweep_dir.glob("points/*/seed-*"))[0]
    shutil.rmtree(run_dir)
    _single_run(run_dir)  # a plain run written there by the user
    before = snapshot(run_dir)
    args = ["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)]
    assert_one_line(here(args, tmp_path), 2, str(run_dir))
    assert snapshot(run_dir) == before


def test_a_rerun_removes_only_its_own_job_records_and_progress_marks(
    here, tmp_path, hard_sell_sweep
):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    (sweep_dir / "jobs" / "7.json").write_text('{"my": "notes"}')
    (sweep_dir / "jobs" / "notes.json").write_text("{}")
    (sweep_dir / ".progress").mkdir()
    (sweep_dir / ".progress" / "todo.txt").write_text("mine")
    result = here(["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep_dir / "jobs" / "7.json").read_text() == '{"my": "notes"}'
    assert (sweep_dir / "jobs" / "notes.json").exists()
    assert (sweep_dir / ".progress" / "todo.txt").read_text() == "mine"


def test_a_sweep_whose_sweep_file_was_deleted_resumes(here, tmp_path, hard_sell_sweep):
    sweep_dir = _copy(hard_sell_sweep, tmp_path)
    (sweep_dir / ".sweep.json").unlink()
    result = here(["run", "hard_sell", *SMOKE, "--dir", str(sweep_dir)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((sweep_dir / ".sweep.json").read_text())["experiment"] == "hard_sell"
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    pd.testing.assert_frame_equal(runs, pd.read_parquet(hard_sell_sweep / "runs.parquet"))


@pytest.mark.parametrize("command", ["list", "run"])
def test_a_config_copy_whose_experiments_link_dangles_is_refused(here, tmp_path, command):
    copy = tmp_path / "my-configs"
    shutil.copytree(ROOT / "configs", copy, symlinks=True)  # `cp -r`: the link is copied
    args = ["list"] if command == "list" else ["run", "hard_sell", *SMOKE, "--dir", "s"]
    result = here([*args, "--config-dir", str(copy)], tmp_path)
    assert_one_line(result, 2, "holds no experiments", "cp -rL")


def test_a_dir_under_a_file_is_refused_naming_the_file(here, tmp_path):
    (tmp_path / "afile").write_text("a file")
    args = ["run", "hard_sell", *SMOKE, "--dir", "afile/x"]
    assert_one_line(here(args, tmp_path), 2, "--dir afile/x", "is a file")


def test_a_dir_a_live_run_holds_is_refused_naming_dir(tmp_path):
    from sim.runs.output import output_lock

    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    with output_lock(sweep_dir.absolute()):
        result = run_experiment(["run", "hard_sell", *SMOKE, "--dir", "sweep"], tmp_path)
    assert_one_line(result, 2, "--dir sweep", "being written")


def test_the_final_hint_is_shell_quoted(here, tmp_path):
    result = here(["run", "hard_sell", *SMOKE, "--dir", "ex (1)"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clientsim-plot 'ex (1)'" in result.stdout


def _children_of(pid: int) -> set[int]:
    """Every process below `pid`, read from each thread's /proc children list."""
    found, frontier = set(), [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = {int(c) for c in (task / "children").read_text().split()}
                frontier += list(children - found)
                found |= children
    return found


def test_a_sigkilled_sweep_leaves_no_worker_running(tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = start_experiment([*LONG, "--dir", str(sweep_dir)], tmp_path)
    try:
        for line in process.stdout:
            if "2/40 runs done" in line:
                break
        children = _children_of(process.pid)
        assert children  # the joblib workers
        process.kill()
        process.wait(timeout=30)
        alive = _alive(children)
    finally:
        if process.poll() is None:
            process.kill()
    for pid in alive:  # the test's own cleanup: the workers it started
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not alive
