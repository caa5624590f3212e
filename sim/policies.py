"""Client-selection policies: a screen plus service habits, behind one small interface.

A policy decides which applicants it accepts (`screen`) and declares its service habits
(diagnosis, prepayment, upselling, ad honesty...). Engines never branch on a policy's name:
they read these attributes and call `screen`. A new policy is a new preset in
`configs/policies/` or a new subclass registered in `POLICY_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from sim import mechanics

CRITERIA: tuple[str, ...] = ("respect", "payment", "alignment", "realism")


@dataclass(frozen=True, slots=True)
class Policy:
    """A client-selection policy with its knobs (see MODEL.md, "Policies").

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

    @property
    def screens(self) -> bool:
        """Whether new applicants are screened (and cost screening hours)."""
        return self.threshold > 0

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
    threshold by itself, which is much stricter than the mean at the same threshold.
    """

    kind: ClassVar[str] = "must_have"

    def screen(self, observed_signals: np.ndarray) -> np.ndarray:
        """Accept applicants whose every weighted signal reaches the threshold."""
        if not self.screens:
            return np.ones(len(observed_signals), dtype=bool)
        required = np.asarray(self.criteria) > 0
        return np.all(observed_signals[:, required] >= self.threshold, axis=1)


POLICY_KINDS: dict[str, type[Policy]] = {cls.kind: cls for cls in (Policy, MustHavePolicy)}


def make_policy(name: str, knobs: Any) -> Policy:
    """Build a policy from its preset name and config entry (`sim.config.PolicyConfig`)."""
    cls = POLICY_KINDS[knobs.kind]
    values = {
        f.name: getattr(knobs, f.name) for f in fields(cls) if f.name not in ("name", "criteria")
    }
    criteria = tuple(float(knobs.criteria.get(c, 0.0)) for c in CRITERIA)
    return cls(name=name, criteria=criteria, **values)
