"""The businesses: Mesa agents, whose state is kept as arrays over all of them (`Firms`).

Each phase on the business side (screening, quoting, service, accounts) is a few array
operations over every business's applicants or jobs at once, not a Python loop of small
calls per business: `Firms` holds one entry per business of every counter and account, and
its methods act on rows sorted by business. A `Business` agent is one entry of it, for the
record, the browser view and anyone reading one business (`business.cash`, ...). Both
engines share this code and never branch on how the other stores its clients; the
decisions are the policies' methods (`sim.model.policies`), called once per policy on the rows of
all its businesses, and the counters are the ledger's (`sim.model.ledger`).
"""

from __future__ import annotations

from collections.abc import Callable

import mesa
import numpy as np

from sim.model import mechanics
from sim.model.intake import Applicants, Intake
from sim.model.ledger import COUNTERS
from sim.model.policies import Policy

_DTYPES = {float: np.float64, int: np.int64, bool: np.bool_}


class Firms:
    """Every business's state as arrays (one entry per business), and the business-side rules.

    Args:
        cfg: the run's config (its `market` and `clients` sections are read).
        policies: each business's `Policy`, businesses of one policy next to each other.
        capacity: hours of work per week each business pays for, worked or idle.
        cultures: (B, 2) unit vectors of the businesses' values.
        business_id: each entry's business id within its market (default: its position;
            several markets stepped as one number their businesses each from 0).

    Attributes (arrays, one entry per business): the counters of `sim.model.ledger.COUNTERS`
    (this week's), the accounts (`cash`, `weeks_below`, `active`, `backlog_hours`,
    `rating_weight`, `rating_sum`, `n_reviews`, `costs`, `profit`); `capacity`, `price`,
    `reach`, `overpromise`, `decider_shift`, `user_shift` (`mechanics.role_shift`),
    `fixed_cost` and `credit_limit` (currency units a week); `groups`: (policy, first, end)
    business ranges; `index`: the business ids. `on_intake`: functions ``(applicants,
    intake)`` called after every `take` (to watch the decisions, e.g. the browser view).
    """

    def __init__(self, cfg, policies: list[Policy], capacity, cultures, business_id=None) -> None:
        market, centre = cfg.market, cfg.clients.buying_centre
        n = len(policies)
        self.cfg = cfg
        self.policies = list(policies)
        self.n = n
        self.index = np.arange(n, dtype=np.int64) if business_id is None else business_id
        self.policy_names = np.array([p.name for p in policies], dtype=object)
        self.cultures = np.asarray(cultures, dtype=float).reshape(n, 2)
        self.capacity = np.broadcast_to(np.asarray(capacity, dtype=float), n).copy()
        self.price = np.full(n, float(market.price))
        self.reach = np.array(
            [mechanics.ad_reach(market.ads.reach, p.ad_honesty, market.ads) for p in policies],
            dtype=float,
        ).reshape(n)
        self.overpromise = np.array(
            [mechanics.overpromise(p.ad_honesty, market.ads) for p in policies], dtype=float
        ).reshape(n)
        serves = [p.serves if centre.enabled else "all" for p in policies]  # one person
        self.decider_shift = np.array(
            [mechanics.role_shift(s, "decider", centre.tailoring) for s in serves], dtype=float
        ).reshape(n)
        self.user_shift = np.array(
            [mechanics.role_shift(s, "user", centre.tailoring) for s in serves], dtype=float
        ).reshape(n)
        self.culture_strength = np.array([p.culture_strength for p in policies], dtype=float)
        self.fixed_cost = market.salary * self.capacity + market.ad_spend
        self.groups = []  # (policy, first business, end): runs of businesses of one policy
        for b, policy in enumerate(policies):
            if self.groups and self.groups[-1][0] is policy:
                self.groups[-1][2] = b + 1
            else:
                self.groups.append([policy, b, b + 1])
        self.credit_limit = market.credit_limit_weeks * self.fixed_cost
        # the accounts, which outlive the week
        self.cash = market.initial_cash_weeks * self.fixed_cost  # currency units
        self.weeks_below = np.zeros(n, dtype=np.int64)  # weeks in a row below -credit_limit
        self.active = np.ones(n, dtype=bool)
        self.backlog_hours = np.zeros(n)  # accepted work not yet done, after service
        self.rating_weight = np.zeros(n)  # decayed number of reviews
        self.rating_sum = np.zeros(n)  # decayed sum of their stars
        self.n_reviews = np.zeros(n, dtype=np.int64)
        self.costs = np.zeros(n)  # last week's
        self.profit = np.zeros(n)  # last week's
        for name, kind in COUNTERS.items():  # this week's counters, as the ledger declares
            setattr(self, name, np.zeros(n, dtype=_DTYPES[kind]))
        self.on_intake: list[Callable[[Applicants, Intake], None]] = []
        self._decay = mechanics.weekly_decay(cfg.clients.reviews.half_life)

    @property
    def reputation(self) -> np.ndarray:
        """Bayesian mean rating (stars) of each business's decayed reviews."""
        return mechanics.reputation(self.rating_weight, self.rating_sum, self.cfg.clients.reviews)

    @property
    def capacity_left(self) -> np.ndarray:
        """Hours left for service after this week's screening and diagnosis."""
        return np.maximum(self.capacity - self.screening_hours - self.diagnosis_hours, 0.0)

    def book(self, **amounts) -> None:
        """Add `amounts` (one entry per business, or for all) to this week's counters."""
        for name, amount in amounts.items():
            if name not in COUNTERS:
                raise KeyError(f"{name!r} is not a counter of sim.model.ledger.COUNTERS")
            counter = getattr(self, name)
            counter += np.asarray(amount, dtype=counter.dtype)

    def total(self, business, weights=None) -> np.ndarray:
        """Per business, the sum of `weights` (or the number) of rows of `business`.

        A sum runs in the order of the rows (`np.bincount`), so it is the same in both
        engines whenever their rows are.
        """
        return np.bincount(business, weights=weights, minlength=self.n)

    def start_week(self) -> None:
        """Reset the weekly counters and age the reviews."""
        for name in COUNTERS:
            getattr(self, name)[:] = 0
        self.rating_weight *= self._decay
        self.rating_sum *= self._decay

    def take(self, a: Applicants) -> Intake:
        """Screen, diagnose, quote and accept or decline the week's applicants (phases 4-5).

        `a` holds the applicants of every business, sorted by business then id; each
        policy acts once, on the applicants of all its businesses (`_take_for`).
        """
        bounds = np.searchsorted(a.business, np.arange(self.n + 1))
        intake = Intake.concatenate(
            [self._take_for(policy, a[bounds[first] : bounds[end]])
             for policy, first, end in self.groups]
        )  # fmt: skip
        self._count_intake(a, intake)
        for watch in self.on_intake:
            watch(a, intake)
        return intake

    def _take_for(self, policy: Policy, a: Applicants) -> Intake:
        """The intake of the businesses of `policy`, whose applicants are `a`.

        Each step is the policy's: new applicants are screened; returning clients are not,
        but the diagnosis cap, deadline test and prepayment apply to every job. Only
        applicants who did not pass the screen (declined by it, or turned away unscreened)
        may reform; those who passed it and were declined later (no hours to diagnose,
        deadline, prepayment) do not.
        """
        b = a.business
        screened, passed = policy.screen_new(a, self.capacity[b])
        self.book(screening_hours=self.total(b[screened]) * policy.screening_hours)
        reforms = ~passed & a.would_reform  # before the diagnosis cap changes `passed`
        billed, misfit, extras = policy.quote(a)
        passed, diagnosed = policy.diagnose(passed, (self.capacity - self.screening_hours)[b], b)
        self.book(diagnosis_hours=self.total(b[diagnosed]) * policy.diagnosis_hours)
        overhead = screened * policy.screening_hours + diagnosed * policy.diagnosis_hours
        accepted = passed & policy.meets_deadline(
            self.backlog_hours[b], billed, a.deadline, self.capacity_left[b]
        )
        accepted, prepaid = policy.prepay(accepted, a.prepay_ok, billed, self.price[b])
        return Intake(accepted, overhead, billed, misfit, extras, reforms=reforms,
                      work_hours=billed * a.work_per_billed_hour, prepaid=prepaid)  # fmt: skip

    def _count_intake(self, a: Applicants, intake: Intake) -> None:
        acc, b = intake.accepted, a.business
        taken, new = b[acc], acc & a.new
        self.book(
            applicants=self.total(b),
            accepted=self.total(taken),
            declined=self.total(b[~acc]),
            acquisitions=self.total(b[new]),
            referral_acquisitions=self.total(b[new & a.referred]),
            accepted_difficulty_sum=self.total(taken, a.difficulty[acc]),
            accepted_alignment_sum=self.total(taken, a.signals[acc, 2]),
            revenue=self.total(b, intake.prepaid),
        )

    def serve(self, business, remaining_hours, difficult) -> np.ndarray:
        """Phase 6: each business works its backlog up to capacity; hours worked per job.

        Args:
            business: the business of each job (rows sorted by business).
            remaining_hours: work hours left of the jobs, each business's in first-come order.
            difficult: mask of the jobs of difficult clients (`sim.model.phases.difficult`).
        """
        worked = mechanics.allocate_capacity(
            remaining_hours, self.capacity_left[business], business, self.n
        )
        self.book(hours_worked=self.total(business, worked),
                  difficult_hours=self.total(business[difficult], worked[difficult]))  # fmt: skip
        self.backlog_hours[:] = self.total(business, remaining_hours - worked)
        return worked

    def record_reviews(self, count, stars) -> None:
        """Add reviews (their number and total stars per business) to the reputations."""
        self.rating_weight += count
        self.rating_sum += stars
        self.n_reviews += count

    def close_accounts(self) -> np.ndarray:
        """Book the week's costs and profit of the active businesses; return those that exit."""
        market, active = self.cfg.market, self.active
        worked = self.hours_worked + self.screening_hours + self.diagnosis_hours
        self.costs[:] = np.where(active, market.wage * worked + self.fixed_cost, 0.0)
        self.book(fixed_costs=np.where(active, self.fixed_cost, 0.0))
        self.profit[:] = np.where(active, self.revenue - self.costs, 0.0)
        self.cash += self.profit  # +0 for a business that has exited
        below = active & (self.cash < -self.credit_limit)
        self.weeks_below[:] = np.where(active, np.where(below, self.weeks_below + 1, 0),
                                       self.weeks_below)  # fmt: skip
        exits = np.flatnonzero(active & (self.weeks_below >= market.exit_after))
        self.active[exits] = False
        return exits


