"""The sensitivity study's binary factors (structural switches, the market's composition) and
P(gap > 0) with its interval (sim.validation.sensitivity)."""

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from test_sensitivity import study_base  # the tiny study's base config

from sim.cli.sensitivity import main, parser
from sim.config.schema import ConfigError
from sim.runs.run import build_model
from sim.validation import sensitivity as sa

BY_NAME = {p.name: p for p in sa.PARAMETERS}
SWITCHES = [p for p in sa.PARAMETERS if p.map == "switch"]
ISSUE_23_SWITCHES = {
    "refusal_ends_relationship", "fixed_capacity", "free_prepayment", "costless_bad_jobs",
    "careless_order", "even_demand", "fickle_clients",
}  # fmt: skip


@pytest.fixture(scope="module")
def base():
    return study_base()


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg)


def test_every_structure_switch_and_the_new_factors_are_declared_and_enabled():
    assert {p.name for p in SWITCHES} == ISSUE_23_SWITCHES
    assert {p.key for p in SWITCHES} == {f"structure/{name}" for name in ISSUE_23_SWITCHES}
    enabled = {p.name for p in sa.PARAMETERS if p.enabled}
    assert ISSUE_23_SWITCHES | {"four_policies", "satisfaction_baseline", "beta_prepay"} <= enabled
    assert BY_NAME["satisfaction_baseline"].key == "clients.satisfaction.baseline"


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda p: p.name)
def test_a_switch_on_sets_exactly_its_structure_options_keys(switch, base):
    option = switch.key.split("/")[1]
    ours = sa.sample_config(base, [switch], [0.75])
    assert plain(ours) == plain(study_base(f"structure={option}"))  # Hydra's own composition
    assert plain(ours) != plain(base)


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda p: p.name)
@pytest.mark.parametrize("x", [0.0, 1 / 3, 0.5])
def test_a_switch_at_or_below_one_half_sets_nothing(switch, x, base):
    assert switch.overrides(x, base) == {}
    assert plain(sa.sample_config(base, [switch], [x])) == plain(base)


def test_a_switch_that_is_on_wins_over_a_factor_of_the_same_key_in_any_order(base):
    prepay, free = BY_NAME["beta_prepay"], BY_NAME["free_prepayment"]
    for params in ([prepay, free], [free, prepay]):
        row = [-1.2 if p is prepay else 0.9 for p in params]
        assert sa.sample_config(base, params, row).clients.choice.beta_prepay == 0.0
        row = [-1.2 if p is prepay else 0.1 for p in params]
        assert sa.sample_config(base, params, row).clients.choice.beta_prepay == -1.2


def test_an_option_that_lists_others_is_not_a_switch():
    with pytest.raises(ConfigError, match="lists other options"):
        sa.structure_keys("before")


@pytest.mark.parametrize(
    ("x", "mix"),
    [(0.2, {"serve_all": 5, "fit_filter": 5}),
     (0.8, {"serve_all": 5, "fit_filter": 5, "picky": 5, "hard_sell": 5})],
)  # fmt: skip
@pytest.mark.parametrize("start", ["half_half", "all_four"])
def test_the_composition_factor_composes_two_or_four_policies(x, mix, start):
    base = study_base(f"market/policy_mix={start}")
    cfg = sa.sample_config(base, [BY_NAME["four_policies"]], [x])
    assert dict(cfg.market.policy_mix) == mix


@pytest.mark.parametrize(("four", "others"), [(0.2, {}), (0.8, {"picky": 5, "hard_sell": 5})])
def test_the_fit_filter_share_splits_fit_filter_and_serve_all_of_the_composition(
    four, others, base
):
    params = [BY_NAME["fit_filter_share"], BY_NAME["four_policies"]]  # share declared first
    cfg = sa.sample_config(base, params, [0.3, four])
    assert dict(cfg.market.policy_mix) == {"serve_all": 7, "fit_filter": 3, **others}
    overrides = sa.overrides_of(params, [0.3, four], base)
    assert list(overrides)[0] == "market/policy_mix"  # the composition first, then the share


def test_seeds_stay_paired_across_the_binary_factors(base):
    """The same seed gives the same clients whatever the composition and switches."""
    params = [BY_NAME[n] for n in ("four_policies", "fixed_capacity", "free_prepayment",
                                   "refusal_ends_relationship", "careless_order")]  # fmt: skip
    off = build_model(sa.sample_config(base, params, [0.0] * 5)).population
    on = build_model(sa.sample_config(base, params, [1.0] * 5)).population
    for trait in ("values", "segment", "difficulty", "budget", "need_rate", "scale", "patience"):
        assert np.array_equal(off[trait], on[trait]), trait


