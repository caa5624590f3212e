"""Client-selection policies: a screen plus service habits, behind one small interface.

A policy's behaviour is its methods: which newcomers it turns away while full
(`turns_away`), which new applicants it screens and accepts (`screen_new`, `screen`), how it
quotes (`quote`, and `estimate` before a diagnosis), the diagnosis cap (`diagnose`), the
deadline test (`meets_deadline`) and prepayment (`prepay`); its knobs are its fields.
Neither the engines nor `sim.model.business` branch on a policy's name or flags. A new habit is a
new preset in `configs/policies/` or a new subclass registered in `POLICY_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from sim.config import registry
from sim.config.registry import CRITERIA
from sim.model import mechanics
from sim.model.intake import Applicants


@dataclass(frozen=True, slots=True)
class Policy:
    """A client-selection policy with its knobs (see docs/ODD.md §2.2 and §7.4).

    Attributes:
        name: the preset's name, e.g. ``fit_filter``.
        threshold: minimum observed fit score in [0, 1] to accept a new applicant.
        criteria: weights of the signals, in the order of `CRITERIA`.
        screening_noise: s.d. of the error on each observed signal.
        screening_hours: hours spent screening each new applicant (0 if it does not screen).
        diagnosis: whether it diagnoses the true need before quoting.
        diagnosis_hours: hours a diagnosis takes.
        decline_impossible: whether it refuses jobs whose deadline it cannot meet.
        prepayment: whether clients must pay the quote on acceptance.
        upsell_rate: probability of selling unneeded extras with a job.
        upsell_share: extras as a share of the billed hours.
        ad_honesty: honesty h in [0, 1] of its advertising.
        culture_strength: how strongly its culture shows, c in [0, 1]: the share of its
            screen given to alignment, and how much more its ads and its clients' stories
            reach clients of like values (docs/ODD.md §7.12).
        serves: whose interests it satisfies with the buying centre on, one of `SERVES`:
            the role it serves sees it as more aligned, the other less (docs/ODD.md §7.10).
        capacity_share: its businesses' starting capacity, as a share of the market's
            (`mechanics.capacity_per_business`).
        ends_relationship: whether every refusal ends the relationship (the client is
            blocked `clients.decline_memory` weeks and loses it as provider); if not, only its
            screen's refusal of a newcomer does, and any other refusal declines the job only.
        careful_order: whether it checks the queue and the deadline before diagnosing and
            turns newcomers away unscreened while full (`turns_away`).
        full_weeks: the backlog, in weeks of its capacity, at which a careful business is full.
    """

    kind: ClassVar[str] = "threshold"
    name: str
    threshold: float
    criteria: tuple[float, ...]
    screening_noise: float
    screening_hours: float
    diagnosis: bool
    diagnosis_hours: float
    decline_impossible: bool
    prepayment: bool
    upsell_rate: float
    upsell_share: float
    ad_honesty: float
    culture_strength: float
    serves: str
    capacity_share: float
    ends_relationship: bool
    careful_order: bool
    full_weeks: float

    @property
    def screens(self) -> bool:
        """Whether new applicants are screened (and cost screening hours)."""
        return self.threshold > 0

    def turns_away(self, a: Applicants, backlog_hours, capacity) -> np.ndarray:
        """Mask of the newcomers a careful business turns away unscreened: it is full.

        Full: a backlog (`backlog_hours`, at the start of the week) of at least `full_weeks`
        weeks of its `capacity` (hours a week; both per applicant's business). No hours are
        spent on them. A business that is not careful considers every newcomer.
        """
        if not self.careful_order:
            return np.zeros(len(a.ids), dtype=bool)
        return a.new & (backlog_hours >= self.full_weeks * capacity)

    def screen_new(self, a: Applicants, capacity, turned_away=None) -> tuple[np.ndarray, ...]:
        """Screen the new applicants: masks of those screened and of those who passed.

        `a` holds the applicants of one or more businesses of this policy (sorted by
        business, then id), `capacity` each applicant's business's hours. Returning clients
        are not screened and pass; newcomers `turned_away` (`turns_away`) are not screened
        and do not pass. A business too busy to screen every new applicant
        (`capacity` hours used up) turns the rest away unscreened, in id order, so capacity
        is never exceeded: they have not passed the screen either. The
        signals are judged through the policy's culture (`mechanics.culture_signals`;
        unchanged at culture strength 0).
        """
        considered = a.new if turned_away is None else a.new & ~turned_away
        if not self.screens:
            return np.zeros(len(a.ids), dtype=bool), considered | ~a.new
        screened = considered.copy()
        if self.screening_hours > 0:
            screened &= mechanics.running_count(considered, a.business) <= (
                capacity // self.screening_hours
            )
        observed = a.signals + self.screening_noise * a.screening_noise
        passed = self.screen(mechanics.culture_signals(observed, self.culture_strength))
        return screened, (passed & screened) | ~a.new

    def quote(self, a: Applicants) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Billed hours, misfit and extras of the jobs: a diagnosis quotes the true need."""
        if self.diagnosis:
            billed, misfit = a.true_hours, np.zeros(len(a.ids), dtype=bool)
        else:
            billed, misfit = a.stated_hours, a.stated_hours != a.true_hours
        extras = a.upsell_u < self.upsell_rate
        return self._with_extras(billed, extras), misfit, extras

    def estimate(self, a: Applicants) -> np.ndarray:
        """The billed hours it can know before a diagnosis: the stated size, with any extras."""
        return self._with_extras(a.stated_hours, a.upsell_u < self.upsell_rate)

    def _with_extras(self, billed, extras) -> np.ndarray:
        return np.where(extras, billed * (1.0 + self.upsell_share), billed)

    def diagnose(self, passed, hours_left, business) -> tuple[np.ndarray, np.ndarray]:
        """The diagnosis cap: (applicants still in the running, mask of diagnoses that cost hours).

        `hours_left`: each applicant's business's hours after screening; `business`: the
        businesses, sorted. A business out of hours turns the rest away undiagnosed (in id
        order): capacity holds.
        """
        if not (self.diagnosis and self.diagnosis_hours > 0):
            return passed, np.zeros(len(passed), dtype=bool)
        room = np.maximum(hours_left, 0.0) // self.diagnosis_hours
        diagnosed = passed & (mechanics.running_count(passed, business) <= room)
        return diagnosed, diagnosed

    def meets_deadline(self, backlog_hours, billed_hours, deadline_weeks, capacity_left):
        """Mask of jobs it takes on their deadline: all, unless it declines impossible jobs."""
        if not self.decline_impossible:
            return np.ones(len(billed_hours), dtype=bool)
        finish = mechanics.projected_finish_weeks(backlog_hours, billed_hours, capacity_left)
        return finish <= deadline_weeks

    def prepay(self, accepted, prepay_ok, billed_hours, price):
        """Prepayment: (accepted jobs, money paid on acceptance), refusing who will not prepay."""
        if not self.prepayment:
            return accepted, np.zeros(len(accepted))
        accepted = accepted & prepay_ok
        return accepted, np.where(accepted, billed_hours * price, 0.0)

    def screen(self, observed_signals: np.ndarray) -> np.ndarray:
        """Accept the applicants whose observed weighted fit reaches the threshold.

        Args:
            observed_signals: (n, 4) signals as the business sees them, columns `CRITERIA`.

        Returns:
            Boolean mask of accepted applicants.
        """
        if not self.screens:
            return np.ones(len(observed_signals), dtype=bool)
        return mechanics.fit_score(observed_signals, self.criteria) >= self.threshold