class Entry:
    """An attribute of a `Business`: its entry of the `Firms` array of the same name.

    Read as a Python number of type `kind`; written into the array.
    """

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, business: Business | None, owner: type | None = None):
        if business is None:
            return self
        return self.kind(getattr(business.firms, self.name)[business.index])

    def __set__(self, business: Business, value) -> None:
        getattr(business.firms, self.name)[business.index] = value


class Business(mesa.Agent):
    """A business with a client-selection policy: one entry of the market's `Firms`.

    The businesses act together, as `Firms` (phases 4-6 and 9); a `Business` is one of them
    for whoever reads or sets one business: its attributes below are its entries of the
    `Firms` arrays, as Python numbers (money in currency units, work in hours).

    Attributes:
        index: its 0-based position (the column in client arrays, the entry in `Firms`).
        policy: its `Policy` (screen and service habits).
        culture: unit vector of its values.
    """

    # fixed for the run
    capacity = Entry(float)  # hours of work per week it pays for, worked or idle
    price = Entry(float)  # per billed hour
    reach = Entry(float)  # weekly probability its ads make an unaware client aware
    overpromise = Entry(float)  # satisfaction its ads cost a client's first job
    decider_shift = Entry(float)  # how it tilts the alignment a client's decider perceives
    user_shift = Entry(float)  # ... and its user (`mechanics.role_shift`; 0: serves all)
    fixed_cost = Entry(float)  # salaries and ads, a week
    credit_limit = Entry(float)  # below -credit_limit for `exit_after` weeks, it exits
    # accounts that outlive the week
    cash = Entry(float)
    weeks_below = Entry(int)  # weeks in a row below -credit_limit
    active = Entry(bool)
    backlog_hours = Entry(float)  # accepted work not yet done (after the last service)
    rating_weight = Entry(float)  # decayed number of reviews
    rating_sum = Entry(float)  # decayed sum of their stars
    n_reviews = Entry(int)
    costs = Entry(float)  # last week's
    profit = Entry(float)  # last week's
    # this week's counters (`sim.model.ledger.COUNTERS`)
    revenue = Entry(float)
    unpaid = Entry(float)
    hours_worked = Entry(float)
    difficult_hours = Entry(float)
    screening_hours = Entry(float)
    diagnosis_hours = Entry(float)
    applicants = Entry(int)
    accepted = Entry(int)
    acquisitions = Entry(int)
    declined = Entry(int)
    completed = Entry(int)
    abandoned = Entry(int)
    satisfaction_sum = Entry(float)
    retained = Entry(int)
    referrals_made = Entry(int)
    warnings_made = Entry(int)
    referral_acquisitions = Entry(int)
    accepted_difficulty_sum = Entry(float)
    accepted_alignment_sum = Entry(float)
    billed_hours = Entry(float)  # analysis (issue 23): billed on the jobs completed this week
    fixed_costs = Entry(float)  # analysis (issue 23): salaries and ads booked this week

    def __init__(self, model: mesa.Model, firms: Firms, index: int) -> None:
        super().__init__(model)
        self.firms, self.index = firms, index
        self.policy = firms.policies[index]
        self.culture = firms.cultures[index]

    def __repr__(self) -> str:
        return f"Business({self.index}, {self.policy.name}, active={self.active})"

    @property
    def reputation(self) -> float:
        """Bayesian mean rating (stars) of its decayed reviews."""
        return float(self.firms.reputation[self.index])

    @property
    def capacity_left(self) -> float:
        """Hours left for service after this week's screening and diagnosis."""
        return float(self.firms.capacity_left[self.index])
