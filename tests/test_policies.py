"""Tests of the client-selection policies (sim.model.policies).

Following Axelrod's test_player.py: every policy, preset or kind, passes one shared set of
tests (`TestEveryPolicy`); scripted screens with expected outcomes follow.
"""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from sim.config.compose import compose
from sim.config.registry import CRITERIA
from sim.model.policies import POLICY_KINDS, MustHavePolicy, Policy, make_policy

CFG = compose([])
PRESETS = list(CFG.policies)


def knobs_of(preset: str, **changes) -> SimpleNamespace:
    """A preset's config entry with `changes` (criteria replaced whole, not merged)."""
    knobs = {key: CFG.policies[preset][key] for key in CFG.policies[preset]}
    knobs["criteria"] = dict(CFG.policies[preset].criteria)
    knobs.update(changes)
    return SimpleNamespace(**knobs)


def must_have(threshold: float = 0.55) -> Policy:
    return make_policy("must_have", knobs_of("fit_filter", kind="must_have", threshold=threshold))


POLICIES = {name: make_policy(name, CFG.policies[name]) for name in PRESETS}
POLICIES["must_have"] = must_have()
SCREENING = [name for name, policy in POLICIES.items() if policy.threshold > 0]
SERVING_ALL = [name for name, policy in POLICIES.items() if policy.threshold == 0]


