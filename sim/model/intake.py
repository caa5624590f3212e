"""What passes between clients and businesses in phases 4-5: the applicants and the decisions.

`sim.model.phases.applicants` gathers the week's `Applicants` (and draws their random numbers);
`sim.model.business.Firms.take` returns the businesses' `Intake`, built by the habits of
`sim.model.policies`; `sim.model.phases.intake_outcome` turns it into the clients' state changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Refusal(IntEnum):
    """Why a business declines an applicant, in the order of the checks (`Intake.reason`).

    SCREEN: its screen judged the newcomer unfit. FULL: no hours were left to screen or
    diagnose it, or, for a careful business, its backlog reached `full_weeks`. DEADLINE: it
    cannot meet the job's deadline. PREPAYMENT: the client will not prepay. Each is counted
    as ``declined_`` + its name in lower case (`sim.model.ledger.COUNTERS`).
    """

    SCREEN = 1
    FULL = 2
    DEADLINE = 3
    PREPAYMENT = 4


ACCEPTED = 0  # the `Intake.reason` of an accepted applicant


@dataclass(slots=True)
class Applicants:
    """The week's applicants, sorted by business, then client id (arrays of equal length).

    The random numbers of their screening and quote are drawn by `sim.model.phases.applicants`,
    keyed by client id and week, so the business that reads them does not matter.
    """

    ids: np.ndarray
    business: np.ndarray  # the business applied to (int64)
    new: np.ndarray  # not a returning client: screened, and an acquisition if accepted
    referred: np.ndarray  # carries a fresh referral credit for this business
    difficulty: np.ndarray
    signals: np.ndarray  # (n, 4) true fit signals (`sim.model.kernels.intake.applicants`)
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
    """The businesses' decisions on their applicants (arrays aligned with `Applicants.ids`)."""

    accepted: np.ndarray
    overhead_hours: np.ndarray  # screening and diagnosis hours spent on each applicant
    billed: np.ndarray
    misfit: np.ndarray
    extras: np.ndarray
    reforms: np.ndarray  # declined by the screen and reformed: difficulty falls
    work_hours: np.ndarray
    prepaid: np.ndarray  # money paid on acceptance
    reason: np.ndarray  # why it was declined (int8 `Refusal`), `ACCEPTED` if taken
    ends_relationship: np.ndarray  # declined, and the refusal ends the relationship

    def __getitem__(self, rows: slice) -> Intake:
        """The decisions in `rows`."""
        return Intake(*(getattr(self, f)[rows] for f in self.__slots__))

    @classmethod
    def concatenate(cls, intakes: list[Intake]) -> Intake:
        """One intake from several intakes, in order."""
        return cls(*(np.concatenate([getattr(i, f) for i in intakes]) for f in cls.__slots__))
