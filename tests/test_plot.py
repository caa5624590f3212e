"""Figures of a synthetic sweep directory that follows the sweep layer's schema."""

import itertools
import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from sim.analysis import figures as plot
from sim.analysis import stats as analysis
from sim.cli.plot import main as plot_main

THRESHOLD = "policies.fit_filter.threshold"
PREPAYMENT = "policies.fit_filter.prepayment"
WOM = "clients.wom.enabled"
POLICIES = ("serve_all", "fit_filter", "picky", "hard_sell")
WEEKS = 30
SEEDS = (0, 1, 2, 3, 4)

THRESHOLD_EXPERIMENT = {
    "name": "threshold",
    "hypothesis": "H2",
    "question": "Does a stricter fit threshold pay off, and does prepayment change that?",
    "x": THRESHOLD,
    "group": PREPAYMENT,
    "compare": {"on": "policy", "a": "fit_filter", "b": "serve_all", "policy": None},
    "metrics": ["profit_week_13", "profit_horizon"],
    "seeds": len(SEEDS),
}
REFERRALS_EXPERIMENT = {
    "name": "referrals",
    "hypothesis": "H5",
    "question": "Does word of mouth make filtering pay?",
    "x": None,
    "group": None,
    "compare": {"on": WOM, "a": True, "b": False, "policy": "fit_filter"},
    "metrics": ["profit_week_13", "profit_horizon"],
    "seeds": len(SEEDS),
}


def weekly_profit(policy: str, design: dict, point: int, seed: int) -> np.ndarray:
    """A made-up weekly profit: filterers start behind and grow faster with the threshold."""
    rng = np.random.default_rng([point, seed, POLICIES.index(policy)])
    weeks = np.arange(WEEKS)
    prepaid = 30 * design.get(PREPAYMENT, False) + 30 * design.get(WOM, False)
    growth = {"serve_all": 100.0, "fit_filter": 60 + prepaid + 400 * design.get(THRESHOLD, 0.3)}
    start = -2000.0 if policy == "fit_filter" else 0.0
    return start * (weeks == 0) + growth.get(policy, 80.0) * weeks + rng.normal(0, 300, WEEKS)


