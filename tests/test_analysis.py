"""Paired statistics and crossover weeks on tables small enough to check by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis import stats as analysis

THRESHOLD = "policies.fit_filter.threshold"


def runs_table(rows) -> pd.DataFrame:
    """A runs table from (point, seed, policy, threshold, profit_horizon[, status]) tuples."""
    records = []
    for point, seed, policy, threshold, profit, *status in rows:
        ok = (status or ["ok"])[0] == "ok"
        records.append({
            "experiment": "threshold", "point": point, "point_hash": f"h{point}", "job": 0,
            "seed": seed, "policy": policy, "status": "ok" if ok else "failed",
            "error": None if ok else "ValueError: boom", THRESHOLD: threshold,
            "profit_horizon": profit if ok else np.nan,
        })  # fmt: skip
    return pd.DataFrame(records)


def test_swept_columns_are_the_columns_that_are_not_fixed():
    runs = runs_table([(0, 1, "fit_filter", 0.3, 1.0)])
    assert analysis.swept_columns(runs) == [THRESHOLD]


def test_paired_differences_one_two_three_give_the_t_interval_of_the_formula():
    runs = runs_table(
        [(0, s, "fit_filter", 0.3, 10.0 + d) for s, d in [(1, 1), (2, 2), (3, 3)]]
        + [(0, s, "serve_all", 0.3, 10.0) for s in (1, 2, 3)]
    )
    (row,) = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").itertuples()
    half = stats.t.ppf(0.975, 2) * 1 / np.sqrt(3)  # sd of [1, 2, 3] is 1
    assert (row.n, row.mean_a, row.mean_b, row.mean_diff) == (3, 12.0, 10.0, 2.0)
    assert row.ci_low == pytest.approx(2 - half) and row.ci_high == pytest.approx(2 + half)
    assert row.effect_size == pytest.approx(2.0)
    assert row.p_value == pytest.approx(2 * stats.t.sf(2 / (1 / np.sqrt(3)), 2))


def test_bca_interval_contains_the_mean_difference():
    diffs = [1.0, 2.0, 3.0, 5.0, 4.0, 2.5]
    runs = runs_table(
        [(0, s, "fit_filter", 0.3, d) for s, d in enumerate(diffs)]
        + [(0, s, "serve_all", 0.3, 0.0) for s in range(len(diffs))]
    )
    row = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").iloc[0]
    assert row["boot_low"] < np.mean(diffs) < row["boot_high"]


def test_constant_differences_give_a_point_interval_and_no_bootstrap():
    runs = runs_table(
        [(0, s, "fit_filter", 0.3, 5.0 + s) for s in (1, 2, 3)]
        + [(0, s, "serve_all", 0.3, 3.0 + s) for s in (1, 2, 3)]
    )
    row = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").iloc[0]
    assert (row["mean_diff"], row["ci_low"], row["ci_high"]) == (2.0, 2.0, 2.0)
    assert np.isnan(row["boot_low"]) and np.isnan(row["boot_high"])
    assert np.isnan(row["effect_size"])


def test_a_failed_run_leaves_its_seed_out_of_the_pairs():
    runs = runs_table(
        [(0, 1, "fit_filter", 0.3, 11.0), (0, 2, "fit_filter", 0.3, 12.0, "failed")]
        + [(0, 3, "fit_filter", 0.3, 13.0)]
        + [(0, s, "serve_all", 0.3, 10.0) for s in (1, 2, 3)]
    )
    row = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").iloc[0]
    assert (row["n"], row["mean_diff"]) == (2, 2.0)


def test_pairs_are_matched_by_seed_not_by_row_order():
    runs = runs_table(
        [(0, 1, "fit_filter", 0.3, 11.0), (0, 2, "fit_filter", 0.3, 22.0)]
        + [(0, 2, "serve_all", 0.3, 20.0), (0, 1, "serve_all", 0.3, 10.0)]
    )
    row = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").iloc[0]
    assert row["mean_diff"] == 1.5
    assert row["ci_low"] == pytest.approx(1.5 - stats.t.ppf(0.975, 1) * 0.5)


def test_paired_gives_one_row_per_design_point():
    runs = runs_table(
        [(p, s, "fit_filter", t, 10.0 * p + s) for p, t in [(0, 0.2), (1, 0.5)] for s in (1, 2)]
        + [(p, s, "serve_all", t, 0.0) for p, t in [(0, 0.2), (1, 0.5)] for s in (1, 2)]
    )
    table = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon")
    assert table[THRESHOLD].tolist() == [0.2, 0.5]
    assert table["mean_diff"].tolist() == [1.5, 11.5]
    assert list(table.columns[:4]) == [THRESHOLD, "metric", "a", "b"]


def test_paired_on_a_parameter_compares_two_of_its_values_within_one_policy():
    runs = runs_table(
        [(0, s, "fit_filter", 0.2, 10.0 + s) for s in (1, 2, 3)]
        + [(1, s, "fit_filter", 0.5, 7.0 + 2 * s) for s in (3, 1, 2)]
        + [(p, s, "serve_all", t, 100.0) for p, t in [(0, 0.2), (1, 0.5)] for s in (1, 2, 3)]
    )
    table = analysis.paired(
        runs, 0.5, 0.2, "profit_horizon", on=THRESHOLD, policy="fit_filter", n_resamples=99
    )
    (row,) = table.to_dict("records")
    assert (row["n"], row["mean_a"], row["mean_b"], row["mean_diff"]) == (3, 11.0, 12.0, -1.0)
    assert THRESHOLD not in table.columns
    half = stats.t.ppf(0.975, 2) * 1 / np.sqrt(3)  # differences -2, -1, 0: sd 1
    assert row["ci_high"] == pytest.approx(-1 + half)


def test_paired_on_a_parameter_needs_the_policy():
    with pytest.raises(ValueError, match="policy"):
        analysis.paired(runs_table([]), 0.5, 0.2, "profit_horizon", on=THRESHOLD)


def steps_table(series: dict) -> pd.DataFrame:
    """A steps table from {(point, seed, policy): cumulative profits by week}."""
    rows = [
        {"point": point, "seed": seed, "policy": policy, "step": week, "cum_profit": value,
         THRESHOLD: 0.1 * (point + 1)}
        for (point, seed, policy), values in series.items()
        for week, value in enumerate(values)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_crossover_week_is_the_week_after_which_a_stays_ahead():
    steps = steps_table({
        (0, 1, "fit_filter"): [-5, -3, 2, 1, 6, 9],
        (0, 1, "serve_all"): [0, 1, 1, 2, 3, 4],  # a ahead at 2, behind at 3, ahead from 4
        (0, 2, "fit_filter"): [1, 2, 3],
        (0, 2, "serve_all"): [0, 0, 0],  # ahead from the start
        (1, 1, "fit_filter"): [0, 1, 1],
        (1, 1, "serve_all"): [0, 0, 2],  # behind at the end: never
    })  # fmt: skip
    weeks = analysis.crossover_weeks(steps, "fit_filter", "serve_all")
    assert weeks["crossover_week"].tolist() == [4, 0, pd.NA]
    assert weeks[THRESHOLD].tolist() == [0.1, 0.1, 0.2]
    assert str(weeks["crossover_week"].dtype) == "Int64"
    assert weeks["horizon"].tolist() == [5, 2, 2]  # the last week: where "never" is censored


def test_crossover_summary_censors_the_seeds_that_never_cross_at_the_horizon():
    # weeks 2, 4, 6, 8 and one never by week 10: Kaplan–Meier survival .8, .6, .4, .2
    weeks = pd.DataFrame({
        "point": [0] * 5, "seed": range(5), "a": "fit_filter", "b": "serve_all",
        "crossover_week": pd.array([4, 8, 6, None, 2], dtype="Int64"), "horizon": 10,
    })  # fmt: skip
    (row,) = analysis.crossover_summary(weeks).to_dict("records")
    assert (row["point"], row["n"], row["crossed"], row["share_never"]) == (0, 5, 4, 0.2)
    assert (row["km_q25"], row["km_median"], row["km_q75"]) == (4.0, 6.0, 8.0)
    assert row["restricted_mean"] == pytest.approx((2 + 4 + 6 + 8 + 10) / 5)


def test_load_runs_concatenates_several_sweeps(tmp_path):
    for name, point in [("one", 0), ("two", 1)]:
        (tmp_path / name).mkdir()
        runs_table([(point, 1, "serve_all", 0.3, 1.0)]).to_parquet(tmp_path / name / "runs.parquet")
    runs = analysis.load_runs([tmp_path / "one", tmp_path / "two" / "runs.parquet"])
    assert runs["point"].tolist() == [0, 1]
    with pytest.raises(FileNotFoundError):
        analysis.load_runs(tmp_path / "missing")


def test_a_median_crossover_is_over_every_seed_not_only_those_that_cross():
    # one seed of four crosses (week 4): the median of those that cross would say 4; half of
    # the seeds have not crossed by the horizon, so the median is not reached
    weeks = pd.DataFrame({
        "point": [0] * 4, "seed": range(4), "a": "fit_filter", "b": "serve_all",
        "crossover_week": pd.array([4, None, None, None], dtype="Int64"), "horizon": 10,
    })  # fmt: skip
    (row,) = analysis.crossover_summary(weeks).to_dict("records")
    assert (row["n"], row["crossed"], row["share_never"]) == (4, 1, 0.75)
    assert np.isnan(row["km_median"]) and row["km_q25"] == 4.0
    assert row["restricted_mean"] == pytest.approx((4 + 10 + 10 + 10) / 4)


def test_a_single_pair_has_a_mean_but_no_interval():
    runs = runs_table([(0, 1, "fit_filter", 0.3, 3.0), (0, 1, "serve_all", 0.3, 1.0)])
    row = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon").iloc[0]
    assert (row["n"], row["mean_diff"]) == (1, 2.0)
    assert np.isnan(row["ci_low"]) and np.isnan(row["boot_low"]) and np.isnan(row["p_value"])


def test_paired_with_an_empty_by_pools_every_design_point():
    runs = runs_table(
        [(p, 1, "fit_filter", t, 1.0 + p) for p, t in [(0, 0.2), (1, 0.5)]]
        + [(p, 1, "serve_all", t, 0.0) for p, t in [(0, 0.2), (1, 0.5)]]
    )
    table = analysis.paired(runs, "fit_filter", "serve_all", "profit_horizon", by=[])
    assert table[["n", "mean_diff"]].values.tolist() == [[2, 1.5]]
