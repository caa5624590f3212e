"""What the rules read: the small, typed world a phase of `sim.model.phases` receives.

A `World` holds what does not change during a run: the config's sections, the random
streams, the clients' traits, the network, and each business's fixed properties (price,
ad reach, the alignment of every client with its culture). The model builds it once; the
rules read it, never the model, so a rule's inputs are its arguments. What changes week by
week (client state, reputations, queues) is gathered by the engines and passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.config.schema import ClientsConfig, MarketConfig
from sim.model import mechanics
from sim.model.population import Population
from sim.model.rng import Streams


@dataclass(slots=True)
class World:
    """The fixed inputs of the rules.

    Attributes:
        clients: the `clients` section of the config (behaviour of clients).
        market: the `market` section (jobs, service, payment, ads).
        streams: the run's named random streams (`sim.model.rng`).
        population: the clients' traits, one row per client id (`sim.model.population`).
        indptr, indices: the social network in CSR form (`sim.model.network`).
        cultures: each business's culture in each market, unit vectors, shape (businesses,
            markets, 2): a client's alignment with a business is computed where it is read
            (`mechanics.alignment` of its decider's or user's values, by the kernels:
            `sim.model.kernels.formulas`).
        prices: each business's price per billed hour (currency units).
        price_ratio: each business's price over the market price.
        reach: each business's weekly probability of making an unaware client aware.
        overpromise: satisfaction a business's ads cost a client on its first job there.
        referral_reach: how much more each client is reached by a referral
            (`mechanics.referral_matching` of its fit, 1 − difficulty; None: 1 for all).
        culture_strength: each business's culture strength c in [0, 1]: its ads and its
            clients' stories reach clients of like values more (`mechanics.culture_affinity`).
        decider_shift, user_shift: how each business tilts the alignment a client's decider
            perceives in choice and its user in satisfaction (`mechanics.tailored_alignment`;
            0 for a business that serves all, or with the buying centre off).
        prepayment: 1 for each business that requires prepayment, else 0 (clients weigh it
            in choice by `choice.beta_prepay`).
    """

    clients: ClientsConfig
    market: MarketConfig
    streams: Streams
    population: Population
    indptr: np.ndarray
    indices: np.ndarray
    cultures: np.ndarray
    prices: np.ndarray
    price_ratio: np.ndarray
    reach: np.ndarray
    overpromise: np.ndarray
    culture_strength: np.ndarray
    decider_shift: np.ndarray
    user_shift: np.ndarray
    prepayment: np.ndarray
    referral_reach: np.ndarray | None = None
    _decay_powers: np.ndarray = field(default_factory=lambda: np.empty(0))
    _log_no_need: np.ndarray | None = None

    @property
    def n_businesses(self) -> int:
        """Number of businesses, active or not."""
        return len(self.prices)

    def decay_powers(self, max_age: int) -> np.ndarray:
        """The weekly decay of credits and warnings tabulated for ages 0 to at least `max_age`.

        The table grows (doubling) when a model is stepped past the weeks it was built for;
        each power is computed on its own, so growing it leaves the earlier entries as they
        were.
        """
        if len(self._decay_powers) <= max_age:
            size = max(max_age + 1, 2 * len(self._decay_powers))
            self._decay_powers = mechanics.decayed(1.0, np.arange(size), self.clients.wom.decay)
        return self._decay_powers

    def log_no_need(self) -> np.ndarray:
        """log(1 - p) of each client's weekly probability p of a need (`phases.need_gap`).

        It never changes in a run: computed once, by the functions `mechanics.geometric_weeks`
        applies to p, so the weeks are the same.
        """
        if self._log_no_need is None:
            p = mechanics.need_probability(self.population["need_rate"])
            self._log_no_need = np.log1p(-np.asarray(p, dtype=float))
        return self._log_no_need
