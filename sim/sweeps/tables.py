"""The tidy tables of a sweep: a run's rows and weekly means, runs.parquet and steps.parquet.

Columns have stable dtypes; the manifest says what produced the tables. Every row says which
sweep it is of (`SWEEP_KEYS`) and which design point (its number in the sweep and its hash),
so that the tables of several sweeps concatenate without mixing their points.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.model import mechanics
from sim.runs.record import METRICS as METRIC_UNITS
from sim.runs.record import STEP_SERIES
from sim.runs.summary import (
    SHORT_RUN_WEEK,
    cumulative,
    cumulative_profit,
    gap_factors,
    nan_sum,
    policy_rows,
    summarize,
)
from sim.sweeps.directory import utc_now

METRICS = tuple(METRIC_UNITS)


METRIC_DTYPES = {"businesses": "Int64", "crossover_vs_serve_all": "Int64", "weeks": "Int64"}


#: steps.parquet (of a sweep): per week and policy, means per business unless said otherwise.
STEP_METRICS = STEP_SERIES

#: Which sweep a row is of: its experiment's name and the hash of its design (`design_hash`).
#: A point's number is its sweep's own: (`sweep_hash`, `point`) keys a design point across
#: concatenated sweeps (`POINT_KEYS`).
SWEEP_KEYS = ("experiment", "sweep_hash")
POINT_KEYS = ("sweep_hash", "point")
#: runs.parquet's keys: the sweep, the design point (number and hash), the job, the run and
#: its policy, the run's status and error; any other column but METRICS is a swept parameter.
RUN_TABLE_KEYS = (*SWEEP_KEYS, "point", "point_hash", "job", "seed", "policy", "status", "error")
#: steps.parquet's keys: the sweep, the design point, the run's seed and policy, the week.
STEP_TABLE_KEYS = (*SWEEP_KEYS, "point", "point_hash", "seed", "policy", "step")
_KEY_DTYPES = {"point": "int64", "job": "int64", "seed": "int64", "step": "int64"} | {
    k: "string" for k in ("experiment", "sweep_hash", "point_hash", "policy", "status", "error")
}


def run_rows(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per policy of one run: the summary's metrics and a few more (see METRICS)."""
    cum = cumulative_profit(steps)
    summary = summarize(steps, cum)
    factors = gap_factors(steps)
    revenue = cumulative(steps, "revenue")
    satisfaction, completed = steps["satisfaction"].to_numpy(), steps["completed"].to_numpy()
    acquisitions, business = steps["acquisitions"].to_numpy(), steps["business_id"].to_numpy()
    rows = []
    for policy, mine in policy_rows(steps):
        row = {"policy": str(policy), **summary["policies"][policy]}
        early = revenue[policy].iloc[SHORT_RUN_WEEK - 1] if len(revenue) >= SHORT_RUN_WEEK else None
        row["revenue_week_13"] = early
        row["revenue_horizon"] = float(revenue[policy].iloc[-1])
        weights = completed[mine]  # the mean satisfaction, weighted by completed jobs
        total = weights.sum()
        row["satisfaction"] = (
            float(nan_sum(satisfaction[mine] * weights) / total) if total else np.nan
        )
        row["first_sales"] = acquisitions[mine].sum() / np.unique(business[mine]).size
        row["crossover_vs_serve_all"] = (
            mechanics.crossover_week(cum[policy].to_numpy(), cum["serve_all"].to_numpy())
            if "serve_all" in cum and policy != "serve_all"
            else None
        )
        row["weeks"] = summary["weeks"]
        row.update(factors[policy])
        rows.append(row)
    return _typed_rows(rows)


def _typed_rows(rows: list[dict]) -> pd.DataFrame:
    """`rows` as a frame of the columns policy and METRICS, typed as `_typed` types them.

    Built column by column with its dtype (a missing value is NaN, or NA in an Int64
    column): a few rows cast by `DataFrame.astype` cost 2.5 ms, this 0.4 ms.
    """
    columns = {"policy": pd.array([row["policy"] for row in rows], dtype="string")}
    for metric in METRICS:
        values, dtype = [row.get(metric) for row in rows], METRIC_DTYPES.get(metric)
        columns[metric] = (
            np.array(values, dtype=np.float64) if dtype is None else pd.array(values, dtype=dtype)
        )
    return pd.DataFrame(columns)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    dtypes = {m: METRIC_DTYPES.get(m, "float64") for m in METRICS}
    return frame.astype({"policy": "string", **dtypes})


def step_means(steps: pd.DataFrame) -> pd.DataFrame:
    """Per week and policy: mean per business (sums for counts, active businesses)."""
    return step_means_of_runs([steps])[0]


