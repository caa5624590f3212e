"""Tests of the config schema and its checks (sim.config), through Hydra's compose API."""

import copy
import math
import shutil
import typing
from pathlib import Path

import hydra
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

import sim.config.compose as compose_module
from hydra_plugins.clientsim.designed_sweeper import job_overrides
from sim.config.checks import leaves, memory_estimate, validate
from sim.config.compose import CONFIG_DIR, RememberingLoader, compose
from sim.config.schema import Config, ConfigError, Range

#: A policy preset is placed under `policies`, not chosen as a group: added as a fifth policy.
PRESETS = "policies/preset"


def group_options() -> list[str]:
    """One `group=option` override per YAML file of every config group under configs/."""
    options = {
        f"{path.parent.relative_to(CONFIG_DIR).as_posix()}={path.stem}"
        for path in Path(CONFIG_DIR).rglob("*.yaml")
        if path.parent != Path(CONFIG_DIR)
    }
    return sorted(o.replace(f"{PRESETS}=", f"+{PRESETS}@policies.added=") for o in options)


def test_config_dir_has_the_documented_options():
    options = group_options()
    for expected in ("clients=default", "clients=difficult_heavy", "market=default",
                     "market/network=watts_strogatz", "market/network=complete",
                     "policies=default"):  # fmt: skip
        assert expected in options


def test_primary_config_composes_and_validates():
    validate(compose([]))


@pytest.mark.parametrize("option", group_options())
def test_every_group_option_composes_and_validates(option):
    validate(compose([option]))


def test_a_fifth_policy_is_a_preset_placed_under_a_new_name():
    preset = f"+{PRESETS}@policies.careful=fit_filter"
    cfg = compose([preset, "policies.careful.threshold=0.7", "+market.policy_mix.careful=2"])
    validate(cfg)
    careful, fit_filter = dict(cfg.policies.careful), dict(cfg.policies.fit_filter)
    assert careful.pop("threshold") == 0.7 and fit_filter.pop("threshold") == 0.55
    assert careful == fit_filter


def test_a_knob_set_in_the_base_preset_reaches_every_preset_that_does_not_set_it(tmp_path):
    copy_dir = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, copy_dir, symlinks=False, ignore=shutil.ignore_patterns("*.py"))
    base = copy_dir / PRESETS / "base.yaml"
    base.write_text(base.read_text().replace("screening_noise: 0.1", "screening_noise: 0.3"))
    cfg = compose([], copy_dir)
    validate(cfg)
    assert {name: p.screening_noise for name, p in cfg.policies.items()} == dict.fromkeys(
        ["serve_all", "fit_filter", "picky", "hard_sell"], 0.3
    )


def test_a_remembered_config_is_a_fresh_compose_and_an_edited_file_is_read_again(
    tmp_path, monkeypatch
):
    """`compose` remembers configs: a copy of one is what composing again would give."""
    copy_dir = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, copy_dir, symlinks=False, ignore=shutil.ignore_patterns("*.py"))
    overrides = ["+experiment=hard_sell", "hydra.job.env_copy=[CLIENTSIM_TEST]", "steps=9"]
    for where, value in (("first", "a"), ("second", "b")):
        (tmp_path / where).mkdir()
        monkeypatch.chdir(tmp_path / where)
        monkeypatch.setenv("CLIENTSIM_TEST", value)
        remembered = compose(overrides, copy_dir, return_hydra_config=True)
        compose_module._composed.clear()
        fresh = compose(overrides, copy_dir, return_hydra_config=True)
        # as written, not resolved: `${now:...}` in Hydra's directories gives the time
        assert OmegaConf.to_yaml(remembered) == OmegaConf.to_yaml(fresh)
        assert fresh.hydra.runtime.cwd == str(tmp_path / where)
        assert fresh.hydra.job.env_set.CLIENTSIM_TEST == value
    remembered.steps = 1  # a copy: changing it changes nothing remembered
    assert compose(overrides, copy_dir).steps == 9
    market = copy_dir / "market" / "default.yaml"
    market.write_text(market.read_text().replace("n_clients: 5000", "n_clients: 4999"))
    assert compose(overrides, copy_dir).market.n_clients == 4999
    monkeypatch.setattr(compose_module, "MAX_FILES", 3)  # a large tree is not read
    compose_module._composed.clear()
    assert compose(overrides, copy_dir).market.n_clients == 4999
    assert not compose_module._composed