def applicants(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True difficulty and fit signals of `n` applicants, from a seeded generator."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(2, 5, n)
    signals = np.column_stack(
        [1 - difficulty, rng.beta(8, 1.5, n), rng.random(n), 1 - rng.beta(1, 8, n)]
    )
    return difficulty, signals


def observed(policy: Policy, signals: np.ndarray, seed: int = 1) -> np.ndarray:
    """Signals as the business sees them: each with N(0, screening_noise) error."""
    noise = np.random.default_rng(seed).normal(0, policy.screening_noise, signals.shape)
    return signals + noise


@pytest.fixture(params=list(POLICIES))
def policy(request) -> Policy:
    return POLICIES[request.param]


class TestEveryPolicy:
    """What every policy must do, whatever its kind and knobs."""

    def test_repr_contains_the_name(self, policy):
        assert policy.name in repr(policy)

    def test_policy_is_immutable(self, policy):
        with pytest.raises(dataclasses.FrozenInstanceError):
            policy.threshold = 0.99
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
            policy.new_knob = 1

    def test_copy_equals_original_and_screens_alike(self, policy):
        _, signals = applicants(500)
        copy = dataclasses.replace(policy)
        assert copy == policy and copy is not policy
        np.testing.assert_array_equal(copy.screen(signals), policy.screen(signals))

    def test_kind_is_registered_to_its_class(self, policy):
        assert POLICY_KINDS[policy.kind] is type(policy)

    def test_one_weight_per_criterion(self, policy):
        assert len(policy.criteria) == len(CRITERIA)
        assert sum(policy.criteria) > 0

    def test_screen_is_deterministic(self, policy):
        _, signals = applicants(2000)
        seen = observed(policy, signals)
        np.testing.assert_array_equal(policy.screen(seen), policy.screen(seen.copy()))

    def test_screen_returns_one_bool_per_applicant(self, policy):
        _, signals = applicants(777)
        accepted = policy.screen(observed(policy, signals))
        assert accepted.dtype == np.bool_
        assert accepted.shape == (777,)

    def test_screen_of_no_applicants_is_empty(self, policy):
        assert policy.screen(np.empty((0, len(CRITERIA)))).shape == (0,)

    def test_threshold_zero_accepts_everyone(self, policy):
        lenient = dataclasses.replace(policy, threshold=0.0)
        _, signals = applicants(1000)
        assert lenient.screen(observed(lenient, signals)).all()
        assert not lenient.screens

    def test_threshold_above_every_score_accepts_nobody(self, policy):
        strict = dataclasses.replace(policy, threshold=0.95)
        _, signals = applicants(1000)
        assert not strict.screen(np.clip(signals, 0, 0.9)).any()


@pytest.mark.parametrize("name", SERVING_ALL)
def test_presets_with_threshold_zero_accept_everyone(name):
    policy = POLICIES[name]
    _, signals = applicants(2000)
    assert policy.screen(observed(policy, signals)).all()
    assert policy.screen(np.zeros((3, len(CRITERIA)))).all()  # even the worst applicants


@pytest.mark.parametrize("name", SCREENING)
def test_screening_lowers_mean_difficulty_of_accepted(name):
    policy = POLICIES[name]
    difficulty, signals = applicants(5000, seed=7)
    accepted = policy.screen(observed(policy, signals, seed=8))
    assert 0 < accepted.sum() < accepted.size
    assert difficulty[accepted].mean() < difficulty[~accepted].mean()
    assert signals[accepted, 0].mean() > signals[:, 0].mean()  # more respect


def test_higher_threshold_accepts_a_subset():
    _, signals = applicants(5000)
    seen = observed(POLICIES["fit_filter"], signals)
    previous = np.ones(len(seen), dtype=bool)
    for threshold in (0.3, 0.55, 0.7, 0.85):
        accepted = dataclasses.replace(POLICIES["fit_filter"], threshold=threshold).screen(seen)
        assert np.all(previous | ~accepted)
        previous = accepted


@pytest.mark.parametrize("threshold", [0.3, 0.55, 0.7, 0.85])
def test_must_have_is_at_least_as_strict_as_threshold(threshold):
    strict = must_have(threshold)
    mean = make_policy("mean", knobs_of("fit_filter", threshold=threshold))
    _, signals = applicants(5000, seed=3)
    seen = observed(strict, signals, seed=4)
    by_all, by_mean = strict.screen(seen), mean.screen(seen)
    assert np.all(by_mean | ~by_all)
    assert by_all.sum() < by_mean.sum()


def test_scripted_screen_of_fit_filter_and_must_have():
    signals = np.array(
        [
            [0.9, 0.9, 0.9, 0.9],  # a good fit on every count
            [0.2, 0.2, 0.2, 0.2],  # a poor fit on every count
            [1.0, 1.0, 0.0, 0.4],  # good on average (0.6), but not aligned
            [0.6, 0.6, 0.6, 0.5],  # good on average (0.575), one signal short
        ]
    )
    np.testing.assert_array_equal(POLICIES["fit_filter"].screen(signals), [True, False, True, True])
    np.testing.assert_array_equal(must_have(0.55).screen(signals), [True, False, False, False])


def test_must_have_ignores_criteria_without_weight():
    policy = make_policy(
        "respect_only",
        knobs_of("fit_filter", kind="must_have", criteria={"respect": 1, "payment": 0}),
    )
    signals = np.array([[0.9, 0.0, 0.0, 0.0], [0.5, 1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(policy.screen(signals), [True, False])


def test_policy_kinds_registry_maps_kind_to_class():
    assert POLICY_KINDS == {"threshold": Policy, "must_have": MustHavePolicy}
    for kind, cls in POLICY_KINDS.items():
        assert cls.kind == kind
        built = make_policy("x", knobs_of("fit_filter", kind=kind))
        assert type(built) is cls


@pytest.mark.parametrize("name", PRESETS)
def test_make_policy_reads_every_knob_of_the_preset(name):
    policy, knobs = POLICIES[name], CFG.policies[name]
    assert policy.name == name
    for field in dataclasses.fields(policy):
        if field.name not in ("name", "criteria"):
            assert getattr(policy, field.name) == knobs[field.name], field.name
    assert policy.criteria == tuple(knobs.criteria[c] for c in CRITERIA)


def test_unknown_and_missing_criteria_weigh_zero():
    policy = make_policy("odd", knobs_of("fit_filter", criteria={"respect": 2.0, "charisma": 5.0}))
    assert policy.criteria == (2.0, 0.0, 0.0, 0.0)
    signals = np.array([[0.6, 0.0, 0.0, 0.0], [0.5, 1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(policy.screen(signals), [True, False])


def test_a_strong_culture_accepts_more_aligned_applicants():
    _, signals = applicants(5000, seed=5)
    noise = np.random.default_rng(6).normal(size=signals.shape)
    mean_alignment = []
    for strength in (0.0, 0.5, 1.0):
        policy = make_policy("x", knobs_of("fit_filter", culture_strength=strength))
        passed = policy.screen(policy.observe(signals, noise))
        assert 0 < passed.sum() < passed.size
        mean_alignment.append(signals[passed, 2].mean())
    assert mean_alignment[0] < mean_alignment[1] < mean_alignment[2]


def test_without_a_culture_the_screen_judges_the_signals_as_observed():
    _, signals = applicants(2000, seed=9)
    noise = np.random.default_rng(10).normal(size=signals.shape)
    for name in SCREENING:
        policy = POLICIES[name]
        assert policy.culture_strength == 0.0
        passed = policy.screen(policy.observe(signals, noise))
        expected = policy.screen(signals + policy.screening_noise * noise)
        np.testing.assert_array_equal(passed, expected)


def test_in_a_must_have_screen_a_strong_culture_lets_alignment_make_up_for_a_shortfall():
    signals = np.array([[0.4, 0.9, 0.9, 0.9], [0.4, 0.9, 0.3, 0.9]])  # short on respect
    for strength, expected in ((0.0, [False, False]), (0.5, [True, False])):
        knobs = knobs_of("fit_filter", kind="must_have", culture_strength=strength)
        policy = make_policy("x", knobs)
        passed = policy.screen(policy.observe(signals, np.zeros((2, 4))))
        np.testing.assert_array_equal(passed, expected)
