"""The README's Python runs as written: the analyst snippet, and the Python API section's
doctests, on a real (smoke) sweep."""

import doctest
import re
from pathlib import Path

import pytest

from sim.cli.experiment import main as experiment_main

README = Path(__file__).resolve().parent.parent / "README.md"
SWEEP_IN_README = '"results/strategy/make-results"'


def python_blocks(marker: str) -> list[str]:
    """The ```python blocks from the comment `<!-- marker` to the next section."""
    text = README.read_text()
    section = text[text.index(f"<!-- {marker}") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def strategy_sweep(tmp_path_factory) -> Path:
    sweep_dir = tmp_path_factory.mktemp("readme") / "strategy"
    experiment_main(["run", "strategy", "--smoke", "--launcher", "basic", "--dir", str(sweep_dir)])
    return sweep_dir


def test_the_readme_analyst_snippet_runs_on_a_sweep(strategy_sweep, capsys):
    code = python_blocks("analyst:")[0].replace(SWEEP_IN_README, repr(str(strategy_sweep)))
    assert str(strategy_sweep) in code
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "fit_filter" in out and "ci_low" in out and "two_of_ten" in out


def test_the_readme_python_api_section_runs_as_a_doctest(strategy_sweep, capsys):
    blocks = python_blocks("python-api:")
    text = "\n".join(blocks).replace(SWEEP_IN_README, repr(str(strategy_sweep)))
    assert len(blocks) == 3 and str(strategy_sweep) in text
    test = doctest.DocTestParser().get_doctest(text, {}, "README.md (Python API)", str(README), 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.failures == 0, capsys.readouterr().out
    assert runner.tries == len(test.examples) >= 12
