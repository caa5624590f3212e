"""Sweeps through Hydra's submitit launchers: what Hydra leaves to the submitting process.

`clientsim-experiment run NAME --launcher submitit_slurm` submits the sweep's jobs as one
Slurm array and waits for them (Hydra's launcher blocks until every job ends). Around that
launch, `submission` adds what a user of a real cluster needs:

- before submitting: Slurm's accounting works (`sacct`; submitit learns that a job ended
  without its result only from it, and otherwise polls forever), and the partition exists;
- before any launcher starts: no Slurm job of an earlier submission into the same sweep
  directory is still queued or running (it would run into the new sweep);
  `--cancel-running` cancels those instead of refusing;
- while the jobs run: lines of runs done / total, counted in the sweep directory (the jobs'
  own lines go to `DIR/.submitit/` logs);
- when a job fails or is cancelled: the array's other jobs are cancelled and one line says
  what happened and how to resume, instead of a traceback.

The Slurm job ids of every submission are those of submitit's folders, `DIR/.submitit/<id>/`
and `DIR/.submitit/<id>_<task>/`.
"""

from __future__ import annotations

import getpass
import io
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.sweeps.collect import kept_runs

#: Seconds between two looks at the sweep directory (progress lines, vanished jobs), once the
#: sweep has run a while; the first looks come sooner (`Watch.waits`), as submitit's own.
PROGRESS_SECONDS = 5.0
#: Seconds before the first look; each wait after it doubles, up to `PROGRESS_SECONDS`.
FIRST_LOOK_SECONDS = 0.5
#: Seconds to wait for cancelled jobs to leave the queue.
CANCEL_SECONDS = 60.0
#: Job states after which a job no longer runs (anything else counts as queued or running).
ENDED = (
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "TIMEOUT",
)  # fmt: skip


class SlurmError(Exception):
    """Slurm cannot take the sweep; the message is one line for the user."""


def signal_delay(minutes: int) -> int:
    """Seconds before the time limit at which a job gets submitit's time-out signal.

    Hydra's default, 120 s, is the whole of a 2-minute job: the signal comes at the job's
    start and ends it. A tenth of the time limit, at most 120 s, leaves a short job its time
    and a long one the default.
    """
    return max(1, min(120, minutes * 6))


def _slurm(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a Slurm command; raise SlurmError if it is missing or hangs."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SlurmError(f"`{command[0]}` not found: Slurm's commands must be on PATH") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(command)}` did not answer in {timeout:.0f} s") from None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def check_accounting() -> None:
    """Raise SlurmError unless `sacct` answers (Slurm's accounting is on and reachable)."""
    result = _slurm(["sacct", "--noheader", "--allocations", "--format=JobID", "--starttime=now"])
    if result.returncode != 0:
        said = _first_line(result.stderr + result.stdout)
        raise SlurmError(
            f"--launcher submitit_slurm needs Slurm accounting (sacct), and `sacct` failed: "
            f"{said}; ask the cluster's admins to enable it, or use --launcher joblib"
        )


def check_partition(args) -> None:
    """Raise SlurmError unless the partition asked for (if any) is one of the cluster's."""
    given = [o for o in args.overrides if o.lstrip("+").startswith("hydra.launcher.partition=")]
    key, name = given[-1].lstrip("+").split("=", 1) if given else ("--partition", args.partition)
    if not name or name == "null":
        return
    result = _slurm(["sinfo", "--noheader", "--format=%R"])
    if result.returncode != 0:
        raise SlurmError(f"cannot reach Slurm: sinfo: {_first_line(result.stderr)}")
    partitions = sorted(set(result.stdout.split()))
    if not set(name.split(",")) <= set(partitions):  # sbatch takes a list: cpu,gpu
        raise SlurmError(f"invalid config: {key}={name!r}: not a partition of this cluster; "
                         f"allowed: {', '.join(partitions)}")  # fmt: skip


def submitted(sweep_dir: Path) -> set[str]:
    """The Slurm job ids (array ids) of every submission into `sweep_dir`."""
    folder = sweep_dir / ".submitit"
    if not folder.is_dir():
        return set()
    names = (p.name.split("_")[0] for p in folder.iterdir() if p.is_dir())
    return {name for name in names if name.isdigit()}


def tasks(sweep_dir: Path, ids: set[str]) -> set[str]:
    """The jobs (array tasks, `<id>_<task>`, or `<id>`) of the submissions `ids`.

    submitit gives each its own folder with its pickled call when it submits it.
    """
    folder = sweep_dir / ".submitit"
    return {
        p.parent.name
        for p in folder.glob("*/*_submitted.pkl")
        if p.name == f"{p.parent.name}_submitted.pkl" and p.parent.name.split("_")[0] in ids
    }


def has_result(sweep_dir: Path, task: str) -> bool:
    """Whether the job `task` wrote its result (or its error) for the submitting process."""
    return (sweep_dir / ".submitit" / task / f"{task}_0_result.pkl").exists()


def job_states(ids: set[str]) -> dict[str, str]:
    """The state of each job (one line per array task) of `ids` that slurmctld still holds.

    Only this user's jobs: an id recorded on another cluster may be someone else's job
    here. A pending task that is cancelled leaves no trace, neither here nor in `sacct`.
    """
    if not ids:
        return {}
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i %T",
               f"--user={getpass.getuser()}", f"--jobs={','.join(sorted(ids))}"]  # fmt: skip
    result = _slurm(command)
    said = result.stderr + result.stdout
    if result.returncode != 0:
        if "Invalid job id" in said:  # every one of them has left the queue
            return {}
        raise SlurmError(f"cannot ask Slurm about jobs {_names(ids)}: {_first_line(said)}")
    return dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())