def _described(node) -> list:
    """Every node of a config: its path, type, flags and value as written (not resolved)."""
    rows = []
    for key in node.keys() if OmegaConf.is_dict(node) else range(len(node)):
        child = node._get_node(key)
        flags = (child._get_flag("struct"), child._get_flag("readonly"))
        rows.append((key, OmegaConf.get_type(child), flags, OmegaConf.is_interpolation(node, key)))
        if OmegaConf.is_config(child) and not child._is_none() and not child._is_missing():
            rows.append((key, _described(child)))
    return rows


@pytest.mark.parametrize("hydra", [False, True], ids=["app", "with_hydra"])
@pytest.mark.parametrize(
    "overrides",
    [
        ["market.n_clients=2000", "steps=104"],
        ["steps=9", "market/network=complete", "market.network.homophily=0.25", "seed=3"],
        ["policies.fit_filter.threshold=0.7", "market/policy_mix=half_half", "engine=agents"],
        ["market.network.params={k: 4}", "clients.review_propensity=[0.2,0.1]", "output_dir=x"],
        ["output_dir=null", "output_dir=${steps}", "docking=bass", "progress=false"],
        [
            "+experiment=hard_sell",
            "steps=9",
            "hydra.sweep.dir=a b",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=1",
            "experiment.seeds=2",
        ],
        [
            "seed=1",
            "hydra.job.config.override_dirname.kv_sep=:",
            "steps=3",
            "hydra.job.config.override_dirname.exclude_keys=[seed]",
            "hydra.job.env_copy=[HOME]",
        ],
    ],
)
def test_values_set_on_a_remembered_config_are_what_hydra_composes(overrides, hydra):
    """`compose` composes the group choices and sets the plain values, as Hydra would."""
    compose_module._composed.clear()
    by_parts = compose(overrides, return_hydra_config=hydra)
    whole = compose_module._compose(overrides, CONFIG_DIR, "config", hydra)
    # as written, not resolved: `${now:...}` in Hydra's directories gives the time
    assert OmegaConf.to_yaml(by_parts) == OmegaConf.to_yaml(whole)
    assert _described(by_parts) == _described(whole)
    assert by_parts._get_flag("struct") and whole._get_flag("struct")
    assert ("hydra" in by_parts) == hydra
    chosen = [o for o in overrides if "/" in o.partition("=")[0] or o.startswith(("+", "docking="))]
    assert [key[2] for key in compose_module._composed] == [tuple(chosen)]


def test_choices_of_options_in_another_order_are_served_as_hydra_composes_them():
    """Choices of distinct groups compose one config in any order: composed once, remembered."""
    compose_module._composed.clear()
    first = ["hydra/launcher=joblib", "+experiment=strategy", "market/policy_mix=two_of_ten",
             "steps=9", "hydra/sweeper=designed", "market/network=complete"]  # fmt: skip
    again = ["market/network=complete", "+experiment=strategy", "hydra/sweeper=designed",
             "steps=9", "market/policy_mix=two_of_ten", "hydra/launcher=joblib"]  # fmt: skip
    compose(first, return_hydra_config=True)
    served = compose(again, return_hydra_config=True)
    assert len(compose_module._composed) == 1
    whole = compose_module._compose(again, CONFIG_DIR, "config", True)
    assert OmegaConf.to_yaml(served) == OmegaConf.to_yaml(whole)
    assert _described(served) == _described(whole)
    assert served.hydra.overrides.task == again[:2] + again[3:5]  # as given, Hydra's apart
    # a group chosen twice keeps its order (the last choice wins): each order composed anew
    twice = ["market/network=complete", "steps=9", "market/network=watts_strogatz"]
    whole = compose_module._compose(twice, CONFIG_DIR, "config", False)
    assert OmegaConf.to_yaml(compose(twice)) == OmegaConf.to_yaml(whole)
    assert compose(twice[::-1]).market.network.kind == "complete"
    assert len(compose_module._composed) == 3


