"""Reading a sweep and comparing its arms: paired differences over seeds, crossover weeks.

A sweep directory holds ``runs.parquet`` (one row per design point, seed and policy),
``steps.parquet`` (the weekly policy means) and ``manifest.json``. Each row names its sweep
(``sweep_hash``) and design point (``point``, ``point_hash``); whatever goes point by point
keys a point by its sweep too, so the tables of several sweeps may be concatenated. Every
comparison here is paired: two arms that share a seed share their random numbers, so the
difference of the two is taken seed by seed and the statistics are those of the differences
(scipy's paired t interval and a BCa bootstrap). The functions are small and chain like
SALib's: load, compare, summarise.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis import inference
from sim.model import mechanics
from sim.runs.record import METRICS, STEP_SERIES
from sim.runs.summary import whale_curve, whale_points
from sim.sweeps.plain import is_plain_sweep, plain_tables
from sim.sweeps.tables import POINT_KEYS, RUN_TABLE_KEYS, STEP_TABLE_KEYS

PathOrPaths = str | PathLike | Sequence[str | PathLike]

COMPARE_COLUMNS = (
    "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high",
    "boot_low", "boot_high", "effect_size", "p_value",
)  # fmt: skip


def _paths(path: PathOrPaths) -> list[Path]:
    return [Path(path)] if isinstance(path, str | PathLike) else [Path(p) for p in path]


def _files(path: PathOrPaths, name: str) -> list[Path]:
    files = [p / name if p.is_dir() else p for p in _paths(path)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"no {name}: {', '.join(missing)}")
    return files


def _load(path: PathOrPaths, name: str) -> pd.DataFrame:
    frames = [_table(p, name) for p in _paths(path)]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _table(path: Path, name: str) -> pd.DataFrame:
    """A sweep's table `name`; of a plain `clientsim -m` sweep, built from its jobs' runs."""
    if path.is_dir() and not (path / name).is_file() and is_plain_sweep(path):
        return plain_tables(path, runs=name == "runs.parquet")
    (file,) = _files(path, name)
    return _with_sweep_hash(pd.read_parquet(file), file.parent)


def _with_sweep_hash(table: pd.DataFrame, sweep_dir: Path) -> pd.DataFrame:
    """A table of an older sweep (no ``sweep_hash``) named by its directory's absolute path."""
    if "sweep_hash" not in table:
        column = pd.array([str(sweep_dir.absolute())] * len(table), dtype="string")
        table.insert(int("experiment" in table), "sweep_hash", column)  # where the join puts it
    return table


def load_runs(path: PathOrPaths) -> pd.DataFrame:
    """The runs table of one sweep or of several, concatenated.

    Args:
        path: a sweep directory, its ``runs.parquet``, or a list of either. A plain
            ``clientsim -m`` sweep's directory gives the table its jobs' runs make
            (``sim.sweeps.plain``: each swept key a column).

    Returns:
        One row per (sweep, design point, seed, policy); failed runs included (``status``).
    """
    return _load(path, "runs.parquet")


def load_steps(path: PathOrPaths) -> pd.DataFrame:
    """The weekly policy means of one sweep or of several, concatenated.

    Args:
        path: a sweep directory, its ``steps.parquet``, or a list of either (a plain
            ``clientsim -m`` sweep's directory too, as for ``load_runs``).

    Returns:
        One row per (sweep, design point, seed, policy, week).
    """
    return _load(path, "steps.parquet")


def load_manifest(path: str | PathLike) -> dict:
    """The manifest of a sweep (its experiment, design points, versions and times).

    Args:
        path: a sweep directory or its ``manifest.json``.
    """
    (file,) = _files(path, "manifest.json")
    return json.loads(file.read_text())


def swept_columns(table: pd.DataFrame) -> list[str]:
    """The swept parameters of a runs or steps table: every column that is not fixed."""
    fixed = {*RUN_TABLE_KEYS, *STEP_TABLE_KEYS, *STEP_SERIES, *METRICS}
    return [column for column in table.columns if column not in fixed]


def point_keys(table: pd.DataFrame) -> list[str]:
    """The columns that key a design point of a table: its sweep (when recorded) and number."""
    return [key for key in POINT_KEYS if key in table]


def sweeps(table: pd.DataFrame) -> list[str]:
    """``["sweep_hash"]`` if a table holds several sweeps (a group is then one sweep's), else []."""
    return ["sweep_hash"] if "sweep_hash" in table and table["sweep_hash"].nunique() > 1 else []


