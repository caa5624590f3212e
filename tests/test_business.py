"""Scripted intakes of one Business: screening, the capacity cut, reform (sim.business)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.business import Applicants, Business
from sim.policies import make_policy


@pytest.fixture(scope="module")
def model():
    from sim.cli import compose
    from sim.engines.vectorized import VectorizedModel

    return VectorizedModel(compose(["market.n_clients=50", "steps=4"]))


def business(model, capacity: float, **knobs) -> Business:
    """A fit_filter business with `capacity` hours a week and 0.5 h screens and diagnoses."""
    policy = make_policy("fit_filter", model.cfg.policies["fit_filter"])
    habits = dict(threshold=0.55, screening_hours=0.5, diagnosis=True, diagnosis_hours=0.5,
                  decline_impossible=False, prepayment=False)  # fmt: skip
    return Business(model, dataclasses.replace(policy, **{**habits, **knobs}), capacity, (1, 0))


def applicants(fit: list[float], *, new=True, would_reform=True) -> Applicants:
    """New applicants with every fit signal at `fit`, all of whom would reform if declined."""
    n = len(fit)
    return Applicants(
        ids=np.arange(n), new=np.full(n, new), referred=np.zeros(n, dtype=bool),
        difficulty=np.full(n, 0.7), signals=np.repeat(np.array(fit)[:, None], 4, axis=1),
        true_hours=np.full(n, 8.0), stated_hours=np.full(n, 8.0), deadline=np.full(n, 4),
        prepay_ok=np.ones(n, dtype=bool), screening_noise=np.zeros((n, 4)),
        upsell_u=np.ones(n), work_per_billed_hour=np.ones(n),
        would_reform=np.full(n, would_reform),
    )  # fmt: skip


def test_applicants_who_pass_the_screen_but_find_no_hours_do_not_reform(model):
    # 1 hour: two screens of 0.5 h, then no hour left to diagnose the two who passed
    intake = business(model, 1.0).take(applicants([0.9, 0.9, 0.9, 0.9]))
    np.testing.assert_array_equal(intake.accepted, [False] * 4)
    assert not intake.reforms[:2].any()


def test_applicants_turned_away_unscreened_may_reform(model):
    # ODD 7.4: not passing the screen includes being turned away unscreened
    intake = business(model, 1.0).take(applicants([0.9, 0.9, 0.9, 0.9]))
    np.testing.assert_array_equal(intake.reforms, [False, False, True, True])


def test_only_applicants_declined_by_the_screen_reform(model):
    intake = business(model, 100.0).take(applicants([0.9, 0.2, 0.9, 0.2]))
    np.testing.assert_array_equal(intake.accepted, [True, False, True, False])
    np.testing.assert_array_equal(intake.reforms, [False, True, False, True])


def test_declined_returning_clients_and_unwilling_applicants_do_not_reform(model):
    returning = business(model, 100.0).take(applicants([0.2, 0.2], new=False))
    assert not returning.reforms.any()
    unwilling = business(model, 100.0).take(applicants([0.2, 0.2], would_reform=False))
    assert not unwilling.accepted.any() and not unwilling.reforms.any()


def test_a_business_that_does_not_screen_reforms_nobody(model):
    intake = business(model, 1.0, threshold=0.0).take(applicants([0.1, 0.9, 0.1]))
    assert not intake.reforms.any()
