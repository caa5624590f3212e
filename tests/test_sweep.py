"""Tests of experiments and sweeps (sim.sweeps): every experiment in smoke mode, the tidy
tables' dtypes, progress and the designed sweeper (the launchers, failures and resume that each
start a process: tests/test_sweep_runs.py).
"""

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim.analysis.figures import plot_dir
from sim.analysis.report import SWEEP_NAME, write_results
from sim.cli.experiment import main as experiment_main
from sim.sweeps.experiment import names
from sim.sweeps.tables import METRICS, RUN_TABLE_KEYS, STEP_METRICS, STEP_TABLE_KEYS

EXPERIMENTS = names()
PRESETS = {"serve_all", "fit_filter", "picky", "hard_sell"}


def smoke(name: str, sweep_dir: Path, *extra: str) -> None:
    """An experiment's smoke run in this process, with Hydra's basic launcher."""
    args = ["run", name, "--smoke", "--launcher", "basic", "--dir", str(sweep_dir), *extra]
    assert experiment_main(args) == 0


class SmokeDirs(dict):
    """Each experiment's smoke sweep, run the first time a test asks for it."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.tmp_path_factory = tmp_path_factory

    def __missing__(self, name: str) -> Path:
        sweep_dir = self.tmp_path_factory.mktemp(name) / "sweep"
        smoke(name, sweep_dir)
        self[name] = sweep_dir
        return sweep_dir


@pytest.fixture(scope="module")
def smoke_dirs(tmp_path_factory) -> SmokeDirs:
    return SmokeDirs(tmp_path_factory)


def test_the_experiments_cover_every_hypothesis():
    hypotheses = set()
    for name in EXPERIMENTS:
        text = (Path("experiments") / f"{name}.yaml").read_text()
        hypotheses |= {line.split(":")[1].strip() for line in text.splitlines()
                       if line.strip().startswith("hypothesis:")}  # fmt: skip
    assert {h for h in hypotheses if h.startswith("H")} == {f"H{i}" for i in range(1, 12)}
    assert hypotheses - {f"H{i}" for i in range(1, 12)} == {"V1"}  # the Bass docking


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_end_to_end_in_smoke_mode(smoke_dirs, name):
    sweep_dir = smoke_dirs[name]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    assert manifest["experiment"]["name"] == name and manifest["failed"] == 0
    assert list(runs.columns[: len(RUN_TABLE_KEYS)]) == list(RUN_TABLE_KEYS)
    assert list(runs.columns[-len(METRICS) :]) == list(METRICS)
    assert runs.columns[len(RUN_TABLE_KEYS) : -len(METRICS)].tolist() == manifest["params"]
    assert (runs["status"] == "ok").all() and runs["error"].isna().all()
    points = len(manifest["points"])
    assert runs[["point", "seed"]].drop_duplicates().shape[0] == points * 2  # smoke: 2 seeds
    assert set(runs["policy"]) <= PRESETS and {"serve_all"} <= set(runs["policy"])
    assert runs["profit_horizon"].notna().all()
    steps = pd.read_parquet(sweep_dir / "steps.parquet")
    assert len(steps) == len(runs) * 26  # one row per week of every (point, seed, policy)
    keys = len(STEP_TABLE_KEYS)
    assert list(steps.columns[keys : keys + len(STEP_METRICS)]) == list(STEP_METRICS)


def test_a_sweeps_profit_gap_splits_exactly_into_quality_volume_and_exits(smoke_dirs):
    sweep_dir = smoke_dirs["strategy"]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    survivor = runs["margin_per_hour"] * runs["billed_hours"] - runs["fixed_costs"]
    rebuilt = runs["survival"] * survivor + runs["exit_losses"]
    assert (runs["billed_hours"] > 0).all()
    np.testing.assert_allclose(rebuilt, runs["profit_horizon"], rtol=1e-9, atol=1e-6)
    written = {path.name for path in plot_dir(sweep_dir, formats=("png",))}
    assert {"decomposition.csv", "decomposition.png"} <= written
    table = pd.read_csv(sweep_dir / "figures" / "decomposition.csv")
    for _, point in table.groupby("market/policy_mix"):
        means = point.set_index("part")["mean_diff"]
        total = means[["quality", "volume", "capacity", "exits"]].sum()
        assert total == pytest.approx(means["gap"], rel=1e-9, abs=1e-6)
        assert means["capacity"] != 0  # capacity adjusts: the filterer pays for less of it


def test_results_give_the_strategy_answer_its_decomposition(smoke_dirs, tmp_path):
    shutil.copytree(smoke_dirs["strategy"], tmp_path / "results" / "strategy" / SWEEP_NAME)
    out = write_results(["strategy"], root=tmp_path / "results", out=tmp_path / "RESULTS.md")
    text = out.read_text()
    assert "decomposed" in text and "figures/strategy-decomposition.png" in text
    assert (tmp_path / "figures" / "strategy-decomposition.png").is_file()
    assert "frozen loss" in text  # which measure the profit verdicts use


def test_a_factorials_smoke_run_gives_effects_of_its_first_two_factors(smoke_dirs):
    sweep_dir = smoke_dirs["instruments"]
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    held = ["decline_impossible", "prepayment", "ad_honesty"]
    assert not any(f"policies.fit_filter.{k}" in runs for k in held)  # at fit_filter's level
    plot_dir(sweep_dir, formats=("png",))
    table = pd.read_csv(sweep_dir / "figures" / "effects.csv")
    assert set(table["market/policy_mix"]) == {"all_four", "half_half"}
    terms = ["diagnosis", "threshold", "diagnosis × threshold"]  # the manifest sorts the keys
    for _, group in table.groupby(["metric", "market/policy_mix"]):
        assert group["term"].tolist() == terms and (group["n"] == 2).all()


def test_results_give_a_factorial_its_effects_tables(smoke_dirs, tmp_path):
    shutil.copytree(smoke_dirs["instruments"], tmp_path / "results" / "instruments" / SWEEP_NAME,
                    ignore=shutil.ignore_patterns("figures"))  # fmt: skip
    out = write_results(["instruments"], root=tmp_path / "results", out=tmp_path / "RESULTS.md")
    text = out.read_text()
    for metric in ("profit_horizon", "margin_per_hour", "billed_hours", "survival"):
        assert f"Effects on the gap in {metric} " in text
    assert "| diagnosis × threshold |" in text and "figures/instruments-effects.png" in text


def test_must_have_compares_the_two_screen_kinds_of_one_business(smoke_dirs):
    runs = pd.read_parquet(smoke_dirs["must_have"] / "runs.parquet")
    assert set(runs["policies.fit_filter.kind"]) == {"must_have", "threshold"}
    fit = runs[runs["policy"] == "fit_filter"].set_index(
        ["policies.fit_filter.threshold", "policies.fit_filter.kind", "seed"]
    )
    # the same short list, every criterion alone: a must-have list accepts fewer clients (on
    # the whole: which clients apply again after a refusal differs, so not seed by seed)
    accepted = fit["acceptance"].unstack("policies.fit_filter.kind")
    assert accepted["must_have"].mean() < accepted["threshold"].mean()


def test_a_swept_axis_becomes_a_column_with_its_values(smoke_dirs):
    runs = pd.read_parquet(smoke_dirs["threshold"] / "runs.parquet")
    assert runs["policies.fit_filter.threshold"].dtype == "float64"
    assert runs["policies.fit_filter.prepayment"].dtype == "boolean"
    assert sorted(runs["policies.fit_filter.threshold"].unique()) == [0.3, 0.9]  # first, last
    mix = pd.read_parquet(smoke_dirs["mix"] / "runs.parquet")
    counts = mix.groupby(["market.policy_mix.fit_filter", "policy"])["businesses"].first()
    assert counts.unstack().sum(axis=1).eq(10).all()  # serve_all is the rest of ten


def test_tables_of_different_sweeps_concatenate_with_stable_dtypes(smoke_dirs):
    frames = [pd.read_parquet(smoke_dirs[n] / "runs.parquet") for n in ("strategy", "noise")]
    joined = pd.concat(frames, ignore_index=True)
    for column in [*RUN_TABLE_KEYS, *METRICS]:
        assert joined[column].dtype == frames[0][column].dtype == frames[1][column].dtype
    assert str(joined["businesses"].dtype) == "Int64"  # counts stay integers


def test_the_same_seed_gives_the_same_run_in_any_sweep(smoke_dirs, tmp_path):
    """A design point's runs do not depend on the other points or on the chunking."""
    smoke("strategy", tmp_path / "again", "experiment.chunk_size=1")
    first = pd.read_parquet(smoke_dirs["strategy"] / "runs.parquet")
    again = pd.read_parquet(tmp_path / "again" / "runs.parquet")
    assert again["job"].nunique() == 2 * first["job"].nunique()  # one seed a job
    metrics = list(METRICS)
    pd.testing.assert_frame_equal(first[metrics], again[metrics])


