"""Stylised facts: what each measures in a run's frames, its target, and its distance to it.

A fact is a pure function of one run's tables (``Frames``: market.parquet, steps.parquet,
clients.parquet as DataFrames) in one of a few markets (``MARKETS``): the default mix, a
market where every business serves all (the whale curve's market), one where every business
filters for fit, and the default mix as a seller's market (demand 2.5 times a supply that stays
put: capacity does not adjust). Targets live in
``sim/validation/targets.yaml`` (package data): a range, its citation and whether the source was
read.
``sim.cli.facts`` runs the markets over seeds and prints the table;
``sim.validation.calibrate`` moves parameters to bring the facts inside their ranges.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from sim.analysis.stats import firm_whale
from sim.model import mechanics
from sim.runs.summary import cumulative_profit, whale_points
from sim.validation import demand

SELLERS_RATIO = 2.5  # demand/supply of the seller's market (the validation plan's)


class Frames(NamedTuple):
    """One run's tables, as ``sim.runs.record`` builds them, and its purchases by year.

    ``spend`` and ``purchases`` are ``sim.validation.demand.Purchases``' tables (None when
    the run was not watched); ``pairs`` is pairs.parquet (None when not built).
    """

    market: pd.DataFrame
    steps: pd.DataFrame
    clients: pd.DataFrame
    spend: pd.DataFrame | None = None
    purchases: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None


# ---- the facts ------------------------------------------------------------------------------


def rating_shares(market: pd.DataFrame) -> np.ndarray:
    """Share of 1- to 5-star ratings among every review of the run (NaN without reviews)."""
    counts = market[[f"rating_{star}" for star in range(1, 6)]].sum().to_numpy(dtype=float)
    return counts / counts.sum() if counts.sum() > 0 else np.full(5, np.nan)


def share_1star(f: Frames) -> float:
    """Share of 1-star ratings among all reviews."""
    return float(rating_shares(f.market)[0])


def share_5star(f: Frames) -> float:
    """Share of 5-star ratings among all reviews."""
    return float(rating_shares(f.market)[4])


def j_shape(f: Frames) -> float:
    """1.0 if the ratings are J-shaped: 5-star the mode, and 1-star above 2-star (a second peak)."""
    shares = rating_shares(f.market)
    return float(np.argmax(shares) == 4 and shares[0] > shares[1])


def wom_ratio(f: Frames) -> float:
    """Positive to negative stories over the run, each story one neighbour told."""
    negative = f.market["wom_negative"].sum()
    return float(f.market["wom_positive"].sum() / negative) if negative else math.nan


def whale_top20(f: Frames) -> float:
    """Share of total profit given by the most profitable 20 % of buyers."""
    return whale_points(f.clients, who="buyers")["top_20"]


def whale_peak(f: Frames) -> float:
    """Peak of the buyers' whale curve (maximum cumulative share of profit)."""
    return whale_points(f.clients, who="buyers")["peak"]


def whale_peak_applicants(f: Frames) -> float:
    """Peak of the whale curve over every applicant, screening and diagnosis hours counted."""
    return whale_points(f.clients, who="applicants")["peak"]


def firm_whale_peak(policy: str) -> Callable[[Frames], float]:
    """The median over `policy`'s businesses of their own whale curves' peaks (buyers).

    Each business sorts its own clients by the profit they gave it (``firm_whale``); a
    business whose clients gave it no positive total has no peak and is left out. The
    median, since a peak is over that total: one business whose clients nearly cancel out
    would carry a mean.
    """

    def measure(f: Frames) -> float:
        readings, _ = firm_whale(f.pairs[f.pairs["policy"] == policy], who="buyers")
        peaks = readings["peak"].dropna()
        return float(peaks.median()) if len(peaks) else math.nan

    measure.__doc__ = f"Median peak of {policy}'s businesses' own whale curves (buyers)."
    return measure


def _referred(f: Frames) -> tuple[pd.DataFrame, pd.Series]:
    buyers = f.clients[f.clients["jobs"] >= 1]
    return buyers, buyers["referred_by"] >= 0


def referred_value_premium(f: Frames) -> float:
    """Profit per week of tenure of referred buyers over other buyers', minus 1.

    A buyer's tenure runs from the week of its first job (`first_job_week`) to the horizon,
    so clients acquired late are compared with those acquired early on equal time, as
    Schmitt, Skiera & Van den Bulte (2011) compare customers over the same window after
    acquisition. Means over buyers of profit contributed / weeks of tenure.
    """
    buyers, referred = _referred(f)
    weeks = f.market["step"].max() + 1 - buyers["first_job_week"]
    per_week = buyers["profit_contributed"] / weeks
    if referred.all() or not referred.any() or per_week[~referred].mean() <= 0:
        return math.nan
    return float(per_week[referred].mean() / per_week[~referred].mean() - 1.0)