def step_means_of_runs(runs: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """`step_means` of several runs' steps, in one pass of groupbys (a batch's runs).

    Each group (run, policy, week) is aggregated on its own, so every run's table is
    exactly its `step_means` alone.
    """
    steps = pd.concat(runs, keys=range(len(runs)), names=["run", None]).reset_index(level=0)
    frame = steps.assign(
        policy=steps["policy"].astype(str),
        active_reputation=steps["reputation"].where(steps["active"].astype(bool)),
        satisfaction_sum=steps["satisfaction"].fillna(0) * steps["completed"],
    )
    grouped = frame.groupby(["run", "policy", "step"], sort=True)
    out = grouped[["profit", "revenue"]].mean()
    out["reputation"] = grouped["active_reputation"].mean()
    sums = grouped[["satisfaction_sum", "completed"]].sum()  # mean S weighted by completed jobs
    out["satisfaction"] = (sums["satisfaction_sum"] / sums["completed"]).where(
        sums["completed"] > 0
    )
    out[["active", "acquisitions", "referral_acquisitions"]] = grouped[
        ["active", "acquisitions", "referral_acquisitions"]
    ].sum()
    cumulative = out.groupby(level=["run", "policy"])[["profit", "revenue"]].cumsum()
    out["cum_profit"], out["cum_revenue"] = cumulative["profit"], cumulative["revenue"]
    out = out.reset_index()
    counts = {"step": "int64", "active": "int64", "acquisitions": "int64"}
    counts["referral_acquisitions"] = "int64"
    out = out[["run", "policy", "step", *STEP_METRICS]].astype({"policy": "string", **counts})
    bounds = np.searchsorted(out["run"].to_numpy(), np.arange(len(runs) + 1))
    return [
        out.iloc[start:end].drop(columns="run").reset_index(drop=True)
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def swept_keys(values: list[dict]) -> list[str]:
    """The keys whose values differ between points (a single point: every key it sets)."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    if len(values) <= 1:
        return keys
    return [k for k in keys if len({json.dumps(v.get(k), default=str) for v in values}) > 1]


def design_hash(experiment: str, point_hashes: list[str], seeds: list[int]) -> str:
    """A sweep's identity: a hash of its experiment, design points and seeds (12 hex digits).

    A resumed sweep keeps it (its tables are those of the sweep run at once); two sweeps share
    it only when they are the same runs of the same code (`point_hash` hashes the code).
    """
    design = [experiment, sorted(set(point_hashes)), sorted({int(seed) for seed in seeds})]
    return hashlib.sha256(json.dumps(design).encode()).hexdigest()[:12]


def _joined(frames: list[pd.DataFrame], columns, experiment: str, sweep_hash: str):
    """The runs' frames as one table of `columns`, each row naming its sweep."""
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame.assign(experiment=experiment, sweep_hash=sweep_hash).reindex(columns=columns)


def tidy_runs(
    frames: list[pd.DataFrame], experiment: str, params: list[str], sweep_hash: str
) -> pd.DataFrame:
    """runs.parquet: RUN_TABLE_KEYS, the swept parameters, then METRICS, stable dtypes."""
    frame = _joined(frames, [*RUN_TABLE_KEYS, *params, *METRICS], experiment, sweep_hash)
    frame = frame.sort_values(["point", "seed", "policy"], kind="stable", ignore_index=True)
    keys = {k: _KEY_DTYPES[k] for k in RUN_TABLE_KEYS}
    return _typed_params(_typed(frame.astype(keys)), params)


def tidy_steps(
    frames: list[pd.DataFrame], experiment: str, params: list[str], sweep_hash: str
) -> pd.DataFrame:
    """steps.parquet of a sweep: STEP_TABLE_KEYS, STEP_METRICS, the swept parameters."""
    frame = _joined(frames, [*STEP_TABLE_KEYS, *STEP_METRICS, *params], experiment, sweep_hash)
    frame = frame.astype({k: _KEY_DTYPES[k] for k in STEP_TABLE_KEYS})
    frame = frame.sort_values(["point", "seed", "policy", "step"], ignore_index=True)
    return _typed_params(frame, params)


def _typed_params(frame: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    for key in params:
        values = _distinct(frame[key].dropna())
        if values and all(type(v) is bool for v in values):
            frame[key] = frame[key].astype("boolean")
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[key] = frame[key].astype("Int64")
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            frame[key] = frame[key].astype("float64")
        elif all(isinstance(v, str) for v in values) and frame[key].notna().all():
            frame[key] = frame[key].astype("string")  # names (group choices): as they are
        else:  # anything else is stored as its JSON text
            frame[key] = frame[key].map(_as_text).astype("string")
    return frame


def _distinct(column: pd.Series) -> list:
    """The values of a swept key's column, each object once, as Python values.

    A column of a numpy dtype holds values of one Python type, so its first stands for all;
    an object column repeats each point's value object, so those are kept once by identity.
    """
    if column.dtype != object:
        return column.iloc[:1].tolist()
    return list({id(v): v for v in column.tolist()}.values())


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else json.dumps(value, sort_keys=True)


def make_manifest(sweep: dict, exp: dict, params: list, points: list, failed: int) -> dict:
    """manifest.json: what ran, with which code and packages, and when."""
    from importlib.metadata import PackageNotFoundError, version

    from sim.runs.run import package_version

    packages = {}
    for name in ("numpy", "pandas", "pyarrow", "mesa", "hydra-core", "networkx", "scipy"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    compare = dict(exp.get("compare") or {})
    compare["on"] = compare.pop("axis", "policy")
    return {
        "experiment": {**exp, "compare": compare},
        "params": params,
        "points": [
            {"point": i, "hash": p["hash"], "overrides": p["overrides"], "values": p["values"]}
            for i, p in enumerate(points)
        ],
        "command": sweep.get("command", ""),
        "cwd": sweep.get("cwd"),
        "clientsim_version": package_version(),
        "git_commit": _git_commit(),
        "packages": packages,
        "python": sys.version.split()[0],
        "started": sweep.get("started"),
        "ended": utc_now(),
        "failed": failed,
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
