"""Compiled kernels (numba) shared by the phases of both engines, and their primitives.

A kernel does in one pass over the acting clients what would otherwise take many numpy
passes and temporaries. Kernels must not move a result by one bit (`tests/baseline.json`),
so they keep to what is exact in IEEE arithmetic: integer hashing, comparisons, gathers
and +, -, *, /, sqrt, min and max written in the same order as the numpy rule they replace.
Transcendental functions (log, exp, pow) stay in numpy, outside the kernels: numba calls
the C library's, which differ from numpy's vectorised ones in the last bit. No kernel uses
``fastmath`` or ``parallel``; every one is cached on disk (``cache=True``), so only the first
run after a change compiles it (a few seconds).

numba knows a cached kernel is stale only when its own file changes, not when a function it
calls from another file does (a primitive of `draws`, a formula of `sim.model.mechanics`).
So the cache lives in a directory named by a hash of those sources (`cache_dir`), under the
user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``): any change compiles afresh. A
``NUMBA_CACHE_DIR`` set by the user is used as it is. When a new version compiles, the
caches of versions no process has used for `STALE_DAYS` days are removed (`prune`).

One module per phase holds its kernels; `draws` holds the primitives they share: the
counter-based draws of `sim.model.rng.Streams`, draw for draw.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from pathlib import Path

import numba

#: The sources the kernels compile: their own files and the formulas they call.
SOURCES = (
    *sorted(Path(__file__).parent.glob("*.py")),
    Path(__file__).parent.parent / "mechanics.py",
)


def cache_dir() -> Path:
    """Where the kernels' compiled code is cached: one directory per version of `SOURCES`."""
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "clientsim" / f"numba-{digest.hexdigest()[:16]}"


#: A version's cache unused this long (days) is removed when another version compiles.
STALE_DAYS = 30
#: The stamp every process that loads a version's cache touches (at most once a day).
USED = "used"
_DAY = 86_400.0
#: What numba and clientsim write in a version's cache: only such files are ever removed.
_OURS = re.compile(r"(.+\.nb[ic]|used|warmed-[0-9a-f]{16})")
_VERSION = re.compile(r"numba-[0-9a-f]{16}")


def prune(root: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Remove the caches of other versions of the kernels unused for `STALE_DAYS` days.

    A version's cache (``root/numba-<hash>``, not `keep`) was last used when its `USED` stamp
    was touched (else when a file in it last changed). Only the files numba and clientsim write
    there are removed (compiled code and its index, the stamps), then the folders left
    empty: anything else, and the folders that hold it, stay. Returns the folders removed.
    """
    now = time.time() if now is None else now
    removed = []
    for version in root.glob("numba-*"):
        if version == keep or not _VERSION.fullmatch(version.name) or not version.is_dir():
            continue
        try:
            files = [path for path in version.rglob("*") if path.is_file()]
            last = max((path.stat().st_mtime for path in files), default=version.stat().st_mtime)
            if (version / USED).exists():
                last = (version / USED).stat().st_mtime
            if now - last < STALE_DAYS * _DAY:
                continue
            for path in files:
                if _OURS.fullmatch(path.name):
                    path.unlink()
            for folder in sorted(version.rglob("*"), key=lambda p: -len(p.parts)) + [version]:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
                    removed.append(folder)
        except OSError:  # (another process at work there, or no permission: left as it is)
            continue
    return removed


def _mark_used(where: Path) -> None:
    """Touch `where`'s `USED` stamp, if it is over a day old (`prune` reads it)."""
    stamp = where / USED
    with contextlib.suppress(OSError):
        if not stamp.exists() or time.time() - stamp.stat().st_mtime > _DAY:
            stamp.touch()


def _use_cache_dir() -> None:
    """Point numba at `cache_dir()`, unless the user chose a directory or it cannot be made.

    A new version's directory prunes the caches of versions unused for `STALE_DAYS` days.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    where = cache_dir()
    new = not where.exists()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:  # (a read-only home: numba's own places, beside the sources)
        return
    numba.config.CACHE_DIR = str(where)
    _mark_used(where)
    if new:
        prune(where.parent, where)


_use_cache_dir()


def compiled() -> bool:
    """Whether some run compiled this version of the kernels already (its cache has code)."""
    where = Path(numba.config.CACHE_DIR or cache_dir())
    return where.is_dir() and any(path.name != USED for path in where.iterdir())
