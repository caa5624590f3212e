import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis import stats as analysis
from sim.cli.facts import main
from sim.runs.summary import WHALE_WHO, whale_curve, whale_points, whale_summary
from sim.validation import facts
from sim.validation.facts import Frames, Target
from sim.validation.measure import configure, market_configs, run_market, summary


def market(ratings=(0, 0, 0, 0, 0), positive=0, negative=0) -> pd.DataFrame:
    row = {f"rating_{star}": n for star, n in enumerate(ratings, 1)}
    return pd.DataFrame([row | {"wom_positive": positive, "wom_negative": negative}])


def clients(profit, jobs=None, hours=None, spend=None, referred_by=None, final_provider=None,
            first_job_week=None):  # fmt: skip
    n = len(profit)
    return pd.DataFrame({
        "first_job_week": np.zeros(n, dtype=int) if first_job_week is None else first_job_week,
        "profit_contributed": np.asarray(profit, dtype=float),
        "jobs": np.ones(n, dtype=int) if jobs is None else jobs,
        "hours": np.ones(n) if hours is None else hours,
        "spend": np.ones(n) if spend is None else spend,
        "referred_by": np.full(n, -1) if referred_by is None else referred_by,
        "final_provider": np.zeros(n, dtype=int) if final_provider is None else final_provider,
    })  # fmt: skip


def frames(market_=None, steps=None, clients_=None) -> Frames:
    return Frames(market_, steps, clients_)


def test_rating_shares_count_every_review_of_the_run():
    two_weeks = pd.concat([market((1, 0, 0, 1, 3)), market((1, 0, 0, 0, 4))])
    f = frames(two_weeks)
    assert facts.share_1star(f) == pytest.approx(0.2)
    assert facts.share_5star(f) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("ratings", "j"),
    [((20, 5, 5, 10, 60), 1.0), ((5, 10, 5, 10, 70), 0.0), ((40, 5, 5, 10, 30), 0.0)],
    ids=["j_shaped", "no_second_peak", "one_star_mode"],
)
def test_j_shape_needs_five_star_mode_and_a_one_star_peak(ratings, j):
    assert facts.j_shape(frames(market(ratings))) == j


def test_wom_ratio_is_positive_over_negative_stories():
    assert facts.wom_ratio(frames(market(positive=30, negative=10))) == 3.0
    assert math.isnan(facts.wom_ratio(frames(market(positive=30, negative=0))))


def test_whale_curve_of_buyers_sorts_most_profitable_first():
    # buyers give 60, 30, 20, -10: total 100; the top 20 % is the first (ceil 0.8 = 1) client
    table = clients([30, -10, 60, 20, -5], jobs=[1, 2, 3, 1, 0])
    curve = whale_curve(table)
    np.testing.assert_allclose(curve["profit_share"], [0.6, 0.9, 1.1, 1.0])
    np.testing.assert_allclose(curve["client_share"], [0.25, 0.5, 0.75, 1.0])
    points = whale_points(table)
    assert points == {"clients": 4, "peak": pytest.approx(1.1), "peak_at": 0.75,
                      "top_20": pytest.approx(0.6)}  # fmt: skip


def test_whale_curve_of_applicants_counts_screened_clients_at_their_cost():
    # the declined applicant (no job, screening hours) loses 5; the unaware client is left out
    table = clients([60, 45, -5, 0], jobs=[2, 1, 0, 0], hours=[9, 9, 0.5, 0], spend=[1, 1, 0, 0])
    assert len(whale_curve(table, who="buyers")) == 2
    curve = whale_curve(table, who="applicants")
    np.testing.assert_allclose(curve["profit_share"], [0.6, 1.05, 1.0])
    with pytest.raises(ValueError, match="who must be"):
        whale_curve(table, who="everyone")


def test_whale_points_are_undefined_without_positive_profit():
    assert math.isnan(whale_points(clients([-5, -1]))["peak"])


def test_whale_by_policy_follows_the_final_provider():
    steps = pd.DataFrame({"business_id": [0, 1, 0, 1], "policy": ["a", "b", "a", "b"]})
    table = clients([10, 30, 20, 5], final_provider=[0, 1, 1, -1])
    curves = analysis.whale_by_policy(table, steps)
    assert curves.groupby("policy").size().to_dict() == {"a": 1, "b": 2}
    b = curves[curves["policy"] == "b"]["profit_share"]
    np.testing.assert_allclose(b, [0.6, 1.0])


