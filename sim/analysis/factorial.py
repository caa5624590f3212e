"""Main effects and two-way interactions of a two-level full factorial, paired by seed.

An experiment with a ``factorial`` (``experiments/instruments.yaml``) sweeps every factor at
two levels, its ``on`` level and one other, in every combination (the cartesian product of
its axes). With each run's level coded x_k = +1 (on) or −1, the effect of a term (one factor,
or the product of two) on the gap is, seed by seed (common random numbers),

    effect = mean(gap | x = +1) − mean(gap | x = −1)

over the 2^k cells of that seed (Montgomery, *Design and Analysis of Experiments*, ch. 6:
the contrast over n 2^(k−1)). A main effect is what switching the factor on adds to the gap,
averaged over every setting of the others; a two-way interaction AB is half of how much A's
effect changes when B is switched on. The effects over seeds get the paired t interval of
``sim.analysis.stats.compare``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from sim.analysis import stats

EFFECT_COLUMNS = ("term", "order", "n", "effect", "ci_low", "ci_high", "boot_low", "boot_high",
                  "effect_size", "p_value")  # fmt: skip


def coded(values: pd.Series, on) -> np.ndarray:
    """+1 where `values` are at the factor's `on` level, −1 elsewhere."""
    if pd.api.types.is_bool_dtype(values.dtype) or isinstance(on, bool):
        at_on = values.astype(bool).to_numpy() == bool(on)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        at_on = np.isclose(values.to_numpy(dtype=float), float(on))
    else:
        at_on = values.astype(str).to_numpy() == str(on)
    return np.where(at_on, 1, -1)


def short(key: str) -> str:
    """A factor's name in a term: its key's last part (``policies.x.diagnosis``: diagnosis)."""
    return key.rsplit(".", 1)[-1].rsplit("/", 1)[-1]


def terms(factors) -> list[tuple[str, ...]]:
    """Every main effect, then every two-way interaction, in the factors' order."""
    return [(k,) for k in factors] + list(combinations(factors, 2))


def check_full(gaps: pd.DataFrame, factors: dict) -> None:
    """Raise ValueError unless each factor has two levels, one of them `on`, in all 2^k cells."""
    for key, on in factors.items():
        levels = gaps[key].dropna().unique()
        if len(levels) != 2 or (coded(gaps[key], on) > 0).all() or (coded(gaps[key], on) < 0).all():
            raise ValueError(f"factor {key} needs two levels, one of them {on!r}: {list(levels)}")
    cells = gaps[list(factors)].drop_duplicates()
    if len(cells) != 2 ** len(factors):
        raise ValueError(f"not a full factorial: {len(cells)} of {2 ** len(factors)} cells")


def seed_effects(gaps: pd.DataFrame, factors: dict, term: tuple[str, ...]) -> pd.Series:
    """A term's effect on ``gap`` per seed; seeds missing a cell (a failed run) are left out."""
    sign = np.prod([coded(gaps[k], factors[k]) for k in term], axis=0)
    cells = gaps.groupby("seed")["gap"].transform("size")
    full = gaps[cells == 2 ** len(factors)]
    side = pd.Series(sign, index=gaps.index)[full.index]
    means = full.groupby(["seed", side.rename("side")])["gap"].mean().unstack("side")
    return means[1] - means[-1]


def effects(
    gaps: pd.DataFrame,
    factors: dict,
    *,
    by=None,
    confidence=0.95,
    n_resamples=9999,
    missing_as_nan: bool = False,
) -> pd.DataFrame:
    """Main effects and two-way interactions on the gap, per group, with paired intervals.

    Args:
        gaps: one row per design point and seed: ``seed``, ``gap`` (a − b of a metric, e.g.
            ``sim.analysis.report.gaps``) and a column per factor.
        factors: factor column -> its ``on`` level (the other swept level is "off"); a factor
            held at one level (a smoke run's; not a column of `gaps` if the sweep held it) is
            left out.
        by: columns to group by (e.g. the market); default none.
        confidence: level of the intervals.
        n_resamples: bootstrap resamples (``stats.compare``).
        missing_as_nan: a group missing a cell gets NaN effects (``n`` 0) instead of a
            ValueError: for a metric of the survivors, which has no value in a cell where
            every business of the policy exited.

    Returns:
        One row per group and term: the by-columns, ``term`` ("diagnosis", "diagnosis ×
        prepayment"), ``order`` (1 or 2), ``n`` (seeds), ``effect`` (mean over seeds, in the
        gap's unit), its t and BCa intervals, ``effect_size`` (d_z) and ``p_value``.
    """
    by = [] if by is None else list(by)
    factors = {k: on for k, on in factors.items() if k in gaps and gaps[k].nunique() > 1}
    rows = []
    for values, group in stats.groups(gaps, by):
        try:
            check_full(group, factors)
        except ValueError:
            if not missing_as_nan:
                raise
            # a cell without a value (a survivors' metric where every business exited): the
            # effects of this metric here are not estimable; NaN, n = 0
            rows += [{**values, "term": " × ".join(map(short, term)), "order": len(term), "n": 0}
                     for term in terms(factors)]  # fmt: skip
            continue
        for term in terms(factors):
            per_seed = seed_effects(group, factors, term)
            found = stats.compare(per_seed.to_numpy(), np.zeros(len(per_seed)),
                                  confidence=confidence, n_resamples=n_resamples)  # fmt: skip
            rows.append({**values, "term": " × ".join(map(short, term)), "order": len(term),
                         "effect": found.pop("mean_diff"), **found})  # fmt: skip
    return pd.DataFrame(rows, columns=[*by, *EFFECT_COLUMNS])


def experiment_effects(runs: pd.DataFrame, experiment: dict, *, n_resamples=9999) -> pd.DataFrame:
    """A factorial experiment's effects on the gap of each of its metrics, per other axis.

    Args:
        runs: the sweep's runs table (``stats.load_runs``).
        experiment: its manifest's experiment (``compare``, ``metrics``, ``factorial``; the
            manifest keeps the factors in the order of their keys).
        n_resamples: bootstrap resamples.

    Returns:
        ``effects``' rows with a ``metric`` column first; grouped by every swept column that
        is neither a factor nor the compared axis (e.g. the market).
    """
    compare, factors = experiment["compare"], dict(experiment["factorial"])
    on = compare["on"]
    swept, keys = stats.pairing(runs, on)
    by = [*stats.sweeps(runs), *(c for c in swept if c not in factors)]
    tables = []
    for metric in experiment["metrics"]:
        pairs = stats.arms(runs, compare["a"], compare["b"], metric, on=on,
                           policy=compare.get("policy"), keys=keys)  # fmt: skip
        found = effects(pairs.assign(gap=pairs["a"] - pairs["b"]), factors, by=by,
                        n_resamples=n_resamples, missing_as_nan=True)  # fmt: skip
        tables.append(found.assign(metric=metric))
    table = pd.concat(tables, ignore_index=True)
    return table[["metric", *[c for c in table.columns if c != "metric"]]]
