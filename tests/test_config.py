"""Tests of the config schema and its validation (sim.config), through Hydra's compose API."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from sim.cli import CONFIG_DIR, compose
from sim.config import ConfigError, validate


def group_options() -> list[str]:
    """One `group=option` override per YAML file of every config group under configs/."""
    return sorted(
        f"{path.parent.relative_to(CONFIG_DIR).as_posix()}={path.stem}"
        for path in Path(CONFIG_DIR).rglob("*.yaml")
        if path.parent != Path(CONFIG_DIR)
    )


def test_config_dir_has_the_documented_options():
    options = group_options()
    for expected in ("clients=default", "clients=difficult_heavy", "market=default",
                     "market/network=watts_strogatz", "market/network=complete",
                     "policies=default"):  # fmt: skip
        assert expected in options


def test_primary_config_composes_and_validates():
    cfg = compose([])
    validate(cfg)
    assert cfg.steps == 260 and cfg.engine == "vectorized"


@pytest.mark.parametrize("option", group_options())
def test_every_group_option_composes_and_validates(option):
    validate(compose([option]))


def test_network_option_sets_its_kind():
    for option in (o for o in group_options() if o.startswith("market/network=")):
        assert compose([option]).market.network.kind == option.partition("=")[2]


def test_difficult_heavy_triples_the_difficult_share():
    default = compose([]).clients.segments.difficult.share
    heavy = compose(["clients=difficult_heavy"]).clients.segments.difficult.share
    assert heavy == pytest.approx(3 * default)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("market.policy_mix.serve_all=-1", "market.policy_mix.serve_all"),
        ("market.n_clients=-5", "market.n_clients"),
        ("clients.segments.partner.share=1.5", "clients.segments.partner.share"),
        ("clients.segments.bargain.share=-0.1", "clients.segments.bargain.share"),
        ("clients.segments.partner.share=0.5", "clients.segments.*.share"),
        ("+market.policy_mix.nonexistent=2", "market.policy_mix.nonexistent"),
        ("market.network.kind=lattice", "market.network.kind"),
        ("market.network.homophily=2", "market.network.homophily"),
        ("policies.fit_filter.threshold=1.5", "policies.fit_filter.threshold"),
        ("engine=warp", "engine"),
        ("steps=0", "steps"),
        ("seed=-1", "seed"),
        ("clients.segments.partner.difficulty=[0,8]", "clients.segments.partner.difficulty"),
        (
            "clients.segments.difficult.misdiagnosis=[3,-1]",
            "clients.segments.difficult.misdiagnosis",
        ),
        ("clients.review_propensity=[2,0]", "clients.review_propensity"),
    ],
)
def test_bad_value_raises_config_error_naming_the_key(override, key):
    cfg = compose([override])
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert error.value.key == key
    assert str(error.value).startswith(f"invalid config: {key}=")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("market.nonexistent=1", "market.nonexistent"),
        ("policies.fit_filter.nonexistent=1", "policies.fit_filter.nonexistent"),
        ("steps=abc", "steps"),
        ("market.policy_mix.serve_all=1.5", "market.policy_mix.serve_all"),
        ("market/network=nope", "market/network"),
    ],
)
def test_unknown_key_or_wrong_type_fails_to_compose(override, key):
    with pytest.raises(ConfigCompositionException, match=key):
        compose([override])


@pytest.mark.parametrize(
    "overrides",
    [
        ["market.network.params.k=0"],
        ["market.network.params.p=2"],
        ["market.n_clients=5"],
        ["market/network=complete", "market.n_clients=6000"],
    ],
)
def test_network_params_out_of_range_raise_config_error(overrides):
    with pytest.raises(ConfigError):
        validate(compose(overrides))


def test_defaults_match_the_calibration_of_model_md():
    cfg = compose([])
    assert cfg.market.price == 100
    assert cfg.market.wage == 30
    assert cfg.policies.fit_filter.threshold == 0.55
    assert cfg.policies.picky.threshold == 0.85
    assert cfg.policies.hard_sell.upsell_rate == 0.5
    assert cfg.policies.serve_all.upsell_rate == 0.0
    shares = {name: seg.share for name, seg in cfg.clients.segments.items()}
    assert shares == {"partner": 0.40, "standard": 0.35, "bargain": 0.15, "difficult": 0.10}
    assert (cfg.market.network.kind, cfg.market.network.params.k) == ("watts_strogatz", 10)