# --- P(gap > 0) ---------------------------------------------------------------------------


def test_positive_share_on_a_hand_made_table():
    # seed means: -1, 2, -1, 2 -> 2 of 4 points; runs above 0: 1 + 2 + 0 + 1 = 4 of 8
    gaps = np.array([[1.0, -3.0], [2.0, 2.0], [-1.0, -1.0], [5.0, -1.0]])
    got = sa.positive_share(gaps)
    assert (got["points"], got["positive"], got["share"]) == (4, 2, 0.5)
    assert (got["runs"], got["runs_positive"], got["run_share"]) == (8, 4, 0.5)
    # Clopper–Pearson for 2 of 4: the 2.5% point of Beta(2, 3) and the 97.5% of Beta(3, 2)
    assert got["ci_low"] == pytest.approx(0.06759, abs=1e-5)
    assert got["ci_high"] == pytest.approx(0.93241, abs=1e-5)


def test_positive_share_of_none_of_five_has_the_closed_form_upper_bound():
    got = sa.positive_share(np.array([[-1.0], [-2.0], [0.0], [-3.0], [-0.5]]))
    assert got["positive"] == 0 and got["ci_low"] == 0.0  # a gap of exactly 0 is not positive
    assert got["ci_high"] == pytest.approx(1 - 0.025 ** (1 / 5), rel=1e-9)  # 0.5218


def test_positive_share_refuses_an_empty_table():
    with pytest.raises(ValueError, match="points, seeds"):
        sa.positive_share(np.empty((0, 3)))


def test_positive_conditions_on_each_binary_factor():
    params = [BY_NAME["threshold"], BY_NAME["fixed_capacity"]]
    x = np.array([[0.3, 0.2], [0.5, 0.8], [0.6, 0.2], [0.8, 2 / 3]])
    week_13 = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -3.0], [-1.0, 2.0]])
    horizon = np.array([[-1.0, 2.0], [3.0, 1.0], [-4.0, 1.0], [2.0, 2.0]])
    table = sa.positive(params, x, np.stack([week_13, horizon], axis=2))
    assert list(table.columns) == list(sa.POSITIVE_COLUMNS)
    got = {(r.output, r.factor, r.level): (r.positive, r.points, r.runs_positive)
           for r in table.itertuples()}  # fmt: skip
    assert got == {
        ("week_13", "all", "all"): (2, 4, 4),
        ("week_13", "fixed_capacity", "off"): (1, 2, 3),  # rows 0, 2
        ("week_13", "fixed_capacity", "on"): (1, 2, 1),  # rows 1, 3
        ("horizon", "all", "all"): (3, 4, 6),
        ("horizon", "fixed_capacity", "off"): (1, 2, 2),
        ("horizon", "fixed_capacity", "on"): (2, 2, 4),
    }


# --- the command ----------------------------------------------------------------------------


def test_the_default_is_five_seeds_a_point():
    for method in ("morris", "sobol"):
        assert parser().parse_args([method]).seeds >= 5


def test_a_tiny_morris_runs_with_the_new_factors_and_prints_p_gap(tmp_path, capsys):
    names = "fit_filter_share,four_policies,satisfaction_baseline,free_prepayment,fixed_capacity"
    argv = ["morris", "--clients", "300", "--weeks", "26", "--jobs", "1", "--seeds", "2",
            "-r", "2", "--params", names, "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "P(gap > 0) horizon:" in out and "P(gap > 0) horizon, free_prepayment: off" in out
    table = pd.read_parquet(tmp_path / "morris.parquet")
    assert set(table["parameter"]) == set(names.split(","))
    chance = pd.read_parquet(tmp_path / "morris_positive.parquet")
    horizon = chance[chance["output"] == "horizon"].set_index(["factor", "level"])
    assert set(horizon.index) == {("all", "all")} | {
        (f, level) for f in ("four_policies", "free_prepayment", "fixed_capacity")
        for level in ("off", "on")
    }  # fmt: skip
    assert horizon.loc[("all", "all"), "points"] == 2 * 6
    for factor in ("four_policies", "free_prepayment", "fixed_capacity"):
        assert horizon.loc[(factor, "off"), "points"] + horizon.loc[(factor, "on"), "points"] == 12
    samples = pd.read_parquet(tmp_path / "morris_samples.parquet")
    assert samples["overrides"].str.contains("market/policy_mix=").all()
    text = (tmp_path / "morris.md").read_text()
    assert "## P(gap > 0)" in text and "off/on above 0.5" in text