def test_referred_buyers_compared_by_value_margin_and_retention():
    # referred: profits 30, 10 (jobs 2, 2), both still served, first jobs in weeks 5 and 8 of
    # a 10-week run; others: 20, 0 (jobs 1, 3), first jobs in week 0, one left
    table = clients([30, 10, 20, 0, 99], jobs=[2, 2, 1, 3, 0], referred_by=[4, 4, -1, -1, -1],
                    final_provider=[0, 2, 1, -1, -1],
                    first_job_week=[5, 8, 0, 0, -1])  # fmt: skip
    f = frames(pd.DataFrame({"step": range(10)}), clients_=table)
    # per week of tenure: referred 30/5 and 10/2, others 20/10 and 0/10
    assert facts.referred_value_premium(f) == pytest.approx(((6 + 5) / 2) / ((2 + 0) / 2) - 1)
    assert facts.referred_lifetime_premium(f) == pytest.approx(20 / 10 - 1)
    assert facts.referred_margin_premium(f) == pytest.approx((40 / 4) / (20 / 4) - 1)
    assert facts.referred_retention_gap(f) == pytest.approx(1.0 - 0.5)


def test_referred_comparison_is_undefined_without_both_groups():
    f = frames(pd.DataFrame({"step": range(3)}), clients_=clients([1.0, 2.0]))
    assert math.isnan(facts.referred_value_premium(f))


def steps_of(fit_filter, serve_all) -> pd.DataFrame:
    rows = [{"step": w, "policy": p, "profit": x, "business_id": i}
            for i, (p, series) in enumerate((("fit_filter", fit_filter), ("serve_all", serve_all)))
            for w, x in enumerate(series)]  # fmt: skip
    return pd.DataFrame(rows)


def test_crossover_week_is_the_first_week_fit_filter_stays_ahead():
    # cumulative fit_filter: -1, -2, 8, 18; serve_all: 1, 2, 3, 4 -> ahead from week 2
    f = frames(steps=steps_of([-1, -1, 10, 10], [1, 1, 1, 1]))
    assert facts.crossover_fit_filter(f) == 2.0
    assert math.isnan(facts.crossover_fit_filter(frames(steps=steps_of([0, 0], [1, 1]))))


def test_sellers_satisfaction_and_retention_weight_by_completed_jobs():
    steps = pd.DataFrame({
        "policy": ["serve_all", "serve_all", "serve_all", "fit_filter"],
        "completed": [1, 3, 0, 10], "satisfaction": [0.2, 0.6, np.nan, 0.9],
        "retention": [0.0, 1.0, np.nan, 1.0],
    })  # fmt: skip
    f = frames(steps=steps)
    assert facts.sellers_satisfaction(f) == pytest.approx(0.5)
    assert facts.sellers_retention(f) == pytest.approx(0.75)


def target(low=None, high=None, scale=None) -> Target:
    return Target("t", "q", low, high, "c", "secondary", True, scale)


def test_distance_is_zero_inside_and_relative_to_the_missed_bound():
    assert target(0.6).distance(0.7) == 0.0
    assert target(0.6).distance(0.54) == pytest.approx(0.1)
    assert target(None, 0.2).distance(0.3) == pytest.approx(0.5)
    assert target(2.5, 4.0).distance(5.0) == pytest.approx(0.25)
    assert target(0.0, None, 0.1).distance(-0.05) == pytest.approx(0.5)
    assert target(0.6).distance(float("nan")) == 1.0
    assert target().distance(123.0) == 0.0 and target().inside(float("nan"))
    assert not target(0.6).inside(float("nan")) and target(1, 1).inside(1.0)


def test_targets_file_is_well_formed():
    raw = facts.load_targets_file()["facts"]
    for name, entry in raw.items():
        assert {"quantity", "low", "high", "citation", "source", "calibrate"} <= set(entry), name
        assert entry["source"] in facts.SOURCES, name
        assert isinstance(entry["calibrate"], bool), name
        if entry["low"] is not None and entry["high"] is not None:
            assert entry["low"] <= entry["high"], name
        if 0 in (entry["low"], entry["high"]) and entry["high"] != entry["low"]:
            assert entry.get("scale"), f"{name}: a bound at 0 needs a scale"
    assert set(facts.load_targets()) == set(raw)


def test_every_target_has_a_function_and_every_function_a_target():
    targets = set(facts.load_targets())
    inputs = {name for needs, _ in facts.DERIVED.values() for name in needs}
    assert targets <= set(facts.FACTS) | set(facts.DERIVED)
    assert set(facts.FACTS) <= targets | inputs
    assert {f.market for f in facts.FACTS.values()} <= set(facts.MARKETS)


def test_calibration_parameters_are_config_keys_within_their_ranges():
    from omegaconf import OmegaConf

    from sim.config.compose import compose

    cfg = compose([])
    for key, (low, high, why) in facts.calibration_parameters().items():
        default = OmegaConf.select(cfg, key)
        assert default is not None, key
        assert low <= default <= high and why, key