def live(ids: set[str]) -> dict[str, str]:
    """The jobs of `ids` that are queued or running (any state but an end)."""
    return {job: state for job, state in job_states(ids).items() if state not in ENDED}


def cancel(ids: set[str], wait: float = CANCEL_SECONDS) -> None:
    """Cancel the jobs (or whole arrays) `ids`; wait until none of them is queued or running."""
    if not ids:
        return
    result = _slurm(["scancel", *sorted(ids)])
    if result.returncode != 0:
        raise SlurmError(f"scancel {' '.join(sorted(ids))}: {_first_line(result.stderr)}")
    end = time.monotonic() + wait
    arrays = {job.split("_")[0] for job in ids}
    while still := live(arrays):
        if time.monotonic() > end:
            raise SlurmError(f"Slurm jobs {_names(still)} still run {wait:.0f} s after scancel")
        time.sleep(0.5)


def ended_badly(ids: set[str]) -> dict[str, str]:
    """The jobs (array tasks) of `ids` that ended otherwise than COMPLETED, from `sacct`."""
    command = ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State",
               f"--jobs={','.join(sorted(ids))}"]  # fmt: skip
    result = _slurm(command)
    states = dict(line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)
    return {job: state for job, state in states.items()
            if state.split()[0] in ENDED and state != "COMPLETED"}  # fmt: skip


def _names(jobs) -> str:
    return ", ".join(sorted(jobs, key=lambda j: [int(x) for x in re.findall(r"\d+", j)]))


class JobLost(Exception):
    """Jobs of the sweep left Slurm's queue without their results (e.g. cancelled pending).

    submitit would wait for them forever: it learns a job's end from `sacct`, which keeps no
    record of an array task cancelled before it started.
    """

    def __init__(self, jobs: dict[str, str]) -> None:
        super().__init__(f"Slurm jobs {_names(jobs)} left the queue without their results")
        self.jobs = jobs


