"""What prepayment and bad jobs cost (issue 23, jobs): each switch moves what it should.

Prepayment disliked in choice (`clients.choice.beta_prepay`), prepaid clients who leave a
queue (`clients.patience.prepaid_leave`), late jobs disputed (`market.payment.dispute_late`),
impossible jobs that fail (`market.jobs.impossible_failure`), rework of misdiagnosed jobs
(`market.service.rework_share`) and overtime on due jobs (`market.service.rush_share`). Rules
are called on hand-made arrays; whole runs are small markets of the model before the
switches (`BEFORE`), compared with one switch on.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from test_business import applicants, business
from test_model import run

from sim.config.compose import compose
from sim.model import phases, state
from sim.model.engines.vectorized import VectorizedModel

SELLERS = "market.demand_supply_ratio=2"  # queues: late and abandoned jobs
BEFORE = "structure=before"  # every structural switch off (docs/ODD.md §10a)


@cache
def model(*overrides: str) -> VectorizedModel:
    """A small market (built, not run) under `overrides`."""
    return VectorizedModel(compose(["market.n_clients=2000", "steps=4", BEFORE, *overrides]))


def totals(*overrides: str):
    """The sums over businesses and weeks of a small run's steps.parquet (vectorized)."""
    return run("vectorized", BEFORE, *overrides)[1].drop(columns=["policy"]).sum()


# --- prepayment in choice -----------------------------------------------------------------
def prepaying_share(beta_prepay: float) -> float:
    """Share of clients choosing among every business who pick one that requires prepayment."""
    m = model(f"clients.choice.beta_prepay={beta_prepay}")
    n, n_b = len(m.population), m.n_businesses  # every business open to all, no stories heard
    none, pair = np.full(n, -1, dtype=np.int16), state.arrays(state.PAIR, (n, n_b))
    picks, _ = phases.choose(
        m.world, np.arange(n), 3, none, np.zeros(n, np.uint64), np.zeros(n, np.int32), pair,
        m.business_state(),
    )  # fmt: skip
    return float(m.world.prepayment[picks].mean())


def test_clients_who_dislike_prepayment_pick_prepaying_businesses_less():
    assert model().world.prepayment.sum() > 0  # fit_filter and picky require it
    assert prepaying_share(-2.0) < prepaying_share(0.0) - 0.1


# --- prepaid clients who leave a queue ----------------------------------------------------
def test_a_prepaid_client_leaves_a_queue_past_its_patience_only_when_allowed():
    ids = np.array([1, 2])
    job = {"need_week": np.array([-1000, -1000]), "prepaid": np.array([True, False])}
    stays = phases.abandons(model().world, ids, 10, job)
    leaves = phases.abandons(model("clients.patience.prepaid_leave=true").world, ids, 10, job)
    np.testing.assert_array_equal(stays, [False, True])
    np.testing.assert_array_equal(leaves, [True, True])


# --- payment of finished jobs: disputes, failures, refunds --------------------------------
def finish(m: VectorizedModel, deadline: int, abandoned=False):
    """Jobs of 10 billed hours at business 0, half prepaid, judged in week 5 (accepted in 0)."""
    n = 40
    ids = np.arange(n)
    job = {
        "billed": np.full(n, 10.0), "prepaid": ids % 2 == 0, "accept_week": np.zeros(n, int),
        "deadline": np.full(n, deadline), "need_week": np.zeros(n, int),
        "misfit": np.zeros(n, bool), "extras": np.zeros(n, bool),
        "true_hours": np.full(n, 10.0), "stated_hours": np.full(n, 10.0),
    }  # fmt: skip
    provider = np.zeros(n, dtype=np.int64)  # each client's own provider: not a first job
    out = phases.finish_jobs(
        m.world, ids, 5, provider, job, provider, np.full(n, 0.3), np.full(n, abandoned)
    )
    return out, job["prepaid"], 10.0 * m.world.prices[0]


def test_a_disputed_late_job_is_paid_in_part_or_refunded_in_part():
    plain, prepaid, quote = finish(model(), deadline=1)
    out, _, _ = finish(model("market.payment.dispute_late=1"), deadline=1)
    assert out.disputed.all() and not plain.disputed.any()
    np.testing.assert_allclose(out.refund, np.where(prepaid, 0.5 * quote, 0.0))  # dispute_share
    np.testing.assert_allclose(out.paid, 0.5 * plain.paid)
    assert out.paid.sum() - out.refund.sum() < plain.paid.sum()


def test_a_job_on_time_is_never_disputed():
    out, _, _ = finish(model("market.payment.dispute_late=1"), deadline=6)
    assert not out.disputed.any() and not out.refund.any()