def groups(table: pd.DataFrame, by: list[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """The rows of each value of ``by`` (all rows once when by is empty), with that value."""
    if not by:
        yield {}, table
        return
    for values, group in table.groupby(by, dropna=False, sort=True):
        yield dict(zip(by, values, strict=True)), group


def arms(runs, a, b, metric, *, on, policy, keys) -> pd.DataFrame:
    """The arms side by side: one row per pair, the metric of a in ``a``, of b in ``b``.

    Pairs are matched on ``keys`` (e.g. design point and seed); failed runs are left out.
    """
    ok = runs[runs["status"] == "ok"]
    if on != "policy":
        ok = ok[ok["policy"] == policy]

    def arm(value, name):
        side = ok.loc[ok[on] == value, [*keys, metric]]
        return side.rename(columns={metric: name}).astype({name: float})

    pairs = arm(a, "a").merge(arm(b, "b"), on=keys, validate="one_to_one")
    return pairs.dropna(subset=["a", "b"])


def compare(
    x_a: np.ndarray, x_b: np.ndarray, *, confidence=0.95, n_resamples=9999, random_state=0
) -> dict:
    """Statistics of paired samples: mean difference, t and BCa intervals, effect size.

    Args:
        x_a: the outcome of arm a, one value per pair.
        x_b: the outcome of arm b, in the same order.
        confidence: level of both intervals.
        n_resamples: bootstrap resamples.
        random_state: seed of the bootstrap.

    Returns:
        ``n``, ``mean_a``, ``mean_b``, ``mean_diff`` (a − b), ``ci_low``/``ci_high`` (paired t),
        ``boot_low``/``boot_high`` (BCa, NaN when n < 3 or the differences are all equal),
        ``effect_size`` (Cohen's d_z: mean difference over the s.d. of differences, NaN when
        that s.d. is 0) and ``p_value`` (paired t test), all in the metric's unit but d_z and p.
    """
    x_a, x_b = np.asarray(x_a, dtype=float), np.asarray(x_b, dtype=float)
    diff = x_a - x_b
    row = dict.fromkeys(COMPARE_COLUMNS, np.nan) | {"n": len(diff)}
    if len(diff) == 0:
        return row
    row.update(mean_a=x_a.mean(), mean_b=x_b.mean(), mean_diff=diff.mean())
    if len(diff) < 2:
        return row
    from scipy import stats  # here, not at the top: a run's figures need none of it (0.4 s)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: sd 0
        test = stats.ttest_rel(x_a, x_b)
        row["ci_low"], row["ci_high"] = test.confidence_interval(confidence)
    sd = diff.std(ddof=1)
    row.update(p_value=test.pvalue, effect_size=diff.mean() / sd if sd > 0 else np.nan)
    if len(diff) >= 3 and sd > 0:
        row["boot_low"], row["boot_high"] = _bootstrap(diff, confidence, n_resamples, random_state)
    return row


def _bootstrap(diff, confidence, n_resamples, random_state) -> tuple[float, float]:
    """BCa interval of the mean difference (resampling the differences keeps the pairs)."""
    from scipy import stats

    rng = np.random.default_rng(random_state)
    boot = stats.bootstrap(
        (diff,), np.mean, n_resamples=n_resamples, method="BCa",
        confidence_level=confidence, random_state=rng,
    )  # fmt: skip
    return boot.confidence_interval


def paired(
    runs: pd.DataFrame,
    a,
    b,
    metric: str,
    *,
    on: str = "policy",
    by=None,
    policy=None,
    confidence=0.95,
    n_resamples=9999,
    random_state=0,
) -> pd.DataFrame:
    """Paired differences a − b of a metric, per group (by default per design point).

    When ``on`` is ``"policy"``, a and b are two policies, paired within (design point, seed).
    Otherwise ``on`` is a swept parameter, a and b two of its values, the rows are those of
    ``policy``, and pairs share their seed and every other swept parameter. Pairs never span
    two sweeps.

    Args:
        runs: a runs table (``load_runs``); rows with status other than ``ok`` are left out.
        a: first arm (a policy name, or a value of ``on``).
        b: second arm.
        metric: a run metric, e.g. ``profit_horizon`` (see ``METRICS``).
        on: ``"policy"`` or a swept parameter.
        by: columns to group by; default every swept parameter but ``on`` (and ``sweep_hash``
            when ``runs`` holds several sweeps).
        policy: the policy compared when ``on`` is a parameter.
        confidence: level of the intervals, e.g. 0.95.
        n_resamples: bootstrap resamples.
        random_state: seed of the bootstrap.

    Returns:
        One row per group: the by-columns, ``metric``, ``a``, ``b`` and the columns of
        ``compare``; differences in the metric's unit (``METRICS``).
    """
    if on != "policy" and policy is None:
        raise ValueError(f"paired on {on!r} needs the policy compared (policy=...)")
    swept = [column for column in swept_columns(runs) if column != on]
    by = [*sweeps(runs), *swept] if by is None else list(by)
    pair_keys = [*point_keys(runs), "seed"] if on == "policy" else pair_keys_of(runs, swept)
    keys = list(dict.fromkeys([*pair_keys, *by]))
    pairs = arms(runs, a, b, metric, on=on, policy=policy, keys=keys)
    options = dict(confidence=confidence, n_resamples=n_resamples, random_state=random_state)
    rows = [
        {**values, "metric": metric, "a": a, "b": b, **compare(g["a"], g["b"], **options)}
        for values, g in groups(pairs, by)
    ]
    return pd.DataFrame(rows, columns=[*by, "metric", "a", "b", *COMPARE_COLUMNS])


def pair_keys_of(runs: pd.DataFrame, swept: list[str]) -> list[str]:
    """What two arms of a swept parameter share: their sweep, seed and other swept values."""
    return [key for key in ("sweep_hash", "seed") if key in runs] + swept


def pairing(runs: pd.DataFrame, on: str) -> tuple[list[str], list[str]]:
    """The swept columns other than `on`, and the keys that pair arm a's rows with arm b's.

    Two policies (`on` "policy") pair within one design point and seed; two values of a
    swept parameter pair across points that share everything else (`pair_keys_of`).
    """
    swept = [c for c in swept_columns(runs) if c != on]
    keys = [*point_keys(runs), "seed", *swept] if on == "policy" else pair_keys_of(runs, swept)
    return swept, keys


def crossover_weeks(steps: pd.DataFrame, a: str, b: str, *, by=None) -> pd.DataFrame:
    """The crossover week of policy a over policy b, per design point (of its sweep) and seed.

    The crossover week is the first week after which a's mean cumulative profit per business
    stays above b's (``sim.model.mechanics.crossover_week``), null when it has not by the
    horizon: a censored value (it may cross later), not a missing one.

    Args:
        steps: a steps table (``load_steps``).
        a: the policy that is to overtake.
        b: the policy overtaken.
        by: columns carried into the result; default the swept parameters.

    Returns:
        One row per (sweep, point, seed) where both policies ran: ``sweep_hash`` (when the
        table records it), ``point``, ``seed``, the by-columns, ``a``, ``b``,
        ``crossover_week`` (week from 0, nullable integer) and ``horizon`` (the last week
        recorded: where a null week is censored).
    """
    by = swept_columns(steps) if by is None else list(by)
    keys = [*point_keys(steps), "seed"]
    arms = steps[steps["policy"].isin([a, b])]
    wide = arms.pivot_table(index=[*keys, "step"], columns="policy", values="cum_profit")
    rows = [
        (*key, mechanics.crossover_week(series[a].to_numpy(), series[b].to_numpy()),
         series.index.get_level_values("step").max())
        for key, series in wide.groupby(level=keys)
        if {a, b} <= set(series.columns) and series[[a, b]].notna().all().all()
    ]  # fmt: skip
    weeks = pd.DataFrame(rows, columns=[*keys, "crossover_week", "horizon"])
    weeks["crossover_week"] = weeks["crossover_week"].astype("Int64")
    carried = [column for column in by if column not in keys]
    design = arms[[*keys, *carried]].drop_duplicates(keys)
    weeks = weeks.merge(design, on=keys, how="left").assign(a=a, b=b)
    return weeks[[*keys, *carried, "a", "b", "crossover_week", "horizon"]]


def crossover_summary(weeks: pd.DataFrame, *, by=None) -> pd.DataFrame:
    """The distribution of crossover weeks over seeds, per group (by default per design point).

    Seeds that never cross are censored at the horizon, never dropped: the quantiles are
    Kaplan–Meier's (``inference.kaplan_meier``), so a median is the week by which half of all
    seeds have crossed, and NaN when fewer than half have by the horizon. Summarising only the
    seeds that cross would condition on the outcome.

    Args:
        weeks: the result of ``crossover_weeks``.
        by: columns to group by; default ``point`` and the carried swept parameters.

    Returns:
        One row per group: the by-columns, ``a``, ``b``, ``n`` (seeds), ``crossed`` (seeds with
        a crossover), ``share_never`` (0–1, not crossed by the horizon), ``horizon`` (week),
        and in weeks: ``km_q25``, ``km_median``, ``km_q75`` (NaN: not reached by the horizon)
        and ``restricted_mean`` (mean of the week capped at the horizon, a lower bound).
    """
    fixed = {"seed", "a", "b", "crossover_week", "horizon"}
    by = [column for column in weeks.columns if column not in fixed] if by is None else list(by)
    rows = [{**values, **_censored(group)} for values, group in groups(weeks, by)]
    return pd.DataFrame(rows)


def _censored(group: pd.DataFrame) -> dict:
    horizon = float(group["horizon"].max())
    crossed = group["crossover_week"].notna().to_numpy()
    weeks = group["crossover_week"].astype("Float64").fillna(horizon).to_numpy(dtype=float)
    curve = inference.kaplan_meier(weeks, crossed)
    return {
        "a": group["a"].iloc[0], "b": group["b"].iloc[0], "n": len(group),
        "crossed": int(crossed.sum()), "share_never": (~crossed).mean(), "horizon": horizon,
        **{f"km_{name}": inference.km_quantile(curve, share)
           for name, share in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))},
        "restricted_mean": inference.restricted_mean(curve, horizon),
    }  # fmt: skip


