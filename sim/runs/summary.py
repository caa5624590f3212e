"""The run summary: per policy outcomes and crossover weeks (summary.json, the CLI table)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from sim.model import mechanics

SHORT_RUN_WEEK = 13  # "this quarter": the early horizon of the hypotheses


def cumulative_profit(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean cumulative profit per business, by week (rows) and policy (columns)."""
    return cumulative(steps, "profit")


def cumulative(steps: pd.DataFrame, column: str) -> pd.DataFrame:
    """The cumulative sum over weeks of the policies' mean per business of `column`.

    By week (rows) and policy (columns, those present, in the order of the categorical).
    """
    per_policy = steps.groupby(["step", "policy"], observed=True)[column].mean()
    return per_policy.unstack("policy").cumsum()


def _clean(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def policy_rows(steps: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Each policy of `steps` and the mask of its rows, as `groupby("policy")` gives them.

    The policies present, in the order of the categorical (of the sorted names, if the
    column is not one). The sums and means of the summaries are taken over these rows, in
    their order, as pandas takes them (numpy's pairwise sums, NaN as 0 in a sum and not
    counted in a mean), so every number is the one pandas gives, for a fraction of its cost.
    """
    policy = steps["policy"]
    cat = policy.array if isinstance(policy.dtype, pd.CategoricalDtype) else pd.Categorical(policy)
    codes = np.asarray(cat.codes)
    masks = ((name, codes == code) for code, name in enumerate(cat.categories))
    return [(name, rows) for name, rows in masks if rows.any()]


def nan_sum(values: np.ndarray) -> float:
    """The sum of `values`, NaN counted as 0 (`pandas.Series.sum`)."""
    nan = np.isnan(values)
    return (np.where(nan, 0.0, values) if nan.any() else values).sum()


def nan_mean(values: np.ndarray) -> float:
    """The mean of the values of `values` that are not NaN; NaN if none (`Series.mean`)."""
    counted = values.size - int(np.isnan(values).sum())
    return nan_sum(values) / float(counted) if counted > 0 else np.nan


def summarize(steps: pd.DataFrame, cum: pd.DataFrame | None = None) -> dict:
    """The run's summary: per policy outcomes, and crossover weeks.

    Per policy: mean cumulative profit per business at week 13 and at the horizon, final
    reputation, referral share of acquisitions, retention, acceptance and survival; and the
    crossover week of every ordered pair of policies (None when there is none).

    The final reputation is the mean over the policy's businesses still active at the
    horizon (None when none is): an exited business gets no more reviews and its rating
    only decays toward the prior, so it would pull the mean toward the prior. `cum`: the
    steps' `cumulative_profit`, if already computed.
    """
    cum = cumulative_profit(steps) if cum is None else cum
    early = cum.iloc[SHORT_RUN_WEEK - 1] if len(cum) >= SHORT_RUN_WEEK else cum.iloc[0] * np.nan
    col = {name: steps[name].to_numpy() for name in (
        "step", "business_id", "active", "reputation", "completed", "retention",
        "referral_acquisitions", "acquisitions", "accepted", "applicants")}  # fmt: skip
    last = col["step"] == col["step"].max()
    active = col["active"].astype(bool)
    policies = {}
    for policy, rows in policy_rows(steps):
        final = rows & last
        weights = col["completed"][rows]
        referrals = col["referral_acquisitions"][rows].sum()
        policies[policy] = {
            "businesses": int(np.unique(col["business_id"][final]).size),
            "profit_week_13": _clean(early[policy]),
            "profit_horizon": _clean(cum[policy].iloc[-1]),
            "reputation": _clean(nan_mean(col["reputation"][final & active])),
            "referral_share": _clean(referrals / max(col["acquisitions"][rows].sum(), 1)),
            "retention": _clean(nan_sum(col["retention"][rows] * weights) / max(weights.sum(), 1)),
            "acceptance": _clean(
                col["accepted"][rows].sum() / max(col["applicants"][rows].sum(), 1)
            ),
            "survival": _clean(nan_mean(active[final].astype(np.float64))),
        }
    crossover = {
        f"{a}_vs_{b}": mechanics.crossover_week(cum[a].to_numpy(), cum[b].to_numpy())
        for a, b in itertools.permutations(cum.columns, 2)
    }
    return {"weeks": int(len(cum)), "policies": policies, "crossover_week": crossover}


def gap_factors(steps: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per policy, the factors of its mean cumulative profit per business at the horizon.

    With n businesses of the policy, S the k still active at the horizon, E those that
    exited, and for a business P its cumulative profit, H its billed hours and F its fixed
    costs (salaries, ads, hiring and layoffs) over the run:

        profit_horizon = s (m h - c) + x,   s = k / n,   m = (sum_S P + sum_S F) / sum_S H,
                         h = sum_S H / k,   c = sum_S F / k,   x = sum_E P / n

    ``margin_per_hour`` m is what a survivor's billed hour earns before the fixed costs (the
    price less the wages of the hours it took, screening and diagnosis hours and unpaid
    invoices included; currency units per hour; NaN when the survivors billed nothing),
    ``billed_hours`` h and ``fixed_costs`` c are per survivor (hours, currency units),
    ``exit_losses`` x the frozen cumulative profit of the exited businesses per business of
    the policy, and s its ``survival``. `steps` is one run's steps.parquet (one row per week
    and business).
    """
    totals = steps.groupby("business_id")[["profit", "billed_hours", "fixed_costs"]].sum()
    ids = totals.index.to_numpy()  # sorted
    business, step = steps["business_id"].to_numpy(), steps["step"].to_numpy()
    last = step == step.max()
    active = np.zeros(len(ids), dtype=bool)
    active[np.searchsorted(ids, business[last])] = steps["active"].to_numpy(dtype=bool)[last]
    profit, hours_of, fixed_of = (totals[c].to_numpy() for c in totals.columns)
    factors = {}
    for policy, rows in policy_rows(steps):
        mine = np.zeros(len(ids), dtype=bool)
        mine[np.searchsorted(ids, business[rows])] = True
        alive = mine & active
        hours, fixed, k = nan_sum(hours_of[alive]), nan_sum(fixed_of[alive]), int(alive.sum())
        factors[policy] = {
            "margin_per_hour": (nan_sum(profit[alive]) + fixed) / hours if hours > 0 else np.nan,
            "billed_hours": hours / k if k else np.nan,
            "fixed_costs": fixed / k if k else np.nan,
            "exit_losses": nan_sum(profit[mine & ~active]) / int(mine.sum()),
        }
    return factors


#: Whose profit a whale curve sorts: clients who bought at least once, or every client a
#: business spent an hour on or was paid by (screened and declined applicants included; the
#: screening and diagnosis hours are in ``hours``, so their profit contributed is negative).
WHALE_WHO = ("buyers", "applicants")
TOP_SHARE = 0.2  # the whale curve's classic reading: what the top 20 % of clients give


def whale_clients(clients: pd.DataFrame, who: str = "buyers") -> pd.DataFrame:
    """The rows of clients.parquet a whale curve counts (``WHALE_WHO``)."""
    if who not in WHALE_WHO:
        raise ValueError(f"who must be one of {WHALE_WHO}, not {who!r}")
    bought = clients["jobs"] >= 1
    if who == "buyers":
        return clients[bought]
    return clients[bought | (clients["hours"] > 0) | (clients["spend"] > 0)]


def whale_curve(clients: pd.DataFrame, *, who: str = "buyers") -> pd.DataFrame:
    """The whale curve of a run: cumulative share of profit, most profitable clients first.

    Args:
        clients: a clients.parquet table (``profit_contributed`` = payments − hours spent on
            the client × the loaded hourly cost, over all its providers).
        who: ``"buyers"`` or ``"applicants"`` (``WHALE_WHO``).

    Returns:
        One row per client counted, best first: ``client_share`` (rank / n, in (0, 1]) and
        ``profit_share`` (cumulative share of their total profit; 1 at the last client).
    """
    profits = whale_clients(clients, who)["profit_contributed"].to_numpy(dtype=float)
    n = len(profits)
    return pd.DataFrame(
        {
            "client_share": np.arange(1, n + 1) / max(n, 1),
            "profit_share": mechanics.whale_curve(profits),
        }
    )


def whale_points(clients: pd.DataFrame, *, who: str = "buyers") -> dict[str, float]:
    """The readings of a whale curve: its peak, where it peaks, and the top 20 %'s share.

    ``top_20`` is the cumulative share after the first ⌈0.2 n⌉ clients. All three are NaN
    when the clients' total profit is not positive (the shares have no meaning then).
    """
    curve = whale_curve(clients, who=who)
    total = whale_clients(clients, who)["profit_contributed"].sum()
    if len(curve) == 0 or total <= 0:
        return {"clients": len(curve), "peak": np.nan, "peak_at": np.nan, "top_20": np.nan}
    share = curve["profit_share"].to_numpy()
    top = int(np.ceil(TOP_SHARE * len(share))) - 1
    best = int(np.argmax(share))
    return {
        "clients": len(curve), "peak": float(share[best]),
        "peak_at": float(curve["client_share"].iloc[best]), "top_20": float(share[top]),
    }  # fmt: skip


def whale_summary(clients: pd.DataFrame, steps: pd.DataFrame) -> dict:
    """The whale curve's readings (``whale_points``) of one run, for its summary.json.

    ``market``: every client of the run, buyers and applicants; ``by_final_provider``: per
    policy of the client's final provider, buyers (an approximation in a mixed market, see
    ``whale_by_policy``). NaN readings become None (JSON null).
    """
    policy_of = steps.drop_duplicates("business_id").set_index("business_id")["policy"]
    provider_policy = clients["final_provider"].map(policy_of)

    def points(table, who):
        return {k: (None if v != v else v) for k, v in whale_points(table, who=who).items()}

    return {
        "market": {who: points(clients, who) for who in WHALE_WHO},
        "by_final_provider": {
            str(policy): {"buyers": points(clients[provider_policy == policy], "buyers")}
            for policy in sorted(provider_policy.dropna().unique())
        },
    }
