"""Inference on paired gaps: steps along x, slopes over seeds, censored weeks, many claims.

The tables here hold paired gaps: one row per design point and seed, the column ``gap`` (a − b,
in the metric's unit) and the swept parameter x. The seed is the unit of replication: under
common random numbers the runs of one seed at different design points share their random
numbers, so they are compared seed by seed (a step along x, a slope) and never pooled as if
independent. Every function is pure: a table or an array in, numbers or a table out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Level of every test here (two-sided); intervals are at 1 − ALPHA.
ALPHA = 0.05


def t_test(sample) -> tuple[float, float, float, float]:
    """Mean, 95% t interval and two-sided p of a sample against zero.

    Args:
        sample: paired differences (one per seed), in the metric's unit.

    Returns:
        ``(mean, low, high, p)``; the interval and p are NaN below two values. When every value
        is the same (a deterministic difference, as on a hand-made table) the interval is that
        value and p is 0, or 1 when the value is 0.
    """
    sample = np.asarray(sample, dtype=float)
    mean = float(np.mean(sample)) if len(sample) else np.nan
    if len(sample) < 2:
        return mean, np.nan, np.nan, np.nan
    if np.ptp(sample) <= 1e-9 * np.abs(sample).max():  # no spread: t is infinite or undefined
        return mean, mean, mean, 1.0 if mean == 0 else 0.0
    from scipy import stats  # here, not at the top: a run's figures need none of it (0.4 s)

    test = stats.ttest_1samp(sample, 0.0)
    low, high = test.confidence_interval(1 - ALPHA)
    return mean, float(low), float(high), float(test.pvalue)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN stays NaN, out of the family.

    The i-th smallest of m p-values becomes ``max over j <= i of (m - j + 1) p_(j)``, capped at
    1 (Holm 1979): reject where the adjusted p is below the level.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    m = int(tested.sum())
    order = np.argsort(p[tested])
    steps = np.maximum.accumulate((m - np.arange(m)) * p[tested][order]).clip(max=1.0)
    within = np.empty(m)
    within[order] = steps
    adjusted[tested] = within
    return adjusted


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        from scipy import stats

        adjusted[tested] = stats.false_discovery_control(p[tested], method="bh")
    return adjusted


# --- shapes: adjacent steps along x ------------------------------------------------------


def paired_steps(gaps: pd.DataFrame, x: str) -> pd.DataFrame:
    """The change of the gap between adjacent values of x, paired by seed, Holm across steps.

    Args:
        gaps: one row per (value of x, seed) with the column ``gap``.
        x: the swept parameter, ordered by its values.

    Returns:
        One row per adjacent pair: ``from``, ``to`` (values of x), ``n`` (seeds at both),
        ``step`` (mean of gap(to) − gap(from), metric's unit), ``low``/``high`` (its 95% t
        interval, unadjusted), ``p`` (two-sided), ``p_holm`` (Holm over the steps) and
        ``direction``: +1 (a significant rise after Holm), −1 (a significant fall), 0.
    """
    wide = gaps.pivot_table(index="seed", columns=x, values="gap").sort_index(axis=1)
    rows = []
    for low_x, high_x in zip(wide.columns[:-1], wide.columns[1:], strict=True):
        change = (wide[high_x] - wide[low_x]).dropna()
        mean, low, high, p = t_test(change)
        rows.append({"from": low_x, "to": high_x, "n": len(change), "step": mean,
                     "low": low, "high": high, "p": p})  # fmt: skip
    steps = pd.DataFrame(rows, columns=["from", "to", "n", "step", "low", "high", "p"])
    steps["p_holm"] = holm(steps["p"])
    significant = steps["p_holm"] < ALPHA
    steps["direction"] = np.where(significant, np.sign(steps["step"]), 0).astype(int)
    return steps


def pattern(steps: pd.DataFrame) -> str:
    """The signs of the significant steps in order, runs collapsed: "+", "-", "+-", "", ..."""
    signs = ["+" if d > 0 else "-" for d in steps["direction"] if d != 0]
    return "".join(s for i, s in enumerate(signs) if i == 0 or s != signs[i - 1])


def shape_text(steps: pd.DataFrame, x: str) -> str:
    """The shape found in words, e.g. "rises from x=0.5 to 1, then falls from 1 to 2.5"."""
    phases: list[list] = []  # [direction, first x, last x] of each run of significant steps
    for row in steps[steps["direction"] != 0].itertuples(index=False):
        if phases and phases[-1][0] == row.direction:
            phases[-1][2] = row.to
        else:
            phases.append([row.direction, row[0], row.to])  # row[0]: the column "from"
    if not phases:
        return f"no step along {x} significant after Holm"
    words = [f"{'rises' if d > 0 else 'falls'} from {a:g} to {b:g}" for d, a, b in phases]
    return f"along {x} the gap " + ", then ".join(words)


def steps_text(steps: pd.DataFrame) -> str:
    """The steps in short, significant ones (Holm) starred, e.g. "+8.87e+05*, -2.04e+05"."""
    marks = ["*" if d != 0 else "" for d in steps["direction"]]
    return ", ".join(f"{s:+,.3g}{m}" for s, m in zip(steps["step"], marks, strict=True))


def phase_p(steps: pd.DataFrame, sign: int) -> float:
    """The smallest Holm-adjusted p among the steps whose mean goes in direction ``sign``.

    1 when no step goes that way (no evidence), NaN when no step could be tested.
    """
    if steps["p_holm"].isna().all():
        return np.nan
    going = steps.loc[np.sign(steps["step"]) == sign, "p_holm"].dropna()
    return float(going.min()) if len(going) else 1.0


def monotone_verdict(steps: pd.DataFrame, increasing: bool, slope_side: str) -> tuple[str, float]:
    """A monotone claim judged by its steps, the slope over seeds breaking ties.

    Rejected when a step goes significantly against the claim (the gap is not monotone that
    way, whatever the slope says), supported when one goes significantly with it and none
    against; with no significant step, the side of the slope over seeds decides.

    Returns:
        The verdict and the p it rests on (Holm over the steps), NaN when the slope decides.
    """
    found, want = pattern(steps), 1 if increasing else -1
    if ("-" if increasing else "+") in found:
        return "rejected", phase_p(steps, -want)
    if found:
        return "supported", phase_p(steps, want)
    return slope_side, np.nan


def hump_verdict(steps: pd.DataFrame, means: pd.Series) -> tuple[str, float]:
    """A hump claim: a significant rise, then a significant fall, and no other turn.

    Supported when the significant steps rise then fall ("+-"); rejected when they turn any
    other way ("-+", "+-+", ...) or only rise (fall) with the largest mean gap at the high (low)
    end; inconclusive otherwise.

    Args:
        steps: ``paired_steps`` of the gap.
        means: the mean gap per value of x, sorted by x.

    Returns:
        The verdict and its p: the larger of the rise's and the fall's best Holm p.
    """
    found = pattern(steps)
    hump_p = float(np.max([phase_p(steps, 1), phase_p(steps, -1)]))  # NaN stays NaN
    if found == "+-":
        return "supported", hump_p
    if len(found) >= 2:
        return "rejected", hump_p
    at_end = {"+": means.index[-1], "-": means.index[0]}.get(found)
    if at_end is not None and means.idxmax() == at_end:
        return "rejected", phase_p(steps, 1 if found == "+" else -1)
    return "inconclusive", hump_p


def plateau_verdict(steps: pd.DataFrame) -> tuple[str, float]:
    """A plateau claim: the gap rises significantly, then no step after its last rise is.

    Supported when the significant steps only rise and the last step is not one of them;
    rejected when a step falls significantly or the last step still rises significantly;
    inconclusive when nothing is significant. Not significant is not "equal": a plateau here
    is "no evidence of a further rise", not a proof of a level gap.
    """
    found = pattern(steps)
    if "-" in found:
        return "rejected", phase_p(steps, -1)
    if found and steps["direction"].iloc[-1] > 0:
        return "rejected", float(steps["p_holm"].iloc[-1])
    return ("supported" if found else "inconclusive"), phase_p(steps, 1)


# --- slopes over seeds ---------------------------------------------------------------------


def seed_slopes(gaps: pd.DataFrame, x: str) -> pd.Series:
    """One least-squares slope of the gap on x per seed (gap unit per unit of x).

    Seeds with fewer than two distinct values of x have no slope and are left out.
    """
    slopes = {
        seed: np.polyfit(part[x].astype(float), part["gap"].astype(float), 1)[0]
        for seed, part in gaps.groupby("seed", sort=True)
        if part[x].nunique() >= 2
    }
    return pd.Series(slopes, name="slope", dtype=float).rename_axis("seed")


def slope_over_seeds(gaps: pd.DataFrame, x: str) -> dict:
    """The mean of the seeds' slopes with a 95% t interval over the seeds, and its p.

    Common random numbers pair a seed's runs across design points, so the seed is the unit: a
    slope per seed, then the interval of their mean with seeds − 1 degrees of freedom (the
    two-stage summary-measures approach; with every seed at every point it equals the fixed
    slope of a mixed model with a random intercept and slope per seed). Pooling seeds × points
    in one regression would count correlated runs as independent.

    Returns:
        ``slope``, ``low``, ``high`` (gap unit per unit of x), ``p`` (two-sided, slope 0) and
        ``seeds`` (the number of slopes).
    """
    slopes = seed_slopes(gaps, x)
    slope, low, high, p = t_test(slopes.to_numpy())
    return {"slope": slope, "low": low, "high": high, "p": p, "seeds": len(slopes)}


# --- censored weeks: Kaplan–Meier ----------------------------------------------------------


def kaplan_meier(weeks, observed) -> pd.DataFrame:
    """Kaplan–Meier estimate of the share of runs whose event has not happened by each week.

    Args:
        weeks: the week of the event, or the last week seen for a censored run.
        observed: True where the event happened at ``weeks``, False where the run was censored
            there (it had not happened by then).

    Returns:
        One row per distinct week with an event: ``week``, ``at_risk``, ``events`` and
        ``survival`` (the share without the event after that week, 0–1). At a tied week,
        events come before censorings.
    """
    weeks = np.asarray(weeks, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    rows, survival = [], 1.0
    for week in np.unique(weeks[observed]):
        at_risk = int((weeks >= week).sum())
        events = int(((weeks == week) & observed).sum())
        survival *= 1 - events / at_risk
        rows.append({"week": week, "at_risk": at_risk, "events": events, "survival": survival})
    return pd.DataFrame(rows, columns=["week", "at_risk", "events", "survival"])


def km_quantile(curve: pd.DataFrame, share: float) -> float:
    """The first week by which a ``share`` of runs have had the event; NaN if not reached."""
    reached = curve.loc[curve["survival"] <= 1 - share + 1e-12, "week"]
    return float(reached.iloc[0]) if len(reached) else np.nan


def restricted_mean(curve: pd.DataFrame, horizon: float) -> float:
    """Mean week of the event restricted to the horizon: the area under the curve up to it.

    A run censored at the horizon counts as the horizon, so this is a lower bound of the
    unrestricted mean, comparable between arms observed for the same horizon.
    """
    before = curve[curve["week"] <= horizon]
    knots = np.concatenate([[0.0], before["week"].to_numpy(), [horizon]])
    levels = np.concatenate([[1.0], before["survival"].to_numpy()])
    return float(np.sum(np.diff(knots) * levels))


# --- independent evidence: runs that several experiments share ----------------------------


def shared_runs(points: pd.DataFrame) -> pd.DataFrame:
    """The design points that more than one experiment ran, with the seeds they share.

    Seeds are reused everywhere (0..n−1), so two experiments that run the same model config
    run the same runs there: their verdicts are not independent evidence.

    Args:
        points: one row per (experiment, design point, seed) run: ``experiment`` (its label),
            ``where`` (the point in that experiment's words), ``design`` (a key of the model's
            config, the same in every experiment that runs it) and ``seed``.

    Returns:
        One row per shared design: ``design``, ``experiments`` (each "experiment (where)", in
        order of appearance) and ``seeds`` (the sorted seeds every one of them ran).
    """
    rows = []
    for design, runs in points.groupby("design", sort=False):
        by = runs.groupby(["experiment", "where"], sort=False)["seed"].agg(frozenset)
        if by.index.get_level_values("experiment").nunique() < 2:
            continue
        seeds = sorted(frozenset.intersection(*by.tolist()))
        if seeds:
            names = [f"{experiment} ({where})" if where else experiment
                     for experiment, where in by.index]  # fmt: skip
            rows.append({"design": design, "experiments": names, "seeds": seeds})
    return pd.DataFrame(rows, columns=["design", "experiments", "seeds"])


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact interval of a share of `k` in `n` (Clopper–Pearson), e.g. P(gap > 0)."""
    from scipy import stats

    interval = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)