# ---- whale curves: cumulative profit by client, most profitable first ---------------------


def whale_by_policy(
    clients: pd.DataFrame, steps: pd.DataFrame, *, who: str = "buyers"
) -> pd.DataFrame:
    """Whale curves per policy of each client's final provider, in one run.

    A client's profit contributed spans every provider it had, and a client who left its
    last provider has none (it is left out), so in a market of mixed policies this is an
    approximation; a market where every business follows one policy gives that policy's
    curve exactly (``whale_curve`` of the run; ``clientsim-facts`` does so).

    Returns:
        ``policy``, ``client_share``, ``profit_share`` (``whale_curve`` per policy).
    """
    policy_of = steps.drop_duplicates("business_id").set_index("business_id")["policy"]
    provider_policy = clients["final_provider"].map(policy_of)
    curves = [
        whale_curve(clients[provider_policy == policy], who=who).assign(policy=policy)
        for policy in sorted(provider_policy.dropna().unique())
    ]
    columns = ["policy", "client_share", "profit_share"]
    return (
        pd.concat(curves, ignore_index=True)[columns] if curves else pd.DataFrame(columns=columns)
    )


FIRM_WHALE_COLUMNS = ("business_id", "policy", "clients", "peak", "peak_at", "top_20")


def firm_whale(pairs: pd.DataFrame, *, who: str = "buyers") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each business's own whale curve: its clients sorted by the profit they gave it.

    Cooper & Kaplan (1991) draw a firm's curve over its own clients. A pair's profit
    contributed is what the client paid that business less the hours that business spent on
    it at the loaded cost, so a client served by two businesses counts in each curve with its
    own share. The curve and its readings are those of a run's (``whale_curve``,
    ``whale_points``), business by business.

    Args:
        pairs: a pairs.parquet table (one row per client and business).
        who: ``"buyers"`` (clients with a job done there) or ``"applicants"`` (also those it
            only screened, diagnosed or was paid by; ``WHALE_WHO``).

    Returns:
        (readings, curves): one row per business with ``FIRM_WHALE_COLUMNS`` (``clients``
        counted, ``peak`` share, ``peak_at`` client share, ``top_20`` share; NaN where its
        clients' total profit is not positive), and its curve's points, best client first
        (``business_id``, ``policy``, ``client_share``, ``profit_share``).
    """
    readings, curves = [], []
    for (business, policy), rows in pairs.groupby(["business_id", "policy"], observed=True):
        readings.append({"business_id": business, "policy": policy,
                         **whale_points(rows, who=who)})  # fmt: skip
        curves.append(whale_curve(rows, who=who).assign(business_id=business, policy=policy))
    readings = pd.DataFrame(readings, columns=list(FIRM_WHALE_COLUMNS))
    columns = ["business_id", "policy", "client_share", "profit_share"]
    curves = (
        pd.concat(curves, ignore_index=True)[columns] if curves else pd.DataFrame(columns=columns)
    )
    return readings, curves
