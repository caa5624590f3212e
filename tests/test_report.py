"""Claims and verdicts (sim.analysis.report) on hand-built runs tables whose answers are known."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis import report
from sim.analysis.markdown import markdown_table
from sim.analysis.shared_runs import shared_runs_note

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


def row_of(gaps, claim, exp=EXP):
    (row,) = report.verdicts(runs_with_gaps(gaps), {**exp, "expect": [claim]})
    return row


#: H3's and H4's mean gaps (thousands) along x, seeds spread by a few units.
RISE_THEN_FALL = {
    0.0: [-459.0, -449.0, -463.0, -466.0],
    0.1: [428.0, 441.0, 420.0, 425.0],
    0.2: [676.0, 670.0, 683.0, 675.0],
    0.3: [350.0, 344.0, 360.0, 352.0],
    0.4: [-40.0, -30.0, -44.0, -41.0],
    0.5: [-244.0, -250.0, -240.0, -239.0],
}
H4_LIKE = {0.0: [234.0, 230.0, 240.0], 0.1: [482.0, 475.0, 485.0], 0.2: [925.0, 930.0, 921.0],
           0.3: [619.0, 610.0, 622.0], 0.4: [503.0, 500.0, 509.0]}  # fmt: skip


def test_a_gap_that_rises_then_falls_rejects_a_monotone_claim_and_says_where_it_turns():
    row = row_of(RISE_THEN_FALL, {"metric": "profit_horizon", "trend": "increasing"})
    assert row["verdict"] == "rejected"
    assert "rises from 0 to 0.2, then falls from 0.2 to 0.5" in row["detail"]
    # H4: the pooled slope is positive, but the gap falls significantly above 0.2
    assert verdict(H4_LIKE, {"metric": "profit_horizon", "trend": "increasing"}) == "rejected"


def test_a_hump_claim_is_supported_by_a_significant_rise_then_fall():
    row = row_of(RISE_THEN_FALL, {"metric": "profit_horizon", "shape": "hump"})
    assert (row["verdict"], row["p"] < 0.05) == ("supported", True)
    assert "largest mean gap at k = 0.2" in row["detail"]
    plateau = {0.0: [0.0, 1.0, 2.0], 1.0: [5.0, 7.0, 6.0], 2.0: [6.0, 6.0, 7.0]}
    assert verdict(plateau, {"metric": "profit_horizon", "shape": "plateau"}) == "supported"
    assert verdict(plateau, {"metric": "profit_horizon", "shape": "hump"}) == "rejected"


def test_a_trend_rests_on_the_slope_of_each_seed_when_no_single_step_is_significant():
    # seeds' gaps at x = 0..3, offsets −100, 0, 100: 0 2 1 3, 0 0 3 3, 0 1 2 3; slopes 0.8, 1.2,
    # 1.0 (mean 1, s.d. 0.2: 1 ± 4.30 · 0.2/√3 > 0); steps (2 0 1), (−1 3 1), (2 0 1): none
    # significant; the pooled regression, seed offsets and all, spans zero
    shapes = [[0.0, 2.0, 1.0, 3.0], [0.0, 0.0, 3.0, 3.0], [0.0, 1.0, 2.0, 3.0]]
    offsets = [-100.0, 0.0, 100.0]
    gaps = {float(x): [o + shape[x] for o, shape in zip(offsets, shapes, strict=True)]
            for x in range(4)}  # fmt: skip
    row = row_of(gaps, {"metric": "profit_horizon", "trend": "increasing"})
    assert "no step along k significant" in row["detail"]
    assert row["verdict"] == "supported"
    half = stats.t.ppf(0.975, 2) * 0.2 / np.sqrt(3)
    assert f"slope over 3 seeds 1 per unit of k, 95% interval [{1 - half:,.4g}" in row["detail"]
    g = report.gaps(runs_with_gaps(gaps), EXP, "profit_horizon")
    pooled = stats.linregress(g["k"], g["gap"])
    assert pooled.slope - stats.t.ppf(0.975, len(g) - 2) * pooled.stderr < 0


def test_each_verdict_carries_its_p_and_the_adjusted_p_over_its_experiment():
    # three groups, each gap 3, 4, 5 (or its negative): p = 1 − √(48/50) ≈ 0.0202 each;
    # Holm: 3p ≈ 0.061 for all (none survives), Benjamini–Hochberg: p for all (all survive)
    runs = runs_with_gaps({1.0: [3.0, 4.0, 5.0]})
    runs = pd.concat([runs.assign(g="a"), runs.assign(g="b"),
                      runs.assign(g="c", profit_horizon=-runs["profit_horizon"])])  # fmt: skip
    exp = {**EXP, "group": "g", "expect": [{"metric": "profit_horizon", "sign": "positive"}]}
    found = pd.DataFrame(report.verdicts(runs, exp))
    p = 1 - np.sqrt(48 / 50)
    assert found["verdict"].tolist() == ["supported", "supported", "rejected"]
    assert found["p"].tolist() == pytest.approx([p] * 3)
    assert found["p_holm"].tolist() == pytest.approx([3 * p] * 3)
    assert found["p_bh"].tolist() == pytest.approx([p] * 3)
    assert found["survives"].tolist() == ["no"] * 3
    assert list(found.columns) == report.VERDICT_COLUMNS


def test_a_crossover_that_never_comes_counts_as_the_horizon_not_as_missing():
    # fit_filter's crossover week per seed: never, then 100-110, then 45-55, then never again
    # (weeks = 260); dropping the nevers would leave a clean fall from 1 to 2
    weeks = {0.0: [None] * 3, 1.0: [100, 110, 105], 2.0: [50, 55, 45], 3.0: [None] * 3}
    runs = runs_with_gaps({k: [0.0] * 3 for k in weeks})
    runs["weeks"] = 260
    own = runs["policy"] == "fit_filter"
    runs.loc[own, "crossover_vs_serve_all"] = [w for values in weeks.values() for w in values]
    claim = {"metric": "crossover_vs_serve_all", "policy": "fit_filter", "trend": "decreasing"}
    (row,) = report.verdicts(runs, {**EXP, "expect": [claim]})
    assert row["verdict"] == "rejected"
    assert "falls from 0 to 2, then rises from 2 to 3" in row["detail"]
    assert "over 12 runs (6 not reached by the horizon" in row["detail"]


def write_sweep(sweep_dir, points: dict[str, tuple[dict, dict]], seeds: int) -> None:
    """A sweep directory: points/<hash>/point.json (values, config) and its runs.parquet."""
    for point_hash, (values, config) in points.items():
        (sweep_dir / "points" / point_hash).mkdir(parents=True)
        point = {"hash": point_hash, "values": values, "config": config}
        (sweep_dir / "points" / point_hash / "point.json").write_text(json.dumps(point))
    runs = [{"point_hash": h, "seed": s, "status": "ok"} for h in points for s in range(seeds)]
    pd.DataFrame(runs).to_parquet(sweep_dir / "runs.parquet")


def test_results_say_which_experiments_ran_the_same_runs(tmp_path):
    def point(values, name):  # the model's config: ratio and noise; the experiment block aside
        return values, {"ratio": 1.0, "noise": 0.1, **values, "experiment": {"name": name}}

    market = {"m1": point({"ratio": 1.0}, "market"), "m2": point({"ratio": 2.0}, "market")}
    noise = {"n1": point({"noise": 0.1}, "noise"), "n2": point({"noise": 0.5}, "noise")}
    write_sweep(tmp_path / "market", market, seeds=10)
    write_sweep(tmp_path / "noise", noise, seeds=20)
    note = shared_runs_note({"H3 market": tmp_path / "market", "H8 noise": tmp_path / "noise"})
    assert "H3 market (ratio=1.0) = H8 noise (noise=0.1): the same 10 runs (seeds 0–9)." in note


def test_a_sign_claim_without_any_paired_value_is_inconclusive():
    # every business of a compared policy exited: its survivors' metric has no value anywhere
    empty = pd.DataFrame({"point": pd.Series(dtype="int64"), "seed": pd.Series(dtype="int64"),
                          "gap": pd.Series(dtype="float64")})  # fmt: skip
    found = report.check_sign(empty, {"metric": "margin_per_hour", "sign": "positive"}, None)
    assert found["verdict"] == "inconclusive" and np.isnan(found["p"])
