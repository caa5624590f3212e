"""Per-step collection, tidy tables and atomic writes.

The columns come from their declarations: steps.parquet and market.parquet from the ledger
(`sim.model.ledger`), clients.parquet from the traits (`sim.model.population`) and the
recorded client state (`sim.model.state`), pairs.parquet from the pair accounts
(`sim.model.state.PAIR_ACCOUNTS`); both engines feed them (clients and pairs through
`MarketModel.read`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from sim.model import ledger, population, state

#: clients.parquet: one row per client, its traits and what happened to it (`sim.model.state`).
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

STEP_SERIES = (
    "profit", "cum_profit", "revenue", "cum_revenue", "reputation", "satisfaction",
    "active", "acquisitions", "referral_acquisitions",
)  # fmt: skip

# Run metrics: what each measures and its unit (axis labels are built from these).
METRICS = {
    "businesses": ("businesses following the policy", "count"),
    "profit_week_13": ("mean cumulative profit per business at week 13", "currency units"),
    "profit_horizon": (
        "mean cumulative profit per business at the horizon (an exited one at its frozen loss)",
        "currency units",
    ),
    "revenue_week_13": ("mean cumulative revenue per business at week 13", "currency units"),
    "revenue_horizon": ("mean cumulative revenue per business at the horizon", "currency units"),
    "reputation": ("mean reputation at the horizon", "stars, 1–5"),
    "retention": ("retention", "share, 0–1"),
    "first_sales": ("new clients won per business over the run (acquisitions)", "count"),
    "acceptance": ("acceptance of applicants", "share, 0–1"),
    "referral_share": ("referral share of acquisitions", "share, 0–1"),
    "survival": ("survival of businesses", "share, 0–1"),
    "satisfaction": ("client satisfaction", "share, 0–1"),
    "crossover_vs_serve_all": ("crossover week over serve_all", "week"),
    "weeks": ("horizon", "weeks"),
    # the factors of profit_horizon (`sim.runs.summary.gap_factors`, `sim.analysis.decompose`)
    "margin_per_hour": (
        "margin per billed hour (before fixed costs) of the businesses active at the horizon",
        "currency units per hour",
    ),
    "billed_hours": ("hours billed over the run per business active at the horizon", "hours"),
    "fixed_costs": (
        "salaries, ads, hiring and layoffs over the run per business active at the horizon",
        "currency units",
    ),
    "exit_losses": (
        "cumulative profit of the businesses that exited, per business",
        "currency units",
    ),
}


def package_version() -> str:
    """The installed clientsim version (or "unknown" when run from an uninstalled tree)."""
    try:
        return version("clientsim")
    except PackageNotFoundError:
        return "unknown"


_UMASK = os.umask(0)
os.umask(_UMASK)


class _Weeks:
    """The rows a model recorded, week by week, once for all its markets (`Recorder`)."""

    def __init__(self) -> None:
        self.weeks: list[int] = []
        self.columns: list[dict[str, np.ndarray]] = []  # `ledger.business_columns`, a week each
        self.tallies: list[dict] = []  # the model's tallies: ints, or one array per market
        self._table: tuple | None = None

    def table(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The weeks (W,), each business column (W, businesses) and each tally (W, markets)."""
        if self._table is None or len(self._table[0]) != len(self.weeks):
            columns, tallies = {}, {}
            if self.weeks:
                columns = {name: np.stack([week[name] for week in self.columns])
                           for name in self.columns[0]}  # fmt: skip
                tallies = {name: np.array([week[name] for week in self.tallies], dtype=np.int64)
                           .reshape(len(self.weeks), -1) for name in ledger.TALLIES}  # fmt: skip
            self._table = np.array(self.weeks, dtype=np.int64), columns, tallies
        return self._table


