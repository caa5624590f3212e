"""Output directories that never lose a user's files: markers, staging, locks and publishing.

A run (or a plain `clientsim -m` sweep) owns its output directory only while it holds it:

- **A marker says what clientsim wrote.** Every complete output directory holds
  `.clientsim.json`: its kind (`run` or `multirun`) and the list of files the run wrote. A
  run replaces an existing directory only if it is empty, or holds one complete clientsim
  output of the same kind and no file that output did not write; anything else (a user's
  folder, a git checkout, an experiment's sweep, a run with a user's notes added) is refused.
- **Staged, then published whole.** The run writes into a hidden sibling of its target,
  `.<name>.tmp-<pid>`, and renames it into place when complete; an older output is first
  renamed aside to `.<name>.old-<pid>` and removed after. A kill between the two renames is
  repaired by the next run into the same target (it finishes the publish if the staged
  output is complete, else it puts the old one back).
- **Locked.** An advisory lock on `.<name>.lock` beside the target keeps two live runs out of
  one directory; the kernel releases it when its holder dies. The holder removes the lock
  file while it still holds it, and a process that locked a file which was removed under it
  (its inode is no longer the one at the path) locks the new file instead, so two processes
  never both believe they hold one target. A target inside another live run's target is
  refused.
- **Links are followed.** A symbolic link to a directory is written through: the results land
  where the link points, and the link stays. A mount point cannot be renamed, so it is
  refused with the advice to write into a directory inside it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.runs.record import package_version, write_json

MARKER = ".clientsim.json"
#: In a staging directory until it is published: what says a killed run's leftover is ours.
STAGE_STAMP = ".clientsim-staging"
KINDS = ("run", "multirun")


class OutputRefused(Exception):
    """An output directory that a run must not write: the reason, in words."""


class OutputBusy(OutputRefused):
    """Another live run holds the output directory (or one that contains it)."""

    def __init__(self, out: Path, pid: str, holder: Path | None = None) -> None:
        where = f"{out}" if holder in (None, out) else f"{out} is inside {holder}, which"
        super().__init__(f"{where} is being written by another run (pid {pid})")
        self.out, self.pid = out, pid


def hydra_quoted(text: str) -> str:
    """`text` as a single-quoted value of Hydra's override grammar (any path, any character).

    Inside quotes only a quote, and backslashes before a quote or at the end, are escaped.
    """
    escaped = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), text)
    return f"'{escaped}'"


def target_path(path: str | Path) -> Path:
    """The absolute directory a run into `path` writes: symbolic links followed."""
    return Path(os.path.realpath(Path(path).expanduser()))


def staging_dir(out: Path, pid: int | None = None) -> Path:
    """The hidden directory beside `out` that a run (of process `pid`) writes into."""
    return out.parent / f".{out.name}.tmp-{os.getpid() if pid is None else pid}"


def staged_target(directory: Path) -> Path | None:
    """The target of a staging directory (`.<name>.tmp-<pid>` -> `<name>`), else None."""
    name, sep, pid = directory.name.rpartition(".tmp-")
    if sep and name.startswith(".") and pid.isdigit():
        return directory.parent / name[1:]
    return None


# --- what a directory holds -------------------------------------------------------------


def _files(directory: Path) -> set[str]:
    """Every file, link and empty folder below `directory`, relative, the marker left out.

    (An empty folder is listed as `name/`: a run writes none, so one there is a user's.)
    """
    found = set()
    for root, dirs, names in os.walk(directory):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.add(Path(root, name).relative_to(directory).as_posix())
        if not dirs and not names and root != str(directory):
            found.add(Path(root).relative_to(directory).as_posix() + "/")
    found.discard(MARKER)
    return found


def read_marker(directory: Path) -> dict | None:
    """The marker of a complete clientsim output in `directory`, or None."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") not in KINDS:
        return None
    return marker


def write_marker(directory: Path, kind: str) -> None:
    """Mark `directory` as one complete output of `kind`, listing the files it holds."""
    files = sorted(_files(directory))
    write_json(directory / MARKER, {"kind": kind, "clientsim_version": package_version(),
                                    "files": files})  # fmt: skip


def _examples(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_replaceable(out: Path, kind: str) -> None:
    """Raise OutputRefused unless a run of `kind` may write `out` (a resolved path).

    Allowed: a new directory, an empty one, or one holding exactly one complete clientsim
    output of the same kind (nothing in it that the output did not write).
    """
    advice = "choose a new or empty directory, or one that holds a clientsim " + kind
    if out.is_symlink():  # `target_path` followed every link it could: this one loops
        raise OutputRefused("is a symbolic link that leads to itself (a loop)")
    if out.exists() and not out.is_dir():
        raise OutputRefused("is an existing file, not a directory")
    if not out.exists():
        return
    if os.path.ismount(out):
        raise OutputRefused(
            "is a mount point, which a run cannot replace whole; write into a directory "
            f"inside it (e.g. output_dir={out / 'run'})"
        )
    if not any(out.iterdir()):
        return
    marker = read_marker(out)
    if marker is None:
        found = [p.name for p in out.iterdir()]
        raise OutputRefused(f"holds files clientsim did not write ({_examples(found)}); {advice}")
    if marker["kind"] != kind:
        raise OutputRefused(f"holds a clientsim {marker['kind']}, not a {kind}; {advice}")
    foreign = _files(out) - set(marker.get("files", ()))
    if foreign:
        raise OutputRefused(
            f"holds files the clientsim {kind} there did not write ({_examples(foreign)}); "
            "move them or choose another directory"
        )


def unwritable(path: Path) -> str | None:
    """Why nothing can be created at `path` (with its missing parents), or None if it can.

    The only sure test: create (and remove) a directory in the nearest folder that exists.
    """
    folder = path
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".clientsim-probe-", dir=folder))
    except OSError as error:
        return f"cannot write in {folder}: {error.strerror or error}"
    return None


