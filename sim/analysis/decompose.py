"""The profit gap of two policies split into quality, volume, capacity and exits, over seeds.

A policy's mean cumulative profit per business at the horizon is, in each run
(`sim.runs.summary.gap_factors`),

    profit_horizon = s p + x,   p = m h - c

with s its survival (share of its businesses active at the horizon), p the profit per
survivor: m its margin per billed hour (before fixed costs), h the hours it billed, c its
cost of capacity (salaries, ads, hiring and layoffs), and x the frozen losses of the
businesses that exited, per business. For policies a and b in one market (a design point
and seed), with bars for the mean of a and b and deltas for a − b, the gap splits exactly
(the symmetric, Shapley split of each product's change; the cross terms cancel):

    Pi_a - Pi_b = s̄ h̄ Δm                 quality: margin per billed hour
                + s̄ m̄ Δh                 volume: billed hours sold
                - s̄ Δc                   capacity: fixed costs paid (0 when every business
                                         pays for the same capacity)
                + Δx + p̄ Δs              exits: frozen losses of the exited businesses, and
                                         the profit of the survivors they are not

A side with no survivor has no m, h or c; they are taken as the other side's, so its whole
difference falls in the exits part. The parts are computed seed by seed, so their means over
seeds add up to the mean gap, and each gets the paired t interval of
`sim.analysis.stats.compare`. With identical capacity and no exits the gap is quality plus
volume: a policy that earns more per hour wins only if it sells enough hours.

Profit and survival are separate measures: a verdict on profit uses ``profit_horizon`` (all
the policy's businesses, an exited one at its frozen loss); ``survival`` is the share still
active; the exits part says how much of a profit gap comes from businesses that exited.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis import stats

#: The run metrics the decomposition reads (`sim.runs.record.METRICS`).
FACTORS = ("profit_horizon", "margin_per_hour", "billed_hours", "fixed_costs", "exit_losses")
#: What is read of each arm: the factors and the survival.
READ = (*FACTORS, "survival")
#: The parts, in the order they add up: quality + volume + capacity + exits = gap.
PARTS = ("quality", "volume", "capacity", "exits", "gap")
#: Which factor each part is the difference of (shown as `a_value`, `b_value`).
PART_FACTOR = dict(zip(PARTS, ("margin_per_hour", "billed_hours", "fixed_costs", "exit_losses",
                               "profit_horizon"), strict=True))  # fmt: skip


def gap_parts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each pair's gap and its four parts (columns of ``PARTS``), in currency units.

    Args:
        pairs: one row per pair (a design point and seed), the factors and survival of a in
            ``<column>_a`` and of b in ``<column>_b`` (``READ``).

    Returns:
        `pairs` with the columns of ``PARTS``. Where a side's survivors billed no hour (no
        margin per hour), quality, volume, capacity and exits are NaN.
    """
    s_a, s_b = pairs["survival_a"].to_numpy(float), pairs["survival_b"].to_numpy(float)
    side = {}
    for name in ("margin_per_hour", "billed_hours", "fixed_costs"):
        a, b = pairs[f"{name}_a"].to_numpy(float), pairs[f"{name}_b"].to_numpy(float)
        a = np.where(s_a == 0, np.where(s_b == 0, 0.0, b), a)  # no survivor: the other's
        side[name] = (a, np.where(s_b == 0, a, b))
    (m_a, m_b), (h_a, h_b), (c_a, c_b) = side.values()
    p_a, p_b = m_a * h_a - c_a, m_b * h_b - c_b
    s_mean = (s_a + s_b) / 2
    return pairs.assign(
        quality=s_mean * (h_a + h_b) / 2 * (m_a - m_b),
        volume=s_mean * (m_a + m_b) / 2 * (h_a - h_b),
        capacity=-s_mean * (c_a - c_b),
        exits=pairs["exit_losses_a"] - pairs["exit_losses_b"] + (p_a + p_b) / 2 * (s_a - s_b),
        gap=pairs["profit_horizon_a"] - pairs["profit_horizon_b"],
    )


def paired_factors(runs: pd.DataFrame, a: str, b: str, *, keys) -> pd.DataFrame:
    """The factors of policies a and b side by side, one row per pair matched on `keys`."""
    ok = runs[runs["status"] == "ok"]
    sides = [
        ok.loc[ok["policy"] == policy, [*keys, *READ]]
        .rename(columns={f: f"{f}_{side}" for f in READ})
        .astype({f"{f}_{side}": float for f in READ})
        for policy, side in ((a, "a"), (b, "b"))
    ]
    return sides[0].merge(sides[1], on=keys, validate="one_to_one")


def decompose_gap(
    runs: pd.DataFrame, a: str, b: str, *, by=None, confidence=0.95, n_resamples=9999
) -> pd.DataFrame:
    """The gap a − b in mean cumulative profit per business at the horizon, decomposed.

    Pairs are a's and b's runs of one market (design point and seed: common random numbers);
    the parts of each pair add up to its gap (``gap_parts``), and their means over seeds to
    the mean gap, to float precision.

    Args:
        runs: a runs table (``stats.load_runs``) with the factors of ``FACTORS``
            (``has_factors``: sweeps made since the ``billed_hours`` and ``fixed_costs``
            counters); rows with status other than ``ok`` are left out.
        a: first policy, e.g. ``"fit_filter"``.
        b: second policy, e.g. ``"serve_all"``.
        by: columns to group by; default every swept parameter (and ``sweep_hash`` when
            ``runs`` holds several sweeps).
        confidence: level of the paired t intervals.
        n_resamples: bootstrap resamples (``stats.compare``).

    Returns:
        One row per group and part (``PARTS``): the by-columns, ``a``, ``b``, ``part``,
        ``a_value`` and ``b_value`` (means over seeds of the part's factor, ``PART_FACTOR``:
        margin per billed hour, billed hours and fixed costs per survivor, exit losses per
        business, profit per business), ``survival_a``, ``survival_b`` and the columns of
        ``stats.compare`` of the part against 0 (``mean_diff`` is the part's mean, in currency
        units).
    """
    by = [*stats.sweeps(runs), *stats.swept_columns(runs)] if by is None else list(by)
    keys = list(dict.fromkeys([*stats.point_keys(runs), "seed", *by]))
    pairs = gap_parts(paired_factors(runs, a, b, keys=keys))
    rows = []
    for values, group in stats.groups(pairs, by):
        for part in PARTS:
            factor = PART_FACTOR[part]
            found = stats.compare(group[part], np.zeros(len(group)), confidence=confidence,
                                  n_resamples=n_resamples)  # fmt: skip
            rows.append({**values, "a": a, "b": b, "part": part,
                         "a_value": group[f"{factor}_a"].mean(),
                         "b_value": group[f"{factor}_b"].mean(),
                         "survival_a": group["survival_a"].mean(),
                         "survival_b": group["survival_b"].mean(), **found})  # fmt: skip
    columns = [*by, "a", "b", "part", "a_value", "b_value", "survival_a", "survival_b",
               *stats.COMPARE_COLUMNS]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).drop(columns=["mean_a", "mean_b"])


def has_factors(runs: pd.DataFrame) -> bool:
    """Whether a runs table records the decomposition's factors (older sweeps do not)."""
    return set(FACTORS) <= set(runs.columns) and bool(runs["billed_hours"].notna().any())