class Recorder:
    """Collects the per-step rows of a model; `collect` is called after every step.

    A model of several markets is recorded once a week for all of them (`Recorder.of_markets`):
    the recorder of market r takes its businesses (entries r, r + R, r + 2R, ... of `Firms`)
    and its tallies when a frame is built, and its frames are those of market r run alone.
    """

    def __init__(self, market: int = 0, markets: int = 1, weeks: _Weeks | None = None) -> None:
        self.market, self.markets = market, markets
        self._weeks = _Weeks() if weeks is None else weeks
        self.step_seconds = 0.0  # the time in the model's steps (`sim.runs.run.simulate`)

    @classmethod
    def of_markets(cls, markets: int) -> list[Recorder]:
        """One recorder per market of a model of `markets` markets, sharing the weeks."""
        weeks = _Weeks()
        return [cls(r, markets, weeks) for r in range(markets)]

    @property
    def weeks(self) -> list[int]:
        """The weeks recorded so far."""
        return self._weeks.weeks

    def collect(self, model) -> None:
        """Append this week's business rows and market tallies (of every market of `model`).

        A week is kept once: collected again (by another market's recorder), it is skipped.
        """
        weeks = self._weeks
        if weeks.weeks and weeks.weeks[-1] == model.week - 1:
            return
        weeks.weeks.append(model.week - 1)
        weeks.columns.append(ledger.business_columns(model.firms))
        weeks.tallies.append(model.tally)  # a new dict each week (`MarketModel.step`)

    def _mine(self, values: np.ndarray) -> np.ndarray:
        """This market's part (W, its businesses) of a column of every business (W, all)."""
        return values.reshape(len(values), -1, self.markets)[:, :, self.market]

    def steps_frame(self) -> pd.DataFrame:
        """steps.parquet as a DataFrame."""
        columns = ledger.STEP_COLUMNS
        weeks, table, _ = self._weeks.table()
        mine = {name: self._mine(values).ravel() for name, values in table.items()}
        per_week = len(mine["business_id"]) // len(weeks) if len(weeks) else 0
        data = {"step": np.repeat(weeks, per_week)} | {
            name: mine.get(name, np.array([])) for name in columns if name != "step"
        }
        if len(data["policy"]):  # the names as `astype("category")` has them (sorted), faster
            names, codes = np.unique(data["policy"].astype(str), return_inverse=True)
            data["policy"] = pd.Categorical.from_codes(codes, names.tolist())
        cast = {name: dtype for name, (dtype, _) in columns.items() if data[name].dtype != dtype}
        frame = pd.DataFrame(data, columns=list(columns))
        return frame.astype(cast) if cast else frame

    def market_frame(self) -> pd.DataFrame:
        """market.parquet as a DataFrame (a sum over the businesses is Python's, in their order)."""
        weeks, table, tallies = self._weeks.table()
        if not len(weeks):
            return pd.DataFrame(columns=list(ledger.MARKET_COLUMNS)).astype(ledger.MARKET_COLUMNS)
        data = {"step": weeks} | {name: values[:, self.market] for name, values in tallies.items()}
        for name in ledger.MARKET_SUMS:  # Python's `sum` (compensated), not numpy's
            rows = self._mine(table[name]).tolist()
            data[name] = np.array([sum(row) for row in rows], dtype=np.float64)
        frame = pd.DataFrame(data, columns=list(ledger.MARKET_COLUMNS))
        return frame.astype(ledger.MARKET_COLUMNS)


def clients_frame(model, market: int = 0) -> pd.DataFrame:
    """clients.parquet as a DataFrame: traits, then outcomes (of market `market` of a batch)."""
    pop, n = model.population, model.n_clients
    everyone = np.arange(market * n, (market + 1) * n)
    values = {f.name: model.read(f.name, everyone) for f in state.RECORDED}
    referrer = values["referred_by"]  # a client id of the batch: the referrer's id in its market
    values["referred_by"] = np.where(referrer >= 0, referrer - market * n, referrer)
    outcomes = {f.column: values[f.name].astype(f.recorded_dtype) for f in state.RECORDED}
    angles = pop["values"][everyone]
    columns = {
        "client_id": np.arange(n, dtype=np.int64),
        "segment": pd.Categorical.from_codes(pop["segment"][everyone], pop.segment_names),
        "value_angle": np.arctan2(angles[:, 1], angles[:, 0]),
        "profit_contributed": profit_contributed(model.cfg, values["spend"], values["hours"]),
        **{k: pop[k][everyone] for k in population.RECORDED if k != "segment"},
        **outcomes,
    }
    return pd.DataFrame({k: columns[k] for k in CLIENT_COLUMNS})


def profit_contributed(cfg, spend, hours):
    """What clients gave: their `spend` less the `hours` spent on them at the loaded cost.

    An hour costs its whole pay, wage + salary (a rush hour too, whose premium is not
    counted), in currency units; the rule of clients.parquet and pairs.parquet.
    """
    return spend - hours * (cfg.market.wage + cfg.market.salary)


#: pairs.parquet: one row per client and business that dealt with each other (money or hours).
PAIR_COLUMNS = {
    "client_id": "int64", "business_id": "int64", "policy": "category", "jobs": "int64",
    "spend": "float64", "hours": "float64", "profit_contributed": "float64",
}  # fmt: skip


def pairs_frame(model, market: int = 0) -> pd.DataFrame:
    """pairs.parquet as a DataFrame (of market `market` of a batch), by business, then client.

    A client's `jobs`, `spend` and `hours` with each business (`sim.model.state.PAIR_ACCOUNTS`);
    summed over its rows they are its clients.parquet `jobs`, `spend` and `hours`. A pair with
    no money, no hour and no job is left out (a client who never applied has no row). Read one
    business at a time, so a large market needs no temporaries of one entry per pair.

    Raises ValueError for a model built without the accounts (``accounts=False``).
    """
    if model.left_out:
        raise ValueError("pairs.parquet needs the pair accounts: this model was built "
                         "with accounts=False")  # fmt: skip
    n = model.n_clients
    everyone = np.arange(market * n, (market + 1) * n)
    names = model.firms.policy_names[market :: model.replicas]  # business b: entry b * R + r
    policies = sorted(set(names))
    parts = []
    for business in range(model.n_businesses):
        spend, hours, jobs = (model.read(f, everyone, business) for f in state.PAIR_ACCOUNTS)
        dealt = np.flatnonzero((spend != 0) | (hours != 0) | (jobs != 0))
        parts.append({
            "client_id": dealt, "business_id": np.full(len(dealt), business),
            "policy": np.full(len(dealt), policies.index(names[business])), "jobs": jobs[dealt],
            "spend": spend[dealt], "hours": hours[dealt],
        })  # fmt: skip
    columns = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    columns["policy"] = pd.Categorical.from_codes(columns["policy"], policies)
    columns["profit_contributed"] = profit_contributed(
        model.cfg, columns["spend"], columns["hours"]
    )
    return pd.DataFrame(columns).astype(PAIR_COLUMNS)


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