@pytest.mark.parametrize("experiment", ["instruments", "robustness"])
def test_a_sweeps_jobs_are_composed_as_hydras_loader_composes_them(experiment, monkeypatch):
    """`RememberingLoader` gives every job of a designed sweep the config Hydra's loader gives."""
    compose_module.register()
    GlobalHydra.instance().clear()
    cfg = compose([f"+experiment={experiment}"], return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    task = [f"+experiment={experiment}", "steps=9", "experiment.seeds=4",
            "experiment.chunk_size=2", *params, "experiment.chunk=range(0,2)"]  # fmt: skip
    sweep = ["hydra/sweeper=designed", "hydra.sweep.dir=a b", "hydra/launcher=joblib",
             "hydra.job.env_copy=[CLIENTSIM_TEST]"]  # fmt: skip
    monkeypatch.setenv("CLIENTSIM_TEST", "master")
    with hydra.initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        hydras = GlobalHydra.instance().config_loader()
        master = hydras.load_configuration(
            "config", [*task, *sweep, "hydra.mode=MULTIRUN"], RunMode.MULTIRUN
        )
        jobs = job_overrides(task)
        jobs = [*jobs[:2], jobs[-1]]  # the first and last points: each has other groups
        ours = RememberingLoader(hydras)
        compose_module._composed.clear()
        for job in [*jobs, jobs[0]]:  # some from memory
            monkeypatch.setenv("CLIENTSIM_TEST", job[-1])
            theirs = hydras.load_sweep_config(master, job)
            mine = ours.load_sweep_config(master, job)
            assert OmegaConf.to_yaml(mine) == OmegaConf.to_yaml(theirs)  # as written
            assert _described(mine) == _described(theirs)
            assert mine.hydra.sweep.dir == "a b" and mine.hydra.overrides.task[-1] == job[-1]
            assert mine.hydra.job.env_set.CLIENTSIM_TEST == job[-1]  # read for each job
    groups = {tuple(o for o in job if compose_module.is_group(o.partition("=")[0])) for job in jobs}
    assert len(compose_module._composed) == len(groups)  # each group choice composed once


def test_network_option_sets_its_kind():
    for option in (o for o in group_options() if o.startswith("market/network=")):
        assert compose([option]).market.network.kind == option.partition("=")[2]


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


def test_a_network_parameter_removed_is_refused_as_missing():
    with pytest.raises(ConfigError, match="market.network.params.p=.*missing: watts_strogatz"):
        validate(compose(["~market.network.params.p"]))


# ---- declared ranges: every leaf of the schema ------------------------------------------------


def schema_leaves() -> list[tuple[str, object, dict]]:
    return leaves(Config)


def test_every_numeric_or_string_leaf_declares_what_it_allows():
    undeclared = [
        key
        for key, kind, meta in schema_leaves()
        if kind not in (bool, str | None) and not {"range", "choices", "free"} & set(meta)
    ]
    assert undeclared == []


def concrete_leaves(plain: dict) -> list[tuple[str, Range, str]]:
    """(key in the default config, its range, its shape) for every numeric leaf."""
    out = []
    for key, kind, meta in schema_leaves():
        if "range" not in meta:
            continue
        parent, _, name = key.rpartition(".")
        parents = [parent]
        if ".*" in parent:  # a dict of dataclasses: every entry of the default config
            head, _, tail = parent.partition(".*")
            parents = [f"{head}.{entry}{tail}" for entry in get(plain, head)]
        for p in parents:
            full = f"{p}.{name}" if p else name
            if typing.get_origin(kind) is dict:  # a dict of numbers: each entry is a leaf
                for entry in get(plain, full):
                    out.append((f"{full}.{entry}", meta["range"], typing.get_args(kind)[1]))
            else:
                out.append((full, meta["range"], kind))
    return out


def get(plain: dict, key: str):
    for part in key.split("."):
        plain = plain[part]
    return plain


def put(plain: dict, key: str, value) -> dict:
    plain = copy.deepcopy(plain)
    parent, _, name = key.rpartition(".")
    (get(plain, parent) if parent else plain)[name] = value
    return plain


def outside(allowed: Range, kind) -> list:
    """Values just outside `allowed` (and NaN for floats)."""
    values = []
    if math.isfinite(allowed.lo):
        values.append(allowed.lo if allowed.lo_open else allowed.lo - 1)
    if math.isfinite(allowed.hi):
        values.append(allowed.hi if allowed.hi_open else allowed.hi * 2 + 1)
    if kind is not int:
        values += [math.nan, math.inf]
    return [int(v) for v in values] if kind is int else values


DEFAULT = OmegaConf.to_container(compose(["+experiment=hard_sell"]), resolve=True)  # every leaf set
LEAVES = concrete_leaves(DEFAULT)


def test_the_schema_walk_reaches_every_numeric_leaf_of_the_default_config():
    keys = {key for key, _, _ in LEAVES}
    assert len(keys) == len(LEAVES) > 100
    expected = {
        "market.price",
        "policies.picky.criteria.realism",
        "market.network.params.k",
        "clients.segments.difficult.talkativeness",
        "market.policy_mix.hard_sell",
    }
    assert expected <= keys


@pytest.mark.parametrize(("key", "allowed", "kind"), LEAVES, ids=[k for k, _, _ in LEAVES])
def test_a_value_outside_its_range_raises_config_error_naming_the_key(key, allowed, kind):
    for bad in outside(allowed, kind):
        value = [bad, 1.0] if typing.get_origin(kind) is list else bad
        with pytest.raises(ConfigError) as error:
            validate(put(DEFAULT, key, value))
        assert error.value.key == key, (bad, str(error.value))


BAD_INPUTS = [  # issue 12: each of these ran with garbage and exited 0
    "clients.satisfaction.baseline=nan",
    "market.service.difficulty_hours=-5",
    "market.jobs.misdiagnosed_high=inf",
    "market.ads.dishonesty_boost=nan",
    "clients.choice.beta_price=nan",
    "clients.reviews.floor=-1",
    "market.demand_supply_ratio=1e-9",
    "clients.buying_centre.budget_sigma=-1",
    "market.jobs.sigma=100",
    "market.price=1e308",
]


@pytest.mark.parametrize("override", BAD_INPUTS)
def test_garbage_input_raises_config_error_naming_its_key(override):
    key, _, value = override.partition("=")
    with pytest.raises(ConfigError) as error:
        validate(compose([override]))
    assert error.value.key == key
    assert "must be" in error.value.allowed


def test_a_market_too_big_for_memory_is_refused_with_its_estimate():
    with pytest.raises(ConfigError, match=r"needs about [\d,.]+ GiB of memory") as error:
        validate(compose(["market.n_clients=1000000000000", "steps=1"]))
    assert error.value.key == "market.n_clients"


@pytest.mark.parametrize(
    ("engine", "n_clients", "steps", "pairs", "measured_mb"),
    [
        ("vectorized", 200_000, 260, True, 661),
        ("vectorized", 200_000, 260, False, 539),
        ("vectorized", 1_000_000, 260, True, 2_114),
        ("vectorized", 1_000_000, 260, False, 1_178),
        ("vectorized", 10_000_000, 52, True, 14_801),
        ("vectorized", 10_000_000, 52, False, 8_996),
        ("agents", 100_000, 260, True, 881),
    ],
)
def test_memory_estimate_is_above_the_measured_peak_but_not_far(
    engine, n_clients, steps, pairs, measured_mb
):
    """Peaks of `clientsim market.n_clients=N steps=S pairs=P`, 20 businesses (checks.py).

    Within 1.5 times where the clients outweigh the fixed part (the interpreter, 500 MB).
    """
    estimate = memory_estimate(n_clients, 20, steps, engine, pairs) / 2**20
    assert measured_mb < estimate < 1.5 * measured_mb


def test_pairs_false_lets_a_market_of_ten_million_clients_fit_in_twelve_gib():
    """The issue's memory target: 10,000,000 clients x 52 weeks in one process within 12 GB."""
    estimate = memory_estimate(10_000_000, 20, 52, "vectorized", pairs=False)
    assert estimate < 12 * 2**30 < memory_estimate(10_000_000, 20, 52, "vectorized")


def test_too_small_a_market_for_the_network_names_n_clients_and_the_minimum():
    with pytest.raises(ConfigError, match="at least 11") as error:
        validate(compose(["market.n_clients=2"]))
    assert error.value.key == "market.n_clients"
    assert "[2, 1]" not in str(error.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+policies.fit_filter.treshold=0.9", "policies.fit_filter.treshold"),
        ("+market.n_client=5", "market.n_client"),
        ("++stepz=5", "stepz"),
        ("+clients.segments.partner.sharee=0.1", "clients.segments.partner.sharee"),
        ("+policies.fit_filter.criteria.speed=1", "policies.fit_filter.criteria.speed"),
        ("+market.network.params.q=1", "market.network.params.q"),
    ],
)
def test_a_key_the_schema_does_not_have_is_refused(override, key):
    with pytest.raises(ConfigError, match="unknown key") as error:
        validate(compose([override]))
    assert error.value.key == key


def test_cross_field_rules_name_the_dependent_key():
    for override, key in [
        ("clients.wom.negative=0.8", "clients.wom.negative"),
        ("market.jobs.misdiagnosed_low=0.9", "market.jobs.misdiagnosed_low"),
    ]:
        with pytest.raises(ConfigError) as error:
            validate(compose([override]))
        assert error.value.key == key
