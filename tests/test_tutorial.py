"""Every command of docs/TUTORIAL.md runs as written (in a temporary directory).

`make run` is what the Makefile runs (`clientsim`); `make app` is checked by starting
`clientsim-app` on a free port and fetching its page; `source .venv/bin/activate` is the
test's PATH, which puts this venv's commands first. A plain `clientsim` run is given a small
market (SMALL): the test checks that the command runs, not the default run's numbers.
"""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "TUTORIAL.md"
BIN = Path(sys.executable).parent


def blocks() -> list[tuple[str, str]]:
    """The tutorial's fenced blocks, in order: (language, code)."""
    return re.findall(r"```(sh|python)\n(.*?)```", TUTORIAL.read_text(), re.S)


SMALL = "market.n_clients=500 steps=26 progress=false"


def shell_line(line: str) -> str | None:
    """A tutorial command as the test runs it (None: nothing to run)."""
    if line == "source .venv/bin/activate":
        return None
    line = re.sub(r"^make run\b", "clientsim", line)
    return f"{line} {SMALL}" if line.split()[0] == "clientsim" else line


def test_the_tutorial_has_every_step():
    text = "\n".join(code for _, code in blocks())
    for command in ("make run", "clientsim ", "make app", "clientsim-experiment run strategy",
                    "read_parquet", "paired", "clientsim-plot"):  # fmt: skip
        assert command in text


def test_every_tutorial_command_runs(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for language, code in blocks():
        if language == "python":
            result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=120)  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert "fit_filter" in result.stdout and "ci_low" in result.stdout
            continue
        for line in filter(None, map(str.strip, code.splitlines())):
            if line == "make app":
                check_app_serves(env)
                continue
            command = shell_line(line)
            if command is None:
                continue
            result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
            assert result.returncode == 0, f"{line}: {result.stderr[-2000:]}"
    figures = tmp_path / "results" / "tutorial" / "strategy" / "figures"
    assert (figures / "profit.png").is_file() and (figures / "paired.png").is_file()


def check_app_serves(env: dict) -> None:
    """`make app` starts `clientsim-app`: it must serve the page."""
    pytest.importorskip("solara", reason="the browser view needs the viz extra")
    from appserver import serving

    with serving(env=env) as url:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"solara" in response.read().lower()