@dataclass(frozen=True, slots=True)
class MustHavePolicy(Policy):
    """Accept only applicants who pass every weighted criterion on its own.

    "A short list of must-haves": each criterion with a non-zero weight must reach the
    threshold by itself, which is much stricter than the mean at the same threshold. A
    culture strength c leans every signal toward alignment (`mechanics.culture_signals`):
    alignment, already a must-have when weighted, then makes up for part of a shortfall on
    the others rather than tightening its own bar.
    """

    kind: ClassVar[str] = "must_have"

    def screen(self, observed_signals: np.ndarray) -> np.ndarray:
        """Accept applicants whose every weighted signal reaches the threshold."""
        if not self.screens:
            return np.ones(len(observed_signals), dtype=bool)
        required = np.asarray(self.criteria) > 0
        return np.all(observed_signals[:, required] >= self.threshold, axis=1)


POLICY_KINDS: dict[str, type[Policy]] = {cls.kind: cls for cls in (Policy, MustHavePolicy)}
assert tuple(POLICY_KINDS) == registry.POLICY_KINDS, "register every kind in sim.config.registry"


def make_policy(name: str, knobs: Any) -> Policy:
    """Build a policy from its preset name and config entry (`sim.config.schema.PolicyConfig`)."""
    cls = POLICY_KINDS[knobs.kind]
    values = {
        f.name: getattr(knobs, f.name) for f in fields(cls) if f.name not in ("name", "criteria")
    }
    criteria = tuple(float(knobs.criteria.get(c, 0.0)) for c in CRITERIA)
    return cls(name=name, criteria=criteria, **values)
