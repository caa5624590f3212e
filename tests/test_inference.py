"""Steps, slopes over seeds, Kaplan–Meier and adjusted p-values on tables known by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis import inference

#: Two-sided p of a t test on [3, 4, 5] (t = 4 / (1 / √3) = √48, 2 degrees of freedom), whose
#: closed form is 1 − |t| / √(t² + 2) = 1 − √(48 / 50).
P_345 = 1 - np.sqrt(48 / 50)


def gap_table(gaps: dict[float, list[float]], x: str = "k") -> pd.DataFrame:
    """One row per (x, seed): the gap of seed i at x is gaps[x][i]."""
    rows = [{x: at, "seed": seed, "gap": gap} for at, values in gaps.items()
            for seed, gap in enumerate(values)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_t_test_gives_the_interval_and_p_of_the_formula():
    mean, low, high, p = inference.t_test([3.0, 4.0, 5.0])
    half = stats.t.ppf(0.975, 2) / np.sqrt(3)  # s.d. 1 over √3 seeds
    assert (mean, low, high) == pytest.approx((4.0, 4.0 - half, 4.0 + half))
    assert p == pytest.approx(P_345)


def test_a_difference_without_spread_is_certain_and_a_zero_one_is_not_evidence():
    assert inference.t_test([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0, 0.0)
    assert inference.t_test([0.0, 0.0]) == (0.0, 0.0, 0.0, 1.0)
    assert np.isnan(inference.t_test([1.0])[3])


def test_holm_multiplies_the_ith_smallest_p_by_m_minus_i_plus_one_and_keeps_the_order():
    # sorted 0.01, 0.03, 0.04 → 3 × 0.01, 2 × 0.03, max(1 × 0.04, 0.06); NaN is not tested
    adjusted = inference.holm([0.01, 0.04, 0.03, np.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])


def test_benjamini_hochberg_multiplies_the_ith_smallest_p_by_m_over_i():
    # sorted 0.01, 0.03, 0.04 → 0.01 × 3, min(0.03 × 3/2, 0.04), 0.04 × 3/3
    assert inference.benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])


def test_steps_are_paired_by_seed_and_holm_corrected_across_them():
    # steps 0 → 0.5: 10, 11, 9 (mean 10, s.d. 1); 0.5 → 1: −9, −12, −9 (mean −10, s.d. √3)
    table = gap_table({0.0: [0.0, 1.0, 2.0], 0.5: [10.0, 12.0, 11.0], 1.0: [1.0, 0.0, 2.0]})
    steps = inference.paired_steps(table, "k")
    assert steps["step"].tolist() == pytest.approx([10.0, -10.0])
    p_up, p_down = 1 - 17.32050807 / np.sqrt(302), 1 - 10 / np.sqrt(102)  # 1 − |t|/√(t² + 2)
    assert steps["p"].tolist() == pytest.approx([p_up, p_down])
    assert steps["p_holm"].tolist() == pytest.approx([2 * p_up, max(2 * p_up, p_down)])
    assert steps["direction"].tolist() == [1, -1]
    assert inference.pattern(steps) == "+-"
    found = inference.shape_text(steps, "k")
    assert found == "along k the gap rises from 0 to 0.5, then falls from 0.5 to 1"


def h3_like() -> pd.DataFrame:
    """H3's mean gaps (thousands) against demand/supply, seeds spread by ±10."""
    means = {0.5: -459, 0.75: 428, 1.0: 676, 1.5: 350, 2.0: -40, 2.5: -244}
    noise = [-10.0, 4.0, 10.0, -4.0]
    return gap_table({x: [m + e * (1 + i % 3) for e in noise] for i, (x, m) in
                      enumerate(means.items())})  # fmt: skip


def test_a_rise_then_a_fall_is_a_hump_and_not_a_monotone_shape():
    steps = inference.paired_steps(h3_like(), "k")
    means = h3_like().groupby("k")["gap"].mean()
    assert inference.pattern(steps) == "+-"
    assert "rises from 0.5 to 1, then falls from 1 to 2.5" in inference.shape_text(steps, "k")
    assert inference.hump_verdict(steps, means)[0] == "supported"
    assert inference.monotone_verdict(steps, True, "supported")[0] == "rejected"
    assert inference.plateau_verdict(steps)[0] == "rejected"


def test_a_steady_rise_is_monotone_not_a_hump_and_a_rise_that_stops_is_a_plateau():
    rising = gap_table({0: [0.0, 1.0, 2.0], 1: [5.0, 7.0, 6.0], 2: [10.0, 11.0, 12.0]})
    steps = inference.paired_steps(rising, "k")
    assert inference.monotone_verdict(steps, True, "inconclusive")[0] == "supported"
    assert inference.monotone_verdict(steps, False, "inconclusive")[0] == "rejected"
    assert inference.hump_verdict(steps, rising.groupby("k")["gap"].mean())[0] == "rejected"
    assert inference.plateau_verdict(steps)[0] == "rejected"  # still rising at the end
    levels = gap_table({0: [0.0, 1.0, 2.0], 1: [5.0, 7.0, 6.0], 2: [6.0, 6.0, 7.0]})
    assert inference.plateau_verdict(inference.paired_steps(levels, "k"))[0] == "supported"