def sweep_tables(designs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs and steps tables for every design point, seed and policy (one run failed)."""
    runs, steps = [], []
    for (point, design), seed, policy in itertools.product(enumerate(designs), SEEDS, POLICIES):
        profit = weekly_profit(policy, design, point, seed)
        cum = np.cumsum(profit)
        failed = (point, seed, policy) == (0, 4, "fit_filter")
        key = {"point": point, "seed": seed, "policy": policy}
        runs.append({
            "experiment": "synthetic", **key, "point_hash": f"hash{point}", "job": point,
            "status": "failed" if failed else "ok",
            "error": "RuntimeError: synthetic" if failed else None, **design,
            "businesses": 3, "profit_week_13": cum[12], "profit_horizon": cum[-1],
            "revenue_week_13": 2 * cum[12], "revenue_horizon": 2 * cum[-1], "reputation": 4.0,
            "retention": 0.5, "acceptance": 0.7, "referral_share": 0.2, "survival": 1.0,
            "satisfaction": 0.6,
            "crossover_vs_serve_all": None, "weeks": WEEKS,
        })  # fmt: skip
        if failed:
            continue
        steps.append(pd.DataFrame({
            **key, "step": np.arange(WEEKS), "profit": profit, "cum_profit": cum,
            "revenue": 2 * profit, "cum_revenue": 2 * cum, "reputation": 4.0,
            "satisfaction": 0.6, "active": 3, "acquisitions": 5, "referral_acquisitions": 1,
            **design,
        }))  # fmt: skip
    runs = pd.DataFrame(runs)
    runs.loc[runs["status"] == "failed", "profit_week_13":"satisfaction"] = np.nan
    runs["crossover_vs_serve_all"] = runs["crossover_vs_serve_all"].astype("Int64")
    return runs, pd.concat(steps, ignore_index=True)


def write_sweep(directory, experiment: dict, designs: list[dict]):
    directory.mkdir()
    runs, steps = sweep_tables(designs)
    runs.to_parquet(directory / "runs.parquet")
    steps.to_parquet(directory / "steps.parquet")
    manifest = {
        "experiment": experiment,
        "params": list(designs[0]),
        "points": [{"point": i, "hash": f"hash{i}", "overrides": d} for i, d in enumerate(designs)],
        "command": "clientsim-experiment run synthetic",
        "clientsim_version": "0.1.0",
        "git_commit": None,
        "packages": {},
        "started": "2025-01-01T00:00:00",
        "ended": "2025-01-01T00:01:00",
        "failed": 1,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture
def threshold_sweep(tmp_path):
    designs = [
        {THRESHOLD: t, PREPAYMENT: p} for p in (False, True) for t in (0.1, 0.2, 0.3, 0.4, 0.5)
    ]
    return write_sweep(tmp_path / "threshold", THRESHOLD_EXPERIMENT, designs)


@pytest.fixture
def referrals_sweep(tmp_path):
    designs = [{WOM: True}, {WOM: False}]
    return write_sweep(tmp_path / "referrals", REFERRALS_EXPERIMENT, designs)


def test_plot_dir_writes_every_figure_in_every_format(threshold_sweep):
    written = plot.plot_dir(threshold_sweep)
    names = sorted(path.name for path in written)
    figures = [f"{n}.{f}" for n in ("crossover", "paired", "profit") for f in ("png", "svg")]
    assert names == sorted(["paired.csv", *figures])
    for path in written:
        assert path.parent == threshold_sweep / "figures" and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.stat().st_size < 300_000


def test_paired_csv_holds_one_row_per_design_point_and_metric(threshold_sweep):
    plot.plot_dir(threshold_sweep, formats=("png",))
    table = pd.read_csv(threshold_sweep / "figures" / "paired.csv")
    assert len(table) == 10 * 2
    assert table.loc[0, "n"] == 4  # the failed fit_filter run of seed 4 leaves its pair out


def test_a_comparison_of_parameter_values_draws_points_and_no_crossover(referrals_sweep):
    names = {path.name for path in plot.plot_dir(referrals_sweep, formats=("png",))}
    assert names == {"paired.csv", "paired.png", "profit.png"}


def test_profit_figure_has_a_panel_for_every_design_point_in_order(threshold_sweep):
    steps = analysis.load_steps(threshold_sweep)
    figure = plot.profit_figure(steps, THRESHOLD_EXPERIMENT)
    titles = [ax.get_title().replace("\n", " ") for ax in figure.axes if ax.get_visible()]
    expected = [f"fit_filter.threshold={t}, fit_filter.prepayment={p}"
                for p in (False, True) for t in (0.1, 0.2, 0.3, 0.4, 0.5)]  # fmt: skip
    assert titles == expected  # all ten, False before True, thresholds rising


def test_the_paired_figure_draws_every_design_point(threshold_sweep):
    table = plot.paired_table(analysis.load_runs(threshold_sweep), THRESHOLD_EXPERIMENT)
    figure = plot.paired_figure(table, THRESHOLD_EXPERIMENT)
    for ax in figure.axes:
        drawn = [(line.get_label(), x) for line in ax.get_lines() for x in line.get_xdata()
                 if line.get_label().startswith("fit_filter.prepayment")]  # fmt: skip
        assert sorted(drawn) == sorted(
            (f"fit_filter.prepayment={p}", t) for p in (False, True)
            for t in (0.1, 0.2, 0.3, 0.4, 0.5)
        )  # fmt: skip


def test_share_ticks_read_as_shares_and_money_in_thousands():
    from sim.analysis.figure_style import number_ticks

    ticks = number_ticks()
    assert [ticks(x) for x in (0.1, 0.25, 13, 1500, 1_250_000)] == ["0.1", "0.25", "13", "1.5k",
                                                                    "1.25M"]  # fmt: skip


def test_points_of_a_categorical_sweep_are_drawn_false_before_true(tmp_path):
    experiment = {**THRESHOLD_EXPERIMENT, "x": PREPAYMENT, "group": None}
    sweep = write_sweep(tmp_path / "prepay", experiment, [{PREPAYMENT: True}, {PREPAYMENT: False}])
    table = plot.paired_table(analysis.load_runs(sweep), experiment).iloc[::-1]  # True first
    ax = plot.paired_figure(table, experiment).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["False", "True"]


def test_every_figure_colours_a_policy_the_same_way():
    assert plot.policy_colour("fit_filter") == plot.POLICY_COLOURS["fit_filter"]
    assert plot.policy_colour("newcomer") == plot.policy_colour("newcomer")


def test_main_prints_a_line_per_file(threshold_sweep, capsys):
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_main_on_a_missing_or_empty_dir_exits_2_with_one_line(tmp_path, capsys, make):
    assert plot_main([str(make(tmp_path))]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# --- what clientsim-plot may replace, and its one-line errors ------------------------------


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_second_plot_replaces_the_figures_the_first_one_wrote(threshold_sweep, capsys):
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 0
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 0


def test_plot_refuses_to_replace_a_users_file_in_figures(threshold_sweep, capsys):
    figures = threshold_sweep / "figures"
    figures.mkdir()
    (figures / "paired.png").write_text("my own figure")
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 2
    assert "paired.png" in _one_line(capsys)
    assert (figures / "paired.png").read_text() == "my own figure"
    assert sorted(p.name for p in figures.iterdir()) == ["paired.png"]


def test_plot_refuses_a_figure_changed_since_it_wrote_it(threshold_sweep, capsys):
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 0
    (threshold_sweep / "figures" / "paired.csv").write_text("my notes\n")
    assert plot_main([str(threshold_sweep), "--format", "png"]) == 2
    assert "paired.csv" in _one_line(capsys)
    assert (threshold_sweep / "figures" / "paired.csv").read_text() == "my notes\n"


def test_plot_exits_2_with_one_line_when_figures_is_a_file(threshold_sweep, capsys):
    (threshold_sweep / "figures").write_text("not a folder")
    assert plot_main([str(threshold_sweep)]) == 2
    assert "figures" in _one_line(capsys)


@pytest.fixture
def immutable(threshold_sweep):
    """The sweep with a figures/ folder nothing can be written into (chattr +i, as root)."""
    figures = threshold_sweep / "figures"
    figures.mkdir()
    if shutil.which("chattr") is None or os.geteuid() != 0:
        pytest.skip("needs root and chattr to make a folder unwritable")
    if subprocess.run(["chattr", "+i", str(figures)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    yield threshold_sweep
    subprocess.run(["chattr", "-i", str(figures)], check=True)


def test_plot_exits_1_with_one_line_when_figures_cannot_be_written(immutable, capsys):
    assert plot_main([str(immutable), "--format", "png"]) == 1
    assert "figures" in _one_line(capsys)


def test_plot_exits_2_with_one_line_on_a_manifest_without_its_keys(threshold_sweep, capsys):
    (threshold_sweep / "manifest.json").write_text('{"points": []}')
    assert plot_main([str(threshold_sweep)]) == 2
    assert "manifest.json" in _one_line(capsys)
    assert not (threshold_sweep / "figures").exists()


def test_plot_exits_2_with_one_line_on_a_file_instead_of_a_directory(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert plot_main([str(notes)]) == 2
    assert "notes.txt" in _one_line(capsys)


def test_plot_exits_2_with_one_line_on_a_manifest_that_is_not_json(threshold_sweep, capsys):
    (threshold_sweep / "manifest.json").write_text("not json")
    assert plot_main([str(threshold_sweep)]) == 2
    assert "manifest.json" in _one_line(capsys)
