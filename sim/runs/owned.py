"""Files written beside a named output: replaced only if clientsim wrote them, and as it did.

A file the user names (`--out F`, `--figure F`) may be replaced: naming an output says so.
A file a command writes beside it or inside a named folder (facts.json, morris.png,
figures/paired.png) replaces an existing file only if clientsim wrote that file: each folder
it writes into holds OUTPUTS, the SHA-256 of every file clientsim wrote there. A file that is
not listed, or was changed since, is the user's: the command refuses (`UserError`) before
computing anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from sim.errors import UserError
from sim.runs.output import unwritable
from sim.runs.record import package_version, write_json

OUTPUTS = ".clientsim-outputs.json"


def check_out(out: Path, kind: str) -> None:
    """Raise UserError unless the file `out` (a `kind` file, e.g. ".md") can be written."""
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name ({kind})")
    check_writable(out.absolute().parent, out)


def check_writable(folder: Path, out: Path, option: str = "--out") -> None:
    """Raise UserError unless files can be written in `folder` (made if absent) for `option out`.

    Checked before anything is computed (`sim.runs.output.unwritable`).
    """
    reason = unwritable(folder)
    if reason is not None:
        raise UserError(f"{option} {out}: {reason}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listed(folder: Path) -> dict[str, str] | None:
    """The files (name -> SHA-256) clientsim wrote in `folder`; None if OUTPUTS is not ours."""
    try:
        listing = json.loads((folder / OUTPUTS).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    files = listing.get("files") if isinstance(listing, dict) else None
    if listing.get("written_by") != "clientsim" or not isinstance(files, dict):
        return None
    return files


def not_ours(paths: Iterable[Path]) -> Path | None:
    """The first of `paths` that exists and that clientsim did not write there, else None.

    Args:
        paths: the files a command is about to write without the user naming them.
    """
    for path in paths:
        listed = _listed(path.parent)
        if listed is None:
            return path.parent / OUTPUTS
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            if path.is_file() and listed.get(path.name) == _digest(path):
                continue
        except OSError:
            pass
        return path
    return None


def refuse_foreign(paths: Iterable[Path], option: str) -> None:
    """Raise UserError if writing `paths` would replace a file clientsim did not write.

    Args:
        paths: the files a command is about to write without the user naming them.
        option: the option that chose where they go, e.g. ``--out results/facts.md``.
    """
    found = not_ours(paths)
    if found is not None:
        what = "a directory" if found.is_dir() else "a file clientsim did not write"
        raise UserError(f"{option}: would replace {found}, {what}; move it or choose another "
                        f"{option.split()[0]}")  # fmt: skip


def record_outputs(paths: Iterable[Path]) -> None:
    """Note in each folder's OUTPUTS that clientsim wrote `paths` (as they are now)."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, written in by_folder.items():
        listed = _listed(folder) or {}
        listed.update({path.name: _digest(path) for path in written})
        write_json(folder / OUTPUTS, {"written_by": "clientsim", "version": package_version(),
                                      "files": listed})  # fmt: skip