# --- locks ------------------------------------------------------------------------------


def _lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def _open_lock(lock: Path, flags: int) -> int:
    """Open a lock file, never through a link: OutputRefused if `lock` is not a plain file."""
    try:
        return os.open(lock, flags | os.O_NOFOLLOW, 0o644)
    except OSError:
        if lock.is_symlink() or lock.is_dir():
            raise OutputRefused(f"{lock} is not a lock file clientsim made (a link or a "
                                "folder): move it away") from None  # fmt: skip
        raise


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"


def _acquire(out: Path) -> int:
    """Lock `out` for this process: the descriptor of its lock file, or raise OutputBusy."""
    lock = _lock_file(out)
    while True:
        fd = _open_lock(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise OutputBusy(out, pid) from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its holder removed it as we locked it: lock the file there now


def _release(out: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then let it go."""
    _lock_file(out).unlink(missing_ok=True)
    os.close(fd)


def check_ancestors(out: Path) -> None:
    """Raise OutputRefused if `out` is inside a clientsim output, or OutputBusy a live run's.

    A complete run or `-m` sweep, or an experiment's sweep (`.sweep.json`), is clientsim's:
    writing into it would mix it (and then it could never be replaced whole).
    """
    for ancestor in out.parents:
        marker = read_marker(ancestor)
        if marker is not None or (ancestor / ".sweep.json").is_file():
            what = f"clientsim {marker['kind']}" if marker else "experiment's sweep"
            raise OutputRefused(f"is inside the {what} {ancestor}, which it would mix; "
                                "write it elsewhere")  # fmt: skip
        lock = _lock_file(ancestor) if ancestor.name else None
        if lock is None or not lock.is_file() or lock.is_symlink():
            continue
        try:
            fd = _open_lock(lock, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(out, _holder(fd), ancestor) from None
        finally:
            os.close(fd)


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold `out` (a resolved path) for this process; raise OutputBusy if a live run does.

    Taking it repairs what a killed writer left (`recover`).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(out)
    try:
        check_ancestors(out)
        recover(out)
        yield
    finally:
        _release(out, fd)


# --- publishing -------------------------------------------------------------------------


def _leftovers(out: Path, kind: str) -> list[Path]:
    """Directories a killed writer of `out` left (`.<name>.tmp-<pid>` or `.old-<pid>`)."""
    found = out.parent.glob(f".{glob_escape(out.name)}.{kind}-*")
    return sorted((p for p in found if p.is_dir() and p.name.rpartition("-")[2].isdigit()),
                  key=lambda p: p.stat().st_mtime)  # fmt: skip


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def recover(out: Path) -> None:
    """Repair what killed writers of `out` left; call with `out`'s lock held.

    If `out` is missing because a writer was killed between publishing's two renames, the
    newest complete staged output takes its place, or else the old output goes back. Then the
    writers' other staging and old directories are removed, if they are surely a run's.
    """
    stages, olds = _leftovers(out, "tmp"), _leftovers(out, "old")
    mine = staging_dir(out)
    stages = [s for s in stages if s != mine]
    if not out.exists() and not out.is_symlink():
        complete = [s for s in stages if read_marker(s) is not None]
        if complete:
            os.replace(complete[-1], out)
        elif olds:
            os.replace(olds[-1], out)
    for leftover in (*stages, *olds):
        if leftover.exists() and _made_by_a_run(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _made_by_a_run(directory: Path) -> bool:
    """Whether a leftover `.<name>.tmp-<pid>` or `.old-<pid>` is surely a run's.

    It is if empty, marked complete, or stamped as a staging directory (`new_stage`);
    anything else stays where it is.
    """
    return (
        not any(directory.iterdir())
        or read_marker(directory) is not None
        or (directory / STAGE_STAMP).is_file()
    )


def new_stage(stage: Path) -> Path:
    """Create the staging directory `stage`, stamped as clientsim's until it is published."""
    stage.mkdir(parents=True, exist_ok=True)
    (stage / STAGE_STAMP).touch()
    return stage


def publish(stage: Path, out: Path, kind: str) -> None:
    """Mark the complete `stage` and rename it into place as `out` (with `out`'s lock held).

    An older output at `out` is renamed aside first and removed after: at every moment `out`
    is the old output, absent (repaired by `recover`) or the new one, never a mix. `out` is
    checked again first: if something else was written there meanwhile, OutputRefused.
    """
    (stage / STAGE_STAMP).unlink(missing_ok=True)
    write_marker(stage, kind)
    check_replaceable(out, kind)
    if not out.exists():
        os.replace(stage, out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def claimed(out: Path, kind: str, stage: Path | None = None) -> Iterator[Path]:
    """Hold `out`, give the staging directory to write, publish it when the block ends.

    `out` must be resolved (`target_path`). If the block raises (or is interrupted), nothing
    is published and the staging directory is removed. `stage` (default `staging_dir(out)`) is
    created and stamped here (`new_stage`); Hydra then writes into it.
    """
    stage = staging_dir(out) if stage is None else stage
    with output_lock(out):
        check_replaceable(out, kind)
        try:
            new_stage(stage)
            yield stage
            publish(stage, out, kind)
        except OutputRefused:
            raise  # `out` changed under the run: its complete results stay in `stage`
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
