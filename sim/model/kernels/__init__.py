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
``NUMBA_CACHE_DIR`` set by the user is used as it is.

One module per phase holds its kernels; `draws` holds the primitives they share: the
counter-based draws of `sim.model.rng.Streams`, draw for draw.
"""

from __future__ import annotations

import hashlib
import os
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


def _use_cache_dir() -> None:
    """Point numba at `cache_dir()`, unless the user chose a directory or it cannot be made."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
    except OSError:  # (a read-only home: numba's own places, beside the sources)
        return
    numba.config.CACHE_DIR = str(cache_dir())


_use_cache_dir()


def compiled() -> bool:
    """Whether some run compiled this version of the kernels already (its cache has files)."""
    where = Path(numba.config.CACHE_DIR or cache_dir())
    return where.is_dir() and any(where.iterdir())