def test_no_significant_step_leaves_a_monotone_claim_to_the_slope():
    flat = gap_table({0: [1.0, -1.0, 2.0], 1: [-1.0, 1.0, -2.0], 2: [1.0, -1.0, 0.0]})
    steps = inference.paired_steps(flat, "k")
    assert inference.pattern(steps) == ""
    verdict, p = inference.monotone_verdict(steps, True, "inconclusive")
    assert verdict == "inconclusive" and np.isnan(p)


def test_the_slope_interval_is_over_the_seeds_slopes_not_the_pooled_runs():
    # seed s: gap = offset_s + b_s · x, large seed offsets (common random numbers), b = .9..1.1
    offsets, slopes = [-100.0, -30.0, 40.0, 90.0], [0.9, 1.1, 1.0, 1.0]
    table = gap_table({x: [o + b * x for o, b in zip(offsets, slopes, strict=True)]
                       for x in (0.0, 1.0, 2.0)})  # fmt: skip
    assert inference.seed_slopes(table, "k").tolist() == pytest.approx(slopes)
    fit = inference.slope_over_seeds(table, "k")
    half = stats.t.ppf(0.975, 3) * np.std(slopes, ddof=1) / 2  # s.d. over √4 seeds
    assert (fit["slope"], fit["low"], fit["high"]) == pytest.approx((1.0, 1 - half, 1 + half))
    assert fit["seeds"] == 4 and fit["low"] > 0
    pooled = stats.linregress(table["k"], table["gap"])  # the seed offsets swamp the slope
    assert pooled.slope - stats.t.ppf(0.975, 10) * pooled.stderr < 0


def test_kaplan_meier_keeps_the_runs_that_never_cross_as_censored():
    # weeks 2, 4, 6, 8 crossed; one never by week 10: survival .8, .6, .4, .2
    curve = inference.kaplan_meier([4, 8, 6, 10, 2], [True, True, True, False, True])
    assert curve["survival"].tolist() == pytest.approx([0.8, 0.6, 0.4, 0.2])
    quantiles = [inference.km_quantile(curve, q) for q in (0.25, 0.5, 0.75)]
    assert quantiles == [4.0, 6.0, 8.0]
    assert inference.restricted_mean(curve, 10) == pytest.approx((2 + 4 + 6 + 8 + 10) / 5)


def test_kaplan_meier_drops_a_run_from_risk_after_it_is_censored():
    # an event at 1 (3 at risk), a censoring at 2, an event at 3 (1 at risk): 2/3 then 0
    curve = inference.kaplan_meier([1, 2, 3], [True, False, True])
    assert curve["at_risk"].tolist() == [3, 1]
    assert curve["survival"].tolist() == pytest.approx([2 / 3, 0.0])
    assert inference.km_quantile(curve, 0.5) == 3.0


def test_a_median_not_reached_by_the_horizon_is_nan_not_the_median_of_those_that_crossed():
    curve = inference.kaplan_meier([4, 10, 10, 10], [True, False, False, False])
    assert np.isnan(inference.km_quantile(curve, 0.5))
    assert inference.km_quantile(curve, 0.25) == 4.0


def test_experiments_that_run_the_same_design_with_the_same_seeds_share_runs():
    points = pd.DataFrame([
        *({"experiment": "H3", "where": "ratio=1", "design": "d", "seed": s} for s in range(10)),
        *({"experiment": "H4", "where": "share=0.1", "design": "d", "seed": s} for s in range(5)),
        *({"experiment": "H4", "where": "share=0.2", "design": "e", "seed": s} for s in range(5)),
        *({"experiment": "H1", "where": "", "design": "f", "seed": s} for s in range(3)),
        *({"experiment": "H5", "where": "", "design": "f", "seed": s} for s in range(3, 6)),
    ])  # fmt: skip
    (row,) = inference.shared_runs(points).to_dict("records")  # f: no seed in common
    assert row["experiments"] == ["H3 (ratio=1)", "H4 (share=0.1)"]
    assert row["seeds"] == [0, 1, 2, 3, 4]


def test_a_hump_without_any_falling_step_has_no_evidence_p_one():
    rising = gap_table({0: [0.0, 1.0, 2.0], 1: [5.0, 7.0, 6.0], 2: [6.0, 6.0, 9.0]})
    steps = inference.paired_steps(rising, "k")
    assert inference.phase_p(steps, -1) == 1.0
    verdict, p = inference.hump_verdict(steps, rising.groupby("k")["gap"].mean())
    assert (verdict, p) == ("rejected", steps["p_holm"].iloc[0])  # a rise to the high end
