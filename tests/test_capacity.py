"""Capacity that adjusts and starting capacity by policy (sim.model.business, docs/ODD.md §7.9).

Hand-made businesses fed a load week after week show the rule's direction and bounds; small
runs show the records (capacity, idle hours, hiring and layoff costs) add up.
"""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from sim.config.compose import compose
from sim.model import ledger
from sim.model.business import Firms
from sim.model.engines.vectorized import VectorizedModel
from sim.model.policies import make_policy
from sim.runs.run import simulate

SMALL = ("market.n_clients=300", "steps=20", "progress=false")
ADJUST = ("market.capacity.adjust=true",)


def plain(*overrides: str):
    """The composed config as plain dataclasses (as `MarketModel` uses it)."""
    return OmegaConf.to_object(compose([*SMALL, *overrides]))


def one_business(capacity: float, *overrides: str) -> Firms:
    """One serve_all business starting with `capacity` hours a week."""
    cfg = plain(*ADJUST, *overrides)
    policy = make_policy("serve_all", cfg.policies["serve_all"])
    return Firms(cfg, [policy], capacity, [(1, 0)])


def weeks(firms: Firms, n: int, *, accepted_hours: float, backlog_hours: float) -> list[float]:
    """Run `n` weeks of the given load and backlog (and revenue enough to stay open).

    Returns:
        The capacity of each week.
    """
    capacities = []
    for _ in range(n):
        firms.start_week()
        capacities.append(float(firms.capacity[0]))
        firms.book(accepted_hours=accepted_hours, revenue=1e5)
        firms.backlog_hours[:] = backlog_hours
        firms.close_accounts()
    return capacities


def test_a_business_whose_accepted_work_stays_below_capacity_shrinks_to_the_floor():
    firms = one_business(20.0)
    capacities = weeks(firms, 200, accepted_hours=2.0, backlog_hours=0.0)
    assert np.all(np.diff(capacities) <= 0) and capacities[1] < capacities[0]
    floor = firms.cfg.market.capacity.min_share * 20.0
    assert capacities[-1] == pytest.approx(floor) and min(capacities) >= floor


def test_a_business_that_overflows_grows_to_the_ceiling():
    firms = one_business(20.0)
    capacities = weeks(firms, 200, accepted_hours=100.0, backlog_hours=200.0)
    assert np.all(np.diff(capacities) >= 0) and capacities[1] > capacities[0]
    ceiling = firms.cfg.market.capacity.max_share * 20.0
    assert capacities[-1] == pytest.approx(ceiling) and max(capacities) <= ceiling


def test_a_business_at_its_load_and_target_backlog_keeps_its_capacity():
    firms = one_business(20.0, "market.capacity.target_backlog_weeks=1")
    capacities = weeks(firms, 30, accepted_hours=20.0, backlog_hours=20.0)
    np.testing.assert_allclose(capacities, 20.0, rtol=1e-12)
    assert firms.hiring_cost[0] == firms.layoff_cost[0] == 0.0


def test_hiring_and_layoff_are_costs_of_the_week_and_salaries_follow_next_week():
    market = plain(*ADJUST).market
    rule, pay = market.capacity, market.salary + market.wage
    for accepted, backlog, cost in [(0.0, 0.0, "layoff_cost"), (60.0, 100.0, "hiring_cost")]:
        firms = one_business(20.0)
        credit_limit = firms.credit_limit.copy()
        weeks(firms, 1, accepted_hours=accepted, backlog_hours=backlog)
        change = firms.planned_capacity[0] - 20.0
        weeks_of_pay = rule.layoff_cost_weeks if cost == "layoff_cost" else rule.hire_cost_weeks
        assert abs(change) > 0
        assert getattr(firms, cost)[0] == pytest.approx(weeks_of_pay * pay * abs(change))
        fixed = market.salary * 20.0 + market.ad_spend
        assert firms.costs[0] == pytest.approx(fixed + getattr(firms, cost)[0])
        firms.start_week()
        assert firms.capacity[0] == firms.planned_capacity[0] != 20.0
        assert firms.fixed_cost[0] == market.salary * firms.capacity[0] + market.ad_spend
        np.testing.assert_array_equal(firms.credit_limit, credit_limit)


def test_capacity_stays_put_with_the_switch_off():
    cfg = plain("market.capacity.adjust=false")
    firms = Firms(cfg, [make_policy("serve_all", cfg.policies["serve_all"])], 20.0, [(1, 0)])
    capacities = weeks(firms, 20, accepted_hours=100.0, backlog_hours=200.0)
    assert capacities == [20.0] * 20 and firms.hiring_cost[0] == 0.0


def test_a_capacity_share_scales_the_starting_capacity_of_its_policy_only():
    alike = VectorizedModel(compose([*SMALL])).firms
    shared = VectorizedModel(compose([*SMALL, "policies.fit_filter.capacity_share=0.7"])).firms
    fit = shared.policy_names == "fit_filter"
    np.testing.assert_allclose(shared.capacity[fit], 0.7 * alike.capacity[fit], rtol=1e-15)
    np.testing.assert_array_equal(shared.capacity[~fit], alike.capacity[~fit])
    market = shared.cfg.market
    salaries = market.salary * shared.capacity
    np.testing.assert_array_equal(shared.fixed_cost, salaries + market.ad_spend)
    assert (shared.credit_limit[fit] < alike.credit_limit[fit]).all()


@pytest.fixture(scope="module")
def adjusting_run():
    cfg = compose([*SMALL, *ADJUST, "market.capacity.adjust_weeks=4",
                   "market.capacity.demand_weeks=2", "market.demand_supply_ratio=2"])  # fmt: skip
    model, recorder = simulate(cfg)
    return model, recorder.steps_frame()


def test_idle_hours_worked_and_overhead_add_up_to_capacity(adjusting_run):
    model, steps = adjusting_run
    firms = model.firms
    used = firms.hours_worked + firms.screening_hours + firms.diagnosis_hours
    np.testing.assert_allclose(ledger.business_columns(firms)["idle_hours"] + used,
                               firms.capacity, rtol=1e-12)  # fmt: skip
    used = steps["utilization"] * steps["capacity"]
    np.testing.assert_allclose(steps["idle_hours"] + used, steps["capacity"], rtol=1e-12)
    assert (steps["idle_hours"] >= 0).all() and (steps["idle_hours"] > 0).any()


def test_recorded_costs_include_salaries_of_the_weeks_capacity_and_its_changes(adjusting_run):
    model, steps = adjusting_run
    market = model.cfg.market
    assert steps.groupby("business_id")["capacity"].nunique().min() > 1  # capacities moved
    assert steps["hiring_cost"].sum() > 0 and steps["layoff_cost"].sum() > 0
    used = steps["utilization"] * steps["capacity"]
    rush_pay = (market.wage + market.salary) * market.service.rush_premium  # overtime
    expected = (market.wage * used + market.salary * steps["capacity"] + market.ad_spend
                + steps["hiring_cost"] + steps["layoff_cost"]
                + rush_pay * steps["rush_hours"])  # fmt: skip
    active = steps["active"] | (steps["costs"] > 0)  # the week of an exit is still booked
    np.testing.assert_allclose(steps["costs"][active], expected[active], rtol=1e-9)
