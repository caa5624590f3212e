"""Docking to the Bass diffusion model: the model reduced to Bass, and what it must give.

The preset `configs/docking/bass.yaml` (``clientsim docking=bass``) reduces the market to
Bass (1969) diffusion: one `serve_all` business with capacity far above demand, a need every
week for every client (rate 520 a year), satisfaction 1 for every job (so every finished job
is a positive story and nobody leaves), no refusal memory, a complete network and a
talkativeness of 1 (Beta(1000, 0.001)). A client *adopts* in the week it is first served:
market.parquet's `adopters`. With p and q per year and Δ = 1/52 year:

* ads reach a client in week w with probability ``a = 1 - exp(-p Δ)`` (`ad_weeks`: a
  geometric week, precomputed per client), and it is served that same week;
* every adopter is served, and so tells, every week (phases 7-8), each other client with
  probability ``π = 1 - exp(-q Δ / N)``; a client told in week w is aware from then on but
  has already chosen this week (phase 3 comes first): it is served in week w + 1.

Given A_{w-1} adopters at the end of week w - 1, of whom T_{w-1} told (market.parquet's
`completed`), each of the N - A_{w-1} others adopts in week w independently, so the
**one-step map** of the discrete process is exact::

    A_w - A_{w-1} ~ Binomial(N - A_{w-1}, h_w),  h_w = 1 - (1 - a)(1 - π)^T_{w-1}

With T = A (every adopter tells; a week without a need, e^-10 per client, is what tells
them apart), the expected share x_w = A_w / N follows
``x_w = x_{w-1} + (1 - x_{w-1}) (1 - exp(-(p + q x_{w-1}) Δ))``, x_{-1} = 0: the
exponential-Euler step of Bass's ``F' = (p + q F)(1 - F)``, whose solution from F(0) = 0 is
``F(t) = (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t})``. **Timing:** week w ends at
t = (w + 1) Δ (week 0 already has a week of ads), and word of mouth acts one week late
(told in week w, adopting in w + 1), which is the first-order error of the Euler step:
|x_w - F((w + 1) Δ)| is O(Δ) and computed here (`deterministic_map`), not guessed.

Tolerances come from N: the linear-noise approximation of the map gives the variance of
A_w / N (`deterministic_map`, ``variance``), and its second order the bias of the mean
(``bias``, of order 1/N), both propagated week by week.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.model.mechanics import WEEKS_PER_YEAR

#: Sultan, Farley & Lehmann (1990), meta-analysis of 213 Bass fits: mean p and q per year.
PUBLISHED_P, PUBLISHED_Q = 0.03, 0.38


def weekly(per_year: float) -> float:
    """The weekly probability of an event that happens at `per_year` a year."""
    return -math.expm1(-per_year / WEEKS_PER_YEAR)


def per_year(weekly_probability: float) -> float:
    """The yearly rate whose weekly probability is `weekly_probability` (inverse of weekly)."""
    return -WEEKS_PER_YEAR * math.log1p(-weekly_probability)


def bass_share(t, p: float, q: float):
    """Bass's closed form: the share adopted by time t (years), from F(0) = 0."""
    decay = np.exp(-(p + q) * np.asarray(t, dtype=float))
    return (1.0 - decay) / (1.0 + (q / p) * decay)


def week_end_years(weeks) -> np.ndarray:
    """The time (years) at the end of each week: week w ends at (w + 1) / 52."""
    return (np.asarray(weeks, dtype=float) + 1.0) / WEEKS_PER_YEAR


def docking_overrides(p: float, q: float, n_clients: int, steps: int) -> list[str]:
    """Command-line overrides of a Bass docking run with p and q per year."""
    return [
        "docking=bass",
        f"market.n_clients={n_clients}",
        f"steps={steps}",
        f"market.ads.reach={weekly(p)!r}",
        f"clients.wom.p_positive={weekly(q / n_clients)!r}",
        "progress=false",
    ]


def bass_parameters(cfg) -> tuple[float, float]:
    """(p, q) per year of a docking config: read back from its reach and telling probability.

    The telling probability of a pair is talkativeness × p_positive; the mean talkativeness
    is the share-weighted mean of the segments' Beta means.
    """
    segments = cfg.clients.segments
    talk = sum(s.share * s.talkativeness[0] / sum(s.talkativeness) for s in segments.values())
    pair = talk * cfg.clients.wom.p_positive
    return per_year(cfg.market.ads.reach), per_year(pair) * cfg.market.n_clients


