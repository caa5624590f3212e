"""Experiments of one's own: YAML files anywhere, composed exactly as the built-in ones.

`clientsim-experiment run path/to/my.yaml` (or `run my --experiments DIR`, DIR holding
`my.yaml`) reads the file as an option of Hydra's group `experiment`: `overlay` builds a
config directory of links, the package's configs (or `--config-dir`'s) with the own files
added to `experiment/`, and the sweep is checked and run with it as its `--config-dir`.
So an own experiment goes through the same composition and the same checks
(`sim.sweeps.experiment.check_design`) as a built-in one, and the checkout is not touched.
The overlay lives in a temporary directory (`TMPDIR`) while the command runs; a Slurm sweep of
an own experiment needs `TMPDIR` on a file system the nodes share.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.config.schema import ConfigError
from sim.sweeps.experiment import names

SUFFIXES = (".yaml", ".yml")


def is_path(name: str) -> bool:
    """Whether `clientsim-experiment run NAME` names a file rather than an experiment."""
    return name.endswith(SUFFIXES) or "/" in name


def own_files(name: str | None, dirs: list[str]) -> dict[str, Path]:
    """The own experiments, by name (a file's stem): those of `dirs`, and `name` if a path.

    Raises:
        ConfigError: a directory that holds no experiment, a file that does not exist, or
            two files of the same name.
    """
    found: dict[str, Path] = {}
    for given in dirs:
        where = Path(given)
        files = sorted(f for f in where.glob("*") if f.suffix in SUFFIXES) if where.is_dir() else []
        if not files:
            raise ConfigError("--experiments", given, "not a directory holding experiments "
                              "(NAME.yaml files)")  # fmt: skip
        for file in files:
            _add(found, file)
    if name is not None and is_path(name):
        file = Path(name)
        if file.suffix not in SUFFIXES or not file.is_file():
            allowed = "no such file: give an experiment's name or the path of its .yaml file"
            raise ConfigError("experiment", name, allowed)
        _add(found, file)
    return found


def _add(found: dict[str, Path], file: Path) -> None:
    stem, path = file.stem, file.absolute()
    if stem in found and found[stem].resolve() != path.resolve():
        raise ConfigError("experiment", str(file), f"has the name of {found[stem]}; "
                          "rename one of them")  # fmt: skip
    found[stem] = path


@contextmanager
def overlay(own: dict[str, Path], config_dir: Path) -> Iterator[Path]:
    """A config directory with the own experiments beside `config_dir`'s (itself if none).

    Raises:
        ConfigError: an own experiment with a built-in experiment's name.
    """
    if not own:
        yield config_dir
        return
    builtin = names(config_dir)
    for stem, file in own.items():
        if stem in builtin:
            raise ConfigError("experiment", str(file), f"has the name of the built-in "
                              f"experiment {stem}; rename the file")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="clientsim-configs-") as tmp:
        root = Path(tmp)
        for entry in config_dir.iterdir():
            if entry.name not in ("experiment", "__pycache__"):
                (root / entry.name).symlink_to(entry.resolve())
        group = root / "experiment"
        group.mkdir()
        for file in (config_dir / "experiment").glob("*.yaml"):
            (group / file.name).symlink_to(file.resolve())
        for stem, file in own.items():
            (group / f"{stem}.yaml").symlink_to(file)
        yield root
