"""The profit gap decomposed (sim.analysis.decompose, sim.runs.summary.gap_factors): hand-made
tables whose parts are known, and the identity quality + volume + exits = gap."""

import itertools

import numpy as np
import pandas as pd
import pytest

from sim.analysis import report
from sim.analysis.decompose import PARTS, decompose_gap, gap_parts
from sim.runs.summary import cumulative_profit, gap_factors


def business_steps() -> pd.DataFrame:
    """Two policies of two businesses over three weeks; fit_filter's business 1 exits in week 1.

    serve_all: business 2 makes 10 + 10 + 10 on 1 + 1 + 1 billed hours, business 3 makes
    20 + 20 + 20 on 2 + 2 + 2. fit_filter: business 0 makes 30 + 30 + 30 on 1 + 1 + 1 hours;
    business 1 loses 50, then 40, then exits (0 afterwards) having billed 1 hour.
    """
    rows = []
    plan = {0: ("fit_filter", [30, 30, 30], [1, 1, 1], [True] * 3),
            1: ("fit_filter", [-50, -40, 0], [1, 0, 0], [True, False, False]),
            2: ("serve_all", [10, 10, 10], [1, 1, 1], [True] * 3),
            3: ("serve_all", [20, 20, 20], [2, 2, 2], [True] * 3)}  # fmt: skip
    for business, (policy, profit, hours, active) in plan.items():
        for step in range(3):
            rows.append({"step": step, "business_id": business, "policy": policy,
                         "profit": float(profit[step]), "billed_hours": float(hours[step]),
                         "active": active[step]})  # fmt: skip
    return pd.DataFrame(rows)


def test_gap_factors_multiply_back_to_the_mean_cumulative_profit():
    steps = business_steps()
    factors = gap_factors(steps)
    # fit_filter: survivor 0 makes 90 on 3 hours; exited 1 lost 90; two businesses
    assert factors["fit_filter"] == pytest.approx(
        {"profit_per_hour": 30.0, "billed_hours": 1.5, "exit_losses": -45.0}
    )
    assert factors["serve_all"] == pytest.approx(
        {"profit_per_hour": 10.0, "billed_hours": 4.5, "exit_losses": 0.0}
    )
    horizon = cumulative_profit(steps).iloc[-1]
    for policy, f in factors.items():
        assert f["profit_per_hour"] * f["billed_hours"] + f["exit_losses"] == pytest.approx(
            horizon[policy], abs=1e-12
        )


def runs_table(rng: np.random.Generator, seeds: int = 6, markets=("all_four", "half_half")):
    """A runs table whose profit_horizon is q h + x in every run, as `gap_factors` gives it."""
    rows = []
    for market, seed, policy in itertools.product(
        markets, range(seeds), ("fit_filter", "serve_all")
    ):
        q = (50.0 if policy == "fit_filter" else 39.0) + rng.normal(0, 2)
        h = (9000.0 if market == "all_four" and policy == "fit_filter" else 10000.0) + rng.normal(
            0, 300
        )
        x = -rng.exponential(20000.0) if rng.random() < 0.3 else 0.0
        rows.append({"experiment": "synthetic", "point": markets.index(market), "seed": seed,
                     "market/policy_mix": market, "policy": policy, "status": "ok",
                     "profit_horizon": q * h + x, "profit_per_hour": q, "billed_hours": h,
                     "exit_losses": x, "survival": 1.0 if x == 0 else 0.8})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_parts_add_up_to_the_gap_in_every_market_and_on_average():
    table = decompose_gap(runs_table(np.random.default_rng(3)), "fit_filter", "serve_all",
                          n_resamples=99)  # fmt: skip
    assert list(table["part"].unique()) == list(PARTS)
    for _, market in table.groupby("market/policy_mix"):
        means = market.set_index("part")["mean_diff"]
        assert means[["quality", "volume", "exits"]].sum() == pytest.approx(
            means["gap"], rel=1e-12, abs=1e-9
        )
        assert (market["n"] == 6).all()
        assert (market["ci_low"] <= market["mean_diff"]).all()
        assert (market["mean_diff"] <= market["ci_high"]).all()


def test_each_pairs_parts_are_the_symmetric_split_of_the_product():
    pairs = pd.DataFrame({
        "profit_horizon_a": [50 * 8 - 100.0], "profit_per_hour_a": [50.0], "billed_hours_a": [8.0],
        "exit_losses_a": [-100.0], "survival_a": [0.9],
        "profit_horizon_b": [40 * 10.0], "profit_per_hour_b": [40.0], "billed_hours_b": [10.0],
        "exit_losses_b": [0.0], "survival_b": [1.0],
    })  # fmt: skip
    row = gap_parts(pairs).iloc[0]
    assert row["quality"] == pytest.approx(10 * 9)  # (50 - 40) * (8 + 10) / 2
    assert row["volume"] == pytest.approx(-2 * 45)  # (8 - 10) * (50 + 40) / 2
    assert row["exits"] == pytest.approx(-100)
    assert row["gap"] == pytest.approx(300 - 400)
    assert row["quality"] + row["volume"] + row["exits"] == pytest.approx(row["gap"])


def test_a_side_without_survivors_puts_its_whole_profit_in_volume_and_exits():
    pairs = pd.DataFrame({
        "profit_horizon_a": [-500.0], "profit_per_hour_a": [np.nan], "billed_hours_a": [0.0],
        "exit_losses_a": [-500.0], "survival_a": [0.0],
        "profit_horizon_b": [400.0], "profit_per_hour_b": [40.0], "billed_hours_b": [10.0],
        "exit_losses_b": [0.0], "survival_b": [1.0],
    })  # fmt: skip
    row = gap_parts(pairs).iloc[0]
    assert row["quality"] == 0 and row["volume"] == pytest.approx(-400)
    assert row["exits"] == pytest.approx(-500) and row["gap"] == pytest.approx(-900)


def test_the_parts_name_the_factor_each_compares():
    table = decompose_gap(runs_table(np.random.default_rng(4), markets=("half_half",)),
                          "fit_filter", "serve_all", n_resamples=99).set_index("part")  # fmt: skip
    assert table.loc["quality", "a_value"] == pytest.approx(50, abs=2)  # profit per billed hour
    assert table.loc["quality", "b_value"] == pytest.approx(39, abs=2)
    assert table.loc["volume", "b_value"] == pytest.approx(10000, abs=400)  # billed hours
    assert table.loc["quality", "mean_diff"] > 0


def test_the_results_section_gives_each_market_its_parts_with_intervals():
    text = report.decomposition_section(runs_table(np.random.default_rng(5)), "fit_filter",
                                        "serve_all")  # fmt: skip
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| all_four", "| half_half"]
    assert all(line.count("[") == 4 for line in lines[2:])  # gap and three parts, each with CI
