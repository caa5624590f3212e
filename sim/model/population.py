"""Client segments and traits: the population's arrays, drawn once at initialisation.

One schema (`TRAITS`) names every trait, its dtype and whether clients.parquet records it;
both engines start from the same `Population`, so with one seed every engine and policy mix
sees the same clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Every client trait: name -> (dtype, recorded in clients.parquet). `values` and the role
#: values are (n, 2) unit vectors (clients.parquet records the angle of `values`).
TRAITS: dict[str, tuple[type, bool]] = {
    "segment": (np.int8, True),
    "difficulty": (np.float64, True),
    "pay_reliability": (np.float64, True),
    "budget": (np.float64, True),
    "misdiagnosis": (np.float64, True),
    "unrealistic": (np.float64, True),
    "need_rate": (np.float64, True),
    "talkativeness": (np.float64, True),
    "review_propensity": (np.float64, True),
    "prepay_ok": (np.bool_, True),
    "patience": (np.float64, True),  # weeks a job may wait; infinite with patience off
    "scale": (np.float64, True),  # the client's size: its jobs are this many times the market's
    "values": (np.float64, False),
    # buying centre roles: the decider chooses, the user judges, the payer pays,
    # the influencer talks; with the buying centre off they are the client itself
    "decider_values": (np.float64, False),
    "user_values": (np.float64, False),
    "payer_budget": (np.float64, False),
    "influencer_talkativeness": (np.float64, False),
}
RECORDED = tuple(name for name, (_, recorded) in TRAITS.items() if recorded)


@dataclass(slots=True)
class Population:
    """The clients' traits as arrays of length n (see `TRAITS`), and the segment names."""

    segment_names: tuple[str, ...]
    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.arrays["segment"])

    def __getitem__(self, trait: str) -> np.ndarray:
        return self.arrays[trait]


def concatenate_populations(populations: list[Population]) -> Population:
    """One population of several markets' clients, one market after another.

    A trait that is the same array as another in every market (a role played by the client
    itself) stays one array in the result.
    """
    if len(populations) == 1:
        return populations[0]
    joined: dict[tuple[int, ...], np.ndarray] = {}
    arrays = {}
    for trait in populations[0].arrays:
        parts = [p.arrays[trait] for p in populations]
        key = tuple(map(id, parts))
        if key not in joined:
            joined[key] = np.concatenate(parts)
        arrays[trait] = joined[key]
    return Population(segment_names=populations[0].segment_names, arrays=arrays)


def _unit_vectors(angle: np.ndarray) -> np.ndarray:
    return np.column_stack([np.cos(angle), np.sin(angle)])


def _segment_beta(rng, segment, params: list[list[float]]) -> np.ndarray:
    a, b = np.asarray(params, dtype=float).T
    return rng.beta(a[segment], b[segment])


def draw_population(n: int, clients: Any, rng: np.random.Generator) -> Population:
    """Draw n clients: segment by share, then each trait from its segment's distribution.

    Args:
        n: number of clients.
        clients: the `clients` config section.
        rng: the generator of the `traits` stream.
    """
    names = tuple(clients.segments)
    segs = [clients.segments[s] for s in names]
    shares = np.array([s.share for s in segs], dtype=float)
    segment = rng.choice(len(names), size=n, p=shares / shares.sum()).astype(np.int8)

    def beta(trait: str) -> np.ndarray:
        return _segment_beta(rng, segment, [list(getattr(s, trait)) for s in segs])

    arrays = {"segment": segment}
    for trait in ("difficulty", "pay_reliability", "misdiagnosis", "unrealistic", "talkativeness"):
        arrays[trait] = beta(trait)
    budget_mult = np.array([s.budget for s in segs])[segment]
    arrays["budget"] = budget_mult * rng.lognormal(0.0, clients.budget_sigma, n)
    rate = np.array([s.need_rate for s in segs])[segment]
    arrays["need_rate"] = rate * rng.lognormal(0.0, clients.need_rate_sigma, n)
    arrays["review_propensity"] = rng.beta(*clients.review_propensity, size=n)
    arrays["prepay_ok"] = rng.random(n) < arrays["pay_reliability"] ** clients.prepay_exponent
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    arrays["values"] = _unit_vectors(angle)
    arrays.update(_buying_centre(angle, arrays, segment, clients, rng, beta))
    # drawn last and even when off, so patience changes no other trait
    patience = clients.patience
    arrays["patience"] = patience.median_weeks * rng.lognormal(0.0, patience.sigma, n)
    if not patience.enabled:
        arrays["patience"][:] = np.inf
    # drawn after patience, so a client's size changes no other trait; mean 1, so the
    # market's expected demand does not depend on its spread
    sigma = clients.scale_sigma
    arrays["scale"] = rng.lognormal(-(sigma**2) / 2.0, sigma, n)
    return Population(segment_names=names, arrays=arrays)


def _buying_centre(angle, arrays, segment, clients, rng, beta) -> dict[str, np.ndarray]:
    """Role traits; drawn even when disabled, so switching it on changes no other trait."""
    bc = clients.buying_centre
    n = len(angle)
    roles = {
        "decider_values": _unit_vectors(angle + rng.normal(0.0, bc.role_spread, n)),
        "user_values": _unit_vectors(angle + rng.normal(0.0, bc.role_spread, n)),
        "payer_budget": arrays["budget"] * rng.lognormal(0.0, bc.budget_sigma, n),
        "influencer_talkativeness": beta("talkativeness"),
    }
    if bc.enabled:
        return roles
    own = {"payer_budget": "budget", "influencer_talkativeness": "talkativeness"}
    return {role: arrays[own.get(role, "values")] for role in roles}
