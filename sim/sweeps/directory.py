"""A sweep directory: whose sweep it holds (`.sweep.json`), its design, and what may start in it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sim.errors import UserError
from sim.runs.record import write_json

SWEEP_FILE = ".sweep.json"


class SweepError(UserError):
    """A sweep directory, or a file in it, is not what the sweep needs (a one-line message).

    `reason`: the message without the place it names (what a caller naming it shows).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


#: A progress mark's name (`Progress.done`): `<sweep id>.<point hash>.<seed>.<status>`.
MARK = re.compile(r"[^.]+\.[0-9a-f]{16}\.-?[0-9]+\.(ok|skipped|failed)")


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


def read_sweep(sweep_dir: Path) -> dict:
    """The current sweep's identity (written when the sweep starts)."""
    path = sweep_dir / SWEEP_FILE
    if path.exists():
        return json.loads(path.read_text())
    return {"id": "unknown", "t0": time.time(), "started": utc_now(), "command": ""}


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


_TYPED: list[str] = []  # the command line that launches this process's sweeps (`typed`)


@contextlib.contextmanager
def typed(argv: list[str]) -> Iterator[None]:
    """While inside, a sweep started by this process records `argv` as its command.

    `argv` is what the user typed, the program's name first (`clientsim-experiment run
    NAME ...`). The outermost front end's stands: `clientsim-experiment` launches its sweep
    through `clientsim`'s Hydra application, whose own argv is not what the user typed.
    """
    if _TYPED:
        yield
        return
    _TYPED.append(shlex.join(argv))
    try:
        yield
    finally:
        _TYPED.clear()


def command_line() -> str:
    """The command that launched this process's sweep, quoted for a shell (`typed`).

    Outside `typed`: this process's arguments, its program's name first.
    """
    return _TYPED[0] if _TYPED else shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def start_sweep(sweep_dir: Path, experiment: str, sweep_id: str | None = None) -> dict:
    """Give the sweep of `experiment` starting in `sweep_dir` its identity.

    Refuses (SweepError) a directory that is not empty and not a sweep of `experiment`.
    Then forgets the last sweep's jobs there: removes its job records, progress marks and
    joined tables (never a table that looks complete), and nothing else.
    """
    check_sweep_dir(sweep_dir, experiment)
    sweep = {"id": sweep_id or uuid.uuid4().hex[:12], "experiment": experiment}
    sweep |= {"t0": time.time(), "started": utc_now(), **_PLANS.get(sweep_id, {})}
    sweep |= {"command": command_line(), "cwd": os.getcwd()}
    for record in sweep_dir.glob("jobs/*.json"):
        if is_record(record):  # a user's other files there stay
            record.unlink()
    _remove_empty(sweep_dir / "jobs")
    remove_marks(sweep_dir)
    for stale in ("runs.parquet", "steps.parquet", "manifest.json"):
        (sweep_dir / stale).unlink(missing_ok=True)  # never a table that looks complete
    write_json(sweep_dir / SWEEP_FILE, sweep)
    return sweep


def remove_marks(sweep_dir: Path) -> None:
    """Remove the progress marks (`.progress/`), which only a running sweep needs."""
    for mark in (sweep_dir / ".progress").glob("*"):
        if MARK.fullmatch(mark.name) and mark.is_file():  # nothing else there is removed
            mark.unlink(missing_ok=True)
    _remove_empty(sweep_dir / ".progress")


#: The keys of a job record (`DIR/jobs/<num>.json`): a JSON file without them is not one.
RECORD_KEYS = ("sweep", "job", "point_hash", "runs")


def is_record(path: Path) -> bool:
    """Whether `path` is a job record of a sweep (`<num>.json` holding RECORD_KEYS)."""
    if not path.stem.isdigit() or not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and all(key in record for key in RECORD_KEYS)
