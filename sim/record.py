"""Per-step collection, tidy tables and atomic writes.

The columns come from their declarations: steps.parquet and market.parquet from the ledger
(`sim.ledger`), clients.parquet from the traits (`sim.population`) and the recorded client
state (`sim.state`); both engines feed them (clients through `MarketModel.read`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sim import ledger, population, state

#: clients.parquet: one row per client, its traits and what happened to it (`sim.state`).
#: Its published order; a newly recorded trait or state field is appended after these.
_CLIENT_LAYOUT = (
    "client_id", "segment", "difficulty", "difficulty_now", "pay_reliability", "budget",
    "value_angle", "misdiagnosis", "unrealistic", "need_rate", "talkativeness",
    "review_propensity", "prepay_ok", "need_arrivals", "jobs", "spend", "unpaid", "hours",
    "profit_contributed", "reviews", "referrals_made", "referred_by", "final_provider",
    "reformed",
)  # fmt: skip
CLIENT_COLUMNS = _CLIENT_LAYOUT + tuple(
    name
    for name in (*population.RECORDED, *(f.column for f in state.RECORDED))
    if name not in _CLIENT_LAYOUT
)

_UMASK = os.umask(0)
os.umask(_UMASK)


class Recorder:
    """Collects the per-step rows of a model; `collect` is called after every step."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, np.ndarray]]] = []  # (week, its columns)
        self.market: list[dict] = []

    def collect(self, model) -> None:
        """Append this week's business rows and market row."""
        week = model.week - 1
        columns = ledger.business_columns(model.firms)
        self.steps.append((week, columns))
        totals = {k: sum(columns[k].tolist()) for k in ledger.MARKET_SUMS}  # Python's sum
        self.market.append({"step": week, **model.tally, **totals})

    def steps_frame(self) -> pd.DataFrame:
        """steps.parquet as a DataFrame."""
        columns = ledger.STEP_COLUMNS
        weeks = [week for week, _ in self.steps]
        counts = [len(rows["business_id"]) for _, rows in self.steps]
        data = {"step": np.repeat(np.array(weeks, dtype=np.int64), counts)} | {
            name: np.concatenate([rows[name] for _, rows in self.steps] or [[]])
            for name in columns if name != "step"
        }  # fmt: skip
        frame = pd.DataFrame(data, columns=list(columns))
        return frame.astype({name: dtype for name, (dtype, _) in columns.items()})

    def market_frame(self) -> pd.DataFrame:
        """market.parquet as a DataFrame."""
        frame = pd.DataFrame(self.market, columns=list(ledger.MARKET_COLUMNS))
        return frame.astype(ledger.MARKET_COLUMNS)


def clients_frame(model) -> pd.DataFrame:
    """clients.parquet as a DataFrame: traits, then outcomes."""
    pop, market = model.population, model.cfg.market
    everyone = np.arange(len(pop))
    values = {f.name: model.read(f.name, everyone) for f in state.RECORDED}
    outcomes = {f.column: values[f.name].astype(f.recorded_dtype) for f in state.RECORDED}
    loaded_cost = market.wage + market.salary
    columns = {
        "client_id": np.arange(len(pop), dtype=np.int64),
        "segment": pd.Categorical.from_codes(pop["segment"], pop.segment_names),
        "value_angle": np.arctan2(pop["values"][:, 1], pop["values"][:, 0]),
        "profit_contributed": values["spend"] - values["hours"] * loaded_cost,
        **{k: pop[k] for k in population.RECORDED if k != "segment"},
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
