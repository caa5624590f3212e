"""The run summary (sim.runs.summary): per policy outcomes at the horizon."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.config.compose import compose
from sim.runs.run import simulate
from sim.runs.summary import summarize


def steps_frame(reputation: dict[int, list[float]], active: dict[int, list[bool]], policy):
    """A steps table of a few weeks: per business its reputation and active flag by week."""
    rows = []
    for b, reps in reputation.items():
        for week, (rep, on) in enumerate(zip(reps, active[b], strict=True)):
            rows.append({
                "step": week, "business_id": b, "policy": policy[b], "profit": 1.0,
                "reputation": rep, "referral_acquisitions": 0, "acquisitions": 1,
                "completed": 1, "retention": 1.0, "accepted": 1, "applicants": 1, "active": on,
            })  # fmt: skip
    return pd.DataFrame(rows).astype({"policy": "category"})


def test_reputation_is_averaged_over_the_businesses_active_at_the_horizon():
    # business 1 exited in week 1: its reputation drifts back to the prior and is ignored
    steps = steps_frame(
        {0: [4.0, 4.5, 4.8], 1: [2.0, 2.5, 3.0], 2: [3.0, 3.5, 4.0]},
        {0: [True] * 3, 1: [True, False, False], 2: [True] * 3},
        {0: "fit_filter", 1: "fit_filter", 2: "fit_filter"},
    )
    policy = summarize(steps)["policies"]["fit_filter"]
    assert policy["reputation"] == pytest.approx((4.8 + 4.0) / 2, rel=1e-12)
    assert policy["survival"] == pytest.approx(2 / 3)


def test_reputation_of_a_policy_with_no_active_business_is_none():
    steps = steps_frame(
        {0: [4.0, 4.5], 1: [2.0, 3.0]},
        {0: [True, True], 1: [True, False]},
        {0: "fit_filter", 1: "hard_sell"},
    )
    policies = summarize(steps)["policies"]
    assert policies["hard_sell"]["reputation"] is None
    assert policies["hard_sell"]["survival"] == 0.0
    assert policies["fit_filter"]["reputation"] == 4.5


def test_reputation_in_a_run_with_exits_ignores_the_exited_businesses():
    cfg = compose([
        "market.n_clients=300", "steps=30", "progress=false", "market.initial_cash_weeks=8",
        "market.credit_limit_weeks=0", "market.exit_after=1", "market.demand_supply_ratio=0.3",
        "structure=before",  # with the structural switches every business exits here
    ])  # fmt: skip
    _, recorder = simulate(cfg)
    steps = recorder.steps_frame()
    last = steps[steps["step"] == steps["step"].max()]
    mixed = last.groupby("policy", observed=True)["active"].agg(lambda a: 0 < a.sum() < len(a))
    assert mixed.any()  # some policy has both exited and active businesses
    for policy, values in summarize(steps)["policies"].items():
        rows = last[last["policy"] == policy]
        active = rows.loc[rows["active"], "reputation"]
        if len(active) == 0:
            assert values["reputation"] is None
        else:
            assert values["reputation"] == pytest.approx(active.mean(), rel=1e-12)


def test_the_numbers_are_those_of_pandas_groupby_bit_for_bit():
    """The summaries reduce each policy's rows in numpy: the same sums and means as pandas."""
    from sim.runs.summary import gap_factors
    from sim.sweeps.tables import run_rows

    cfg = compose(["market.n_clients=300", "steps=30", "progress=false",
                   "market.initial_cash_weeks=12", "market.credit_limit_weeks=0",
                   "market.exit_after=1", "market.demand_supply_ratio=0.7"])  # fmt: skip
    steps = simulate(cfg)[1].steps_frame()  # fit_filter keeps 2 of 5 businesses: others exit
    assert steps["retention"].isna().any() and steps["satisfaction"].isna().any()
    policies, factors = summarize(steps)["policies"], gap_factors(steps)
    rows = run_rows(steps).set_index("policy")
    totals = steps.groupby("business_id")[["profit", "billed_hours"]].sum()
    last = steps[steps["step"] == steps["step"].max()]
    totals["active"] = last.set_index("business_id")["active"]
    assert 0 < totals["active"].sum() < len(totals)  # some businesses exited, some did not
    for policy, group in steps.groupby("policy", observed=True):
        weights = group["completed"]
        retention = (group["retention"] * weights).sum() / max(weights.sum(), 1)
        satisfaction = (group["satisfaction"].fillna(0) * weights).sum() / weights.sum()
        assert policies[policy]["retention"] == retention
        assert rows.loc[policy, "satisfaction"] == satisfaction
        mine = totals.loc[group["business_id"].unique()]
        alive = mine[mine["active"]]
        exits = mine.loc[~mine["active"], "profit"].sum() / len(mine)
        assert factors[policy]["exit_losses"] == exits
        if len(alive):
            assert factors[policy]["billed_hours"] == alive["billed_hours"].sum() / len(alive)