def test_a_failed_impossible_job_is_never_paid_and_prepaid_ones_are_refunded():
    plain, prepaid, quote = finish(model(), deadline=0)
    out, _, _ = finish(model("market.jobs.impossible_failure=1"), deadline=0)
    assert out.failed.all() and not out.paid.any() and not out.unpaid.any()
    np.testing.assert_array_equal(out.refund, np.where(prepaid, quote, 0.0))
    assert (out.satisfaction <= plain.satisfaction).all()
    assert (out.satisfaction < plain.satisfaction).any()


def test_only_impossible_jobs_fail():
    out, _, _ = finish(model("market.jobs.impossible_failure=1"), deadline=1)
    assert not out.failed.any()


def test_a_prepaid_client_who_left_the_queue_is_refunded_its_quote():
    out, prepaid, quote = finish(model("clients.patience.prepaid_leave=true"), 1, abandoned=True)
    np.testing.assert_array_equal(out.refund, np.where(prepaid, quote, 0.0))
    assert not out.paid.any() and not out.billed.any()


@pytest.mark.parametrize(
    "switch", ["market.payment.dispute_late=1", "clients.patience.prepaid_leave=true"]
)
def test_refunds_lower_the_revenue_of_businesses_that_take_prepayment(switch):
    before, after = totals(SELLERS), totals(SELLERS, switch)
    assert before["refunds"] == 0 and after["refunds"] > 0
    assert after["revenue"] < before["revenue"]


def test_certain_failure_fails_impossible_jobs_and_costs_revenue():
    before, after = totals(SELLERS), totals(SELLERS, "market.jobs.impossible_failure=1")
    assert before["failed"] == 0 and after["failed"] > 0
    assert after["revenue"] < before["revenue"]


# --- rework and rush hours ----------------------------------------------------------------
def test_rework_adds_unbilled_hours_to_a_misdiagnosed_job_only():
    a = applicants([0.9, 0.9])
    a.stated_hours[:] = 8.0, 6.0  # the second is misdiagnosed: 2 hours missed
    knobs = dict(threshold=0.0, diagnosis=False)
    plain = business(model(), 100.0, **knobs).take(a)
    reworked = business(model("market.service.rework_share=0.5"), 100.0, **knobs).take(a)
    np.testing.assert_array_equal(reworked.billed, plain.billed)
    np.testing.assert_allclose(reworked.work_hours - plain.work_hours, [0.0, 1.0])


def test_rework_raises_costs_but_not_revenue():
    buyers = "market.demand_supply_ratio=0.5"  # idle capacity: the rework is done
    before, after = totals(buyers), totals(buyers, "market.service.rework_share=1")
    assert before["rework_hours"] == 0 and after["rework_hours"] > 0
    assert after["costs"] > before["costs"] and after["revenue"] <= before["revenue"]


def test_rush_hours_go_to_due_jobs_up_to_their_share_of_capacity_at_a_premium():
    firms = business(model("market.service.rush_share=0.25"), 8.0)
    firms.start_week()
    worked = firms.serve(
        np.zeros(3, dtype=np.int64), np.array([6.0, 3.0, 4.0]), np.zeros(3, dtype=bool),
        np.array([False, True, True]),
    )  # fmt: skip
    # 8 regular hours: 6 to the first job, 2 to the second; 2 overtime hours to the due jobs
    np.testing.assert_allclose(worked, [6.0, 3.0, 1.0])
    assert firms.hours_worked[0] == 8.0 and firms.rush_hours[0] == 2.0
    market = firms.cfg.market
    firms.close_accounts()
    rush_pay = (market.wage + market.salary) * market.service.rush_premium
    wages = market.wage * 8.0 + rush_pay * 2.0
    assert firms.costs[0] == pytest.approx(wages + firms.fixed_cost[0])


def test_rush_hours_finish_more_jobs_at_a_higher_cost():
    before, after = totals(SELLERS), totals(SELLERS, "market.service.rush_share=0.3")
    assert before["rush_hours"] == 0 and after["rush_hours"] > 0
    assert after["completed"] > before["completed"] and after["costs"] > before["costs"]


# --- the record ---------------------------------------------------------------------------
def test_billed_hours_of_completed_jobs_are_what_postpaid_businesses_invoice():
    steps = run("vectorized", BEFORE)[1]  # no job fails or is disputed
    postpaid = steps[steps["policy"].isin(["serve_all", "hard_sell"])]
    price = model().cfg.market.price
    np.testing.assert_allclose(
        postpaid["revenue"] + postpaid["unpaid"], price * postpaid["billed_hours"]
    )
    assert postpaid["billed_hours"].sum() > 0


def test_the_engines_scenario_of_these_switches_exercises_every_one():
    from test_model import SCENARIOS

    steps = run("vectorized", *SCENARIOS["jobs-switches"])[1]
    for counter in ("refunds", "disputes", "failed", "rework_hours", "rush_hours"):
        assert steps[counter].sum() > 0, counter
