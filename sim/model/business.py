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
from sim.model.kernels import accounts as accounts_kernel
from sim.model.kernels import intake as intake_kernel
from sim.model.kernels import service as service_kernel
from sim.model.ledger import COUNTERS
from sim.model.policies import HABITS, Policy

#: The counters of each type, in the order of `COUNTERS`: rows of one array per type.
_FLOAT_COUNTERS = [name for name, kind in COUNTERS.items() if kind is float]
_INT_COUNTERS = [name for name, kind in COUNTERS.items() if kind is int]
assert len(_FLOAT_COUNTERS) + len(_INT_COUNTERS) == len(COUNTERS), "a counter of another type"


class Firms:
    """Every business's state as arrays (one entry per business), and the business-side rules.

    Args:
        cfg: the run's config (its `market` and `clients` sections are read).
        policies: each business's `Policy`, businesses of one policy next to each other.
        capacity: hours of work per week each business of capacity share 1 starts with
            (`Policy.capacity_share` scales it); paid for, worked or idle.
        cultures: (B, 2) unit vectors of the businesses' values.
        business_id: each entry's business id within its market (default: its position;
            several markets stepped as one number their businesses each from 0).

    Attributes (arrays, one entry per business): the counters of `sim.model.ledger.COUNTERS`
    (this week's), the accounts (`cash`, `weeks_below`, `active`, `backlog_hours`,
    `rating_weight`, `rating_sum`, `n_reviews`, `costs`, `profit`); `capacity` (hours a
    week; it moves with `market.capacity.adjust`, from `start_capacity`, toward the smoothed
    load `expected_hours`), `price`, `reach`, `overpromise`, `decider_shift`, `user_shift`
    (`mechanics.role_shift`), `screens` (its policy screens newcomers), `fixed_cost`
    (follows the capacity) and `credit_limit` (set
    from the starting fixed cost; currency units a week); `groups`: (policy, first, end)
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
        shares = np.array([p.capacity_share for p in policies], dtype=float).reshape(n)
        self.capacity = np.broadcast_to(np.asarray(capacity, dtype=float), n) * shares
        self.start_capacity = self.capacity.copy()
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
        self.prepayment = np.array([p.prepayment for p in policies], dtype=float).reshape(n)
        self.screens = np.array([p.screens for p in policies], dtype=bool).reshape(n)
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
        # this week's counters, as the ledger declares: each a row of one array per type,
        # so the week starts with two resets and a kernel's totals are booked at once
        self._floats = np.zeros((len(_FLOAT_COUNTERS), n))
        self._ints = np.zeros((len(_INT_COUNTERS), n), dtype=np.int64)
        for rows, names in ((self._floats, _FLOAT_COUNTERS), (self._ints, _INT_COUNTERS)):
            for row, name in zip(rows, names, strict=True):
                setattr(self, name, row)
        self._intake_floats, self._intake_ints, self._service_floats = (
            np.array([names.index(c) for c in totals], dtype=np.int64)
            for names, totals in (
                (_FLOAT_COUNTERS, intake_kernel.FLOAT_TOTALS),
                (_INT_COUNTERS, intake_kernel.INT_TOTALS),
                (_FLOAT_COUNTERS, service_kernel.TOTALS),
            )
        )
        self._accounts_floats = np.array(
            [_FLOAT_COUNTERS.index(c) for c in accounts_kernel.COUNTERS], dtype=np.int64
        )
        # each business's policy habits, as the intake kernel reads them (`HABITS`)
        self.habits = tuple(
            np.array([getattr(p, name) for p in policies], dtype=kind).reshape(n)
            for name, kind in HABITS.items()
        )
        self._screening_groups = [g for g in self.groups if g[0].screens]
        self._edges = np.arange(n + 1)  # the first row of each business, and the end
        self._no_hours = np.zeros(n)  # no overtime
        self.on_intake: list[Callable[[Applicants, Intake], None]] = []
        # capacity that adjusts (docs/ODD.md §7.9): off, capacity and fixed cost never move
        self._capacity_rule = market.capacity if market.capacity.adjust else None
        rule = market.capacity  # its terms, as `sim.model.kernels.accounts.close` reads them
        self._capacity_terms = np.array([
            float(rule.adjust), rule.demand_weeks, rule.target_backlog_weeks, rule.adjust_weeks,
            rule.min_share, rule.max_share, rule.hire_cost_weeks, rule.layoff_cost_weeks,
        ], dtype=float)  # fmt: skip
        # an hour's wage; the pay of an hour of capacity worked; an hour of overtime (0: none)
        rush_pay = (market.wage + market.salary) * market.service.rush_premium
        self._pay = np.array([market.wage, market.salary + market.wage,
                              rush_pay if market.service.rush_share > 0 else 0.0])  # fmt: skip
        self.expected_hours = self.capacity.copy()  # smoothed load: starts as planned
        self.planned_capacity = self.capacity.copy()  # next week's, set at the week's close
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
        """Take on the capacity planned last week; reset the weekly counters; age the reviews."""
        if self._capacity_rule is not None:
            self.capacity[:] = self.planned_capacity
            self.fixed_cost = self.cfg.market.salary * self.capacity + self.cfg.market.ad_spend
        self._floats[:] = 0.0
        self._ints[:] = 0
        self.rating_weight *= self._decay
        self.rating_sum *= self._decay

    def take(self, a: Applicants) -> Intake:
        """Screen, diagnose, quote and accept or decline the week's applicants (phases 4-5).

        `a` holds the applicants of every business, sorted by business then id. Each
        policy's screen judges the applicants of all its businesses at once (`_judged_fit`);
        then every business applies its policy's habits to its own applicants, in the order
        of `sim.model.policies.Policy`, and counts the decisions
        (`sim.model.kernels.intake.take`).
        """
        n = len(a.ids)
        numbers, flags, reason = np.empty((4, n)), np.empty((5, n), bool), np.empty(n, np.int8)
        intake_kernel.take(
            a.business, a.new, a.referred, a.would_reform, self._judged_fit(a), a.true_hours,
            a.stated_hours, a.deadline, a.prepay_ok, a.upsell_u, a.work_per_billed_hour,
            mechanics.rework_hours(a.true_hours, a.stated_hours, True, self.cfg.market.service),
            a.difficulty, a.signals[:, 2], self.habits, self.backlog_hours, self.capacity,
            self.price, self._floats, self._intake_floats, self._ints, self._intake_ints,
            numbers, flags, reason,
        )  # fmt: skip
        overhead, billed, work_hours, prepaid = numbers
        accepted, misfit, extras, reforms, ends = flags
        intake = Intake(accepted, overhead, billed, misfit, extras, reforms, work_hours, prepaid,
                        reason, ends)  # fmt: skip
        for watch in self.on_intake:
            watch(a, intake)
        return intake

    def _judged_fit(self, a: Applicants) -> np.ndarray:
        """Mask of the applicants each policy's screen judges fit (`Policy.screen`).

        Each policy that screens judges all the applicants of its businesses in one call
        (whether they are screened, and whether a returning client's verdict is read, is
        the business's to decide); the others' are never read.
        """
        passes = np.ones(len(a.ids), dtype=bool)
        if self._screening_groups:
            bounds = np.searchsorted(a.business, self._edges)
            for policy, first, end in self._screening_groups:
                rows = slice(bounds[first], bounds[end])
                observed = policy.observe(a.signals[rows], a.screening_noise[rows])
                passes[rows] = policy.screen(observed)
        return passes

    def serve(self, business, remaining_hours, difficult, due=None) -> np.ndarray:
        """Phase 6: each business works its backlog up to capacity; hours worked per job.

        With `service.rush_share` > 0 a business then works overtime, up to that share of its
        capacity, on the jobs still unfinished that are due this week or overdue (`due`), in
        the same order: rush hours, each paid `service.rush_premium` x (`wage` + `salary`),
        the whole pay of an hour of capacity at an overtime premium
        (`sim.model.kernels.service.serve`).

        Args:
            business: the business of each job (rows sorted by business).
            remaining_hours: work hours left of the jobs, each business's in first-come order.
            difficult: mask of the jobs of difficult clients (`sim.model.phases.difficult`).
            due: mask of the jobs due this week or overdue (`sim.model.phases.due`; None: none).
        """
        rush_share = self.cfg.market.service.rush_share
        if due is None or rush_share <= 0:
            due, rush_capacity = difficult, self._no_hours  # (`due` is then never read)
        else:
            rush_capacity = rush_share * self.capacity
        worked = np.empty(len(business))
        service_kernel.serve(
            business, remaining_hours, self.capacity_left, difficult, due, rush_capacity,
            self._floats, self._service_floats, self.backlog_hours, worked,
        )  # fmt: skip
        return worked

    def record_reviews(self, count, stars) -> None:
        """Add reviews (their number and total stars per business) to the reputations."""
        self.rating_weight += count
        self.rating_sum += stars
        self.n_reviews += count

    def close_accounts(self) -> np.ndarray:
        """Book the week's costs and profit of the active businesses; return those that exit.

        With capacity that adjusts, each active business first plans next week's capacity:
        Sterman's capacity acquisition (2000, ch. 19): the week's load (accepted work,
        screening and diagnosis hours) is smoothed into `expected_hours`; capacity moves
        toward that plus the correction of the backlog toward its target
        (`mechanics.adjusted_capacity`), paying to hire or lay off
        (`mechanics.capacity_change_costs`), costs of this week. Salaries follow from next
        week (`start_week`); the credit limit stays that of the starting fixed cost. In one
        compiled pass over the businesses (`sim.model.kernels.accounts.close`).
        """
        exiting = np.empty(self.n, dtype=bool)
        accounts_kernel.close(
            self.active, self.capacity, self.start_capacity, self.expected_hours,
            self.planned_capacity, self.backlog_hours, self.fixed_cost, self.credit_limit,
            self.cash, self.weeks_below, self.costs, self.profit, self._floats,
            self._accounts_floats, exiting, self._capacity_terms, self._pay,
            self.cfg.market.exit_after,
        )  # fmt: skip
        return np.flatnonzero(exiting)


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
    start_capacity = Entry(float)  # hours a week it started with
    price = Entry(float)  # per billed hour
    reach = Entry(float)  # weekly probability its ads make an unaware client aware
    overpromise = Entry(float)  # satisfaction its ads cost a client's first job
    decider_shift = Entry(float)  # how it tilts the alignment a client's decider perceives
    user_shift = Entry(float)  # ... and its user (`mechanics.role_shift`; 0: serves all)
    credit_limit = Entry(float)  # below -credit_limit for `exit_after` weeks, it exits
    # accounts that outlive the week
    capacity = Entry(float)  # hours of work per week it pays for, worked or idle (this week's)
    fixed_cost = Entry(float)  # salaries and ads, a week (salaries follow the capacity)
    expected_hours = Entry(float)  # smoothed weekly load (capacity that adjusts)
    planned_capacity = Entry(float)  # next week's capacity (capacity that adjusts)
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
    # issue 23, jobs: the cost of prepayment, late, impossible and misdiagnosed jobs
    refunds = Entry(float)  # money refunded to prepaid clients (taken off revenue)
    disputes = Entry(int)  # late jobs disputed
    failed = Entry(int)  # impossible jobs that failed
    rework_hours = Entry(float)  # unbilled rework hours of the jobs completed
    rush_hours = Entry(float)  # overtime hours worked, at (wage + salary) x rush_premium
    billed_hours = Entry(float)  # billed hours of the jobs completed
    # capacity that adjusts
    accepted_hours = Entry(float)
    hiring_cost = Entry(float)
    layoff_cost = Entry(float)
    # refusals by reason (intake, `sim.model.intake.Refusal`): they sum to `declined`
    declined_screen = Entry(int)
    declined_full = Entry(int)
    declined_deadline = Entry(int)
    declined_prepayment = Entry(int)
    fixed_costs = Entry(float)  # salaries, ads, hiring and layoffs booked this week

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