def sweeper(sweep_dir: Path) -> str:
    """The class of the Hydra sweeper that ran the sweep in `sweep_dir` (its job 0's log)."""
    (hydra_yaml,) = sweep_dir.glob("logs/*/0/.hydra/hydra.yaml")
    return OmegaConf.load(hydra_yaml).hydra.sweeper._target_


def test_progress_is_printed_as_lines_with_runs_done_and_time_left(tmp_path, capsys):
    smoke("hard_sell", tmp_path / "s")  # stdout is not a terminal here, as in a pipe
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if "runs done" in line]
    assert progress[-1].startswith("clientsim-experiment: 2/2 runs done") and "left" in progress[0]
    assert "\r" not in out


@pytest.mark.parametrize(
    "args",
    [
        ["run", "nosuch"],
        ["run", "threshold", "policies.fit_filter.threshold=0.5,1.5"],
        ["run", "noise", "experiment.seeds=0"],
        ["run", "strategy", "experiment.metrics=[profit]"],
    ],
)
def test_a_bad_design_exits_2_with_one_line_before_anything_runs(tmp_path, capsys, args):
    assert experiment_main([*args, "--dir", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clientsim-experiment: invalid config: ")
    assert not (tmp_path / "sweep").exists()


def test_list_shows_every_experiment_with_its_size(capsys):
    assert experiment_main(["list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert f"\n{name} " in out
    assert " error: " not in out  # a swept config group (robustness's structure) is composed
    assert re.search(r"^strategy .* about \d+ (s|min) ", out, re.M)  # its time, estimated


def test_a_long_run_logs_progress_as_lines_when_stderr_is_a_file(monkeypatch, capsys):
    import sim.runs.run
    from sim.config.compose import compose

    monkeypatch.setattr(sim.runs.run, "LOG_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(sim.runs.run, "PROGRESS_DELAY", 0.0)
    cfg = compose(["market.n_clients=200", "steps=3"])
    sim.runs.run.simulate(cfg, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"clientsim: {w}/3 weeks" for w in (1, 2, 3)]
    assert "elapsed" in lines[-1] and "left" in lines[-1] and "\r" not in "".join(lines)


def test_an_experiment_runs_through_the_designed_sweeper_plugin(smoke_dirs):
    assert sweeper(smoke_dirs["hard_sell"]).endswith(".DesignedSweeper")  # no composing first


def test_joblib_starts_no_more_workers_than_jobs_and_runs_one_job_in_this_process(tmp_path):
    sweep_dir = tmp_path / "sweep"  # hard_sell's smoke run: one design point, one job
    assert experiment_main(["run", "hard_sell", "--smoke", "--launcher", "joblib", "--jobs",
                            "2", "--dir", str(sweep_dir)]) == 0  # fmt: skip
    (hydra_yaml,) = sweep_dir.glob("logs/*/0/.hydra/hydra.yaml")
    assert OmegaConf.load(hydra_yaml).hydra.launcher.n_jobs == 1
    assert json.loads((sweep_dir / "jobs" / "0.json").read_text())["pid"] == os.getpid()


def test_without_jobs_joblib_starts_workers_only_for_work_they_finish_sooner(tmp_path):
    from sim.sweeps.estimate import WORKER, workers

    assert workers(2 * WORKER - 0.1, 2) == 1 and workers(2 * WORKER + 0.1, 2) == 2
    assert workers(1000.0, 4) == 4 and workers(1000.0, 1) == 1 and workers(0.0, 8) == 1
    sweep_dir = tmp_path / "sweep"  # strategy's smoke run: two jobs, about 2 s of work
    assert experiment_main(["run", "strategy", "--smoke", "--dir", str(sweep_dir)]) == 0
    for job in (0, 1):
        (hydra_yaml,) = sweep_dir.glob(f"logs/*/{job}/.hydra/hydra.yaml")
        assert OmegaConf.load(hydra_yaml).hydra.launcher.n_jobs == 1
        assert json.loads((sweep_dir / "jobs" / f"{job}.json").read_text())["pid"] == os.getpid()


def test_the_designed_sweeper_forms_the_jobs_of_hydras_basic_sweeper():
    from hydra_plugins.clientsim.designed_sweeper import job_overrides

    assert job_overrides(["a=1,2", "b=x,y"]) == [
        ["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"],
    ]  # fmt: skip
    assert job_overrides(["a=1,2", "b=x", "a=3"]) == [["a=3", "b=x"]]  # a key's place stays
    assert job_overrides(["+c=range(0,2)"]) == [["+c=0"], ["+c=1"]]


def test_seeds_are_batched_by_experiment_batch_within_a_memory_bound():
    from sim.config.compose import compose
    from sim.sweeps.jobs import BATCH_CLIENTS, batches

    cfg = compose(["+experiment=hard_sell", "experiment.batch=4"])
    assert batches(cfg, list(range(10))) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    cfg.market.n_clients = BATCH_CLIENTS // 2
    assert batches(cfg, [3, 4, 5]) == [[3, 4], [5]]
    cfg.market.n_clients = BATCH_CLIENTS
    assert batches(cfg, [3, 4]) == [[3], [4]]
    cfg.engine, cfg.market.n_clients = "agents", 300
    assert batches(cfg, [3, 4]) == [[3], [4]]


def test_a_batch_is_one_progress_line_and_the_time_left_never_falls_to_nothing_early(
    tmp_path, capsys
):
    args = ["run", "hard_sell", "--dir", str(tmp_path / "s"), "--launcher", "basic",
            "market.n_clients=200", "steps=12", "experiment.seeds=4",
            "experiment.batch=2"]  # fmt: skip
    assert experiment_main(args) == 0
    out = capsys.readouterr().out
    first, *_ = out.splitlines()
    assert "4 runs" in first and "at measured per-run costs" in first
    progress = [line for line in out.splitlines() if "runs done" in line]
    assert [line.split(",")[0] for line in progress] == [
        "clientsim-experiment: 2/4 runs done",
        "clientsim-experiment: 4/4 runs done",
    ]


def test_the_time_left_is_the_average_since_the_start_times_the_runs_to_go(tmp_path, capsys):
    import time

    from sim.sweeps.jobs import Progress

    progress = Progress(tmp_path, {"id": "s1", "t0": time.time() - 20.0}, total=8)
    progress.done("p0", [0], "skipped")  # stored before: costs nothing, does not count
    progress.done("p0", [1, 2], "ok")  # a batch of two after 20 s: 10 s a run, 5 to go
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("clientsim-experiment: 3/8 runs done, 00:20 elapsed, about 00:50")


def test_the_estimate_grows_with_the_runs_and_shrinks_with_the_cores():
    from sim.sweeps.estimate import START, duration, sweep_seconds

    one = sweep_seconds(100, 10, 1, clients=5000, weeks=260)
    assert sweep_seconds(200, 10, 1, clients=5000, weeks=260) > one
    two = sweep_seconds(100, 10, 2, clients=5000, weeks=260)
    assert two - START == pytest.approx((one - START) / 2)
    assert sweep_seconds(0, 10, 2, clients=5000, weeks=260) == 0
    expected = ["about 1 s", "about 40 s", "about 12 min", "about 2.5 h"]
    assert [duration(s) for s in (0.2, 40, 700, 9000)] == expected
