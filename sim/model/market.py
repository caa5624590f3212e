"""The market model: wiring shared by both engines, and the order of one step (one week).

`MarketModel` builds the random streams, the clients' traits, the network and the
businesses, and runs the phases of one week in order (docs/ODD.md §3), synchronous within a
phase. An engine (`sim.model.engines`) says how clients are stored (`read`, `write`) and
gathers, phase by phase, the clients who act; it calls the same rules (`sim.model.phases`)
and the same `Firms` methods as the other engine, and writes what a rule changes with the
one `apply`.
"""

from __future__ import annotations

import contextlib
import logging

import mesa
import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.model import mechanics, phases, state
from sim.model.business import Business, Firms
from sim.model.ledger import TALLIES
from sim.model.network import build_network, concatenate_networks
from sim.model.policies import make_policy
from sim.model.population import concatenate_populations, draw_population
from sim.model.rng import BatchStreams, Streams
from sim.model.state import Tally, Updates
from sim.model.world import World

# Mesa logs every step at INFO; Hydra's run log would drown in it.
logging.getLogger("MESA").setLevel(logging.WARNING)

#: A week's market tallies before anything is counted (one market).
_NO_TALLY = {name: kind() for name, kind in TALLIES.items()}


@contextlib.contextmanager
def interruptible():
    """Let Ctrl-C (or a signal handler's exception) inside a compiled kernel pass as itself.

    Python runs a signal's handler at its next check, which can fall inside numba's
    dispatcher (while it unpickles a kernel's constants); the handler's exception
    (KeyboardInterrupt) then comes back wrapped in SystemErrors, "... returned a result with
    an exception set", which Hydra would report as a crash (exit 1), not as the interrupt.
    """
    try:
        yield
    except SystemError as error:
        cause = error
        while isinstance(cause, SystemError) and "with an exception set" in str(cause):
            cause = cause.__cause__
        if cause is None or isinstance(cause, SystemError):
            raise
        raise cause from None


