"""Output directories: a run never removes or mixes what it did not write (sim.runs.output).

End to end where a user would meet the case (a `python -m sim` subprocess), in-process for
the lock protocol and the repair of a killed publish.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import in_process
from test_cli import run_cli, start_long_run, wait_for_staging

from sim.runs import output
from sim.runs.output import MARKER, OutputBusy, OutputRefused


def tree(path: Path) -> dict[str, bytes]:
    """Every file below `path` with its bytes (links by their target)."""
    found = {}
    for root, _, names in os.walk(path):
        for name in names:
            file = Path(root, name)
            key = str(file.relative_to(path))
            found[key] = os.readlink(file).encode() if file.is_symlink() else file.read_bytes()
    return found


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("clientsim: ") and "Traceback" not in line
    assert all(word in line for word in words), line


@pytest.fixture
def here(capsys, monkeypatch):
    """`python -m sim args` run in this process from `cwd`, as `run_cli` does.

    The same main, exit code and output, without starting Python; the tests that need a real
    process (signals, kills, a pipe, a run another process holds) keep `run_cli`.
    """
    from sim.cli.clientsim import main

    monkeypatch.setattr(sys, "argv", ["clientsim"])  # main sets it for Hydra
    handler = signal.getsignal(signal.SIGTERM)

    yield in_process(main, capsys, monkeypatch)
    signal.signal(signal.SIGTERM, handler)  # main sets its own when none was set


@pytest.fixture
def user_folder(tmp_path) -> Path:
    folder = tmp_path / "mydir"
    (folder / "notes").mkdir(parents=True)
    (folder / "thesis.txt").write_text("precious")
    (folder / "notes" / "a.md").write_text("more")
    return folder


def test_an_output_dir_holding_a_users_files_is_refused_and_kept(
    here, tmp_path, small_overrides, user_folder
):
    before = tree(tmp_path)
    result = here([*small_overrides, "output_dir=mydir"], tmp_path)
    refused(result, "output_dir=", "thesis.txt", "did not write")
    assert tree(tmp_path) == before


def test_the_working_directory_as_output_dir_is_refused(tmp_path, small_overrides):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "README.md").write_text("a checkout")
    before = tree(tmp_path)
    refused(run_cli([*small_overrides, "output_dir=."], cwd=tmp_path), "output_dir=", "README.md")
    assert tree(tmp_path) == before


def test_a_run_replaces_an_earlier_run_but_not_a_run_a_user_added_to(
    here, tmp_path, small_overrides
):
    out = tmp_path / "out"
    assert here([*small_overrides, "seed=0", "output_dir=out"], tmp_path).returncode == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "run"
    again = here([*small_overrides, "seed=1", "output_dir=out"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 1
    (out / "my-notes.txt").write_text("mine")
    before = tree(tmp_path)
    refused(here([*small_overrides, "output_dir=out"], tmp_path), "my-notes.txt")
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_multirun_replaces_an_earlier_multirun_whole_and_a_run_may_not(
    here, tmp_path, small_overrides
):
    first = here(["-m", "seed=1,2,3", *small_overrides, "output_dir=m"], tmp_path)
    assert first.returncode == 0, first.stderr
    again = here(["-m", "seed=5,6", *small_overrides, "output_dir=m"], tmp_path)
    assert again.returncode == 0, again.stderr
    jobs = sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]  # no job of the first sweep beside the second's
    seeds = [json.loads((tmp_path / "m" / j / "summary.json").read_text())["seed"] for j in jobs]
    assert seeds == [5, 6]
    before = tree(tmp_path)
    refused(here([*small_overrides, "output_dir=m"], tmp_path), "multirun, not a run")
    assert tree(tmp_path) == before


def test_a_symlinked_output_dir_is_written_through(here, tmp_path, small_overrides):
    disk = tmp_path / "disk" / "runs"
    disk.mkdir(parents=True)
    (tmp_path / "link").symlink_to(disk)
    result = here([*small_overrides, "output_dir=link"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link").is_symlink() and (disk / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "link"]
    again = here([*small_overrides, "seed=4", "output_dir=link"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "link").is_symlink()
    assert json.loads((disk / "summary.json").read_text())["seed"] == 4


@pytest.fixture
def volume(tmp_path):
    """A real mount point (a small tmpfs), if this machine lets us mount one."""
    mount = tmp_path / "volume"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_mount_point_as_output_dir_is_refused_before_the_run(tmp_path, small_overrides, volume):
    result = run_cli([*small_overrides, f"output_dir={volume}"], cwd=tmp_path)
    refused(result, "mount point", str(volume / "run"))
    assert list(volume.iterdir()) == []


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, volume):
    out = volume / "run"
    result = run_cli(["market.n_clients=3000", "steps=30", "progress=false", f"output_dir={out}"],
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(volume.iterdir()) == []


@pytest.mark.parametrize("inside", [False, True], ids=["its directory", "one inside it"])
def test_a_live_runs_directory_is_refused_and_so_is_one_inside_it(
    tmp_path, small_overrides, inside
):
    out = tmp_path / "P"
    writer = start_long_run(tmp_path, out, seed=1)
    try:
        wait_for_staging(out)
        writer.send_signal(signal.SIGSTOP)  # alive and holding its lock, using no CPU
        target = out / "child" if inside else out
        second = run_cli([*small_overrides, f"output_dir={target}"], cwd=tmp_path)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    refused(second, "another run", str(writer.pid), *(["inside", str(out)] if inside else []))
    assert not out.exists()


def test_hydra_run_dir_is_staged_and_locked_like_output_dir(tmp_path, small_overrides):
    out = tmp_path / "hr"
    command = [sys.executable, "-m", "sim", "seed=1", "market.n_clients=20000", "steps=2000",
               "progress=false", f"hydra.run.dir={out}"]  # fmt: skip
    writer = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_staging(out)
        writer.send_signal(signal.SIGSTOP)  # alive and holding its lock, using no CPU
        second = run_cli([*small_overrides, "seed=2", f"hydra.run.dir={out}"], cwd=tmp_path)
        refused(second, "another run", str(writer.pid))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert not out.exists()  # a killed run leaves nothing that looks complete
    third = run_cli([*small_overrides, "seed=3", f"hydra.run.dir={out}"], cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    assert "seed=3" in (out / ".hydra" / "overrides.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hr"]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (['output_dir="out/ü (1)"'], "out/ü (1)"),
        (["-m", "seed=1,2", 'output_dir="sweep,1"'], "sweep,1/1"),
    ],
    ids=["non-ASCII and parentheses", "a comma under -m"],
)
def test_quoted_paths_with_any_character_work(here, tmp_path, small_overrides, args, where):
    result = here([*args, *small_overrides], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / where / "summary.json").exists()


def test_an_unquoted_comma_under_multirun_is_not_a_sweep_of_directories(
    here, tmp_path, small_overrides
):
    result = here(["-m", "seed=1,2", "output_dir=a,b", *small_overrides], tmp_path)
    refused(result, "output_dir=", "cannot be swept", "quote")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_after_the_run_keeps_its_results(tmp_path, small_overrides):
    command = [sys.executable, "-m", "sim", *small_overrides, "output_dir=out"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE) as process:
        process.stdout.readline()  # `clientsim ... | head -1`
        process.stdout.close()
        assert process.wait(timeout=60) == 0
    assert (tmp_path / "out" / "summary.json").exists()


# --- the lock and the publish, in-process ------------------------------------------------


def test_a_lock_removed_under_a_late_locker_is_never_held_twice(tmp_path, monkeypatch):
    """B opens the lock file, A releases (removing it), C locks anew, B locks the orphan."""
    out = tmp_path / "out"
    b_opened, c_locked, b_locking = threading.Event(), threading.Event(), threading.Event()
    flock = fcntl.flock

    def late_flock(fd, operation):
        if threading.current_thread().name == "B" and not b_locking.is_set():
            b_opened.set()
            c_locked.wait(10)  # B was slow between opening and locking
            b_locking.set()
        return flock(fd, operation)

    monkeypatch.setattr(output.fcntl, "flock", late_flock)
    holders, outcome = [], {}

    def b() -> None:
        try:
            with output.output_lock(out):
                holders.append("B")
            outcome["B"] = "held"
        except OutputBusy:
            outcome["B"] = "busy"

    with output.output_lock(out):  # A
        thread = threading.Thread(target=b, name="B")
        thread.start()
        b_opened.wait(10)  # B has opened the lock file and waits to lock it
    # A released: the file B opened is gone
    with output.output_lock(out):  # C
        holders.append("C")
        c_locked.set()
        thread.join(10)  # B locks the orphan, sees it is not the lock file, finds C's
        assert b_locking.is_set() and not thread.is_alive()
        assert holders == ["C"]  # B did not take the orphan for the lock
        holders.remove("C")
    assert outcome["B"] == "busy"  # B found C holding the new lock file
    assert not (tmp_path / ".out.lock").exists()


def write_run(directory: Path, seed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps({"seed": seed}))


def test_a_kill_between_the_two_renames_is_repaired_by_the_next_holder(tmp_path):
    out = tmp_path / "out"
    write_run(out, 0)
    output.write_marker(out, "run")
    stage = output.staging_dir(out, pid=999_999)
    write_run(stage, 1)
    output.write_marker(stage, "run")
    os.replace(out, tmp_path / ".out.old-999999")  # killed here: `out` is absent
    with output.output_lock(out):
        assert json.loads((out / "summary.json").read_text())["seed"] == 1  # publish finished
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_kill_before_the_staged_run_was_complete_puts_the_old_run_back(tmp_path):
    out = tmp_path / "out"
    write_run(out, 0)
    output.write_marker(out, "run")
    write_run(output.new_stage(output.staging_dir(out, pid=999_999)), 1)  # never completed
    os.replace(out, tmp_path / ".out.old-999999")
    with output.output_lock(out):
        assert json.loads((out / "summary.json").read_text())["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publish_refuses_a_target_that_changed_during_the_run(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputRefused, match="late.txt"):
        with output.claimed(out, "run") as stage:
            write_run(stage, 1)
            out.mkdir()
            (out / "late.txt").write_text("a user's file, written meanwhile")
    assert (out / "late.txt").read_text().startswith("a user's")
    assert (stage / "summary.json").exists()  # the run's results are kept where they are


@pytest.mark.parametrize("path", ["out/ü (1)", "it's", "a,b", r"x\y", "back\\"])
def test_hydra_quoted_survives_hydras_override_grammar(path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"k={output.hydra_quoted(path)}")
    assert not parsed.is_sweep_override() and parsed.value() == path


def test_sigterm_ends_a_run_with_one_line_and_leaves_nothing(tmp_path):
    writer = start_long_run(tmp_path, tmp_path / "out", seed=1)
    wait_for_staging(tmp_path / "out")
    writer.send_signal(signal.SIGTERM)  # `kill`, or a scheduler's time limit
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 143
    (line,) = stderr.splitlines()
    assert line == "clientsim: terminated; this run's results were not written"
    assert list(tmp_path.iterdir()) == []


def test_an_experiment_through_clientsim_refuses_a_users_folder(here, tmp_path, user_folder):
    before = tree(tmp_path)
    args = ["-m", "+experiment=hard_sell", "output_dir=mydir", "steps=4", "experiment.seeds=1"]
    refused(here([*args, "market.n_clients=300"], tmp_path), "output_dir=", "no sweep")
    assert tree(tmp_path) == before


# --- places a run must not write, refused in-process before anything runs ------------------


def refused_in_process(capsys, args: list[str], *words: str) -> None:
    from sim.cli.clientsim import main

    assert main([*args, "market.n_clients=300", "steps=8", "progress=false"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("clientsim: ") and all(word in line for word in words), line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-m", "seed=1", "output_dir=m", "hydra.sweep.subdir=../victim"], ["subdir", "inside"]),
        (["-m", "seed=1", "output_dir=m", "hydra.sweep.subdir=/abs/victim"], ["inside"]),
        (["-m", "seed=1,2", "output_dir=m", "hydra.sweep.subdir=same"], ["differ from job"]),
        (["output_dir=r", "hydra.output_subdir=../victim"], ["output_subdir", "inside"]),
        (["output_dir=r", "hydra.job.name=../x"], ["job.name", "inside"]),
        (["-m", "seed=range(0,0)"], ["seed=", "no value"]),
        (["steps=8", "-m", "seed=1"], ["unrecognized", "come first"]),
    ],
    ids=["subdir ..", "subdir absolute", "one subdir", "output_subdir", "job name", "empty", "-m"],
)
def test_a_place_outside_the_runs_directory_is_refused(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim").mkdir()
    refused_in_process(capsys, args, *words)
    assert [p.name for p in tmp_path.iterdir()] == ["victim"]


def test_a_run_into_a_job_of_a_finished_sweep_is_refused(here, tmp_path, small_overrides, capsys):
    sweep = here(["-m", "seed=1,2", *small_overrides, "output_dir=m"], tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    before = tree(tmp_path)
    refused_in_process(capsys, [f"output_dir={tmp_path / 'm' / '0'}"], "inside", "multirun")
    assert tree(tmp_path) == before


def test_a_link_loop_and_a_linked_lock_file_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loopa").symlink_to("loopb")
    (tmp_path / "loopb").symlink_to("loopa")
    refused_in_process(capsys, ["output_dir=loopa"], "loop")
    (tmp_path / "precious").write_text("keep")
    (tmp_path / ".r.lock").symlink_to("precious")
    refused_in_process(capsys, ["output_dir=r"], ".r.lock", "not a lock file")
    assert (tmp_path / "precious").read_text() == "keep" and not (tmp_path / "r").exists()


def test_a_users_empty_folder_in_a_run_keeps_it_from_being_replaced(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write_run(out, 0)
    output.write_marker(out, "run")
    (out / "analysis" / "plots").mkdir(parents=True)
    with pytest.raises(OutputRefused, match="analysis/plots/"):
        output.check_replaceable(out, "run")


def test_a_sigkilled_plain_sweep_leaves_no_worker_and_the_next_one_cleans_up(tmp_path):
    command = [sys.executable, "-m", "sim", "-m", "seed=1,2,3,4", "market.n_clients=20000",
               "steps=3000", "progress=false", "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2", "output_dir=m"]  # fmt: skip
    sweep = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(tmp_path.glob(".m.tmp-*/*/.hydra"))) < 2:
        time.sleep(0.2)  # both workers have started a job (Hydra wrote its .hydra/)
    tasks = Path(f"/proc/{sweep.pid}/task")
    workers = [int(pid) for task in tasks.iterdir()
               for pid in (task / "children").read_text().split()]  # fmt: skip
    time.sleep(1)
    sweep.kill()  # as the OOM killer does: no time to stop anything
    sweep.wait()
    alive = workers
    for _ in range(40):  # a worker checks its parent twice a second; allow for a busy machine
        time.sleep(0.5)
        alive = [pid for pid in workers if Path(f"/proc/{pid}/cmdline").read_bytes()]
        if not alive:
            break
    assert workers and not alive
    again = run_cli(["-m", "seed=1", "market.n_clients=300", "steps=8", "progress=false",
                     "output_dir=m"], cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_users_folder_named_like_a_leftover_is_not_removed(tmp_path):
    out = tmp_path / "out"
    mine = tmp_path / ".out.tmp-12345"  # a user's, by chance named like a killed run's stage
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    killed = output.new_stage(tmp_path / ".out.tmp-999999")
    (killed / "steps.parquet").write_text("half written")
    with output.output_lock(out):
        pass
    assert (mine / "thesis.txt").read_text() == "precious" and not killed.exists()
