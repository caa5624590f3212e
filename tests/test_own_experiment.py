"""An experiment of one's own: the README's recipe run for real, at tiny size, from a directory
outside the checkout; its mistakes refused in one line with nothing written."""

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from sim.analysis.report import DOCS
from sim.cli.experiment import main as experiment_main

README = Path(__file__).resolve().parent.parent / "README.md"
TINY = ["market.n_clients=200", "steps=12", "experiment.seeds=2", "--launcher", "basic"]


def recipe() -> tuple[str, list[list[str]]]:
    """The README's own-experiment YAML and its commands (each as its arguments)."""
    text = README.read_text()
    section = text[text.index("<!-- own-experiment:") :]
    yaml = re.search(r"```yaml\n(.*?)```", section, re.S)[1]
    bash = re.search(r"```bash\n(.*?)```", section, re.S)[1]
    commands = [shlex.split(line, comments=True) for line in bash.splitlines() if line.strip()]
    assert all(c[0] == "clientsim-experiment" for c in commands)
    return yaml, [c[1:] for c in commands]


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory outside the checkout holding the recipe's `lenient.yaml`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenient.yaml").write_text(recipe()[0])
    return tmp_path


def test_the_readme_recipe_runs_from_outside_the_checkout(elsewhere, capsys):
    docs = {path: path.stat().st_mtime_ns for path in DOCS.rglob("*")}
    for args in recipe()[1]:
        tiny = TINY if args[0] == "run" else []
        assert experiment_main([*args, *tiny]) == 0, args
    out = capsys.readouterr().out
    verdicts = out[out.index("Verdicts") :]
    assert "fit_filter − serve_all" in out and "retention" in verdicts
    assert re.search(r"\| (supported|rejected|mixed|inconclusive) \|", verdicts)
    listed = next(line for line in out.splitlines() if line.startswith("lenient "))
    assert " own " in listed and str(elsewhere / "lenient.yaml") in listed
    assert re.search(r"^strategy .* built-in ", out, re.M)
    for sweep in ("lenient-smoke", "lenient"):
        runs = pd.read_parquet(elsewhere / sweep / "runs.parquet")
        assert set(runs["experiment"]) == {"lenient"}
        assert runs[["point", "seed"]].drop_duplicates().shape[0] == 2 * 2
        assert sorted(runs["policies.fit_filter.threshold"].unique()) == [0.4, 0.7]
    assert not (elsewhere / "lenient" / "figures").exists()  # report wrote nothing
    assert {path: path.stat().st_mtime_ns for path in DOCS.rglob("*")} == docs


def test_a_directory_of_own_experiments_runs_one_by_name(elsewhere):
    (elsewhere / "mine").mkdir()
    (elsewhere / "lenient.yaml").rename(elsewhere / "mine" / "lenient.yaml")
    args = ["run", "lenient", "--experiments", "mine", "--dir", "s", *TINY]
    assert experiment_main(args) == 0
    assert (elsewhere / "s" / "runs.parquet").is_file()


def refused(args: list[str], capsys) -> str:
    """The one line of a refused command (exit 2), having checked that it wrote nothing."""
    before = sorted(Path.cwd().rglob("*"))
    assert experiment_main(args) == 2
    assert sorted(Path.cwd().rglob("*")) == before
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_a_wrong_path_is_refused_naming_it(elsewhere, capsys):
    err = refused(["run", "lenient.yml", "--dir", "s"], capsys)
    assert "experiment='lenient.yml': no such file" in err
    err = refused(["list", "--experiments", "nowhere"], capsys)
    assert "--experiments='nowhere': not a directory holding experiments" in err


@pytest.mark.parametrize(
    "change, named",
    [
        (("seeds: 10", "seedz: 10"), "Key 'seedz' not in 'ExperimentConfig'"),
        (("metrics: [", "metrics: [profit_horizn, "), "experiment.metrics='profit_horizn'"),
        (("0.4,0.7", "0.4,7"), "policies.fit_filter.threshold=7"),
        (("sign: positive}", "sing: positive}"), "experiment.expect[0]="),
        (("metric: retention", "metric: retension"), "experiment.expect[0].metric='retension'"),
    ],
)
def test_a_bad_key_or_value_in_an_own_file_is_one_line_naming_it(elsewhere, capsys, change, named):
    path = elsewhere / "lenient.yaml"
    path.write_text(path.read_text().replace(*change))
    err = refused(["run", "lenient.yaml", "--dir", "s"], capsys)
    assert named in err, err


def test_an_own_experiment_cannot_take_a_built_in_name(elsewhere, capsys):
    (elsewhere / "lenient.yaml").rename(elsewhere / "strategy.yaml")
    err = refused(["run", "strategy.yaml", "--dir", "s"], capsys)
    assert "has the name of the built-in experiment strategy" in err


def test_report_refuses_a_directory_that_is_no_sweep(elsewhere, capsys):
    (elsewhere / "empty").mkdir()
    err = refused(["report", "empty"], capsys)
    assert "empty: no manifest.json: not the directory of a finished sweep" in err
