"""Scripted intakes of the businesses: screening, the capacity cut, reform (sim.model.business)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.model.business import Business, Firms
from sim.model.intake import ACCEPTED, Applicants, Refusal
from sim.model.policies import Policy, make_policy


@pytest.fixture(scope="module")
def model():
    from sim.config.compose import compose
    from sim.model.engines.vectorized import VectorizedModel

    return VectorizedModel(compose(["market.n_clients=50", "steps=4"]))


def business(model, capacity: float, **knobs) -> Firms:
    """One fit_filter business with `capacity` hours a week and 0.5 h screens and diagnoses."""
    policy = make_policy("fit_filter", model.cfg.policies["fit_filter"])
    habits = dict(threshold=0.55, screening_hours=0.5, diagnosis=True, diagnosis_hours=0.5,
                  decline_impossible=False, prepayment=False)  # fmt: skip
    return firms(model, [dataclasses.replace(policy, **{**habits, **knobs})], capacity)


def firms(model, policies, capacity: float) -> Firms:
    """Businesses of these policies, `capacity` hours a week each."""
    return Firms(model.cfg, policies, capacity, [(1, 0)] * len(policies))


def applicants(fit: list[float], *, new=True, would_reform=True, business=0) -> Applicants:
    """New applicants with every fit signal at `fit`, all of whom would reform if declined."""
    n = len(fit)
    return Applicants(
        ids=np.arange(n), business=np.broadcast_to(np.asarray(business, dtype=np.int64), n),
        new=np.full(n, new), referred=np.zeros(n, dtype=bool),
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


def test_the_diagnosis_cap_never_spends_more_hours_than_are_left(model):
    taker = business(model, 2.2)  # returning clients, not screened: room for 4 diagnoses
    intake = taker.take(applicants([0.9] * 10, new=False))
    assert taker.diagnosis_hours[0] == 2.0 <= 2.2
    np.testing.assert_array_equal(intake.accepted, [True] * 4 + [False] * 6)
    np.testing.assert_array_equal(intake.reason, [ACCEPTED] * 4 + [Refusal.FULL] * 6)
    np.testing.assert_array_equal(intake.overhead_hours, [0.5] * 4 + [0.0] * 6)


def test_prepayment_refuses_only_clients_who_will_not_prepay(model):
    taker = business(model, 100.0, prepayment=True)
    a = applicants([0.9, 0.9, 0.2])
    a.prepay_ok[1] = False
    intake = taker.take(a)
    np.testing.assert_array_equal(intake.accepted, [True, False, False])
    np.testing.assert_array_equal(intake.reason, [ACCEPTED, Refusal.PREPAYMENT, Refusal.SCREEN])
    np.testing.assert_array_equal(intake.prepaid, [8.0 * taker.price[0], 0.0, 0.0])
    assert taker.revenue[0] == 8.0 * taker.price[0]


@dataclasses.dataclass(frozen=True, slots=True)
class RespectOnlyPolicy(Policy):
    """A new screen as a subclass: only respect counts, whatever the weights say."""

    def screen(self, observed_signals):
        """Accept the applicants whose observed respect reaches the threshold."""
        return observed_signals[:, 0] >= self.threshold


def test_a_new_screen_is_a_policy_subclass_the_business_applies_unchanged(model):
    base = business(model, 100.0).policies[0]
    respect = RespectOnlyPolicy(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    a = applicants([0.9, 0.2, 0.2])
    a.signals[1, 0] = 0.9  # respectful, unfit on every other signal
    intake = firms(model, [respect], 100.0).take(a)
    np.testing.assert_array_equal(intake.accepted, [True, True, False])
    np.testing.assert_array_equal(intake.reason, [ACCEPTED, ACCEPTED, Refusal.SCREEN])


def test_each_business_screens_within_its_own_hours(model):
    # two businesses of one policy, 1 hour each: each screens its own first two applicants
    policy = business(model, 1.0).policies[0]
    two = firms(model, [policy, policy], 1.0)
    a = applicants([0.9] * 6, business=[0, 0, 0, 1, 1, 1])
    intake = two.take(a)
    np.testing.assert_array_equal(intake.reforms, [False, False, True, False, False, True])
    np.testing.assert_array_equal(two.screening_hours, [1.0, 1.0])
    np.testing.assert_array_equal(two.applicants, [3, 3])


def test_a_business_reads_and_writes_its_entry_of_the_arrays(model):
    market = model
    business = market.businesses[1]
    assert isinstance(business, Business) and business.firms is market.firms
    business.cash = 12.5
    assert market.firms.cash[1] == 12.5 and type(business.cash) is float
    assert type(business.active) is bool and type(business.n_reviews) is int


# --- how a business refuses, and in what order (docs/ODD.md §7.4) --------------------------
def test_each_refusal_is_counted_under_the_first_check_it_failed(model):
    # the fifth newcomer finds no hour left to screen it: it is turned away unscreened
    # (2.25 h: four screens of 0.5 h, then 0.25 h left: a deadline is met on a 0.5-hour job)
    taker = business(model, 2.25, decline_impossible=True, prepayment=True, diagnosis=False)
    a = applicants([0.9, 0.2, 0.9, 0.9, 0.9])
    a.true_hours[[0, 3]] = a.stated_hours[[0, 3]] = 0.5
    a.deadline[2], a.prepay_ok[3] = 0, False
    intake = taker.take(a)
    np.testing.assert_array_equal(intake.accepted, [True, False, False, False, False])
    np.testing.assert_array_equal(
        intake.reason,
        [ACCEPTED, Refusal.SCREEN, Refusal.DEADLINE, Refusal.PREPAYMENT, Refusal.FULL],
    )
    counts = [taker.declined_screen, taker.declined_full, taker.declined_deadline,
              taker.declined_prepayment]  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(counts), [1, 1, 1, 1])
    assert sum(counts)[0] == taker.declined[0] == 4


def test_the_diagnosis_cap_declines_as_full(model):
    intake = business(model, 1.0).take(applicants([0.9, 0.9, 0.9, 0.9]))
    np.testing.assert_array_equal(intake.reason, [Refusal.FULL] * 4)


def test_a_business_that_keeps_clients_ends_the_relationship_only_on_its_screens_refusal(model):
    a = applicants([0.9, 0.2, 0.9])
    a.deadline[2] = 0
    keeps = business(model, 100.0, decline_impossible=True, ends_relationship=False).take(a)
    np.testing.assert_array_equal(keeps.ends_relationship, [False, True, False])
    ends = business(model, 100.0, decline_impossible=True, ends_relationship=True).take(a)
    np.testing.assert_array_equal(ends.ends_relationship, [False, True, True])


def full_of_work(model, backlog_weeks: float, **knobs) -> Firms:
    """A careful fit_filter business of 10 hours a week with `backlog_weeks` of work queued."""
    taker = business(model, 10.0, **{"careful_order": True, "full_weeks": 2.0, **knobs})
    taker.backlog_hours[:] = backlog_weeks * 10.0
    return taker


def test_a_careful_business_that_is_full_turns_newcomers_away_unscreened(model):
    a = applicants([0.9, 0.2, 0.9])
    a.new[2] = False  # a returning client is still considered
    intake = full_of_work(model, 2.0).take(a)
    np.testing.assert_array_equal(intake.reason, [Refusal.FULL, Refusal.FULL, ACCEPTED])
    np.testing.assert_array_equal(intake.overhead_hours, [0.0, 0.0, 0.5])  # its diagnosis
    assert not intake.reforms.any()  # turned away, not judged
    not_yet_full = full_of_work(model, 1.9).take(applicants([0.9, 0.2]))
    np.testing.assert_array_equal(not_yet_full.reason, [ACCEPTED, Refusal.SCREEN])
    careless = full_of_work(model, 2.0, careful_order=False).take(applicants([0.9, 0.2]))
    np.testing.assert_array_equal(careless.reason, [ACCEPTED, Refusal.SCREEN])


def test_a_careful_business_spends_no_diagnosis_hour_on_a_deadline_it_cannot_meet(model):
    def take(careful: bool):
        taker = full_of_work(model, 0.0, careful_order=careful, decline_impossible=True)
        a = applicants([0.9, 0.9, 0.9], new=False)
        a.deadline[1] = 0  # impossible
        a.stated_hours[2] = 100.0  # asks for 10 weeks of work: no 4-week deadline holds
        return taker, taker.take(a)

    careless, careless_intake = take(careful=False)
    careful, careful_intake = take(careful=True)
    # the third states 100 h but needs 8 (its true size): diagnosed, it fits; judged before
    # the diagnosis, on what it states, it does not
    np.testing.assert_array_equal(careless_intake.reason, [ACCEPTED, Refusal.DEADLINE, ACCEPTED])
    np.testing.assert_array_equal(careless_intake.overhead_hours, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(careful_intake.reason, [ACCEPTED] + [Refusal.DEADLINE] * 2)
    np.testing.assert_array_equal(careful_intake.overhead_hours, [0.5, 0.0, 0.0])
    assert careless.diagnosis_hours[0] == 1.5 and careful.diagnosis_hours[0] == 0.5


def test_a_careful_business_asks_for_prepayment_before_diagnosing(model):
    def take(careful: bool):
        taker = full_of_work(model, 0.0, careful_order=careful, prepayment=True)
        a = applicants([0.9, 0.9], new=False)
        a.prepay_ok[:] = [True, False]  # the second will not pay up front
        return taker.take(a)

    careless, careful = take(careful=False), take(careful=True)
    for intake in (careless, careful):
        np.testing.assert_array_equal(intake.reason, [ACCEPTED, Refusal.PREPAYMENT])
    np.testing.assert_array_equal(careless.overhead_hours, [0.5, 0.5])  # diagnosed, then refused
    np.testing.assert_array_equal(careful.overhead_hours, [0.5, 0.0])  # refused first
