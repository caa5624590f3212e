"""Demand facts by year: who bought from whom, and how much each client spent.

Two stylised facts of demand need a run's purchases year by year, which its tables do not
keep (clients.parquet sums a client's whole run): the concentration of a year's revenue in
its top 20 % of buyers, and the annual retention of a business's clients. ``Purchases``
watches a run week by week (``sim.runs.run.simulate(observe=...)``) and keeps, per full year
of ``WEEKS_PER_YEAR`` weeks, each client's spend and the businesses it completed a job with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKS_PER_YEAR = 52
TOP_SHARE = 0.2  # the Pareto reading: what the top 20 % of buyers give


class Purchases:
    """A run's purchases by year, read from the model after every week.

    A client's spend is its cumulative ``spend`` (prepayments and payments); a completed job
    raises its ``jobs_done`` and its business is its ``last_provider`` (one job at a time, so
    at most one completion a week).
    """

    def __init__(self) -> None:
        self._spend: np.ndarray | None = None  # cumulative, as last read
        self._jobs: np.ndarray | None = None
        self._year_spend: list[np.ndarray] = []
        self._bought: list[tuple[int, np.ndarray, np.ndarray]] = []  # (year, client, business)

    def __call__(self, model) -> None:
        """Read this week's spend and completed jobs of every client of `model` (one market)."""
        everyone = np.arange(model.n_clients)
        spend, jobs = model.read("spend", everyone), model.read("jobs_done", everyone)
        if self._spend is None:
            self._spend, self._jobs = np.zeros_like(spend), np.zeros_like(jobs)
        year = (model.week - 1) // WEEKS_PER_YEAR
        if year == len(self._year_spend):
            self._year_spend.append(np.zeros(len(everyone)))
        self._year_spend[year] += spend - self._spend
        done = np.flatnonzero(jobs > self._jobs)
        self._bought.append((year, done, model.read("last_provider", done).astype(np.int64)))
        self._spend, self._jobs = spend, jobs
        self.weeks = model.week

    def spend(self) -> pd.DataFrame:
        """Per full year and client: ``year``, ``client_id``, ``spend`` (currency units)."""
        years = self._year_spend[: self.weeks // WEEKS_PER_YEAR]
        n = len(years[0]) if years else 0
        return pd.DataFrame({
            "year": np.repeat(np.arange(len(years), dtype=np.int64), n),
            "client_id": np.tile(np.arange(n, dtype=np.int64), len(years)),
            "spend": np.concatenate(years or [np.zeros(0)]),
        })  # fmt: skip

    def purchases(self) -> pd.DataFrame:
        """Per full year, client and business it completed jobs with: ``jobs`` (count)."""
        full = self.weeks // WEEKS_PER_YEAR
        parts = [(y, c, b) for y, c, b in self._bought if y < full]
        table = pd.DataFrame({
            "year": np.concatenate([np.full(len(c), y) for y, c, _ in parts] or [[]]),
            "client_id": np.concatenate([c for _, c, _ in parts] or [[]]),
            "business_id": np.concatenate([b for _, _, b in parts] or [[]]),
        }).astype("int64")  # fmt: skip
        counts = table.groupby(["year", "client_id", "business_id"]).size()
        return counts.rename("jobs").reset_index()


def revenue_top20(spend: pd.DataFrame) -> float:
    """Share of a year's revenue given by its top 20 % of buyers, mean over full years.

    Buyers of a year are the clients who paid anything in it; the top 20 % are the first
    ⌈0.2 n⌉ of them by the year's spend. NaN without a full year with a buyer.

    Args:
        spend: ``Purchases.spend()``: ``year``, ``client_id``, ``spend``.
    """
    shares = []
    for _, year in spend.groupby("year"):
        paid = np.sort(year.loc[year["spend"] > 0, "spend"].to_numpy())[::-1]
        if len(paid):
            shares.append(paid[: int(np.ceil(TOP_SHARE * len(paid)))].sum() / paid.sum())
    return float(np.mean(shares)) if shares else float("nan")


def annual_retention(purchases: pd.DataFrame, years: int, open_years=None) -> float:
    """Share of a business's clients of one year who buy from it again the next year.

    Pooled over businesses and pairs of consecutive full years: the (client, business)
    pairs with a completed job in year y and one in year y + 1, over the pairs of year y
    (for every y with a following full year). A business's retention is that of a business
    in business: with `open_years`, only the years y whose next year it was open to the end
    of are counted (a business that closes keeps nobody, which says nothing of how it
    served). NaN without two full years.

    Args:
        purchases: ``Purchases.purchases()``: ``year``, ``client_id``, ``business_id``.
        years: the number of full years watched (0, 1, ...).
        open_years: optional, per business id, the number of full years it was open to the
            end of (a Series or mapping; a business missing from it counts as always open).
    """
    pairs = purchases[["year", "client_id", "business_id"]].drop_duplicates()
    base = pairs[pairs["year"] < years - 1]
    if open_years is not None:
        open_to = base["business_id"].map(pd.Series(open_years)).fillna(years)
        base = base[base["year"] + 2 <= open_to]
    if base.empty:
        return float("nan")
    later = pairs.assign(year=pairs["year"] - 1)
    kept = base.merge(later, on=["year", "client_id", "business_id"], how="inner")
    return len(kept) / len(base)


def open_years(steps: pd.DataFrame) -> pd.Series:
    """Per business id, the number of full years (of ``WEEKS_PER_YEAR`` weeks) it was open.

    A business open to week 130 was open through years 0 and 1: 2.

    Args:
        steps: a steps.parquet table (``step`` from 1, ``business_id``, ``active``).
    """
    active = steps[steps["active"]].groupby("business_id")["step"].max()
    return (active // WEEKS_PER_YEAR).astype("int64")
