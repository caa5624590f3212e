"""The run summary: per policy outcomes and crossover weeks (summary.json, the CLI table)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from sim import mechanics

SHORT_RUN_WEEK = 13  # "this quarter": the early horizon of the hypotheses


def cumulative_profit(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean cumulative profit per business, by week (rows) and policy (columns)."""
    per_policy = steps.groupby(["step", "policy"], observed=True)["profit"].mean()
    return per_policy.unstack("policy").cumsum()


def _clean(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


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
    last = steps[steps["step"] == steps["step"].max()]
    finals = dict(tuple(last.groupby("policy", observed=True)))
    policies = {}
    for policy, group in steps.groupby("policy", observed=True):
        final = finals[policy]
        weights = group["completed"]
        policies[policy] = {
            "businesses": int(final["business_id"].nunique()),
            "profit_week_13": _clean(early[policy]),
            "profit_horizon": _clean(cum[policy].iloc[-1]),
            "reputation": _clean(final.loc[final["active"], "reputation"].mean()),
            "referral_share": _clean(
                group["referral_acquisitions"].sum() / max(group["acquisitions"].sum(), 1)
            ),
            "retention": _clean((group["retention"] * weights).sum() / max(weights.sum(), 1)),
            "acceptance": _clean(group["accepted"].sum() / max(group["applicants"].sum(), 1)),
            "survival": _clean(final["active"].mean()),
        }
    crossover = {
        f"{a}_vs_{b}": mechanics.crossover_week(cum[a].to_numpy(), cum[b].to_numpy())
        for a, b in itertools.permutations(cum.columns, 2)
    }
    return {"weeks": int(len(cum)), "policies": policies, "crossover_week": crossover}


def summary_table(summary: dict) -> str:
    """The table printed at the end of a run."""
    frame = pd.DataFrame(summary["policies"]).T
    frame = frame[["businesses", "profit_week_13", "profit_horizon", "reputation",
                   "retention", "referral_share", "survival"]]  # fmt: skip
    return frame.to_string(float_format=lambda x: f"{x:,.2f}")
