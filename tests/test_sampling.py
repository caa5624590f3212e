"""Sampled designs (hydra.sweeper.sample): Latin hypercube and uniform points over ranges."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli.experiment import main as experiment_main
from sim.config.schema import ConfigError
from sim.sweeps.sampling import sample_overrides

README = Path(__file__).resolve().parent.parent / "README.md"
RANGES = {"market.demand_supply_ratio": [0.5, 2.0], "market.policy_mix.fit_filter": [1, 9]}
SAMPLE = {"method": "lhs", "n": 18, "seed": 3, "ranges": RANGES,
          "integer": ["market.policy_mix.fit_filter"]}  # fmt: skip


def values(points: list[list[str]], key: str) -> list[float]:
    return [float(o.partition("=")[2]) for point in points for o in point if o.startswith(key)]


def test_the_same_seed_draws_the_same_points_and_another_seed_others():
    assert sample_overrides(SAMPLE) == sample_overrides(dict(SAMPLE))
    assert sample_overrides(SAMPLE) != sample_overrides({**SAMPLE, "seed": 4})
    assert sample_overrides(None) == [[]]


def test_a_latin_hypercube_puts_one_point_in_each_of_n_strata():
    ratio = np.array(values(sample_overrides(SAMPLE), "market.demand_supply_ratio"))
    strata = np.floor((ratio - 0.5) / 1.5 * SAMPLE["n"]).astype(int)
    assert sorted(strata) == list(range(SAMPLE["n"]))


def test_an_integer_key_takes_every_whole_number_of_its_range_equally_often():
    mix = values(sample_overrides(SAMPLE), "market.policy_mix.fit_filter")
    assert sorted(set(mix)) == list(range(1, 10)) and all(mix.count(v) == 2 for v in set(mix))


def test_random_draws_stay_inside_the_ranges():
    ratio = values(sample_overrides({**SAMPLE, "method": "random", "n": 50}),
                   "market.demand_supply_ratio")  # fmt: skip
    assert min(ratio) >= 0.5 and max(ratio) <= 2.0 and len(set(ratio)) == 50


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"method": "sobol"}, "hydra.sweeper.sample.method"),
        ({"n": 0}, "hydra.sweeper.sample.n"),
        ({"ranges": {"market.demand_supply_ratio": [2.0, 0.5]}},
         "hydra.sweeper.sample.ranges.market.demand_supply_ratio"),
        ({"integer": ["seed"]}, "hydra.sweeper.sample.integer"),
        ({"size": 3}, "hydra.sweeper.sample.size"),
    ],
)  # fmt: skip
def test_a_wrong_sample_is_one_error_naming_its_key(change, named):
    with pytest.raises(ConfigError) as error:
        sample_overrides({**SAMPLE, **change})
    assert str(error.value).startswith(f"invalid config: {named}=")


def readme_sampled() -> str:
    text = README.read_text()
    return re.search(r"```yaml\n(.*?)```", text[text.index("**A sampled design**") :], re.S)[1]


def test_the_readme_sampled_design_runs_and_records_each_samples_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("where_it_pays.yaml").write_text(readme_sampled())
    args = ["run", "where_it_pays.yaml", "--smoke", "--dir", "s", "--launcher", "basic"]
    assert experiment_main(args) == 0
    runs = pd.read_parquet("s/runs.parquet")
    sample = yaml.safe_load(readme_sampled())["hydra"]["sweeper"]["sample"]
    expected = sample_overrides({**sample, "n": 2})  # --smoke keeps two samples
    design = runs[list(RANGES)].drop_duplicates().itertuples(index=False)
    text = {False: "{:.6g}".format, True: str}
    drawn = [[f"{k}={text[k in sample['integer']](v)}" for k, v in zip(RANGES, row, strict=True)]
             for row in design]  # fmt: skip
    assert sorted(drawn) == sorted(expected)
    assert str(runs["market.policy_mix.fit_filter"].dtype) == "Int64"


def test_a_key_both_sampled_and_swept_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("where_it_pays.yaml").write_text(readme_sampled())
    args = ["run", "where_it_pays.yaml", "market.demand_supply_ratio=1,2", "--dir", "s"]
    assert experiment_main(args) == 2
    assert "hydra.sweeper.sample.ranges.market.demand_supply_ratio" in capsys.readouterr().err
    assert not Path("s").exists()
