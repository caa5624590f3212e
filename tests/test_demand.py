"""The demand facts by year (sim.validation.demand): hand-made tables, then a small watched run."""

import numpy as np
import pandas as pd
import pytest

from sim.runs.run import simulate
from sim.validation import demand
from sim.validation.measure import configure, market_configs, run_market


def spend_table(years: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"year": y, "client_id": c, "spend": s}
                         for y, row in enumerate(years) for c, s in enumerate(row)])  # fmt: skip


def test_revenue_top20_is_the_top_fifth_of_each_years_buyers_averaged_over_years():
    # year 0: ten buyers, the top two give 50 + 10 of 100; year 1: five buyers (one paid
    # nothing and is no buyer), the top one gives 4 of 8
    year_0 = [50, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    year_1 = [4, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert demand.revenue_top20(spend_table([year_0, year_1])) == pytest.approx((0.6 + 0.5) / 2)


def test_revenue_top20_is_undefined_without_a_buyer():
    assert np.isnan(demand.revenue_top20(spend_table([[0.0, 0.0]])))


def test_annual_retention_counts_client_business_pairs_that_buy_again_next_year():
    bought = pd.DataFrame(
        [(0, 1, 0), (0, 2, 0), (0, 3, 1), (0, 4, 1),  # year 0: four pairs
         (1, 1, 0), (1, 3, 0), (1, 4, 1), (1, 5, 1),  # 1 stays with 0, 4 with 1; 3 switched
         (2, 5, 1)],  # year 2: 5 stays
        columns=["year", "client_id", "business_id"],
    )  # fmt: skip
    assert demand.annual_retention(bought, years=3) == pytest.approx((2 + 1) / (4 + 4))
    assert demand.annual_retention(bought, years=2) == pytest.approx(2 / 4)  # year 2 not full
    assert np.isnan(demand.annual_retention(bought, years=1))
    # business 1 closed during year 2: its pairs of year 1 do not count; year 0 keeps its 2
    # of 4, year 1 then only business 0's 2 pairs, none kept
    closed = pd.Series({1: 2})
    assert demand.annual_retention(bought, years=3, open_years=closed) == pytest.approx(2 / 6)


def test_open_years_counts_the_full_years_a_business_was_open_to_the_end_of():
    steps = pd.DataFrame({
        "step": np.tile(np.arange(1, 131), 2),
        "business_id": np.repeat([0, 1], 130),
        "active": np.r_[np.ones(130, bool), np.arange(1, 131) <= 103],
    })  # fmt: skip
    assert demand.open_years(steps).to_dict() == {0: 2, 1: 1}


def test_a_watched_run_gives_each_years_purchases_and_spend():
    cfg = configure(market_configs([], clients=300, weeks=120, markets=["mix"])["mix"], seed=2)
    purchases = demand.Purchases()
    model, _ = simulate(cfg, observe=purchases)
    spend, bought = purchases.spend(), purchases.purchases()
    assert sorted(spend["year"].unique()) == [0, 1]  # week 104-119: not a full year
    clients = np.arange(300)
    total = model.read("spend", clients).sum()
    assert 0 < spend["spend"].sum() <= total + 1e-6
    assert set(bought["business_id"]) <= set(range(model.firms.n))
    assert bought["jobs"].sum() <= model.read("jobs_done", clients).sum()
    assert bought["jobs"].min() >= 1


def test_a_small_run_gives_both_demand_facts_as_shares():
    cfg = configure(market_configs([], clients=300, weeks=110, markets=["mix"])["mix"], seed=1)
    values, _ = run_market(cfg, ["revenue_top20", "annual_retention"])
    assert 0.2 <= values["revenue_top20"] <= 1 and 0 <= values["annual_retention"] <= 1
