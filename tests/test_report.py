"""Claims and verdicts (sim.analysis.report) on hand-built runs tables whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from sim.analysis import report
from sim.analysis.markdown import markdown_table

EXP = {"compare": {"on": "policy", "a": "fit_filter", "b": "serve_all", "policy": None},
       "x": "k", "group": None}  # fmt: skip


def runs_with_gaps(gaps: dict[float, list[float]]) -> pd.DataFrame:
    """A runs table: at each x value k, serve_all earns 0 and fit_filter earns the gap."""
    rows = []
    for point, (k, values) in enumerate(gaps.items()):
        for seed, gap in enumerate(values):
            for policy, profit in (("serve_all", 0.0), ("fit_filter", gap)):
                rows.append({"experiment": "t", "point": point, "point_hash": str(point),
                             "job": point, "seed": seed, "policy": policy, "status": "ok",
                             "error": None, "k": k, "profit_horizon": profit})  # fmt: skip
    return pd.DataFrame(rows)


def verdict(gaps, claim, exp=EXP):
    (row,) = report.verdicts(runs_with_gaps(gaps), {**exp, "expect": [claim]})
    return row["verdict"]


def test_a_sign_claim_is_judged_by_the_side_of_the_95_percent_interval():
    claim = {"metric": "profit_horizon", "sign": "positive"}
    assert verdict({1.0: [3.0, 4.0, 5.0]}, claim) == "supported"  # 4 ± 2.48 > 0
    assert verdict({1.0: [-5.0, -4.0, -3.0]}, claim) == "rejected"
    assert verdict({1.0: [1.0, 2.0, 3.0]}, claim) == "inconclusive"  # 2 ± 2.48 spans 0
    assert verdict({1.0: [3.0, 4.0, 5.0], 2.0: [-5.0, -4.0, -3.0]}, claim) == "mixed"
    negative = {"metric": "profit_horizon", "sign": "negative"}
    assert verdict({1.0: [-5.0, -4.0, -3.0]}, negative) == "supported"


def test_a_trend_claim_reads_the_slope_of_the_gap_on_x():
    rising = {0.0: [0.0, 1.0, -1.0], 1.0: [10.0, 11.0, 9.0], 2.0: [20.0, 21.0, 19.0]}
    assert verdict(rising, {"metric": "profit_horizon", "trend": "increasing"}) == "supported"
    assert verdict(rising, {"metric": "profit_horizon", "trend": "decreasing"}) == "rejected"
    flat = {0.0: [1.0, -1.0, 2.0], 1.0: [-1.0, 1.0, -2.0], 2.0: [1.0, -1.0, 0.0]}
    assert verdict(flat, {"metric": "profit_horizon", "trend": "increasing"}) == "inconclusive"


def test_a_hump_needs_an_interior_maximum_above_both_ends():
    hump = {0.0: [0.0, 1.0, 2.0], 0.5: [10.0, 12.0, 11.0], 1.0: [1.0, 0.0, 2.0]}
    assert verdict(hump, {"metric": "profit_horizon", "shape": "hump"}) == "supported"
    rising = {0.0: [0.0, 1.0, 2.0], 0.5: [5.0, 6.0, 7.0], 1.0: [10.0, 11.0, 12.0]}
    assert verdict(rising, {"metric": "profit_horizon", "shape": "hump"}) == "rejected"


def test_larger_at_compares_the_gap_between_two_values_seed_by_seed():
    gaps = {1.0: [5.0, 7.0, 6.0], 0.0: [1.0, 2.0, 3.0]}  # differences 4, 5, 3
    assert verdict(gaps, {"metric": "profit_horizon", "larger_at": 1.0}) == "supported"
    assert verdict(gaps, {"metric": "profit_horizon", "larger_at": 0.0}) == "rejected"


def test_claims_are_checked_per_group():
    runs = runs_with_gaps({1.0: [3.0, 4.0, 5.0]})
    runs = pd.concat(
        [runs.assign(g="a"), runs.assign(g="b", profit_horizon=-runs["profit_horizon"])]
    )
    exp = {**EXP, "group": "g", "expect": [{"metric": "profit_horizon", "sign": "positive"}]}
    found = report.verdicts(runs, exp)
    assert [(f["where"], f["verdict"]) for f in found] == [
        ("g=a", "supported"),
        ("g=b", "rejected"),
    ]


def test_the_gap_is_a_minus_b_paired_on_point_and_seed():
    gaps = report.gaps(runs_with_gaps({1.0: [3.0, 4.0], 2.0: [5.0, 6.0]}), EXP, "profit_horizon")
    assert gaps.sort_values(["point", "seed"])["gap"].tolist() == [3.0, 4.0, 5.0, 6.0]


@pytest.mark.parametrize("value", [1234567.0, 0.5, np.nan])
def test_table_cells_are_readable(value):
    cell = markdown_table(pd.DataFrame({"x": [value]})).splitlines()[-1]
    assert cell in ("| 1,234,567 |", "| 0.5 |", "|  |")
