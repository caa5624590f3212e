"""Per client and business, what the client paid and the hours spent on it (pairs.parquet).

Each of a client's payments, refunds and hours is booked to the business concerned as well
(`sim.model.state.PAIR_ACCOUNTS`), so a business's own whale curve can be drawn
(`sim.analysis.stats.firm_whale`).
"""

import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis.stats import FIRM_WHALE_COLUMNS, firm_whale
from sim.api import run
from sim.config.compose import compose
from sim.runs.record import PAIR_COLUMNS, clients_frame, pairs_frame
from sim.runs.run import results, simulate, simulate_batch

#: Every way money and hours reach a client: prepayment disliked and refunded, disputes,
#: failed impossible jobs, rework, rush hours, clients who leave queues, screening.
SMALL = ("market.n_clients=300", "steps=20", "progress=false", "market.demand_supply_ratio=2",
         "clients.choice.beta_prepay=-1", "clients.patience.prepaid_leave=true",
         "market.payment.dispute_late=0.5", "market.jobs.impossible_failure=0.5",
         "market.service.rework_share=0.5", "market.service.rush_share=0.2")  # fmt: skip


def assert_pairs_add_up(clients: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """Summed over businesses, a client's pairs give its clients.parquet jobs, spend, hours.

    Exact for a client of one business (the same additions in the same order); to the last
    bits of a float for a client of several (its own sum runs in time order, not by business).
    """
    columns = ["jobs", "spend", "hours", "profit_contributed"]
    summed = pairs.groupby("client_id")[columns].sum().reindex(clients["client_id"], fill_value=0)
    one = (pairs.groupby("client_id").size() == 1).reindex(clients["client_id"], fill_value=True)
    one, expected = one.to_numpy(), clients.set_index("client_id")[columns]
    np.testing.assert_array_equal(summed["jobs"], expected["jobs"])
    for column in columns[1:]:
        np.testing.assert_array_equal(summed[column][one], expected[column][one])
        np.testing.assert_allclose(summed[column], expected[column], rtol=1e-12, atol=1e-9)
    assert (~one).any() and (clients["spend"] != 0).any() and (clients["hours"] > 0).any()


@pytest.mark.parametrize("engine", ["vectorized", "agents"])
def test_a_clients_pairs_add_up_to_its_spend_hours_and_jobs(engine):
    model, _ = simulate(compose([*SMALL, f"engine={engine}"]))
    pairs = pairs_frame(model)
    assert_pairs_add_up(clients_frame(model), pairs)
    assert ((pairs["jobs"] == 0) & (pairs["hours"] > 0)).any()  # screened, or left a queue


def test_each_market_of_a_batch_adds_up_and_is_its_run_alone():
    cfg = compose(list(SMALL))
    model, _ = simulate_batch(cfg, [5, 2])
    for market, seed in enumerate([5, 2]):
        pairs = pairs_frame(model, market)
        assert_pairs_add_up(clients_frame(model, market), pairs)
        alone = cfg.copy()
        alone.seed = seed
        pd.testing.assert_frame_equal(pairs, pairs_frame(simulate(alone)[0]), check_exact=True)


def test_pairs_have_the_declared_dtypes_and_only_pairs_that_dealt():
    model, recorder = simulate(compose(list(SMALL)))
    pairs = pairs_frame(model)
    assert pairs.dtypes.astype(str).to_dict() == PAIR_COLUMNS
    dealt = (pairs["spend"] != 0) | (pairs["hours"] != 0) | (pairs["jobs"] != 0)
    assert dealt.all() and not pairs.duplicated(["client_id", "business_id"]).any()
    policy_of = recorder.steps_frame().drop_duplicates("business_id").set_index("business_id")
    assert (pairs["policy"] == pairs["business_id"].map(policy_of["policy"])).all()
    cost = model.cfg.market.wage + model.cfg.market.salary
    np.testing.assert_array_equal(
        pairs["profit_contributed"], pairs["spend"] - pairs["hours"] * cost
    )


def pairs_table(rows) -> pd.DataFrame:
    """A pairs.parquet table of (client, business, policy, jobs, profit) rows."""
    table = pd.DataFrame(rows, columns=["client_id", "business_id", "policy", "jobs", "profit"])
    return table.assign(spend=table["profit"].clip(lower=0), hours=1.0,
                        profit_contributed=table["profit"].astype(float))  # fmt: skip


def test_firm_whale_sorts_each_business_own_clients_by_what_they_gave_it():
    # business 0 (a): its buyers gave 60, 30, -10, 20 (total 100); client 4 only applied.
    # business 1 (b): client 0 gave it 10, client 1 -20: no positive total, no readings.
    table = pairs_table([
        (0, 0, "a", 2, 60), (1, 0, "a", 1, 30), (2, 0, "a", 1, -10), (3, 0, "a", 1, 20),
        (4, 0, "a", 0, -5), (0, 1, "b", 1, 10), (1, 1, "b", 1, -20),
    ])  # fmt: skip
    readings, curves = firm_whale(table)
    assert tuple(readings.columns) == FIRM_WHALE_COLUMNS
    a = readings.set_index("business_id").loc[0]
    assert (a["policy"], a["clients"]) == ("a", 4)
    assert a["peak"] == pytest.approx(1.1) and a["peak_at"] == 0.75
    assert a["top_20"] == pytest.approx(0.6)  # ceil(0.2 * 4) = 1 client: 60 of 100
    np.testing.assert_allclose(curves.loc[curves["business_id"] == 0, "profit_share"],
                               [0.6, 0.9, 1.1, 1.0])  # fmt: skip
    assert math.isnan(readings.set_index("business_id").loc[1, "peak"])
    applicants, _ = firm_whale(table, who="applicants")
    assert applicants.set_index("business_id").loc[0, "clients"] == 5


def test_a_business_pairs_add_up_to_its_revenue_and_completed_jobs():
    model, recorder = simulate(compose(list(SMALL)))
    steps = recorder.steps_frame().groupby("business_id")[["revenue", "completed"]].sum()
    pairs = pairs_frame(model).groupby("business_id")[["spend", "jobs"]].sum()
    pairs = pairs.reindex(steps.index, fill_value=0)
    np.testing.assert_array_equal(pairs["jobs"], steps["completed"])
    np.testing.assert_allclose(pairs["spend"], steps["revenue"], rtol=1e-9, atol=1e-6)
    assert steps["revenue"].gt(0).sum() > 1


@pytest.mark.parametrize("engine", ["vectorized", "agents"])
def test_a_model_without_the_accounts_records_the_same_and_keeps_none(engine):
    """A run whose pairs are not read (a sweep's) leaves the accounts out, and nothing moves."""
    cfg = compose([*SMALL, f"engine={engine}"])
    kept, kept_recorder = simulate(cfg)
    left, left_recorder = simulate(cfg, accounts=False)
    for frame in ("steps_frame", "market_frame"):
        got, expected = getattr(left_recorder, frame)(), getattr(kept_recorder, frame)()
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(clients_frame(left), clients_frame(kept), check_exact=True)
    accounts = {"spend_at", "hours_at", "jobs_at"}
    held = set(left.p) if engine == "vectorized" else set(vars(left.clients[0]))
    assert not accounts & held and {"credit", "known_week"} <= held
    with pytest.raises(ValueError, match="accounts=False"):
        pairs_frame(left)


@pytest.mark.parametrize("engine", ["vectorized", "agents"])
def test_tables_built_while_freeing_the_pair_state_are_the_same(engine):
    """`results(free=True)`, as `clientsim` writes a run: the tables do not move."""
    cfg = compose([*SMALL, f"engine={engine}"])
    model, recorder = simulate(cfg)
    kept, kept_summary = results(cfg, model, recorder)
    freed, freed_summary = results(cfg, model, recorder, free=True)
    for name, table in kept.items():
        pd.testing.assert_frame_equal(freed[name], table, check_exact=True)
    assert freed_summary == kept_summary
    assert model.world is None and model.indices is None
    with pytest.raises(RuntimeError, match="freed"):
        model.step()


def test_pairs_false_gives_no_pairs_table_and_the_others_unmoved():
    with_pairs, without = run([*SMALL, "steps=8"]), run([*SMALL, "steps=8", "pairs=false"])
    assert without.pairs is None and len(with_pairs.pairs)
    for name in ("steps", "market", "clients"):
        pd.testing.assert_frame_equal(getattr(without, name), getattr(with_pairs, name),
                                      check_exact=True)  # fmt: skip
    assert without.summary == with_pairs.summary