class MarketModel(mesa.Model):
    """One market, or several stepped as one: clients with needs, businesses with policies.

    Args:
        cfg: a validated config (see `sim.config.schema`).
        seeds: the seeds of R markets of the same config to step as one array program
            (replications; the vectorized engine only). Default: the one market of
            `cfg.seed`. Market r's clients are ids ``r * n`` to ``(r + 1) * n - 1`` and its
            business b is entry ``b * R + r`` of `firms` (so a policy's businesses stay
            next to each other); each market's numbers are exactly those of running it alone.
        accounts: keep each client's spend, hours and jobs with each business
            (`sim.model.state.PAIR_ACCOUNTS`, what pairs.parquet records). A run that
            records no pairs (a sweep's) leaves them out; everything else is the same.
    """

    def __init__(self, cfg, seeds=None, *, accounts: bool = True) -> None:
        # plain dataclasses: DictConfig attribute access is far too slow for the step path
        cfg = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
        self.seeds = [cfg.seed] if seeds is None else [int(seed) for seed in seeds]
        self.pair_fields = state.pair_fields(accounts)
        #: the changes rules make to fields this model does not keep (left out by `apply`)
        self.left_out = frozenset(state.PAIR_NAMES - {f.name for f in self.pair_fields})
        super().__init__(rng=self.seeds[0])
        self.cfg, self.week = cfg, 0
        self.replicas, self.n_clients = len(self.seeds), cfg.market.n_clients
        if self.replicas == 1:
            self.streams = Streams(self.seeds[0])
        else:
            self.streams = BatchStreams(self.seeds, self.n_clients)
        with interruptible():
            markets = [self._draw_market(Streams(seed)) for seed in self.seeds]
            self.population = concatenate_populations([m[0] for m in markets])
            self.indptr, self.indices = concatenate_networks([m[1] for m in markets])
            self._create_businesses(markets)
            self.tally: dict = {}  # this week's market tallies (`sim.model.ledger.TALLIES`)
            self.setup_clients()

    def _draw_market(self, streams: Streams):
        """One market's one-off draws: its clients, network, capacity and cultures."""
        clients, market = self.cfg.clients, self.cfg.market
        pop = draw_population(market.n_clients, clients, streams.generator("traits"))
        net = market.network
        network = build_network(
            market.n_clients, net.kind, params=dict(net.params), values=pop["values"],
            homophily=net.homophily, rng=streams.generator("network"),
        )  # fmt: skip
        n = sum(market.policy_mix.values())
        demand = mechanics.expected_work_hours_per_week(
            pop["need_rate"], pop["difficulty"], pop["scale"], market.jobs, market.service
        )
        capacity = mechanics.capacity_per_business(demand, market.demand_supply_ratio, n)
        angles = streams.generator("culture").uniform(0.0, 2.0 * np.pi, n)
        return pop, network, capacity, np.column_stack([np.cos(angles), np.sin(angles)])

    def _create_businesses(self, markets) -> None:
        market, pop, r = self.cfg.market, self.population, self.replicas
        local = [
            policy
            for name, count in market.policy_mix.items()
            for policy in [make_policy(name, self.cfg.policies[name])] * count
        ]
        n_b = len(local)
        # entry b * R + r: business b of market r
        capacity = np.column_stack([np.broadcast_to(m[2], n_b) for m in markets]).reshape(-1)
        cultures = np.stack([m[3] for m in markets], axis=1).reshape(-1, 2)
        self.firms = firms = Firms(
            self.cfg, [p for p in local for _ in range(r)], capacity, cultures,
            business_id=np.repeat(np.arange(n_b), r),
        )  # fmt: skip
        self.businesses = [Business(self, firms, b) for b in range(firms.n)]

        def first(values: np.ndarray) -> np.ndarray:
            """Market 0's businesses' values (what does not differ by market), contiguous.

            The kernels are compiled once, for contiguous arrays.
            """
            return np.ascontiguousarray(values[::r])

        self.world = World(
            self.cfg.clients, market, self.streams, pop, self.indptr, self.indices,
            firms.cultures.reshape(n_b, r, 2), first(firms.price),
            first(firms.price) / market.price, first(firms.reach), first(firms.overpromise),
            culture_strength=first(firms.culture_strength),
            decider_shift=first(firms.decider_shift), user_shift=first(firms.user_shift),
            prepayment=first(firms.prepayment),
            referral_reach=self._referral_reach([m[0] for m in markets]),
        )  # fmt: skip
        self.world.decay_powers(self.cfg.steps + 1)  # a run of cfg.steps weeks never grows it

    def _referral_reach(self, populations) -> np.ndarray | None:
        """`World.referral_reach`, each market's relative to its own clients' mean fit."""
        matching = self.cfg.clients.wom.matching
        if matching <= 0:
            return None
        return np.concatenate(
            [mechanics.referral_matching(1.0 - pop["difficulty"], matching) for pop in populations]
        )

    @property
    def n_businesses(self) -> int:
        """Number of businesses (of each market), active or not."""
        return len(self.businesses) // self.replicas

    def business_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reputation, queue (backlog / capacity, weeks) and active flag of every business."""
        firms = self.firms
        return firms.reputation, firms.backlog_hours / firms.capacity, firms.active.copy()

    def step(self) -> None:
        """Advance one week: the phases of `sim.model.phases.STEP`, in order."""
        if self.world is None:
            raise RuntimeError("this model's pair state was freed (`free_pair_state`)")
        week = self.week
        if self.replicas == 1:
            self.tally = _NO_TALLY.copy()
        else:  # one count per market: a row each
            rows = np.zeros((len(TALLIES), self.replicas), dtype=np.int64)
            self.tally = dict(zip(TALLIES, rows, strict=True))
        with interruptible():
            for phase in phases.STEP:
                if isinstance(phase, str):
                    getattr(self, phase)(week)
                else:
                    phase(self, week)
        self.week += 1

    def free_pair_state(self) -> None:
        """Free the pair state and the network of a run that is over.

        They are most of a large model's memory (with 20 businesses, about 600 of some 900
        bytes a client): a run's files are written with less once pairs.parquet's table is
        built (`sim.runs.run.results`). The clients' own fields and traits stay readable;
        the model cannot step after, nor its pair fields be read.
        """
        self.world = None
        self.indptr = self.indices = None

    def start_week(self, week: int) -> None:
        """Businesses reset their weekly counters and age their reviews."""
        self.firms.start_week()

    def close_accounts(self, week: int) -> None:
        """Book every active business's week; release the clients of those that exit."""
        for business in self.firms.close_accounts().tolist():
            self.release(business)
        unserved, with_need, adopters = self.counts()
        self.count(unserved=unserved, with_need=with_need, adopters=adopters)
        self.count(active_businesses=self.per_market(self.firms.active, of="businesses"))

    def count(self, **counts) -> None:
        """Add `counts` to this week's market tallies (`sim.model.ledger.TALLIES`), as their type.

        With several markets, a count is one number per market.
        """
        for name, n in counts.items():
            self.tally[name] += TALLIES[name](n) if self.replicas == 1 else n

    def count_clients(self, ids, **masks) -> None:
        """Count, for each tally, the clients `ids` in its mask (None: all of them).

        Each client counts in its own market's tally.
        """
        if self.replicas == 1:
            for name, mask in masks.items():
                n = len(ids) if mask is None else np.count_nonzero(mask)
                self.tally[name] += TALLIES[name](n)
            return
        market = np.asarray(ids) // self.n_clients
        for name, mask in masks.items():
            self.tally[name] += np.bincount(
                market if mask is None else market[mask], minlength=self.replicas
            )

    def per_market(self, values, of: str = "clients"):
        """The sum of `values` per market: an int for one market, else one per market.

        `values` are per client (`of="clients"`, laid out market by market) or per business
        (`of="businesses"`, entry ``b * R + r``: `firms`).
        """
        values, markets = np.asarray(values), self.replicas
        if markets == 1:  # (a count of a mask: count_nonzero is several times faster than sum)
            return int(np.count_nonzero(values) if values.dtype == bool else values.sum())
        if of == "businesses":
            return values.reshape(-1, markets).sum(axis=0)
        return values.reshape(markets, -1).sum(axis=1)

    def firm(self, ids, business):
        """The entry in `firms` of business `business` of each client's (`ids`) market."""
        if self.replicas == 1:
            return business
        return business * self.replicas + np.asarray(ids) // self.n_clients

    def market_of(self, firm: int) -> tuple[np.ndarray, int]:
        """The client ids of the market of `firms` entry `firm`, and its business id there."""
        market, business = firm % self.replicas, firm // self.replicas
        n = self.n_clients
        return np.arange(market * n, (market + 1) * n), business

    def apply(self, updates: Updates) -> None:
        """Write what a rule decided (`sim.model.state.Updates`) into the clients, in order.

        Written once for both engines, through the storage interface (`read` / `write`):
        an added amount is read, added and written back; a `Tally` is counted. A change
        of a field the model does not keep (`left_out`) is skipped.
        """
        read, write, left_out = self.read, self.write, self.left_out
        for change in updates:
            if type(change) is Tally:
                self.count_clients(change.ids, **{change.name: change.mask})
                continue
            name, ids, values, add, business = change
            if name in left_out:
                continue
            if add:
                values = read(name, ids, business) + values
            write(name, ids, values, business)

    # --- what an engine provides (sim.model.engines) ---------------------------------------
    def setup_clients(self) -> None:
        """Create the clients' state."""
        raise NotImplementedError

    def clients_step(self, week: int) -> None:
        """Phases 1 and 3, client by client: needs arrive; clients without a provider choose."""
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

    def release(self, firm: int) -> None:
        """A business (`firms` entry) exits: its backlog and clients return (`sim.model.phases`)."""
        clients, business = self.market_of(firm)
        job_provider, provider = self.read("job_provider", clients), self.read("provider", clients)
        self.apply(phases.release(clients, job_provider, provider, business))

    def counts(self) -> tuple:
        """Clients with an unplaced job, with an open job, and ever served (per market)."""
        raise NotImplementedError

    def read(self, name: str, ids: np.ndarray, business=None) -> np.ndarray:
        """Field `name` of `sim.model.state` for the clients `ids`, with its declared dtype.

        A job's fields are named ``job_`` + name (their initial value where no job is
        open); a pair field is read for the pairs (`ids`, `business`): one business, or
        one per client.
        """
        raise NotImplementedError

    def write(self, name: str, ids: np.ndarray, values, business=None) -> None:
        """Set field `name` of `sim.model.state` for the clients `ids` (as `read`; jobs open)."""
        raise NotImplementedError
