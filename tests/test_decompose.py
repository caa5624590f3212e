"""The profit gap decomposed (sim.analysis.decompose, sim.runs.summary.gap_factors): hand-made
tables whose parts are known, and the identity quality + volume + capacity + exits = gap."""

import itertools

import numpy as np
import pandas as pd
import pytest

from sim.analysis import report
from sim.analysis.decompose import PARTS, decompose_gap, gap_parts
from sim.runs.summary import cumulative_profit, gap_factors


def business_steps() -> pd.DataFrame:
    """Two policies of two businesses over three weeks, fixed costs 10 a week while active.

    fit_filter: business 0 makes 30 a week on 1 billed hour; business 1 loses 50, then 40,
    then has exited (0 afterwards), having billed 1 hour. serve_all: business 2 makes 10 a
    week on 1 hour, business 3 20 a week on 2 hours.
    """
    plan = {0: ("fit_filter", [30, 30, 30], [1, 1, 1], [True] * 3),
            1: ("fit_filter", [-50, -40, 0], [1, 0, 0], [True, False, False]),
            2: ("serve_all", [10, 10, 10], [1, 1, 1], [True] * 3),
            3: ("serve_all", [20, 20, 20], [2, 2, 2], [True] * 3)}  # fmt: skip
    rows = []
    for business, (policy, profit, hours, active) in plan.items():
        for step in range(3):
            charged = step == 0 or active[step - 1]  # the week of the exit is still charged
            rows.append({"step": step, "business_id": business, "policy": policy,
                         "profit": float(profit[step]), "billed_hours": float(hours[step]),
                         "fixed_costs": 10.0 * charged, "active": active[step]})  # fmt: skip
    return pd.DataFrame(rows)


def test_gap_factors_multiply_back_to_the_mean_cumulative_profit():
    steps = business_steps()
    factors = gap_factors(steps)
    # fit_filter: survivor 0 makes 90 + 30 fixed on 3 hours; exited 1 lost 90; two businesses
    assert factors["fit_filter"] == pytest.approx(
        {"margin_per_hour": 40.0, "billed_hours": 3.0, "fixed_costs": 30.0, "exit_losses": -45.0}
    )
    assert factors["serve_all"] == pytest.approx(
        {"margin_per_hour": 150 / 9, "billed_hours": 4.5, "fixed_costs": 30.0, "exit_losses": 0.0}
    )
    horizon = cumulative_profit(steps).iloc[-1]
    for policy, f in factors.items():
        survival = steps.loc[(steps["step"] == 2) & (steps["policy"] == policy), "active"].mean()
        survivor = f["margin_per_hour"] * f["billed_hours"] - f["fixed_costs"]
        assert survival * survivor + f["exit_losses"] == pytest.approx(horizon[policy], abs=1e-12)


def runs_table(rng: np.random.Generator, seeds: int = 6, markets=("all_four", "half_half")):
    """A runs table whose profit_horizon is s (m h − c) + x in every run (`gap_factors`)."""
    rows = []
    for market, seed, policy in itertools.product(
        markets, range(seeds), ("fit_filter", "serve_all")
    ):
        m = (50.0 if policy == "fit_filter" else 39.0) + rng.normal(0, 2)
        h = (9000.0 if market == "all_four" and policy == "fit_filter" else 10000.0) + rng.normal(
            0, 300
        )
        c = 200_000.0 + (rng.normal(0, 5000) if market == "half_half" else 0.0)
        s = 0.8 if rng.random() < 0.3 else 1.0
        x = -rng.exponential(20000.0) if s < 1 else 0.0
        rows.append({"experiment": "synthetic", "point": markets.index(market), "seed": seed,
                     "market/policy_mix": market, "policy": policy, "status": "ok",
                     "profit_horizon": s * (m * h - c) + x, "margin_per_hour": m,
                     "billed_hours": h, "fixed_costs": c, "exit_losses": x,
                     "survival": s})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_parts_add_up_to_the_gap_in_every_market_and_on_average():
    table = decompose_gap(runs_table(np.random.default_rng(3)), "fit_filter", "serve_all",
                          n_resamples=99)  # fmt: skip
    assert list(table["part"].unique()) == list(PARTS)
    for market, rows in table.groupby("market/policy_mix"):
        means = rows.set_index("part")["mean_diff"]
        assert means[list(PARTS[:-1])].sum() == pytest.approx(means["gap"], rel=1e-12, abs=1e-9)
        assert (rows["n"] == 6).all()
        assert (rows["ci_low"] <= rows["mean_diff"]).all()
        assert (rows["mean_diff"] <= rows["ci_high"]).all()
        if market == "all_four":  # the same capacity for every business: no capacity part
            assert means["capacity"] == 0


def one_pair(a: dict, b: dict) -> pd.Series:
    columns = {f"{k}_a": [v] for k, v in a.items()} | {f"{k}_b": [v] for k, v in b.items()}
    return gap_parts(pd.DataFrame(columns)).iloc[0]


def arm(m, h, c, s, x) -> dict:
    profit = s * (m * h - c) + x if s > 0 else x
    return {"profit_horizon": profit, "margin_per_hour": m, "billed_hours": h,
            "fixed_costs": c, "survival": s, "exit_losses": x}  # fmt: skip


def test_each_pairs_parts_are_the_symmetric_split_of_the_products():
    row = one_pair(arm(50.0, 8.0, 100.0, 1.0, 0.0), arm(40.0, 10.0, 100.0, 1.0, 0.0))
    assert row["quality"] == pytest.approx(10 * 9)  # (50 - 40) * (8 + 10) / 2
    assert row["volume"] == pytest.approx(-2 * 45)  # (8 - 10) * (50 + 40) / 2
    assert row["capacity"] == 0 and row["exits"] == 0
    assert row["gap"] == pytest.approx(300 - 300)
    row = one_pair(arm(50.0, 8.0, 100.0, 0.5, -70.0), arm(40.0, 10.0, 120.0, 1.0, 0.0))
    assert row["capacity"] == pytest.approx(-0.75 * (100 - 120))
    assert row["exits"] == pytest.approx(-70 + (300 + 280) / 2 * (0.5 - 1.0))
    assert row[list(PARTS[:-1])].sum() == pytest.approx(row["gap"])


def test_a_side_without_survivors_puts_its_whole_difference_in_exits():
    row = one_pair(arm(np.nan, np.nan, np.nan, 0.0, -500.0), arm(40.0, 10.0, 100.0, 1.0, 0.0))
    assert row["quality"] == row["volume"] == row["capacity"] == 0
    assert row["exits"] == pytest.approx(-800) and row["gap"] == pytest.approx(-800)


def test_the_parts_name_the_factor_each_compares():
    table = decompose_gap(runs_table(np.random.default_rng(4), markets=("half_half",)),
                          "fit_filter", "serve_all", n_resamples=99).set_index("part")  # fmt: skip
    assert table.loc["quality", "a_value"] == pytest.approx(50, abs=2)  # margin per billed hour
    assert table.loc["quality", "b_value"] == pytest.approx(39, abs=2)
    assert table.loc["volume", "b_value"] == pytest.approx(10000, abs=400)  # billed hours
    assert table.loc["quality", "mean_diff"] > 0


def test_the_results_section_gives_each_market_its_parts_with_intervals():
    text = report.decomposition_section(runs_table(np.random.default_rng(5)), "fit_filter",
                                        "serve_all")  # fmt: skip
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| all_four", "| half_half"]
    assert all(line.count("[") == 5 for line in lines[2:])  # gap and four parts, each with CI
