"""Common random numbers, and agreement of the two engines over many seeds."""

import numpy as np
import pandas as pd
import pytest

from sim.config.compose import compose
from sim.runs.record import clients_frame
from sim.runs.run import simulate
from sim.runs.summary import summarize

TRAITS = (
    "segment difficulty pay_reliability budget value_angle misdiagnosis unrealistic need_rate "
    "talkativeness review_propensity prepay_ok"
).split()
MIX_A = ["market.policy_mix.serve_all=4", "market.policy_mix.fit_filter=0",
         "market.policy_mix.picky=0", "market.policy_mix.hard_sell=0"]  # fmt: skip
MIX_B = ["market.policy_mix.serve_all=0", "market.policy_mix.fit_filter=2",
         "market.policy_mix.picky=3", "market.policy_mix.hard_sell=1"]  # fmt: skip


def run(*overrides):
    model, recorder = simulate(compose(list(overrides)))
    return model, recorder.steps_frame(), clients_frame(model)


@pytest.mark.parametrize("engine", ["vectorized", "agents"])
def test_policy_mixes_see_the_same_clients_network_and_need_arrivals(engine):
    base = [f"engine={engine}", "seed=11", "market.n_clients=300", "steps=20"]
    model_a, _, clients_a = run(*base, *MIX_A)
    model_b, _, clients_b = run(*base, *MIX_B)
    pd.testing.assert_frame_equal(clients_a[TRAITS], clients_b[TRAITS], check_exact=True)
    np.testing.assert_array_equal(clients_a["need_arrivals"], clients_b["need_arrivals"])
    np.testing.assert_array_equal(model_a.indices, model_b.indices)
    assert clients_a["need_arrivals"].sum() > 0
    # ... while what happens to them differs
    assert not np.array_equal(clients_a["spend"], clients_b["spend"])


def test_another_seed_draws_other_clients():
    _, _, clients_a = run("seed=1", "market.n_clients=200", "steps=2")
    _, _, clients_b = run("seed=2", "market.n_clients=200", "steps=2")
    assert not np.array_equal(clients_a["difficulty"], clients_b["difficulty"])


def _per_seed(engine: str, seeds) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        _, steps, _ = run(f"engine={engine}", f"seed={seed}", "market.n_clients=150", "steps=14")
        for policy, values in summarize(steps)["policies"].items():
            rows.append({"seed": seed, "policy": policy, **values})
    return pd.DataFrame(rows)


def test_engines_agree_within_sampling_error_over_8_seeds():
    seeds = range(100, 108)
    vec, agents = _per_seed("vectorized", seeds), _per_seed("agents", seeds)
    for metric in ("profit_horizon", "acceptance", "reputation", "referral_share"):
        a = vec.groupby("policy")[metric].agg(["mean", "std", "count"])
        b = agents.groupby("policy")[metric].agg(["mean", "std", "count"])
        se = np.sqrt(a["std"] ** 2 / a["count"] + b["std"] ** 2 / b["count"])
        assert ((a["mean"] - b["mean"]).abs() <= 3 * se + 1e-12).all(), metric
    # the engines read the same streams in the same shape, so they agree exactly too
    pd.testing.assert_frame_equal(vec, agents, check_exact=True)


def test_vectorized_skips_only_clients_with_no_business_open_to_them():
    """`look_from` is a lower bound on the first week some active business is open to a
    client (known and not blocked); a heard story makes its business known at once."""
    from sim.model.engines.vectorized import VectorizedModel
    from sim.model.phases import NEVER

    model = VectorizedModel(
        compose(["seed=4", "market.n_clients=400", "steps=40", "market.demand_supply_ratio=1.5"])
    )
    n_b = model.n_businesses
    for week in range(40):
        model.step()
        active = np.array([b.active for b in model.businesses])
        known = model.p["known_week"].reshape(-1, n_b)
        open_from = np.maximum(known, model.p["blocked_until"].reshape(-1, n_b))[:, active]
        assert (model.s["look_from"] <= open_from.min(axis=1, initial=NEVER)).all()
        heard = (model.p["credit_week"] >= 0) | (model.p["warning_week"] >= 0)
        assert (known.reshape(heard.shape)[heard] <= week).all()
    assert (model.p["blocked_until"] > 0).any() and heard.any()
