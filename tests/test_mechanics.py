"""Tests of the model's formulas (sim.model.mechanics), one or more per function."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import unit_vectors

from sim.config.compose import compose
from sim.model import mechanics as m
from sim.model.kernels import formulas

N = 200_000  # draws per statistical check
SIGMAS = 5.0


@pytest.fixture(scope="module")
def cfg():
    return compose([])


@pytest.fixture(scope="module")
def sat(cfg):
    return cfg.clients.satisfaction


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


# --- Need, job size, misdiagnosis ------------------------------------------------------------


def test_need_probability_matches_poisson_rate(rng):
    assert m.need_probability(0.0) == 0.0
    assert m.need_probability(52.0) == pytest.approx(1.0 - np.exp(-1.0), rel=1e-15)
    rate = 6.0
    arrivals = rng.poisson(rate / m.WEEKS_PER_YEAR, N)
    p = m.need_probability(rate)
    assert abs(np.mean(arrivals > 0) - p) < SIGMAS * np.sqrt(p * (1 - p) / N)


def test_need_probability_rises_with_rate_and_stays_below_one():
    p = m.need_probability(np.array([0.5, 1, 4, 6, 52, 520]))
    assert np.all(np.diff(p) > 0)
    assert np.all(p < 1.0)


@pytest.mark.parametrize("p", [0.02, 0.1, 0.5])
def test_geometric_weeks_mean_is_one_over_p(rng, p):
    weeks = m.geometric_weeks(rng.random(N), p)
    assert weeks.min() >= 1
    sd = np.sqrt(1 - p) / p
    assert abs(weeks.mean() - 1 / p) < SIGMAS * sd / np.sqrt(N)
    assert abs(np.mean(weeks == 1) - p) < SIGMAS * np.sqrt(p * (1 - p) / N)


def test_geometric_weeks_is_one_when_certain_and_never_when_impossible():
    u = np.array([1e-12, 0.3, 0.999999])
    np.testing.assert_array_equal(m.geometric_weeks(u, 1.0), [1, 1, 1])
    never = m.geometric_weeks(u, 0.0)
    assert never.dtype == np.int64
    assert np.all(never == 2**30)


def test_job_size_median_is_median_hours(cfg, rng):
    jobs = cfg.market.jobs
    assert m.job_size(0.0, 1.0, jobs) == jobs.median_hours
    assert m.job_size(0.0, 3.0, jobs) == 3 * jobs.median_hours  # a client 3 times the size
    sizes = m.job_size(rng.standard_normal(N), 1.0, jobs)
    assert np.median(sizes) == pytest.approx(jobs.median_hours, rel=0.01)
    assert np.mean(sizes) == pytest.approx(jobs.median_hours * np.exp(jobs.sigma**2 / 2), rel=0.01)


def test_misdiagnosed_stated_size_is_a_smaller_share_of_the_true_size(cfg):
    jobs = cfg.market.jobs
    true = np.full(5, 10.0)
    u = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    stated = m.stated_size(true, np.ones(5, dtype=bool), u, jobs)
    np.testing.assert_allclose(
        stated[[0, -1]], [10 * jobs.misdiagnosed_low, 10 * jobs.misdiagnosed_high]
    )
    assert np.all(np.diff(stated) > 0)
    assert np.all(stated < true)
    np.testing.assert_array_equal(m.stated_size(true, np.zeros(5, dtype=bool), u, jobs), true)


# --- Service and payment -----------------------------------------------------------------------


def test_conflict_probability_rises_with_the_square_of_difficulty(cfg):
    service = cfg.market.service
    p = m.conflict_probability(np.array([0.0, 0.5, 1.0]), service)
    np.testing.assert_allclose(p, [0.0, service.conflict_prob / 4, service.conflict_prob])


def test_difficult_clients_take_more_hours(cfg):
    service = cfg.market.service
    difficulty = np.linspace(0, 1, 11)
    per_billed_hour = m.work_per_billed_hour(difficulty, 0, service)
    assert per_billed_hour[0] == 1.0
    assert np.all(np.diff(per_billed_hour) > 0)
    assert per_billed_hour[-1] == pytest.approx(1 + service.difficulty_hours)


def test_conflict_adds_its_share_of_billed_hours(cfg):
    service = cfg.market.service
    extra = m.work_per_billed_hour(0.4, 1, service) - m.work_per_billed_hour(0.4, 0, service)
    assert extra == pytest.approx(service.conflict_hours)


def test_a_job_takes_at_least_its_billed_hours(cfg, rng):
    per_billed_hour = m.work_per_billed_hour(rng.random(1000), rng.random(1000) < 0.3,
                                             cfg.market.service)  # fmt: skip
    assert np.all(per_billed_hour >= 1.0)


def test_projected_finish_counts_the_backlog_and_survives_zero_capacity():
    assert m.projected_finish_weeks(30.0, 10.0, 20.0) == 2.0
    assert np.isfinite(m.projected_finish_weeks(30.0, 10.0, 0.0))
    assert m.projected_finish_weeks(30.0, 10.0, 0.0) > 1e6


def test_payment_fraction_full_partial_or_nothing(cfg):
    payment = cfg.market.payment
    below, above = 0.5 * payment.partial_prob, 0.5 * (1 + payment.partial_prob)
    assert m.payment_fraction(0.2, above, 0.7, payment) == 1.0
    assert m.payment_fraction(0.9, below, 0.7, payment) == payment.partial_share
    assert m.payment_fraction(0.9, above, 0.7, payment) == 0.0


def test_expected_payment_matches_reliability_and_partial_rule(cfg, rng):
    payment = cfg.market.payment
    r = 0.7
    paid = m.payment_fraction(rng.random(N), rng.random(N), r, payment)
    assert set(np.unique(paid)) <= {0.0, payment.partial_share, 1.0}
    expected = r + (1 - r) * payment.partial_prob * payment.partial_share
    assert abs(paid.mean() - expected) < SIGMAS * paid.std() / np.sqrt(N)


# --- Satisfaction ------------------------------------------------------------------------------


def satisfaction_of(sat, **changes):
    """Satisfaction of a typical finished job, with `changes` to its circumstances."""
    job = dict(
        align=0.5, wait_weeks=0.0, price_ratio=1.0, budget=1.0, misfit=0, extras=0, late=0,
        overpromise=0.0, difficulty=0.2, noise=0.0,
    )  # fmt: skip
    job.update(changes)
    return float(m.satisfaction(sat=sat, **job))


def test_typical_job_satisfaction_is_baseline_minus_difficulty(sat):
    assert satisfaction_of(sat) == pytest.approx(sat.baseline - 0.2 * sat.difficulty)


@pytest.mark.parametrize(
    "penalty",
    [
        {"misfit": 1},
        {"extras": 1},
        {"late": 1},
        {"overpromise": 0.18},
        {"wait_weeks": 4.0},
        {"price_ratio": 1.3},
        {"difficulty": 0.8},
        {"align": 0.0},
    ],
    ids=lambda change: next(iter(change)),
)
def test_each_penalty_lowers_satisfaction(sat, penalty):
    assert satisfaction_of(sat, **penalty) < satisfaction_of(sat)


def test_waiting_within_grace_costs_nothing_then_each_week_costs(sat):
    assert satisfaction_of(sat, wait_weeks=sat.wait_grace) == satisfaction_of(sat)
    drop = satisfaction_of(sat) - satisfaction_of(sat, wait_weeks=sat.wait_grace + 2)
    assert drop == pytest.approx(2 * sat.wait)


def test_price_under_budget_earns_no_bonus(sat):
    assert satisfaction_of(sat, price_ratio=0.7) == satisfaction_of(sat)
    assert satisfaction_of(sat, price_ratio=1.0, budget=0.75) < satisfaction_of(sat)


def test_satisfaction_is_clipped_to_unit_interval(sat, rng):
    assert satisfaction_of(sat, noise=50.0) == 1.0
    assert satisfaction_of(sat, noise=-50.0, misfit=1, late=1) == 0.0
    s = m.satisfaction(
        rng.random(N), rng.uniform(0, 20, N), rng.uniform(0.5, 2, N), rng.uniform(0.5, 1.5, N),
        rng.random(N) < 0.3, rng.random(N) < 0.3, rng.random(N) < 0.3, rng.uniform(0, 0.3, N),
        rng.random(N), rng.standard_normal(N), sat,
    )  # fmt: skip
    assert s.min() >= 0.0 and s.max() <= 1.0


def test_overpromise_is_zero_for_honest_ads_and_grows_with_dishonesty(cfg):
    ads = cfg.market.ads
    assert m.overpromise(1.0, ads) == 0.0
    lost = m.overpromise(np.array([1.0, 0.8, 0.4, 0.0]), ads)
    assert np.all(np.diff(lost) > 0)
    assert lost[-1] == pytest.approx(ads.overpromise)


def test_retention_rises_with_satisfaction(sat):
    p = m.retention_probability(np.linspace(0, 1, 21), sat)
    assert np.all(np.diff(p) > 0)
    assert m.retention_probability(sat.retention_threshold, sat) == 0.5
    # a switching cost keeps some clients even through the worst job, rarely
    assert p[0] < 0.2 and p[-1] > 0.99


# --- Reviews and reputation --------------------------------------------------------------------


def test_review_probability_is_highest_at_extremes(cfg):
    reviews = cfg.clients.reviews
    s = np.linspace(0, 1, 101)
    p = m.review_probability(s, 0.6, reviews)
    assert p[0] == pytest.approx(0.6) and p[-1] == pytest.approx(0.6)
    assert p[50] == pytest.approx(0.6 * reviews.floor)
    assert np.all(np.diff(p[:51]) < 0) and np.all(np.diff(p[50:]) > 0)
    np.testing.assert_allclose(p, p[::-1])  # as likely after a fiasco as after a delight


def test_review_probability_scales_with_propensity(cfg):
    reviews = cfg.clients.reviews
    assert m.review_probability(0.9, 0.0, reviews) == 0.0
    assert m.review_probability(0.9, 0.8, reviews) == pytest.approx(
        2 * m.review_probability(0.9, 0.4, reviews)
    )


def test_rating_maps_satisfaction_to_stars():
    s = np.array([0.0, 0.1, 0.2, 0.21, 0.4, 0.5, 0.6, 0.79, 0.8, 0.81, 1.0])
    stars = m.rating(s)
    np.testing.assert_array_equal(stars, [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    assert stars.dtype == np.int64


def test_reputation_starts_at_prior_and_moves_toward_ratings(cfg):
    reviews = cfg.clients.reviews
    assert m.reputation(0.0, 0.0, reviews) == reviews.prior_rating
    one_star = m.reputation(1.0, 1.0, reviews)
    assert one_star == pytest.approx((reviews.prior_reviews * reviews.prior_rating + 1) / 6)
    fives = np.arange(0, 200)
    rep = m.reputation(fives.astype(float), 5.0 * fives, reviews)
    assert np.all(np.diff(rep) > 0)
    assert 4.95 < rep[-1] < 5.0


@pytest.mark.parametrize("half_life", [1.0, 13.0, 52.0])
def test_weekly_decay_halves_after_half_life(half_life):
    decay = m.weekly_decay(half_life)
    assert 0 < decay < 1
    assert decay**half_life == pytest.approx(0.5, rel=1e-12)
    assert m.decayed(2.0, half_life, decay) == pytest.approx(1.0, rel=1e-12)


def test_decayed_amount_is_intact_when_fresh_and_falls_with_age():
    assert m.decayed(3.0, 0, 0.99) == 3.0
    ages = np.arange(0, 100)
    assert np.all(np.diff(m.decayed(3.0, ages, 0.99)) < 0)


# --- Word of mouth, ads, choice ---------------------------------------------------------------


def test_tell_probability_positive_and_negative_stories():
    wom = SimpleNamespace(positive=0.7, negative=0.35, p_positive=0.3, p_negative=0.2)
    s = np.array([0.9, 0.71, 0.7, 0.5, 0.35, 0.34, 0.0])
    p, sign = m.tell_probability(0.5, s, wom)
    np.testing.assert_array_equal(sign, [1, 1, 0, 0, 0, -1, -1])
    np.testing.assert_allclose(p, [0.15, 0.15, 0, 0, 0, 0.1, 0.1])


def test_silent_clients_tell_nobody(cfg):
    p, _ = m.tell_probability(0.0, np.array([0.0, 1.0]), cfg.clients.wom)
    np.testing.assert_array_equal(p, [0.0, 0.0])


def test_dishonest_ads_reach_further(cfg):
    ads = cfg.market.ads
    reach = m.ad_reach(ads.reach, np.array([1.0, 0.8, 0.4, 0.0]), ads)
    assert reach[0] == ads.reach
    assert np.all(np.diff(reach) > 0)
    assert reach[-1] == pytest.approx(ads.reach * (1 + ads.dishonesty_boost))


def test_alignment_is_one_for_same_values_zero_for_opposite():
    v = (math.cos(0.3), math.sin(0.3))
    assert m.alignment(*v, *v) == pytest.approx(1.0)
    assert m.alignment(*v, -v[0], -v[1]) == pytest.approx(0.0, abs=1e-15)
    assert m.alignment(*v, -v[1], v[0]) == pytest.approx(0.5)


def test_fma_rounds_once_where_a_product_and_a_sum_round_twice():
    a = 1.0 + 2.0**-30
    assert m.fma(a, a, -1.0) == 2.0**-29 + 2.0**-60  # exact: a product alone would lose 2^-60
    assert a * a - 1.0 == 2.0**-29


def test_alignment_of_clients_with_every_culture_is_the_formula_in_unit_interval(rng):
    """`formulas.alignments`, the compiled formula, gives `mechanics.alignment` bit for bit."""
    values = unit_vectors(rng.uniform(0, 2 * np.pi, 300))
    cultures = unit_vectors(rng.uniform(0, 2 * np.pi, (7, 2)))  # 7 businesses, 2 markets
    align = formulas.alignments(values, cultures, np.arange(300), 150)
    assert align.shape == (300, 7)
    assert align.min() >= 0.0 and align.max() <= 1.0
    expected = [[m.alignment(*values[i], *cultures[b, i // 150]) for b in range(7)]
                for i in range(300)]  # fmt: skip
    np.testing.assert_array_equal(align, expected)


# --- Culture strength ---------------------------------------------------------------------
def test_referral_matching_favours_friends_who_fit_without_adding_referrals(rng):
    fit = rng.beta(6, 2, N)
    np.testing.assert_array_equal(m.referral_matching(fit, 0.0), np.ones(N))
    for matching in (0.3, 1.0):
        factor = m.referral_matching(fit, matching)
        assert factor.mean() == pytest.approx(1.0)
        assert (np.diff(factor[np.argsort(fit)]) >= 0).all() and (factor >= 0).all()
    assert m.referral_matching(np.array([0.0, 1.0]), 1.0).tolist() == [0.0, 2.0]


def test_culture_affinity_is_one_without_a_culture_and_keeps_the_mean_reach(rng):
    angles = rng.uniform(0, 2 * np.pi, N)
    culture = np.array([[[1.0, 0.0]]])  # one business, one market
    align = formulas.alignments(unit_vectors(angles), culture, np.arange(N), N)[:, 0]
    np.testing.assert_array_equal(m.culture_affinity(align, 0.0), np.ones(N))
    for strength in (0.5, 1.0):
        g = m.culture_affinity(align, strength)
        # values uniform on the circle: alignment averages 1/2, its s.d. is 1/sqrt(8)
        assert abs(g.mean() - 1.0) < SIGMAS * 2 * strength / np.sqrt(8) / np.sqrt(N)
        assert g.min() >= 1 - strength - 1e-12 and g.max() <= 1 + strength + 1e-12
        assert np.all(np.diff(m.culture_affinity(np.linspace(0, 1, 11), strength)) > 0)
    assert m.culture_affinity(1.0, 1.0) == 2.0 and m.culture_affinity(0.0, 1.0) == 0.0


def test_culture_signals_lean_every_signal_toward_alignment(rng):
    signals = rng.random((100, 4))
    np.testing.assert_array_equal(m.culture_signals(signals, 0.0), signals)
    weights = (1.0, 2.0, 1.0, 0.0)
    for strength in (0.3, 1.0):
        judged = m.culture_signals(signals, strength)
        np.testing.assert_array_equal(judged[:, 2], signals[:, 2])
        expected = (1 - strength) * m.fit_score(signals, weights) + strength * signals[:, 2]
        np.testing.assert_allclose(m.fit_score(judged, weights), expected, rtol=1e-12)
    np.testing.assert_array_equal(m.culture_signals(signals, 1.0), signals[:, [2, 2, 2, 2]])


@pytest.mark.parametrize(
    ("serves", "decider", "user"),
    [("all", 0.0, 0.0), ("decider", 0.5, -0.5), ("user", -0.5, 0.5)],
)
def test_serving_one_role_courts_it_and_neglects_the_other(serves, decider, user):
    assert m.role_shift(serves, "decider", 0.5) == decider
    assert m.role_shift(serves, "user", 0.5) == user


def test_tailored_alignment_moves_toward_one_when_courted_and_zero_when_neglected():
    align = np.linspace(0.0, 1.0, 11)
    np.testing.assert_array_equal(m.tailored_alignment(align, 0.0), align)
    np.testing.assert_allclose(m.tailored_alignment(align, 0.5), 0.5 + 0.5 * align)
    np.testing.assert_allclose(m.tailored_alignment(align, -0.5), 0.5 * align)
    np.testing.assert_array_equal(m.tailored_alignment(align, 1.0), np.ones(11))
    np.testing.assert_array_equal(m.tailored_alignment(align, -1.0), np.zeros(11))
    # one shift per business: a courted role gains what a neglected one loses, on average
    both = m.tailored_alignment(np.array([0.5, 0.5]), np.array([0.3, -0.3]))
    assert both.mean() == pytest.approx(0.5)


def test_gumbel_noise_has_the_euler_mascheroni_mean(rng):
    g = m.gumbel(rng.random(N))
    assert abs(g.mean() - np.euler_gamma) < SIGMAS * (np.pi / np.sqrt(6)) / np.sqrt(N)
    assert np.all(np.diff(m.gumbel(np.linspace(0.01, 0.99, 50))) > 0)


def utility_of(choice, **changes):
    """Utility of a typical business for a typical client, with `changes`."""
    offer = dict(
        reputation=4.0, align=0.5, price_ratio=1.0, budget=1.0, credit=0.0, warning=0.0,
        queue_weeks=1.0, noise=0.0,
    )  # fmt: skip
    offer.update(changes)
    return float(m.choice_utility(choice=choice, **offer))


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        ({"reputation": 4.5}, {"reputation": 3.0}),
        ({"align": 0.9}, {"align": 0.1}),
        ({"price_ratio": 0.9}, {"price_ratio": 1.2}),
        ({"budget": 1.2}, {"budget": 0.75}),
        ({"credit": 1.0}, {}),
        ({}, {"warning": 2.0}),
        ({"queue_weeks": 0.0}, {"queue_weeks": 4.0}),
    ],
    ids=["reputation", "alignment", "price", "budget", "referral", "warning", "queue"],
)
def test_choice_utility_prefers_reputation_and_penalises_price(cfg, better, worse):
    choice = cfg.clients.choice
    assert utility_of(choice, **better) > utility_of(choice, **worse)


def test_choice_utility_at_reference_rating_exact_value(cfg):
    choice = cfg.clients.choice
    u = utility_of(choice, reputation=choice.reference_rating, queue_weeks=0.0)
    assert u == pytest.approx(choice.beta_alignment * 0.5 - choice.beta_price)


# --- Screening signals -------------------------------------------------------------------------


def test_fit_score_sums_its_products_in_pairs_first_with_third():
    """(p1 + p3) + (p2 + p4), not left to right (which would lose the 1 added to 1e16)."""
    signals = np.array([[1e16, 1.0, -1e16, 1.0]])
    assert m.fit_score(signals, [1, 1, 1, 1])[0] == 0.5
    assert ((1e16 + 1.0) - 1e16 + 1.0) / 4 == 0.25


def test_fit_score_is_the_weighted_mean_ignoring_zero_weights():
    signals = np.array([[0.8, 0.9, 0.6, 0.9], [0.2, 0.4, 0.0, 1.0]])
    np.testing.assert_allclose(m.fit_score(signals, [1, 1, 1, 1]), [0.8, 0.4])
    np.testing.assert_allclose(m.fit_score(signals, [2, 0, 0, 0]), [0.8, 0.2])
    np.testing.assert_allclose(m.fit_score(signals, [1, 3, 0, 0]), [0.875, 0.35])


# --- Market size and outcomes ------------------------------------------------------------------


def test_capacity_per_business_scales_inversely_with_ratio():
    assert m.capacity_per_business(1000.0, 1.0, 5) == 200.0
    assert m.capacity_per_business(1000.0, 2.0, 5) == 100.0
    assert m.capacity_per_business(1000.0, 0.5, 5) == 400.0
    assert m.capacity_per_business(1000.0, 1.0, 10) == 100.0


def test_expected_demand_counts_difficulty_and_conflict_hours(cfg):
    jobs, service = cfg.market.jobs, cfg.market.service
    need_rate = np.full(100, 5.0)
    ones = np.ones(100)
    easy = m.expected_work_hours_per_week(need_rate, np.zeros(100), ones, jobs, service)
    mean_size = jobs.median_hours * np.exp(jobs.sigma**2 / 2)
    assert easy == pytest.approx(100 * m.need_probability(5.0) * mean_size)
    hard = m.expected_work_hours_per_week(need_rate, np.full(100, 0.5), ones, jobs, service)
    extra = service.difficulty_hours * 0.5 + service.conflict_hours * service.conflict_prob * 0.25
    assert hard == pytest.approx(easy * (1 + extra))
    # a client twice the size wants twice the hours
    big = m.expected_work_hours_per_week(need_rate, np.zeros(100), 2 * ones, jobs, service)
    assert big == pytest.approx(2 * easy)


@pytest.mark.parametrize(
    ("a", "b", "week"),
    [
        ([1, 2, 3, 4], [5, 6, 7, 8], None),
        ([5, 6, 7, 8], [1, 2, 3, 4], 0),
        ([1, 2, 9, 10, 11], [5, 5, 5, 5, 5], 2),
        ([1, 9, 1, 9, 9], [5, 5, 5, 5, 5], 3),
        ([1, 9, 9, 9, 1], [5, 5, 5, 5, 5], None),
        ([5, 5, 6], [5, 5, 5], 2),  # a tie is not being ahead
        ([], [], None),
    ],
    ids=["never-ahead", "always-ahead", "ahead-from-2", "ahead-twice", "ahead-then-behind",
         "tie", "empty"],
)  # fmt: skip
def test_crossover_week(a, b, week):
    assert m.crossover_week(a, b) == week


def test_whale_curve_starts_high_and_ends_at_one():
    profits = np.array([10.0, -20.0, 50.0, -10.0, 30.0])
    curve = m.whale_curve(profits)
    np.testing.assert_allclose(curve, np.array([50, 80, 90, 80, 60]) / 60)
    assert curve[-1] == pytest.approx(1.0)
    assert curve.max() > 1.0  # loss-making clients eat part of the profit of the best


def test_whale_curve_of_zero_total_profit_is_flat():
    np.testing.assert_array_equal(m.whale_curve([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0])


# --- Scalars and arrays agree exactly (both engines rely on it) --------------------------------


def elementwise(func, columns):
    return np.array([np.asarray(func(*(float(c[i]) for c in columns))).item()
                     for i in range(len(columns[0]))])  # fmt: skip


SCALAR_CASES = {
    "need_probability": (lambda c, rate: m.need_probability(rate), [(0.1, 30.0)]),
    "geometric_weeks": (lambda c, u, p: m.geometric_weeks(u, p), [(0.0, 1.0), (0.001, 0.5)]),
    "satisfaction": (
        lambda c, a, w, d, z: m.satisfaction(a, w, 1.2, 0.9, 0, 1, 0, 0.1, d, z, c.satisfaction),
        [(0, 1), (0, 5), (0, 1), (-3, 3)],
    ),
    "retention_probability": (lambda c, s: m.retention_probability(s, c.satisfaction), [(0, 1)]),
    "choice_utility": (
        lambda c, r, a, p, q, z: m.choice_utility(r, a, p, 0.9, 0.5, 0.2, q, z, c.choice),
        [(1, 5), (0, 1), (0.5, 2), (0, 4), (-2, 5)],
    ),
    "tell_probability": (lambda c, t, s: m.tell_probability(t, s, c.wom)[0], [(0, 1), (0, 1)]),
    "rating": (lambda c, s: m.rating(s), [(0, 1)]),
    "culture_affinity": (lambda c, a, k: m.culture_affinity(a, k), [(0, 1), (0, 1)]),
    "tailored_alignment": (lambda c, a, s: m.tailored_alignment(a, s), [(0, 1), (-1, 1)]),
}


@pytest.mark.parametrize("name", SCALAR_CASES)
def test_scalars_and_arrays_give_identical_values(cfg, rng, name):
    formula, ranges = SCALAR_CASES[name]
    columns = [rng.uniform(low, high, 300) for low, high in ranges]

    def call(*args):
        return formula(cfg.clients, *args)

    np.testing.assert_array_equal(np.asarray(call(*columns)), elementwise(call, columns))


def test_review_probability_of_arrays_of_one_equals_the_whole_array(cfg, rng):
    # the agents engine calls the phases with arrays of one client
    s, propensity = rng.random(2000), rng.random(2000)
    whole = m.review_probability(s, propensity, cfg.clients.reviews)
    ones = [m.review_probability(s[i : i + 1], propensity[i : i + 1], cfg.clients.reviews)[0]
            for i in range(s.size)]  # fmt: skip
    np.testing.assert_array_equal(whole, ones)


def test_a_client_judges_its_provider_on_its_record_with_memory(cfg):
    s, held, first = np.array([0.2, 0.2]), np.array([0.9, 0.9]), np.array([True, False])
    np.testing.assert_array_equal(m.judged_satisfaction(s, held, first, 0.0), s)  # job alone
    np.testing.assert_allclose(m.judged_satisfaction(s, held, first, 0.7), [0.2, 0.69])
    sat = cfg.clients.satisfaction
    half = m.retention_probability(sat.retention_threshold, sat)
    assert half == pytest.approx(0.5)  # as likely to stay as to go at the threshold