class Watch(threading.Thread):
    """While the jobs run elsewhere: "N/M runs done" lines, and jobs that vanished.

    The jobs' own lines go to their logs, so the count is read in the sweep directory
    every few seconds and printed when it changed. Under Slurm, a job that left the queue
    without its result, seen so twice in a row, interrupts the submitting process (SIGUSR1,
    whose handler raises JobLost) instead of letting it wait forever.

    The looks come 0.5, 1, 2 and 4 s apart, then every 5 s (`waits`): a job that cannot
    start (a broken environment, a cancelled array task) is named within seconds, while a
    long sweep asks slurmctld once every 5 s.
    """

    def __init__(self, sweep_dir: Path, total: int, ids: set[str] | None) -> None:
        super().__init__(name="clientsim-watch", daemon=True)
        self.sweep_dir, self.total, self.before = sweep_dir, total, ids
        self.t0, self.shown = time.monotonic(), -1
        self.lost: dict[str, str] = {}
        self._suspects: set[str] = set()
        self._stop = threading.Event()

    @staticmethod
    def waits() -> Iterator[float]:
        """Seconds before each look: from `FIRST_LOOK_SECONDS`, doubling, to `PROGRESS_SECONDS`."""
        wait = FIRST_LOOK_SECONDS
        while True:
            yield wait
            wait = min(2 * wait, PROGRESS_SECONDS)

    def run(self) -> None:
        """Look every few seconds until stopped; a look that fails is tried again later."""
        for wait in self.waits():
            if self._stop.wait(wait):
                return
            try:
                self.show()
                if self.before is not None and self.vanished():
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                    return
            except (OSError, ValueError, SlurmError):  # a file being replaced, a busy controller
                continue

    def show(self) -> None:
        """Print the count of runs done if it changed since the last line."""
        done = min(kept_runs(self.sweep_dir), self.total)
        if done != self.shown:
            self.shown = done
            elapsed = round(time.monotonic() - self.t0)
            print(f"clientsim-experiment: {done}/{self.total} runs done, {elapsed}s elapsed "
                  f"(from {self.sweep_dir}/points)", flush=True)  # fmt: skip

    def vanished(self) -> bool:
        """Whether some job left the queue without its result (in two looks running)."""
        ours = submitted(self.sweep_dir) - self.before
        states = job_states(ours)  # first the queue, then the results: no race
        gone = {
            task: states.get(task, "")
            for task in tasks(self.sweep_dir, ours)
            if states.get(task, "ENDED") in (*ENDED, "ENDED")
            and states.get(task) != "COMPLETED"  # submitit learns that one from sacct
            and not has_result(self.sweep_dir, task)
        }
        confirmed = {task: state for task, state in gone.items() if task in self._suspects}
        self._suspects = set(gone)
        if confirmed:
            self.lost = confirmed
        return bool(confirmed)

    def stop(self, show: bool = True) -> None:
        """Stop looking, and print the last count (`show`)."""
        self._stop.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join()
        if show:
            self.show()