def deterministic_map(p: float, q: float, n_clients: int, weeks: int) -> pd.DataFrame:
    """The expected share map of the discrete process, with its variance and bias from N.

    Columns: week, `discrete` (x_w), `variance` (linear noise: Var(A_w / N)), `bias` (second
    order: E[A_w / N] - x_w), `closed_form` (F at the end of the week).
    """
    dt = 1.0 / WEEKS_PER_YEAR
    x = variance = bias = 0.0
    rows = []
    for _ in range(weeks):
        survive = math.exp(-(p + q * x) * dt)  # 1 - h(x): P(not adopting this week)
        slope = survive * (1.0 + (1.0 - x) * q * dt)  # g'(x)
        curvature = -q * dt * survive * (2.0 + (1.0 - x) * q * dt)  # g''(x)
        noise = (1.0 - x) * (1.0 - survive) * survive / n_clients
        bias = slope * bias + 0.5 * curvature * variance
        variance = slope**2 * variance + noise
        x = x + (1.0 - x) * (1.0 - survive)
        rows.append((x, variance, bias))
    frame = pd.DataFrame(rows, columns=["discrete", "variance", "bias"])
    frame.insert(0, "week", np.arange(weeks))
    frame["closed_form"] = bass_share(week_end_years(frame["week"]), p, q)
    return frame


def lag_estimate(p: float, q: float) -> float:
    """First-order size of max |x_w - F((w + 1) Δ)|: the map runs late by a time δ.

    Word of mouth acts one week late, and while adoption grows about exponentially (at
    rate q, up to the inflection t* = ln(q/p) / (p + q)) the weekly growth 1 + qΔ falls
    short of e^{qΔ} by (qΔ)²/2, which shifts the curve by about q t* Δ / 2 more. The error
    in the share is then at most δ max F' = δ (p + q)² / (4q).
    """
    dt = 1.0 / WEEKS_PER_YEAR
    inflection = max(math.log(q / p), 0.0) / (p + q) if q > 0 else 0.0
    delay = dt * (1.0 + q * inflection / 2.0)
    return delay * (p + q) ** 2 / (4.0 * q) if q > 0 else delay * p


def one_step_residuals(market: pd.DataFrame, n: int, p: float, q: float) -> pd.DataFrame:
    """Each week's new adopters against the exact one-step map, given the week before.

    Columns: week, `new` (adopters this week), `expected` and `variance` (of the binomial
    of the one-step map, given last week's adopters and tellers), `hazard` and `at_risk`
    (its probability and number of trials).
    """
    adopters = market["adopters"].to_numpy(dtype=float)
    before = np.concatenate([[0.0], adopters[:-1]])
    tellers = np.concatenate([[0.0], market["completed"].to_numpy(dtype=float)[:-1]])
    hazard = -np.expm1(-(p + q * tellers / n) / WEEKS_PER_YEAR)
    return pd.DataFrame(
        {
            "week": market["step"].to_numpy(),
            "new": adopters - before,
            "expected": (n - before) * hazard,
            "variance": (n - before) * hazard * (1.0 - hazard),
            "hazard": hazard,
            "at_risk": n - before,
        }
    )


def one_step_z(residuals: pd.DataFrame) -> tuple[float, float]:
    """Two standard normal statistics of the one-step residuals (large: the map is wrong).

    The sum of the residuals over its standard deviation (they are martingale differences),
    and the sum of their standardised squares less its mean (1 a week) over its standard
    deviation (2 plus the binomial's excess kurtosis, a week).
    """
    r = residuals[residuals["variance"] > 0]
    residual = r["new"] - r["expected"]
    total = residual.sum() / np.sqrt(r["variance"].sum())
    h, trials = r["hazard"], r["at_risk"]
    kurtosis = (1.0 - 6.0 * h * (1.0 - h)) / (trials * h * (1.0 - h))
    squares = ((residual**2 / r["variance"]).sum() - len(r)) / np.sqrt((2.0 + kurtosis).sum())
    return float(total), float(squares)
