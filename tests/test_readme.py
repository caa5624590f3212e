"""The README's analyst snippet runs as written, on a real (smoke) sweep."""

import re
from pathlib import Path

from sim.cli.experiment import main as experiment_main

README = Path(__file__).resolve().parent.parent / "README.md"


def analyst_block() -> str:
    text = README.read_text()
    marker = text.index("<!-- analyst:")
    return re.search(r"```python\n(.*?)```", text[marker:], re.S).group(1)


def test_the_readme_analyst_snippet_runs_on_a_sweep(tmp_path, capsys):
    sweep_dir = tmp_path / "strategy"
    experiment_main(["run", "strategy", "--smoke", "--launcher", "basic", "--dir", str(sweep_dir)])
    code = analyst_block().replace('"results/strategy/make-results"', repr(str(sweep_dir)))
    assert str(sweep_dir) in code
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "fit_filter" in out and "ci_low" in out and "two_of_ten" in out