def test_single_policy_market_keeps_the_number_of_businesses():
    overrides = facts.MARKETS["serve_all"]({"serve_all": 5, "fit_filter": 5, "picky": 5})
    assert overrides == {
        "market.policy_mix.serve_all": 15, "market.policy_mix.fit_filter": 0,
        "market.policy_mix.picky": 0,
    }  # fmt: skip


def test_a_small_real_run_gives_facts_in_their_domains():
    names = facts.needed(facts.load_targets())["mix"]
    cfg = configure(market_configs([], clients=400, weeks=52, markets=["mix"])["mix"], seed=1)
    values, whale = run_market(cfg, names)
    assert 0 <= values["share_1star"] <= 1 and 0 <= values["share_5star"] <= 1
    assert values["j_shape"] in (0.0, 1.0) and values["wom_ratio"] > 0
    assert -1 <= values["referred_retention_gap"] <= 1
    for policy in ("serve_all", "fit_filter"):  # a curve ends at 1, so it peaks at 1 or above
        assert values[f"firm_whale_peak_{policy}"] >= 1.0
    curve = pd.DataFrame(whale)
    assert set(curve["who"]) == set(WHALE_WHO)
    assert curve.groupby("who")["profit_share"].last().to_numpy() == pytest.approx([1.0, 1.0])


def test_summary_reports_mean_spread_and_inside():
    values = pd.DataFrame({"variant": 0, "seed": [0, 1], "fact": "wom_ratio", "value": [2.0, 3.0]})
    row = summary(values, facts.load_targets()).iloc[0]
    assert (row["mean"], row["seeds"], row["inside"]) == (2.5, 2, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["--seeds", "0"],
        ["--clients", "many"],
        ["--jobs", "0"],
        ["clients.wom.p_negative=2"],
        ["no.such.key=1"],
        ["--no-such-option"],
    ],
    ids=["zero_seeds", "not_a_number", "zero_jobs", "out_of_range", "unknown_key", "option"],
)
def test_facts_command_exits_2_with_one_line_on_bad_input(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clientsim-facts: ")


def test_facts_command_writes_table_values_and_whale_curves(tmp_path, capsys):
    out = tmp_path / "facts.md"
    argv = ["--seeds", "1", "--clients", "300", "--weeks", "26", "--jobs", "1", "--out", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert text.startswith("Made by `clientsim-facts --seeds 1") and "| wom_ratio |" in text
    assert "| wom_ratio |" in capsys.readouterr().out
    values = json.loads(out.with_suffix(".json").read_text())
    assert {row["fact"] for row in values["values"]} == set(facts.load_targets())
    whale = pd.read_parquet(out.with_suffix(".whale.parquet"))
    assert set(whale["market"]) == set(facts.MARKETS) and set(whale["who"]) == {*WHALE_WHO}


def test_facts_command_refuses_a_directory_as_out(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_whale_summary_reads_the_market_and_each_final_providers_policy():
    steps = pd.DataFrame({"business_id": [0, 1, 0, 1], "policy": ["a", "b", "a", "b"]})
    table = clients([10, 30, 20, 5, -1], jobs=[1, 1, 1, 1, 0], final_provider=[0, 1, 1, -1, -1])
    summary = whale_summary(table, steps)
    assert summary["market"]["buyers"] == whale_points(table, who="buyers")
    assert summary["market"]["applicants"]["clients"] == 5
    assert summary["by_final_provider"]["b"]["buyers"]["peak"] == pytest.approx(1.0)
    assert set(summary["by_final_provider"]) == {"a", "b"}


TINY = ["--seeds", "1", "--clients", "300", "--weeks", "26", "--jobs", "1"]


def test_facts_command_refuses_to_replace_a_users_file_beside_out(tmp_path, capsys):
    (tmp_path / "facts.md").write_text("my table")
    (tmp_path / "facts.json").write_text('{"mine": 1}')
    assert main([*TINY, "--out", str(tmp_path / "facts.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "facts.json" in err
    assert (tmp_path / "facts.md").read_text() == "my table"
    assert (tmp_path / "facts.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facts.json", "facts.md"]


def test_facts_command_replaces_its_own_files_but_not_one_changed_since(tmp_path, capsys):
    out = tmp_path / "facts.md"
    (tmp_path / "facts.md").write_text("a table the user names with --out: replaced")
    assert main([*TINY, "--out", str(out)]) == 0
    assert main([*TINY, "--out", str(out)]) == 0
    whale = out.with_suffix(".whale.parquet")
    whale.write_bytes(b"the user's own parquet")
    capsys.readouterr()
    assert main([*TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "facts.whale.parquet" in err
    assert whale.read_bytes() == b"the user's own parquet"
