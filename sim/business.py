"""The Business agent: screens applicants, quotes, works its backlog, keeps accounts.

Businesses are Mesa agents in both engines. A business takes the week's applicants as
arrays (ids and traits), so the two engines share this code, and never sees how the clients
are stored; its decisions are its policy's methods (`sim.policies`), its accounts are booked
into the ledger's counters (`book`, `sim.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from sim import mechanics
from sim.ledger import COUNTERS
from sim.policies import Policy


@dataclass(slots=True)
class Applicants:
    """The week's applicants to one business, sorted by client id (arrays of equal length).

    The random numbers of their screening and quote are drawn by `sim.phases.applicants`,
    keyed by client id and week, so the business that reads them does not matter.
    """

    ids: np.ndarray
    new: np.ndarray  # not a returning client: screened, and an acquisition if accepted
    referred: np.ndarray  # carries a fresh referral credit for this business
    difficulty: np.ndarray
    signals: np.ndarray  # (n, 4) true fit signals, see `mechanics.fit_signals`
    true_hours: np.ndarray
    stated_hours: np.ndarray
    deadline: np.ndarray
    prepay_ok: np.ndarray
    screening_noise: np.ndarray  # (n, 4) standard normals (drawn for new applicants only)
    upsell_u: np.ndarray  # uniforms: extras are sold below the policy's upsell rate
    work_per_billed_hour: np.ndarray  # hours of work per billed hour (difficulty, conflict)
    would_reform: np.ndarray  # reforms if declined by a screen

    def __getitem__(self, rows: slice) -> Applicants:
        """The applicants in `rows` (views, for a contiguous slice)."""
        return Applicants(*(getattr(self, f)[rows] for f in self.__slots__))


@dataclass(slots=True)
class Intake:
    """A business's decisions on its applicants (arrays aligned with `Applicants.ids`)."""

    accepted: np.ndarray
    overhead_hours: np.ndarray  # screening and diagnosis hours spent on each applicant
    billed: np.ndarray
    misfit: np.ndarray
    extras: np.ndarray
    reforms: np.ndarray  # declined by the screen and reformed: difficulty falls
    work_hours: np.ndarray
    prepaid: np.ndarray  # money paid on acceptance

    @classmethod
    def concatenate(cls, intakes: list[Intake]) -> Intake:
        """One intake from several businesses' intakes, in order."""
        return cls(*(np.concatenate([getattr(i, f) for i in intakes]) for f in cls.__slots__))


if TYPE_CHECKING:
    from sim.model import MarketModel