def referred_lifetime_premium(f: Frames) -> float:
    """Mean profit contributed over the run by referred buyers over other buyers', minus 1.

    Blind to tenure: a referred client was acquired after its referrer, so it had fewer
    weeks to contribute.
    """
    buyers, referred = _referred(f)
    profit = buyers["profit_contributed"]
    if referred.all() or not referred.any() or profit[~referred].mean() <= 0:
        return math.nan
    return float(profit[referred].mean() / profit[~referred].mean() - 1.0)


def referred_margin_premium(f: Frames) -> float:
    """Profit per job of referred buyers over other buyers', minus 1 (blind to tenure)."""
    buyers, referred = _referred(f)
    per_job = [buyers.loc[m, "profit_contributed"].sum() / buyers.loc[m, "jobs"].sum()
               for m in (referred, ~referred)]  # fmt: skip
    if referred.all() or not referred.any() or per_job[1] <= 0:
        return math.nan
    return float(per_job[0] / per_job[1] - 1.0)


def referred_retention_gap(f: Frames) -> float:
    """Share of referred buyers still with a provider at the horizon, minus other buyers' share."""
    buyers, referred = _referred(f)
    kept = buyers["final_provider"] >= 0
    if referred.all() or not referred.any():
        return math.nan
    return float(kept[referred].mean() - kept[~referred].mean())


def crossover_fit_filter(f: Frames) -> float:
    """Crossover week of fit_filter over serve_all (``mechanics.crossover_week``); NaN if none."""
    cum = cumulative_profit(f.steps)
    if not {"fit_filter", "serve_all"} <= set(cum.columns):
        return math.nan
    week = mechanics.crossover_week(cum["fit_filter"].to_numpy(), cum["serve_all"].to_numpy())
    return math.nan if week is None else float(week)


def _per_completed(f: Frames, column: str, policy: str = "serve_all") -> float:
    rows = f.steps[(f.steps["policy"] == policy) & (f.steps["completed"] > 0)]
    weights = rows["completed"]
    return float((rows[column] * weights).sum() / weights.sum()) if weights.sum() else math.nan


def sellers_satisfaction(f: Frames) -> float:
    """Mean satisfaction of serve_all's completed jobs (weighted by jobs), whole run."""
    return _per_completed(f, "satisfaction")


def sellers_retention(f: Frames) -> float:
    """Share of serve_all's completed jobs after which the client stayed, whole run."""
    return _per_completed(f, "retention")


def sellers_left_share(f: Frames) -> float:
    """Share of the run's new jobs that clients gave up or abandoned out of patience."""
    left = f.market["abandoned"].sum() + f.market["gave_up"].sum()
    needs = f.market["new_needs"].sum()
    return float(left / needs) if needs else math.nan


def sellers_backlog_growth(f: Frames) -> float:
    """Growth of the market's total backlog (hours) over the run's last year, over its level.

    0 when the queues have levelled off; a queue that nobody leaves keeps growing.
    """
    backlog = f.steps.groupby("step")["backlog_hours"].sum()
    if len(backlog) < 2 * 52:
        return math.nan
    year_ago, now = backlog.iloc[-53], backlog.iloc[-1]
    return float((now - year_ago) / year_ago) if year_ago > 0 else math.nan


def revenue_concentration(f: Frames) -> float:
    """Share of a year's revenue from its top 20 % of buyers (``demand.revenue_top20``)."""
    return demand.revenue_top20(f.spend)


def annual_retention(f: Frames) -> float:
    """Share of a business's clients of a year who buy from it again the next year."""
    years = f.spend["year"].nunique()
    return demand.annual_retention(f.purchases, years, demand.open_years(f.steps))


# ---- the markets and the registry -------------------------------------------------------------


def single_policy(policy: str) -> Callable[[dict], dict]:
    """Settings that give every business of the mix to `policy` (same number of businesses)."""

    def overrides(mix: dict) -> dict:
        total = sum(mix.values())
        return {f"market.policy_mix.{name}": total if name == policy else 0 for name in mix}

    overrides.__doc__ = f"every business follows {policy}"
    return overrides


#: Each market: config keys set after the user's overrides, from the composed policy mix.
MARKETS: dict[str, Callable[[dict], dict]] = {
    "mix": lambda mix: {},
    "serve_all": single_policy("serve_all"),
    "fit_filter": single_policy("fit_filter"),
    # demand 2.5 times a supply that cannot grow: with capacity that adjusts the businesses
    # would hire the shortage away within a year, and there would be no seller's market left
    "sellers": lambda mix: {"market.demand_supply_ratio": SELLERS_RATIO,
                            "market.capacity.adjust": False},
}  # fmt: skip


@dataclass(frozen=True)
class Fact:
    """A fact's function and the market it is measured in."""

    market: str
    measure: Callable[[Frames], float]


