"""Tests of the tables of sweeps read together: each row names its sweep and design point, and
the analysis keeps two concatenated sweeps apart (sim.sweeps.tables, sim.analysis.stats).
"""

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.stats import crossover_weeks, load_runs, load_steps, paired, swept_columns
from sim.cli.clientsim import main as clientsim_main
from sim.cli.experiment import main as experiment_main
from sim.sweeps import tables
from sim.sweeps.tables import RUN_TABLE_KEYS, STEP_TABLE_KEYS, design_hash

#: Two small sweeps of one experiment with the same design points (numbers and swept values)
#: but markets of different sizes: only the sweep tells their rows apart.
SIZES = {"small": "market.n_clients=200", "larger": "market.n_clients=260"}


def tiny_sweep(sweep_dir: Path, *extra: str) -> list[str]:
    """The arguments of a strategy sweep of two mixes, 2 seeds over 20 weeks, into sweep_dir."""
    return ["run", "strategy", "--launcher", "basic", "--dir", str(sweep_dir), "steps=20",
            "experiment.seeds=2", "market/policy_mix=all_four,half_half", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("two")
    dirs = {name: root / f"{name} sweep's dir" for name in SIZES}  # quoted in a shell
    for name, size in SIZES.items():
        assert experiment_main(tiny_sweep(dirs[name], size)) == 0
    return dirs


def test_the_manifest_records_the_command_as_typed_quoted_for_a_shell(two_sweeps):
    sweep_dir = two_sweeps["small"]
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    args = tiny_sweep(sweep_dir, SIZES["small"])
    assert shlex.split(manifest["command"]) == ["clientsim-experiment", *args]
    assert manifest["cwd"] == str(Path.cwd())


def test_every_row_names_its_sweep_and_design_point(two_sweeps):
    sweep_dir = two_sweeps["small"]
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    hashes = [point["hash"] for point in manifest["points"]]
    sweep_hash = design_hash("strategy", hashes, [0, 1])
    runs, steps = load_runs(sweep_dir), load_steps(sweep_dir)
    assert list(runs.columns[: len(RUN_TABLE_KEYS)]) == list(RUN_TABLE_KEYS)
    assert list(steps.columns[: len(STEP_TABLE_KEYS)]) == list(STEP_TABLE_KEYS)
    for table in (runs, steps):
        assert set(table["sweep_hash"]) == {sweep_hash} and set(table["experiment"]) == {"strategy"}
        assert str(table["sweep_hash"].dtype) == str(table["point_hash"].dtype) == "string"
    hashes = runs.drop_duplicates("point").set_index("point")["point_hash"]
    assert steps["point_hash"].eq(steps["point"].map(hashes)).all()


def test_concatenated_tables_keep_their_dtypes(two_sweeps):
    frames = [load_steps(d) for d in two_sweeps.values()]
    joined = load_steps(list(two_sweeps.values()))
    assert (joined.dtypes == frames[0].dtypes).all() and (joined.dtypes == frames[1].dtypes).all()
    assert joined["sweep_hash"].nunique() == 2


def test_two_concatenated_sweeps_give_each_its_own_crossover_weeks(two_sweeps):
    joined = crossover_weeks(load_steps(list(two_sweeps.values())), "fit_filter", "serve_all")
    answers = []
    for sweep_dir in two_sweeps.values():
        alone = crossover_weeks(load_steps(sweep_dir), "fit_filter", "serve_all")
        (sweep_hash,) = alone["sweep_hash"].unique()
        mine = joined[joined["sweep_hash"] == sweep_hash].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)
        answers.append(alone)
    assert len(joined) == sum(map(len, answers)) == 2 * 2 * 2  # sweeps x points x seeds


def test_two_concatenated_sweeps_give_each_its_own_paired_table(two_sweeps):
    runs = load_runs(list(two_sweeps.values()))
    joined = paired(runs, "fit_filter", "serve_all", "profit_horizon", n_resamples=99)
    alone = {}
    for sweep_dir in two_sweeps.values():
        table = paired(load_runs(sweep_dir), "fit_filter", "serve_all", "profit_horizon",
                       n_resamples=99)  # fmt: skip
        alone[load_runs(sweep_dir)["sweep_hash"].iloc[0]] = table
    assert len(joined) == 4 and joined["n"].eq(2).all()  # a row per sweep and mix, 2 seeds each
    for sweep_hash, table in alone.items():
        mine = joined[joined["sweep_hash"] == sweep_hash].drop(columns="sweep_hash")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), table)
    small, larger = alone.values()
    assert not small["mean_diff"].equals(larger["mean_diff"])  # the sweeps' answers differ


