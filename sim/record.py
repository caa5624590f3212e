"""Per-step collection, tidy tables and atomic writes.

The column lists here are the one source of truth for the output files; both engines feed
them (businesses through their weekly counters, clients through `client_table`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sim import state

#: steps.parquet: one row per step and business.
STEP_COLUMNS = (
    "step", "business_id", "policy", "revenue", "costs", "profit", "cash", "reputation",
    "n_reviews", "applicants", "accepted", "declined", "acquisitions", "backlog_hours",
    "utilization", "difficult_hours_share", "completed", "satisfaction", "retention",
    "referrals_made", "warnings_made", "referral_acquisitions", "mean_difficulty",
    "mean_alignment", "unpaid", "active",
)  # fmt: skip
#: market.parquet: one row per step.
MARKET_COLUMNS = (
    "step", "adopters", "with_need", "unserved", "new_needs", "completed", "revenue", "costs",
    "profit", "unpaid", "reviews", "rating_1", "rating_2", "rating_3", "rating_4", "rating_5",
    "wom_positive", "wom_negative", "active_businesses",
)  # fmt: skip
#: clients.parquet: one row per client, its traits and what happened to it (`sim.state`).
#: Its published order; a newly recorded state field is appended after these.
_CLIENT_LAYOUT = (
    "client_id", "segment", "difficulty", "difficulty_now", "pay_reliability", "budget",
    "value_angle", "misdiagnosis", "unrealistic", "need_rate", "talkativeness",
    "review_propensity", "prepay_ok", "need_arrivals", "jobs", "spend", "unpaid", "hours",
    "profit_contributed", "reviews", "referrals_made", "referred_by", "final_provider",
    "reformed",
)  # fmt: skip
CLIENT_COLUMNS = _CLIENT_LAYOUT + tuple(
    f.column for f in state.RECORDED if f.column not in _CLIENT_LAYOUT
)

#: The columns of the three tables that count things: int64 in every table and engine.
COUNT_COLUMNS = frozenset({
    "step", "business_id", "client_id", "n_reviews", "applicants", "accepted", "declined",
    "acquisitions", "completed", "referrals_made", "warnings_made", "referral_acquisitions",
    "adopters", "with_need", "unserved", "new_needs", "reviews", "rating_1", "rating_2",
    "rating_3", "rating_4", "rating_5", "wom_positive", "wom_negative", "active_businesses",
    "need_arrivals", "jobs",
})  # fmt: skip


def _counts_as_int64(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: np.int64 for c in frame.columns if c in COUNT_COLUMNS})


_UMASK = os.umask(0)
os.umask(_UMASK)


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def business_row(week: int, b) -> dict:
    """The steps.parquet row of business `b` after week `week`."""
    worked = b.hours_worked + b.screening_hours + b.diagnosis_hours
    return {
        "step": week, "business_id": b.index, "policy": b.policy.name, "revenue": b.revenue,
        "costs": b.costs, "profit": b.profit, "cash": b.cash, "reputation": b.reputation,
        "n_reviews": b.n_reviews, "applicants": b.applicants, "accepted": b.accepted,
        "declined": b.declined, "acquisitions": b.acquisitions, "backlog_hours": b.backlog_hours,
        "utilization": worked / b.capacity,
        "difficult_hours_share": _ratio(b.difficult_hours, b.hours_worked),
        "completed": b.completed, "satisfaction": _ratio(b.satisfaction_sum, b.completed),
        "retention": _ratio(b.retained, b.completed), "referrals_made": b.referrals_made,
        "warnings_made": b.warnings_made, "referral_acquisitions": b.referral_acquisitions,
        "mean_difficulty": _ratio(b.accepted_difficulty_sum, b.accepted),
        "mean_alignment": _ratio(b.accepted_alignment_sum, b.accepted), "unpaid": b.unpaid,
        "active": b.active,
    }  # fmt: skip


class Recorder:
    """Collects the per-step rows of a model; `collect` is called after every step."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.market: list[dict] = []

    def collect(self, model) -> None:
        """Append this week's business rows and market row."""
        week = model.week - 1
        rows = [business_row(week, b) for b in model.businesses]
        self.steps.extend(rows)
        totals = {k: sum(r[k] for r in rows) for k in ("revenue", "costs", "profit", "unpaid")}
        active = sum(r["active"] for r in rows)
        self.market.append({"step": week, **model.tally, **totals, "active_businesses": active})

    def steps_frame(self) -> pd.DataFrame:
        """steps.parquet as a DataFrame."""
        frame = pd.DataFrame(self.steps, columns=list(STEP_COLUMNS))
        return _counts_as_int64(frame.astype({"policy": "category"}))

    def market_frame(self) -> pd.DataFrame:
        """market.parquet as a DataFrame."""
        return _counts_as_int64(pd.DataFrame(self.market, columns=list(MARKET_COLUMNS)))


def clients_frame(model) -> pd.DataFrame:
    """clients.parquet as a DataFrame: traits, then outcomes."""
    pop, market = model.population, model.cfg.market
    values = model.client_table()
    outcomes = {f.column: values[f.name].astype(f.recorded_dtype) for f in state.RECORDED}
    loaded_cost = market.wage + market.salary
    columns = {
        "client_id": np.arange(len(pop), dtype=np.int64),
        "segment": pd.Categorical.from_codes(pop["segment"], pop.segment_names),
        "value_angle": np.arctan2(pop["values"][:, 1], pop["values"][:, 0]),
        "profit_contributed": values["spend"] - values["hours"] * loaded_cost,
        **{k: pop[k] for k in CLIENT_COLUMNS if k in pop.arrays and k != "segment"},
        **outcomes,
    }
    return pd.DataFrame({k: columns[k] for k in CLIENT_COLUMNS})


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through `write(tmp_path)` into a temp file, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as parquet, atomically."""
    write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(path: Path, data) -> None:
    """Write JSON (sorted keys, NaN as null), atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))