def _fail(message: str, code: int) -> None:
    print(f"clientsim-experiment: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _rerun(sweep_dir: Path) -> str:
    return f"{kept_runs(sweep_dir)} runs kept; rerun the same command to finish (--dir {sweep_dir})"


class _WithoutSbatchEcho(io.TextIOBase):
    """stderr without the lines `sbatch: ...` that submitit echoes when sbatch refuses a job.

    The refusal is then said in one line (`_ended`), with sbatch's last error.
    """

    def __init__(self, stream) -> None:
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        """Forward every complete line but sbatch's."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if not line.startswith("sbatch: "):
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        """Flush the stream under it (a partial line waits for its end)."""
        self.stream.flush()

    def close_pending(self) -> None:
        """Forward a last line without its end."""
        if self.pending and not self.pending.startswith("sbatch: "):
            self.stream.write(self.pending)
        self.pending = ""


@contextmanager
def _sbatch_quiet(slurm: bool) -> Iterator[None]:
    if not slurm:
        yield
        return
    stderr = sys.stderr
    sys.stderr = quiet = _WithoutSbatchEcho(stderr)
    try:
        yield
    finally:
        quiet.close_pending()
        sys.stderr = stderr


@contextmanager
def _on_lost(watch: Watch) -> Iterator[None]:
    """While the jobs run, SIGUSR1 (sent by `watch`) raises JobLost in the main thread."""

    def lost(signum: int, frame) -> None:
        raise JobLost(watch.lost)

    usable = threading.current_thread() is threading.main_thread()
    usable = usable and signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    previous = signal.signal(signal.SIGUSR1, lost) if usable else None
    if not usable:
        watch.before = None  # no way to interrupt the wait: only the progress lines
    try:
        yield
    finally:
        if usable:
            signal.signal(signal.SIGUSR1, previous)


@contextmanager
def submission(args, sweep_dir: Path, total: int) -> Iterator[None]:
    """Around the launch of a sweep through a submitit launcher (see the module's doc).

    Exits 2 with one line if Slurm cannot take the sweep, and 1 with one line if a job
    fails, is cancelled or vanishes (the array's other jobs are cancelled). A job's error
    must reach this context: Hydra prints it instead unless `HYDRA_FULL_ERROR` is set (the
    caller's `_stoppable` sets it).
    """
    slurm = args.launcher == "submitit_slurm"
    try:
        if slurm:
            check_accounting()
            check_partition(args)
        if slurm or (submitted(sweep_dir) and shutil.which("squeue")):  # any launcher
            earlier = live(submitted(sweep_dir))
            if earlier and not args.cancel_running:
                _fail(f"--dir {sweep_dir}: Slurm jobs {_names(earlier)} of an earlier submission "
                      "into this directory are still queued or running; wait until they end, "
                      "or rerun with --cancel-running to cancel them", 2)  # fmt: skip
            if earlier:
                cancel(set(earlier))
                print(f"clientsim-experiment: cancelled Slurm jobs {_names(earlier)} of an "
                      f"earlier submission into {sweep_dir}", flush=True)  # fmt: skip
    except SlurmError as error:
        _fail(str(error), 2)
    if not args.launcher.startswith("submitit"):
        yield
        return
    before = submitted(sweep_dir)
    watch = Watch(sweep_dir, total, before if slurm else None)
    try:
        with _on_lost(watch), _sbatch_quiet(slurm):
            watch.start()
            try:
                yield
            except BaseException:
                watch.stop(show=False)
                raise
            watch.stop()
    except Exception as error:
        _ended(error, sweep_dir, submitted(sweep_dir) - before, slurm)
        raise
    except BaseException:  # interrupted (SIGINT, SIGTERM): the jobs would run on
        ours = submitted(sweep_dir) - before
        if slurm and (cancelled := _cancel_live(ours, which="this sweep's Slurm jobs")):
            print(f"clientsim-experiment: {cancelled}", flush=True)
        raise


def _cancel_live(ids: set[str], but: str = "", which: str = "the sweep's other jobs") -> str:
    """Cancel the jobs of `ids` still queued or running (all but `but`); say what was done."""
    try:
        running = {task for task in live(ids) if task != but}
        cancel(running)
    except SlurmError as error:
        return f"{which} may run on: {error}"
    return f"cancelled {which} {_names(running)}" if running else ""


def _ended(error: Exception, sweep_dir: Path, ours: set[str], slurm: bool) -> None:
    """A job failed, was cancelled, or the jobs were refused: say so in one line and exit."""
    from submitit.core.utils import UncompletedJobError

    if not isinstance(error, UncompletedJobError | JobLost):
        return  # not a job's end: the caller re-raises it
    if not ours:  # nothing was submitted: sbatch refused the jobs (a wrong setting)
        said = [line for line in str(error).splitlines() if "error" in line.lower()]
        _fail(f"sbatch refused the jobs: {said[-1].strip() if said else _first_line(str(error))}",
              2)  # fmt: skip
    if isinstance(error, JobLost):  # Slurm's accounts saw it end before submitit did
        job, state = min(error.jobs.items())
        log = sweep_dir / ".submitit" / job / f"{job}_0_log.err"
        said = _reason(log.read_text(errors="replace")) if state and log.is_file() else ""
        what = (f"Slurm job {job} ended {state} ({said}; log: {log})" if said
                else f"Slurm job {job} ended {state} without its results" if state
                else f"Slurm job {job} left the queue before it ran (cancelled?)")  # fmt: skip
    else:  # submitit's error names the job's folder, .submitit/<job>/
        found = re.search(r"\.submitit/(\d+(?:_\d+)?)/", str(error))
        job = found.group(1) if found else "?"
        try:
            state = ended_badly({job.split("_")[0]}).get(job) if slurm and found else None
        except SlurmError:
            state = None
        log = sweep_dir / ".submitit" / job / f"{job}_0_log.err"
        what = (f"{'Slurm job' if slurm else 'job'} {job} {f'ended {state}' if state else 'failed'}"
                f" ({_reason(str(error))}; log: {log})")  # fmt: skip
    others = _cancel_live(ours, but=job) if slurm else ""
    _fail(f"{what}{'; ' + others if others else ''}; {_rerun(sweep_dir)}", 1)


def _reason(message: str) -> str:
    """The most telling line of submitit's error or a job's log: its exception, or its state."""
    lines = [line.strip() for line in message.splitlines()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line)]
    if errors:
        return errors[-1]
    # An interpreter starved of memory may dump the exception as an object ("object repr :
    # MemoryError()") instead of raising it: the last line naming an exception type tells.
    named = [line for line in lines if re.search(r"\w(Error|Exception)\b", line)]
    if named:
        return named[-1]
    state = re.search(r"\(state: ([^)]*)\)", message)
    return f"state {state.group(1)}" if state else _first_line(message)
