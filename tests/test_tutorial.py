"""Every command of docs/TUTORIAL.md runs as written (in a temporary directory).

`make run` is what the Makefile runs (`clientsim`); `make app` starts `clientsim-app`, which
tests/test_app_browser.py starts the same way and drives in Chromium (not started twice here);
`source .venv/bin/activate` is the test's PATH, which puts this venv's commands first. The
commands run in chains, each in a directory of its own (an experiment's sweep, then what reads
it; each plain run alone), so that `pytest -n` shares them between workers. A plain
`clientsim` run is given a small market (SMALL): the test checks that the command runs, not the
default run's numbers.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "TUTORIAL.md"
BIN = Path(sys.executable).parent


def blocks() -> list[tuple[str, str]]:
    """The tutorial's fenced blocks, in order: (language, code)."""
    return re.findall(r"```(sh|python|yaml)\n(.*?)```", TUTORIAL.read_text(), re.S)


def saved_as(code: str) -> str:
    """The file name the tutorial tells the reader to save a YAML block as."""
    text = TUTORIAL.read_text()
    return re.findall(r"save it as\s+`([^`]+)`", text[: text.index(code)])[-1]


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
                    "read_parquet", "paired", "clientsim-plot", "clientsim-experiment report",
                    "where.yaml"):  # fmt: skip
        assert command in text


def chains() -> dict[str, list[tuple[str, str]]]:
    """The tutorial's steps to run, (language, code) in order, by the results they share.

    A step belongs to the chain of the first `results/tutorial/NAME` it names (an experiment's
    sweep, then its analysis, figures and report), else it is a chain of its own (a plain run).
    Each chain runs on its own, so that `pytest -n` runs them side by side.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for language, code in blocks():
        lines = [code] if language == "python" else code.splitlines()
        for line in filter(None, map(str.strip, lines)):
            if language == "yaml" or line == "make app" or shell_line(line) is None:
                continue  # a file the reader saves; tests/test_app_browser.py drives the app
            named = re.search(r"results/tutorial/(\w+)", line)
            found.setdefault(named.group(1) if named else line, []).append((language, line))
    return found


#: What each experiment's chain leaves in results/tutorial/NAME/, as the tutorial says.
LEFT = {
    "strategy": ("figures/profit.png", "figures/paired.png"),
    "one": ("figures/whale.png",),
    "where": ("runs.parquet",),
}


def test_the_chains_hold_every_step_and_leave_what_the_tutorial_shows():
    steps = [step for chain in chains().values() for step in chain]
    shell = [line for language, code in blocks() if language == "sh" for line in code.splitlines()]
    runs = [line for line in map(str.strip, shell) if line and shell_line(line) is not None]
    assert len(steps) == len(runs) - runs.count("make app") + 1  # + the python block
    assert set(LEFT) <= set(chains())


@pytest.mark.parametrize("chain", list(chains()))
def test_every_tutorial_command_runs(tmp_path, chain):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for language, code in blocks():
        if language == "yaml":  # the reader saves it
            (tmp_path / saved_as(code)).write_text(code)
    for language, code in chains()[chain]:
        if language == "python":
            result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=120)  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert "fit_filter" in result.stdout and "ci_low" in result.stdout
            continue
        result = subprocess.run(["bash", "-c", shell_line(code)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode == 0, f"{code}: {result.stderr[-2000:]}"
    for name in LEFT.get(chain, ()):
        assert (tmp_path / "results" / "tutorial" / chain / name).is_file()
    if chain == "where":
        sampled = pd.read_parquet(tmp_path / "results" / "tutorial" / "where" / "runs.parquet")
        assert sampled["market.demand_supply_ratio"].nunique() == 2  # --smoke: two samples


def sliders() -> dict[str, tuple]:
    """The browser view's sliders: label -> (min, max, step)."""
    pytest.importorskip("solara", reason="the browser view needs the viz extra")
    from sim.app.controls import DRAW_EVERY
    from sim.app.view import KNOBS

    found = {label: (lo, hi, step) for _, label, lo, hi, step in KNOBS.values()}
    label, *steps = DRAW_EVERY
    return {**found, label: tuple(steps)}


def test_every_slider_the_tutorial_sets_exists_and_takes_the_value():
    text = " ".join(TUTORIAL.read_text().split())
    asked = dict(re.findall(r"\*\*([^*]+)\*\* to (\d+(?:\.\d+)?)", text))
    assert len(asked) >= 4, asked  # draw every, fit_filter, serve_all, word of mouth
    available = sliders()
    for name, value in asked.items():
        (label,) = [label for label in available if label.startswith(name)]
        lo, hi, step = available[label]
        x = float(value)
        assert lo <= x <= hi and np.isclose((x - lo) / step, round((x - lo) / step)), label
    # "six of the eight filter": the step that asks whether filtering pays when most filter
    assert float(asked["fit_filter businesses"]) > float(asked["serve_all businesses"])