def test_tables_of_an_older_sweep_get_its_id_when_loaded(two_sweeps, tmp_path):
    sweep_dir = two_sweeps["small"]
    old = tmp_path / "old"
    old.mkdir()
    steps = pd.read_parquet(sweep_dir / "steps.parquet").drop(columns=["sweep_hash"])
    steps.to_parquet(old / "steps.parquet")  # as written before the sweep's id was recorded
    loaded = load_steps(old)
    assert set(loaded["sweep_hash"]) == {str(old.absolute())}
    assert crossover_weeks(loaded, "fit_filter", "serve_all")["sweep_hash"].nunique() == 1


@pytest.fixture(scope="module")
def plain_sweep(tmp_path_factory) -> Path:
    """A plain `clientsim -m` sweep: two mixes by two seeds, 200 clients over 10 weeks."""
    sweep_dir = tmp_path_factory.mktemp("plain") / "sweep"
    args = ["-m", "seed=0,1", "market/policy_mix=all_four,half_half", "market.n_clients=200",
            "steps=10", "progress=false", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    assert clientsim_main(args) == 0
    return sweep_dir


def test_a_plain_sweep_reads_as_an_experiments_tables(plain_sweep, two_sweeps):
    runs, steps = load_runs(plain_sweep), load_steps(plain_sweep)
    assert not (plain_sweep / "runs.parquet").exists()  # built from the jobs' run directories
    assert list(runs.columns[: len(RUN_TABLE_KEYS)]) == list(RUN_TABLE_KEYS)
    assert list(steps.columns[: len(STEP_TABLE_KEYS)]) == list(STEP_TABLE_KEYS)
    assert swept_columns(runs) == swept_columns(steps) == ["market/policy_mix"]
    design = runs.drop_duplicates(["point", "seed"])
    assert design[["market/policy_mix", "seed"]].values.tolist() == [
        ["all_four", 0], ["all_four", 1], ["half_half", 0], ["half_half", 1],
    ]  # fmt: skip
    assert runs.groupby("point")["point_hash"].nunique().eq(1).all()
    for row in runs.itertuples():  # each row is its job's run, as its summary.json says
        summary = json.loads((plain_sweep / str(row.job) / "summary.json").read_text())
        assert summary["seed"] == row.seed
        assert summary["policies"][row.policy]["profit_horizon"] == row.profit_horizon
    assert len(steps) == len(runs) * 10 and runs["sweep_hash"].nunique() == 1
    table = paired(runs, "fit_filter", "serve_all", "profit_horizon", n_resamples=99)
    assert table["market/policy_mix"].tolist() == ["all_four", "half_half"]
    assert table["n"].eq(2).all()
    weeks = crossover_weeks(steps, "fit_filter", "serve_all")
    assert len(weeks) == 4 and weeks["market/policy_mix"].notna().all()
    joined = load_runs([plain_sweep, two_sweeps["small"]])  # beside an experiment's
    keys = list(RUN_TABLE_KEYS)
    assert joined["sweep_hash"].nunique() == 2 and joined[keys].dtypes.equals(runs[keys].dtypes)


def test_a_runs_rows_are_typed_as_a_frame_cast_by_pandas():
    """`run_rows` builds its typed columns directly: as `astype` casts them, NA and NaN too."""
    rows = [
        {"policy": "serve_all", "businesses": 5, "crossover_vs_serve_all": None, "weeks": 26,
         "profit_horizon": 1.5, "satisfaction": np.float64("nan")},
        {"policy": "fit_filter", "businesses": 5.0, "crossover_vs_serve_all": 12.0, "weeks": 26,
         "profit_horizon": -2, "revenue_week_13": None},
    ]  # fmt: skip
    expected = tables._typed(pd.DataFrame(rows, columns=["policy", *tables.METRICS]))
    pd.testing.assert_frame_equal(tables._typed_rows(rows), expected, check_exact=True)