class Business(mesa.Agent):
    """A business with a client-selection policy.

    Attributes:
        policy: its `Policy` (screen and service habits).
        capacity: hours of work per week it pays for, worked or idle.
        culture: unit vector of its values.
        reach: weekly probability its ads make an unaware client aware.
        decider_shift, user_shift: how it tilts the alignment a client's decider and user
            perceive (`mechanics.role_shift`; 0 unless it serves one role).
        cash: money in hand (currency units); below `-credit_limit` for `exit_after` weeks
            the business exits.
        backlog_hours: hours of accepted work not yet done (end of the last service phase).
    """

    def __init__(self, model: MarketModel, policy: Policy, capacity: float, culture) -> None:
        super().__init__(model)
        market = model.cfg.market
        self.index = len(model.businesses)  # 0-based position: the column in client arrays
        self.policy = policy
        self.capacity = float(capacity)
        self.culture = np.asarray(culture, dtype=float)
        self.price = float(market.price)
        self.reach = float(mechanics.ad_reach(market.ads.reach, policy.ad_honesty, market.ads))
        self.overpromise = float(mechanics.overpromise(policy.ad_honesty, market.ads))
        centre = model.cfg.clients.buying_centre
        serves = policy.serves if centre.enabled else "all"  # one person: no one to neglect
        self.decider_shift = mechanics.role_shift(serves, "decider", centre.tailoring)
        self.user_shift = mechanics.role_shift(serves, "user", centre.tailoring)
        self.fixed_cost = market.salary * self.capacity + market.ad_spend
        self.cash = market.initial_cash_weeks * self.fixed_cost
        self.credit_limit = market.credit_limit_weeks * self.fixed_cost
        self.weeks_below = 0
        self.active = True
        self.backlog_hours = 0.0
        self.rating_weight = 0.0
        self.rating_sum = 0.0
        self.n_reviews = 0
        self.costs = self.profit = 0.0
        self.start_week()

    def __repr__(self) -> str:
        return f"Business({self.index}, {self.policy.name}, active={self.active})"

    @property
    def reputation(self) -> float:
        """Bayesian mean rating (stars) of its decayed reviews."""
        reviews = self.model.cfg.clients.reviews
        return float(mechanics.reputation(self.rating_weight, self.rating_sum, reviews))

    @property
    def capacity_left(self) -> float:
        """Hours left for service after this week's screening and diagnosis."""
        return max(self.capacity - self.screening_hours - self.diagnosis_hours, 0.0)

    def book(self, **amounts: float) -> None:
        """Add `amounts` to this week's counters (`sim.ledger.COUNTERS`), as their type."""
        for name, amount in amounts.items():
            kind = COUNTERS[name]  # a KeyError for a counter the ledger does not declare
            setattr(self, name, getattr(self, name) + kind(amount))

    def start_week(self) -> None:
        """Reset the weekly counters and age the reviews."""
        for name, kind in COUNTERS.items():
            setattr(self, name, kind())
        decay = mechanics.weekly_decay(self.model.cfg.clients.reviews.half_life)
        self.rating_weight *= decay
        self.rating_sum *= decay

    def take(self, applicants: Applicants) -> Intake:
        """Screen, diagnose, quote and accept or decline the week's applicants (phases 4-5).

        Each step is its policy's: new applicants are screened; returning clients are not,
        but the diagnosis cap, deadline test and prepayment apply to every job. Only
        applicants who did not pass the screen (declined by it, or turned away unscreened)
        may reform; those who passed it and were declined later (no hours to diagnose,
        deadline, prepayment) do not.
        """
        a, policy = applicants, self.policy
        screened, passed = policy.screen_new(a, self.capacity)
        self.book(screening_hours=int(np.count_nonzero(screened)) * policy.screening_hours)
        reforms = ~passed & a.would_reform  # before the diagnosis cap changes `passed`
        billed, misfit, extras = policy.quote(a)
        passed, diagnosed = policy.diagnose(passed, self.capacity - self.screening_hours)
        self.book(diagnosis_hours=int(np.count_nonzero(diagnosed)) * policy.diagnosis_hours)
        overhead = screened * policy.screening_hours + diagnosed * policy.diagnosis_hours
        accepted = passed & policy.meets_deadline(
            self.backlog_hours, billed, a.deadline, self.capacity_left
        )
        accepted, prepaid = policy.prepay(accepted, a.prepay_ok, billed, self.price)
        intake = Intake(
            accepted,
            overhead,
            billed,
            misfit,
            extras,
            reforms=reforms,
            work_hours=billed * a.work_per_billed_hour,
            prepaid=prepaid,
        )
        self._count_intake(a, intake)
        return intake

    def _count_intake(self, a: Applicants, intake: Intake) -> None:
        acc = intake.accepted
        accepted, new = int(np.count_nonzero(acc)), acc & a.new
        self.book(
            applicants=len(a.ids),
            accepted=accepted,
            declined=len(a.ids) - accepted,
            acquisitions=np.count_nonzero(new),
            referral_acquisitions=np.count_nonzero(new & a.referred),
            accepted_difficulty_sum=a.difficulty[acc].sum(),
            accepted_alignment_sum=a.signals[acc, 2].sum(),
            revenue=intake.prepaid.sum(),
        )

    def serve(self, remaining_hours, difficult) -> np.ndarray:
        """Work the backlog up to capacity; hours worked per job.

        Args:
            remaining_hours: work hours left of its jobs, in first-come order.
            difficult: mask of the jobs of difficult clients (`sim.phases.difficult`).
        """
        worked = mechanics.allocate_capacity(remaining_hours, self.capacity_left)
        self.book(hours_worked=worked.sum(), difficult_hours=worked[difficult].sum())
        self.backlog_hours = float((remaining_hours - worked).sum())
        return worked

    def record_reviews(self, count: int, stars: float) -> None:
        """Add reviews (their number and total stars) to its reputation (not weekly)."""
        self.rating_weight += count
        self.rating_sum += stars
        self.n_reviews += count

    def close_accounts(self) -> bool:
        """Book the week's costs and profit; return True if the business exits now."""
        market = self.model.cfg.market
        worked = self.hours_worked + self.screening_hours + self.diagnosis_hours
        self.costs = market.wage * worked + self.fixed_cost
        self.profit = self.revenue - self.costs
        self.cash += self.profit
        self.weeks_below = self.weeks_below + 1 if self.cash < -self.credit_limit else 0
        if self.weeks_below >= market.exit_after:
            self.active = False
            return True
        return False
