"""Client-selection policies: a screen plus service habits, behind one small interface.

A policy's screen is its methods: what it sees of an applicant (`observe`) and whom it
judges fit (`screen`; a new kind of screen is a subclass registered in `POLICY_KINDS`).
Its habits at intake are its knobs (`HABITS`), which every business applies to its
applicants in the order `Policy` states (`sim.model.kernels.intake.take`, compiled). Neither
the engines nor `sim.model.business` branch on a policy's name. A new habit is a new preset
in `configs/policies/`, or a new knob of `Policy` read by the intake.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from sim.config import registry
from sim.config.registry import CRITERIA
from sim.model import mechanics


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
            turns newcomers away unscreened while full.
        full_weeks: the backlog, in weeks of its capacity, at which a careful business is full.

    What a business of this policy does with the week's applicants, in this order
    (docs/ODD.md §7.4; each declined applicant's reason is the first check it failed,
    `sim.model.intake.Refusal`):

    1. While full (careful order: a backlog of `full_weeks` weeks of capacity), it turns
       newcomers away unscreened (FULL).
    2. It screens the other newcomers, `screening_hours` each, in id order while it has
       hours, turning the rest away unscreened (FULL); its `screen` declines the unfit
       (SCREEN). Returning clients are not screened. Only those who did not pass the screen
       (declined by it, or turned away unscreened for lack of hours) may reform.
    3. Careful order: on the stated size (with any extras), it declines a job whose
       deadline it cannot meet behind its backlog (DEADLINE, if `decline_impossible`), then
       a client who will not prepay (PREPAYMENT, if `prepayment`).
    4. With `diagnosis`, it diagnoses the rest, `diagnosis_hours` each, while it has hours
       left (FULL beyond), and quotes the true need; without, it quotes the stated size (a
       misfit if wrong). Extras are sold with probability `upsell_rate`, `upsell_share` more.
    5. It declines a job whose deadline it cannot meet with the hours left (DEADLINE, if
       `decline_impossible`), then a client who will not prepay; a prepaid job is paid on
       acceptance (PREPAYMENT, if `prepayment`).
    6. A refusal ends the relationship if `ends_relationship`, or if it is the screen's.
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

    def observe(self, signals, noise) -> np.ndarray:
        """The fit signals (n, 4) as its screen sees them, judged through its culture.

        Each signal is observed with an error of s.d. `screening_noise` (`noise`: standard
        normals, (n, 4)) and leans toward alignment by its culture strength
        (`mechanics.culture_signals`; unchanged at culture strength 0).
        """
        observed = signals + self.screening_noise * noise
        if self.culture_strength == 0:  # (culture_signals would add zeros)
            return observed
        return mechanics.culture_signals(observed, self.culture_strength)

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


#: The knobs of its habits every business applies at intake (`sim.model.kernels.intake`), and
#: their dtypes: one array per knob, one entry per business (`sim.model.business.Firms`).
HABITS: dict[str, type] = {
    "careful_order": np.bool_, "full_weeks": np.float64, "screens": np.bool_,
    "screening_hours": np.float64, "diagnosis": np.bool_, "diagnosis_hours": np.float64,
    "decline_impossible": np.bool_, "prepayment": np.bool_, "upsell_rate": np.float64,
    "upsell_share": np.float64, "ends_relationship": np.bool_,
}  # fmt: skip

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
