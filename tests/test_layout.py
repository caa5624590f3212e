"""The package's layout: layers checked by import-linter, what the sweep cache key hashes, and an
installed (not editable) clientsim that finds its configs and experiments from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from sim.sweeps.points import RESULT_CODE, code_hash

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sim"
BIN = Path(sys.executable).parent


def test_import_contract_holds():
    """The layers run one way and no package's modules import each other in a circle."""
    out = subprocess.run(
        [BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-3000:]


def test_every_subpackage_ships():
    """pyproject.toml lists every package under sim/ (setuptools installs only those)."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("sim", "hydra_plugins")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found | {"sim.configs"} == listed


def _package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "sim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line)


def test_code_hash_keeps_sweeps_when_front_ends_change_and_redoes_them_when_the_model_does(
    tmp_path,
):
    """Editing a command line, a figure or the analysis keeps stored sweeps; the model does not."""
    copy = _package_copy(tmp_path)
    before = code_hash(copy)
    assert before == code_hash(PACKAGE)
    for front_end in ("cli/sensitivity.py", "analysis/figures.py", "analysis/stats.py"):
        _append(copy / front_end, "\n# a comment\n")
        assert code_hash(copy) == before, front_end
    _append(copy / "model" / "phases.py", "\n# a comment\n")
    assert code_hash(copy) != before


@pytest.mark.parametrize("name", RESULT_CODE)
def test_code_hash_follows_each_part_of_the_result_code(tmp_path, name):
    copy = _package_copy(tmp_path)
    before = code_hash(copy)
    path = copy / name
    target = sorted(path.rglob("*.py"))[0] if path.is_dir() else path
    _append(target, "\n# a comment\n")
    assert code_hash(copy) != before


@pytest.mark.slow
def test_installed_clientsim_runs_and_lists_experiments_from_another_directory(tmp_path):
    """`pip install .` (not editable) ships the configs, the experiments and the sweeper plugin."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("sim", "configs", "experiments", "hydra_plugins"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )  # fmt: skip
    env_dir = tmp_path / "env"
    venv.create(env_dir)  # without pip: this venv's pip installs into it (`pip --python`)
    python = env_dir / "bin" / "python"
    # The dependencies come from this venv (read-only, appended to sys.path after the
    # installed package): the test checks the package, not an index.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    # Built with this venv's setuptools (the test extra), not in an isolated build env that
    # pip would first fill from an index (about 20 s).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-build-isolation", str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # its kernels compile into the test's own cache, not the user's (~/.cache/clientsim would
    # keep a directory for every temporary install)
    env = {**os.environ, "PYTHONPATH": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    where = subprocess.run(
        [python, "-c", "import sim; print(sim.__file__)"], cwd=elsewhere, env=env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(env_dir) in where, where

    listed = subprocess.run(
        [env_dir / "bin" / "clientsim-experiment", "list"], cwd=elsewhere, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    expected = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    for name in expected:
        assert name in listed.stdout

    # in this process (Hydra's basic launcher): a fresh install compiles the model's kernels
    # once, not in every worker; the local launchers are tests/test_sweep_runs.py's
    sweep = subprocess.run(
        [env_dir / "bin" / "clientsim-experiment", "run", "referrals", "--smoke", "--launcher",
         "basic", "--dir", "sweep"], cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    assert (elsewhere / "sweep" / "runs.parquet").is_file()
    assert list((tmp_path / "cache" / "clientsim").glob("numba-*/*/*.nbi"))  # compiled there

    run = subprocess.run(
        [env_dir / "bin" / "clientsim", "market.n_clients=200", "steps=4", "progress=false",
         "output_dir=out"], cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert (elsewhere / "out" / "steps.parquet").is_file()


def test_make_test_starts_a_worker_more_than_the_cores_unless_told(monkeypatch, pytestconfig):
    """`-n auto` (tests/conftest.py): the cores and one more; pytest-xdist's variable wins."""
    from conftest import pytest_xdist_auto_num_workers as workers

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    assert workers(pytestconfig) == len(os.sched_getaffinity(0)) + 1
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    assert workers(pytestconfig) is None  # pytest-xdist's own hook reads it
