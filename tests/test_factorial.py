"""Main effects and interactions of a two-level factorial (sim.analysis.factorial), on hand-made
gaps whose effects are known."""

import itertools

import numpy as np
import pandas as pd
import pytest

from sim.analysis.factorial import coded, effects, terms

FACTORS = {"policies.fit_filter.threshold": 0.55, "policies.fit_filter.diagnosis": True,
           "policies.fit_filter.ad_honesty": 1.0}  # fmt: skip
LOW = {"policies.fit_filter.threshold": 0.0, "policies.fit_filter.diagnosis": False,
       "policies.fit_filter.ad_honesty": 0.8}  # fmt: skip


def factorial_gaps(seeds=5, noise=0.0, market="half_half", rng=None) -> pd.DataFrame:
    """gap = 10 + 3 a + 2 b − c + 4 a b + a seed's offset (+ cell noise), a b c = ±1 codes."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for seed, levels in itertools.product(range(seeds), itertools.product((1, -1), repeat=3)):
        a, b, c = levels
        values = {
            k: (FACTORS[k] if x > 0 else LOW[k]) for k, x in zip(FACTORS, levels, strict=True)
        }
        gap = 10 + 3 * a + 2 * b - c + 4 * a * b + 7 * seed + noise * rng.normal()
        rows.append({"market/policy_mix": market, "seed": seed, **values, "gap": gap})
    return pd.DataFrame(rows)


def test_coded_levels_are_plus_one_at_the_on_level():
    assert coded(pd.Series([0.55, 0.0]), 0.55).tolist() == [1, -1]
    assert coded(pd.Series([True, False], dtype="boolean"), True).tolist() == [1, -1]
    assert coded(pd.Series(["all_four", "half_half"]), "half_half").tolist() == [-1, 1]


def test_effects_are_twice_the_coefficients_of_the_coded_model():
    table = effects(factorial_gaps(), FACTORS, n_resamples=99).set_index("term")
    expected = {"threshold": 6, "diagnosis": 4, "ad_honesty": -2, "threshold × diagnosis": 8,
                "threshold × ad_honesty": 0, "diagnosis × ad_honesty": 0}  # fmt: skip
    assert list(table.index) == list(expected)
    assert table["effect"].to_dict() == pytest.approx(expected, abs=1e-9)
    assert table["order"].tolist() == [1, 1, 1, 2, 2, 2] and (table["n"] == 5).all()


def test_effects_get_paired_intervals_over_seeds_per_market():
    rng = np.random.default_rng(1)
    gaps = pd.concat([factorial_gaps(8, noise=1.0, market=m, rng=rng) for m in ("a", "b")])
    table = effects(gaps, FACTORS, by=["market/policy_mix"], n_resamples=99)
    assert len(table) == 2 * len(terms(FACTORS))
    main = table[table["term"] == "threshold"]
    assert ((main["ci_low"] < 6) & (6 < main["ci_high"])).all()  # the seed offsets cancel
    assert (main["ci_high"] - main["ci_low"] < 3).all()


def test_a_missing_cell_is_not_a_full_factorial():
    gaps = factorial_gaps()
    missing = gaps[~((gaps["policies.fit_filter.threshold"] == 0.0)
                     & ~gaps["policies.fit_filter.diagnosis"])]  # fmt: skip
    with pytest.raises(ValueError, match="full factorial"):
        effects(missing, FACTORS)
    with pytest.raises(ValueError, match="two levels"):
        effects(gaps, {**FACTORS, "policies.fit_filter.threshold": 0.7})


def test_a_seed_with_a_failed_run_is_left_out_of_the_effects():
    gaps = factorial_gaps().iloc[1:]  # seed 0 lost one cell
    assert (effects(gaps, FACTORS, n_resamples=99)["n"] == 4).all()


def test_a_cell_without_a_value_gives_nan_effects_when_asked():
    # a survivors' metric: every business of the policy exited in one cell, so no gap there
    gaps = factorial_gaps()
    gaps = gaps[~((gaps["policies.fit_filter.threshold"] == 0.0)
                  & ~gaps["policies.fit_filter.diagnosis"])]  # fmt: skip
    found = effects(gaps, FACTORS, n_resamples=99, missing_as_nan=True)
    assert len(found) == len(terms(FACTORS))
    assert (found["n"] == 0).all() and found["effect"].isna().all()