#: Every fact by its name in the targets file. Derived facts combine two markets' values.
FACTS: dict[str, Fact] = {
    "share_1star": Fact("mix", share_1star),
    "share_5star": Fact("mix", share_5star),
    "j_shape": Fact("mix", j_shape),
    "wom_ratio": Fact("mix", wom_ratio),
    "referred_value_premium": Fact("mix", referred_value_premium),
    "referred_lifetime_premium": Fact("mix", referred_lifetime_premium),
    "referred_margin_premium": Fact("mix", referred_margin_premium),
    "referred_retention_gap": Fact("mix", referred_retention_gap),
    "crossover_week": Fact("mix", crossover_fit_filter),
    "whale_top20_serve_all": Fact("serve_all", whale_top20),
    "whale_peak_serve_all": Fact("serve_all", whale_peak),
    "whale_peak_fit_filter": Fact("fit_filter", whale_peak),
    "whale_peak_applicants_serve_all": Fact("serve_all", whale_peak_applicants),
    "whale_peak_applicants_fit_filter": Fact("fit_filter", whale_peak_applicants),
    "firm_whale_peak_serve_all": Fact("mix", firm_whale_peak("serve_all")),
    "firm_whale_peak_fit_filter": Fact("mix", firm_whale_peak("fit_filter")),
    "sellers_satisfaction": Fact("sellers", sellers_satisfaction),
    "sellers_retention": Fact("sellers", sellers_retention),
    "sellers_left_share": Fact("sellers", sellers_left_share),
    "sellers_backlog_growth": Fact("sellers", sellers_backlog_growth),
    "revenue_top20": Fact("mix", revenue_concentration),
    "annual_retention": Fact("mix", annual_retention),
}
DERIVED: dict[str, tuple[tuple[str, ...], Callable[..., float]]] = {
    "whale_flatter_fit_filter": (
        ("whale_peak_serve_all", "whale_peak_fit_filter"),
        lambda serve_all, fit_filter: serve_all - fit_filter,
    ),
}


def needed(names) -> dict[str, list[str]]:
    """The measured facts each market must give for the facts `names`: market -> fact names."""
    measured = []
    for name in names:
        measured += DERIVED[name][0] if name in DERIVED else [name]
    by_market: dict[str, list[str]] = {}
    for name in dict.fromkeys(measured):
        by_market.setdefault(FACTS[name].market, []).append(name)
    return by_market


def derive(values: dict[str, float], names) -> dict[str, float]:
    """The facts `names` from one seed's measured values (derived ones computed here)."""
    out = {}
    for name in names:
        if name in DERIVED:
            inputs, combine = DERIVED[name]
            out[name] = float(combine(*(values[i] for i in inputs)))
        else:
            out[name] = values[name]
    return out


# ---- targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A fact's target range (either bound may be None) and where it comes from."""

    name: str
    quantity: str
    low: float | None
    high: float | None
    citation: str
    source: str
    calibrate: bool
    scale: float | None = None
    missed: str | None = None  # why the model misses the target (a known limit), if it does

    @property
    def reported_only(self) -> bool:
        """True when the fact has no range (it is reported, not targeted)."""
        return self.low is None and self.high is None

    def inside(self, value: float) -> bool:
        """Whether `value` lies in the range (NaN never does, unless report-only)."""
        if self.reported_only:
            return True
        if value is None or math.isnan(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def distance(self, value: float) -> float:
        """How far outside the range `value` is, over the scale (0 inside; 1 for NaN).

        The scale is ``scale`` if given, else the magnitude of the bound missed: a value 10 %
        below a floor of 0.6 is 0.1 away. A NaN (the fact could not be measured) counts 1.
        """
        if self.reported_only:
            return 0.0
        if value is None or math.isnan(value):
            return 1.0
        for bound, gap in ((self.low, lambda b: b - value), (self.high, lambda b: value - b)):
            if bound is not None and gap(bound) > 0:
                return gap(bound) / (self.scale or abs(bound) or 1.0)
        return 0.0

    def range_text(self) -> str:
        """The range as a reader writes it: ``≥ 0.6``, ``≤ 0.2``, ``2.5–4``, ``reported``."""
        if self.reported_only:
            return "reported"
        if self.low is None:
            return f"≤ {self.high:g}"
        if self.high is None:
            return f"≥ {self.low:g}"
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}–{self.high:g}"


SOURCES = ("read", "secondary", "project")


def load_targets_file() -> dict:
    """The parsed targets file (``sim/validation/targets.yaml``, package data)."""
    text = resources.files("sim.validation").joinpath("targets.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_targets() -> dict[str, Target]:
    """Every fact's target, by name, in the file's order."""
    return {
        name: Target(name=name, **{k: entry.get(k) for k in ("low", "high", "scale")},
                     quantity=entry["quantity"], citation=entry["citation"],
                     source=entry["source"], calibrate=bool(entry["calibrate"]),
                     missed=entry.get("missed"))
        for name, entry in load_targets_file()["facts"].items()
    }  # fmt: skip


def calibration_parameters() -> dict[str, tuple[float, float, str]]:
    """The default search of ``clientsim-calibrate``: key -> (low, high, reason)."""
    parameters = load_targets_file()["calibration"]["parameters"]
    return {key: (float(low), float(high), why) for key, (low, high, why) in parameters.items()}
