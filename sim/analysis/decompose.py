"""The profit gap of two policies split into quality, volume and exits, paired over seeds.

A policy's mean cumulative profit per business at the horizon is, in each run
(`sim.runs.summary.gap_factors`),

    profit_horizon = q * h + x

with q the profit per billed hour of its businesses still active at the horizon, h the hours
they billed per business of the policy, and x the frozen losses of those that exited, per
business. For two policies a and b in one market (a design point and seed), the gap splits
exactly, with the symmetric (Shapley) split of a product's change:

    Pi_a - Pi_b = (q_a - q_b) (h_a + h_b) / 2    quality: profit per billed hour
                + (h_a - h_b) (q_a + q_b) / 2    volume: billed hours sold
                + (x_a - x_b)                     exits: frozen losses of exited businesses

(expand the two products: the cross terms cancel). A side with no survivor has h = 0 and no q;
its q is taken as the other side's, so its whole difference q h falls in the volume part (0
when neither side has one). The parts are computed seed by seed, so their means over seeds
add up to the mean gap, and each gets the paired t interval of `sim.analysis.stats.compare`.

Profit and survival are separate measures: a verdict on profit uses ``profit_horizon`` (all
the policy's businesses, an exited one at its frozen loss); ``survival`` is the share still
active; the exits part says how much of a profit gap comes from businesses that exited.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis import stats

#: The run metrics the decomposition reads (`sim.runs.record.METRICS`).
FACTORS = ("profit_horizon", "profit_per_hour", "billed_hours", "exit_losses")
#: What is read of each arm: the factors and the survival (a side with no survivor has no q).
READ = (*FACTORS, "survival")
#: The parts, in the order they add up: quality + volume + exits = gap.
PARTS = ("quality", "volume", "exits", "gap")
#: Which factor each part is the difference of (shown as `a_value`, `b_value`).
PART_FACTOR = dict(zip(PARTS, ("profit_per_hour", "billed_hours", "exit_losses",
                               "profit_horizon"), strict=True))  # fmt: skip


def gap_parts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each pair's gap and its three parts (columns of ``PARTS``), in currency units.

    Args:
        pairs: one row per pair (a design point and seed), the factors and survival of a in
            ``<column>_a`` and of b in ``<column>_b`` (``READ``).

    Returns:
        `pairs` with the columns ``quality``, ``volume``, ``exits`` and ``gap``. Where a side's
        survivors have a profit but billed no hour, quality and volume are NaN (the identity
        has no per-hour factor there).
    """
    q_a, q_b = (
        pairs["profit_per_hour_a"].to_numpy(float),
        pairs["profit_per_hour_b"].to_numpy(float),
    )
    h_a, h_b = pairs["billed_hours_a"].to_numpy(float), pairs["billed_hours_b"].to_numpy(float)
    none_a, none_b = pairs["survival_a"].to_numpy() == 0, pairs["survival_b"].to_numpy() == 0
    q_a = np.where(none_a, np.where(none_b, 0.0, q_b), q_a)  # no survivor: the other's rate
    q_b = np.where(none_b, q_a, q_b)
    gap = pairs["profit_horizon_a"] - pairs["profit_horizon_b"]
    return pairs.assign(
        quality=(q_a - q_b) * (h_a + h_b) / 2,
        volume=(h_a - h_b) * (q_a + q_b) / 2,
        exits=pairs["exit_losses_a"] - pairs["exit_losses_b"],
        gap=gap,
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
        runs: a runs table (``stats.load_runs``) with the factors of ``FACTORS`` (``has_factors``:
            sweeps made since the ``billed_hours`` counter); rows with status other than ``ok``
            are left out.
        a: first policy, e.g. ``"fit_filter"``.
        b: second policy, e.g. ``"serve_all"``.
        by: columns to group by; default every swept parameter.
        confidence: level of the paired t intervals.
        n_resamples: bootstrap resamples (``stats.compare``).

    Returns:
        One row per group and part (``PARTS``): the by-columns, ``a``, ``b``, ``part``,
        ``a_value`` and ``b_value`` (means over seeds of the part's factor, ``PART_FACTOR``:
        profit per billed hour, billed hours per business, exit losses per business, profit
        per business), ``survival_a``, ``survival_b`` and the columns of ``stats.compare`` of
        the part against 0 (``mean_diff`` is the part's mean, in currency units).
    """
    by = stats.swept_columns(runs) if by is None else list(by)
    keys = list(dict.fromkeys(["experiment", "point", "seed", *by]))
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
