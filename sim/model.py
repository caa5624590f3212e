"""The market model: wiring shared by both engines, and the order of one step (one week).

`MarketModel` builds the random streams, the clients' traits, the network and the
businesses, and runs the phases of one week in order (docs/ODD.md §3), synchronous within a
phase. An engine (`sim.engines`) says how clients are stored and implements the client-side
phases; it calls the same `sim.mechanics` functions and the same `Firms` methods as the
other engine.
"""

from __future__ import annotations

import logging

import mesa
import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim import mechanics, phases
from sim.business import Business, Firms
from sim.ledger import TALLIES
from sim.network import build_network
from sim.policies import make_policy
from sim.population import draw_population
from sim.rng import Streams
from sim.world import World

# Mesa logs every step at INFO; Hydra's run log would drown in it.
logging.getLogger("MESA").setLevel(logging.WARNING)


class MarketModel(mesa.Model):
    """One market: clients with needs, businesses with policies, a social network.

    Args:
        cfg: a validated config (see `sim.config`).
    """

    def __init__(self, cfg) -> None:
        super().__init__(rng=cfg.seed)
        # plain dataclasses: DictConfig attribute access is far too slow for the step path
        self.cfg = cfg = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
        self.week = 0
        self.streams = Streams(cfg.seed)
        clients, market = cfg.clients, cfg.market
        self.population = draw_population(
            market.n_clients, clients, self.streams.generator("traits")
        )
        net = market.network
        self.indptr, self.indices = build_network(
            market.n_clients, net.kind, params=dict(net.params),
            values=self.population["values"], homophily=net.homophily,
            rng=self.streams.generator("network"),
        )  # fmt: skip
        self._create_businesses()
        self.tally: dict[str, int] = {}  # this week's market tallies (`sim.ledger.TALLIES`)
        self.setup_clients()

    def _create_businesses(self) -> None:
        market, pop = self.cfg.market, self.population
        n = sum(market.policy_mix.values())
        demand = mechanics.expected_work_hours_per_week(
            pop["need_rate"], pop["difficulty"], market.jobs, market.service
        )
        capacity = mechanics.capacity_per_business(demand, market.demand_supply_ratio, n)
        angles = self.streams.generator("culture").uniform(0.0, 2.0 * np.pi, n)
        policies = [
            policy
            for name, count in market.policy_mix.items()
            for policy in [make_policy(name, self.cfg.policies[name])] * count
        ]
        cultures = [(np.cos(angle), np.sin(angle)) for angle in angles]
        self.firms = firms = Firms(self.cfg, policies, capacity, cultures)
        self.businesses = [Business(self, firms, b) for b in range(n)]
        self.cultures = firms.cultures
        # values never change, so alignment with each business is computed once: (n, B)
        self.decider_alignment = mechanics.alignment(pop["decider_values"], self.cultures)
        self.user_alignment = (  # one person decides and uses (no buying centre): one array
            self.decider_alignment
            if pop["user_values"] is pop["decider_values"]
            else mechanics.alignment(pop["user_values"], self.cultures)
        )
        self.world = World(
            self.cfg.clients, market, self.streams, pop, self.indptr, self.indices,
            self.decider_alignment, self.user_alignment, firms.price, firms.price / market.price,
            firms.reach, firms.overpromise, culture_strength=firms.culture_strength,
            decider_shift=firms.decider_shift, user_shift=firms.user_shift,
            referral_reach=(
                mechanics.referral_matching(1.0 - pop["difficulty"], self.cfg.clients.wom.matching)
                if self.cfg.clients.wom.matching > 0 else None
            ),
        )  # fmt: skip
        self.world.decay_powers(self.cfg.steps + 1)  # a run of cfg.steps weeks never grows it

    @property
    def n_businesses(self) -> int:
        """Number of businesses, active or not."""
        return len(self.businesses)

    def business_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reputation, queue (backlog / capacity, weeks) and active flag of every business."""
        firms = self.firms
        return firms.reputation, firms.backlog_hours / firms.capacity, firms.active.copy()

    def step(self) -> None:
        """Advance one week: the phases of `sim.phases.STEP`, in order."""
        week = self.week
        self.tally = {name: kind() for name, kind in TALLIES.items()}
        for phase in phases.STEP:
            if isinstance(phase, str):
                getattr(self, phase)(week)
            else:
                phase(self, week)
        self.week += 1

    def start_week(self, week: int) -> None:
        """Businesses reset their weekly counters and age their reviews."""
        self.firms.start_week()

    def close_accounts(self, week: int) -> None:
        """Book every active business's week; release the clients of those that exit."""
        for business in self.firms.close_accounts().tolist():
            self.release(business)
        unserved, with_need, adopters = self.counts()
        self.count(unserved=unserved, with_need=with_need, adopters=adopters)
        self.count(active_businesses=int(self.firms.active.sum()))

    def count(self, **counts: int) -> None:
        """Add `counts` to this week's market tallies (`sim.ledger.TALLIES`), as their type."""
        for name, n in counts.items():
            self.tally[name] += TALLIES[name](n)

    def run(self, steps: int, progress=None) -> None:
        """Run `steps` weeks; `progress(week)` is called after each."""
        for _ in range(steps):
            self.step()
            if progress is not None:
                progress(self.week)

    # --- what an engine provides (sim.engines) ---------------------------------------
    def setup_clients(self) -> None:
        """Create the clients' state."""
        raise NotImplementedError

    def arrive_needs(self, week: int) -> None:
        """Phase 1: needs arrive; clients without an open job open one."""
        raise NotImplementedError

    def choose(self, week: int) -> None:
        """Phase 3: clients without a provider choose a business they know."""
        raise NotImplementedError

    def screen_and_quote(self, week: int) -> None:
        """Phases 4-5: businesses screen applicants, quote, diagnose, take prepayment."""
        raise NotImplementedError

    def serve(self, week: int) -> None:
        """Phase 6: businesses work their backlogs first come, first served."""
        raise NotImplementedError

    def complete(self, week: int) -> None:
        """Phases 7-8: finished jobs are paid and judged; reviews and word of mouth."""
        raise NotImplementedError

    def release(self, business: int) -> None:
        """A business exits: its backlog and clients return to the market (`sim.phases`)."""
        phases.release(self, business)

    def counts(self) -> tuple[int, int, int]:
        """Clients with an unplaced job, with an open job, and ever served."""
        raise NotImplementedError

    def read(self, name: str, ids: np.ndarray, business=None) -> np.ndarray:
        """Field `name` of `sim.state` for the clients `ids`, with its declared dtype.

        A job's fields are named ``job_`` + name (their initial value where no job is
        open); a pair field is read for the pairs (`ids`, `business`): one business, or
        one per client.
        """
        raise NotImplementedError

    def write(self, name: str, ids: np.ndarray, values, business=None) -> None:
        """Set field `name` of `sim.state` for the clients `ids` (as `read`; jobs open)."""
        raise NotImplementedError
