import dataclasses
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim.cli.sensitivity import main
from sim.config.checks import leaves, validate
from sim.config.compose import compose
from sim.config.schema import UNIT
from sim.runs.summary import SHORT_RUN_WEEK
from sim.validation import sensitivity as sa

TINY = ["--clients", "300", "--weeks", "26", "--jobs", "1", "--seeds", "2"]
TINY_OVERRIDES = ["market.n_clients=300", "steps=26", "progress=false"]
BY_NAME = {p.name: p for p in sa.PARAMETERS}


def study_base(*overrides: str):
    cfg = compose([*sa.STUDY_BASE, *TINY_OVERRIDES, *overrides])
    OmegaConf.resolve(cfg)
    return cfg


@pytest.fixture(scope="module")
def base():
    return study_base()


def hydra_lines(overrides: dict) -> list[str]:
    """Hydra's command line of `overrides`: a `group/name` key chooses an option."""
    text = {True: "true", False: "false"}
    return [f"{k}={text[v] if isinstance(v, bool) else v}" for k, v in overrides.items()]


def schema_range(key: str):
    """The declared range of a config key (dict entries match the schema's `*`)."""
    parts = key.split(".")
    for pattern, _, meta in leaves():
        pat = pattern.split(".")
        if len(pat) == len(parts) and all(p in ("*", k) for p, k in zip(pat, parts, strict=True)):
            return meta["range"]
    raise KeyError(key)


# --- the declarations -------------------------------------------------------------------


def test_the_issues_parameters_are_declared_and_enabled():
    enabled = [p.name for p in sa.PARAMETERS if p.enabled]
    assert len(enabled) >= 10
    assert {"fit_filter_share", "difficult_share", "ad_reach", "difficulty_hours",
            "patience"} <= set(enabled)  # fmt: skip


@pytest.mark.parametrize("param", sa.PARAMETERS, ids=lambda p: p.name)
def test_declared_bounds_lie_in_the_keys_declared_range(param):
    lo, hi = param.bounds
    assert lo < hi
    binary = param.map in ("switch", "choice")
    assert not binary or param.bounds == (0.0, 1.0)
    allowed = UNIT if param.map == "mix_share" or binary else schema_range(param.key)
    assert lo in allowed and hi in allowed


# --- a sample's overrides, composed by Hydra and validated ------------------------------


@pytest.mark.parametrize(
    ("share", "fit_filter"), [(0.1, 1), (0.14, 1), (0.15, 2), (0.5, 5), (0.66, 7), (0.9, 9)]
)
def test_mix_share_maps_to_integer_counts_of_ten_businesses(share, fit_filter, base):
    overrides = BY_NAME["fit_filter_share"].overrides(share, base)
    cfg = compose([*sa.STUDY_BASE, *TINY_OVERRIDES, *hydra_lines(overrides)])
    validate(cfg)
    assert dict(cfg.market.policy_mix) == {"fit_filter": fit_filter, "serve_all": 10 - fit_filter}


@pytest.mark.parametrize("share", [0.0, 0.05, 0.1, 0.3])
def test_difficult_share_keeps_segment_shares_summing_to_one(share, base):
    overrides = BY_NAME["difficult_share"].overrides(share, base)
    cfg = compose([*sa.STUDY_BASE, *TINY_OVERRIDES, *hydra_lines(overrides)])
    validate(cfg)
    shares = {name: seg.share for name, seg in cfg.clients.segments.items()}
    assert shares["difficult"] == share
    assert math.fsum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    old = {name: seg.share for name, seg in base.clients.segments.items()}
    assert shares["partner"] / shares["standard"] == pytest.approx(old["partner"] / old["standard"])


@pytest.mark.parametrize("four", [False, True], ids=["two_policies", "four_policies"])
def test_a_sample_config_is_what_hydra_composes_from_its_overrides(base, four):
    params = [p for p in sa.PARAMETERS if p.enabled]
    x = sa.morris_x(params, trajectories=2, levels=4)
    column = [p.name for p in params].index("four_policies")
    row = next(r for r in x if (r[column] > sa.CUT) == four)
    ours = sa.sample_config(base, params, row)
    theirs = study_base(*hydra_lines(sa.overrides_of(params, row, base)))
    validate(theirs)
    assert OmegaConf.to_container(ours) == OmegaConf.to_container(theirs)
    assert ("picky" in ours.market.policy_mix) == four


def test_a_parameter_whose_key_is_absent_is_skipped_and_named(base, monkeypatch):
    future = sa.Parameter("future_knob", "clients.future.knob", (0.0, 1.0))
    monkeypatch.setattr(sa, "PARAMETERS", (*sa.PARAMETERS, future))
    kept, skipped = sa.select(["future_knob", "threshold"], base)
    assert [p.name for p in kept] == ["threshold"]
    assert any("future_knob" in line and "clients.future.knob" in line for line in skipped)


def test_a_disabled_parameter_is_skipped_with_its_note(base, monkeypatch):
    off = dataclasses.replace(BY_NAME["patience"], enabled=False)
    monkeypatch.setattr(sa, "PARAMETERS", tuple(off if p.name == "patience" else p
                                                for p in sa.PARAMETERS))  # fmt: skip
    kept, skipped = sa.select(None, base)
    assert "patience" not in [p.name for p in kept]
    assert any(line.startswith("patience (disabled") for line in skipped)


# --- the output ---------------------------------------------------------------------------


def test_paired_gap_equals_the_gap_computed_from_the_steps_frame():
    from sim.runs.run import simulate

    _, recorder = simulate(study_base("market/policy_mix=two_of_ten"))
    steps = recorder.steps_frame()
    gap = sa.paired_gap(steps)
    steps = steps.sort_values(["business_id", "step"])
    steps["cum"] = steps.groupby("business_id")["profit"].cumsum()
    for output, week in (("week_13", SHORT_RUN_WEEK - 1), ("horizon", steps["step"].max())):
        at = steps[steps["step"] == week].groupby("policy", observed=True)["cum"].mean()
        assert gap[output] == pytest.approx(at["fit_filter"] - at["serve_all"], rel=1e-12)


def test_every_sample_runs_the_same_seeds_and_averages_them(base):
    cfg = base
    y = sa.evaluate([cfg, cfg.copy()], [0, 1])
    assert y.shape == (2, 2, len(sa.OUTPUTS))
    assert np.array_equal(y[0], y[1])  # common random numbers
    assert not np.array_equal(y[0, 0], y[0, 1])  # two seeds, two markets
    gaps = [sa.run_gap(cfg, seed)["horizon"] for seed in (0, 1)]
    assert y[0, :, 1].tolist() == gaps


# --- the command, end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def morris_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sensitivity")
    params = "fit_filter_share,difficult_share,threshold"
    assert main(["morris", *TINY, "-r", "2", "--params", params, "--out", str(out)]) == 0
    return out


def test_morris_writes_its_table_figure_and_samples(morris_dir):
    table = pd.read_parquet(morris_dir / "morris.parquet")
    assert dict(table.dtypes.astype(str)) == {
        k: "string" if v == "string" else v for k, v in sa.MORRIS_COLUMNS.items()
    }
    assert len(table) == 3 * len(sa.OUTPUTS)
    for _, rows in table.groupby("output"):
        assert sorted(rows["rank"]) == [1, 2, 3]
        assert rows.sort_values("rank")["mu_star"].is_monotonic_decreasing
    samples = pd.read_parquet(morris_dir / "morris_samples.parquet")
    assert len(samples) == 2 * 4
    chance = pd.read_parquet(morris_dir / "morris_positive.parquet")
    assert dict(chance.dtypes.astype(str)) == {
        k: "string" if v == "string" else v for k, v in sa.POSITIVE_COLUMNS.items()
    }
    assert (chance["factor"] == "all").sum() == len(sa.OUTPUTS)  # no binary factor varied
    assert (chance["points"] == 8).all() and (chance["runs"] == 16).all()
    assert {"gap_week_13", "gap_horizon", "gap_horizon_sd", "overrides"} <= set(samples)
    assert samples["gap_horizon"].notna().all()
    assert "| output | rank | parameter |" in (morris_dir / "morris.md").read_text()
    png = morris_dir / "morris.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size <= 300_000


def test_sobol_takes_morris_top_three_and_writes_its_indices(morris_dir, capsys):
    assert main(["sobol", *TINY, "--samples", "4", "--out", str(morris_dir)]) == 0
    table = pd.read_parquet(morris_dir / "sobol.parquet")
    assert dict(table.dtypes.astype(str)) == sa.SOBOL_COLUMNS
    morris = pd.read_parquet(morris_dir / "morris.parquet")
    assert set(table["parameter"]) == set(sa.top(morris, 3))
    assert len(pd.read_parquet(morris_dir / "sobol_samples.parquet")) == 4 * (3 + 2)
    assert "top 3 by mu*" in capsys.readouterr().out


def test_morris_again_replaces_its_own_files_and_the_named_figure(morris_dir, tmp_path):
    figure = tmp_path / "figure.txt"
    figure.write_text("named with --figure: may be replaced")
    params = "fit_filter_share,difficult_share,threshold"
    argv = ["morris", *TINY, "-r", "2", "--params", params, "--out", str(morris_dir)]
    assert main([*argv, "--figure", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_parquet(morris_dir / "morris.parquet")) == 3 * len(sa.OUTPUTS)


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    return err


def test_morris_refuses_to_replace_a_users_file_in_out(tmp_path, capsys):
    (tmp_path / "morris.png").write_text("my own figure")
    err = _refused(["morris", *TINY, "--params", "threshold", "--out", str(tmp_path)], capsys)
    assert "morris.png" in err
    assert (tmp_path / "morris.png").read_text() == "my own figure"
    assert [p.name for p in tmp_path.iterdir()] == ["morris.png"]


def test_morris_refuses_a_directory_as_figure_before_any_run(tmp_path, capsys):
    (tmp_path / "fig").mkdir()
    argv = ["morris", *TINY, "--params", "threshold", "--out", str(tmp_path / "out")]
    err = _refused([*argv, "--figure", str(tmp_path / "fig")], capsys)
    assert "--figure" in err and "directory" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["morris", "--trajectories", "1"], "'1'"),
        (["morris", "--levels", "3"], "'3'"),
        (["sobol", "--samples", "6", "--params", "threshold"], "'6'"),
        (["morris", "--params", "threshold,nope"], "nope"),
        (["morris", "--weeks", "8"], "'8'"),
        (["morris", "--clients", "300", "steps=8"], "steps=8"),
        (["morris", "market.n_clients=-1"], "market.n_clients=-1"),
        (["morris", "--seeds", "two"], "'two'"),
        (["morris", "--frobnicate"], "--frobnicate"),
        (["sobol", "--out", "/nonexistent/sensitivity"], "run morris first"),
        (["morris", "market.policy_mix.fit_filter=0", "--params", "threshold"], "fit_filter"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, named, capsys, tmp_path):
    out = [] if "--out" in argv else ["--out", str(tmp_path)]
    assert main([*argv, *out]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err


def test_console_script_shows_help_with_the_parameter_table():
    script = Path(sys.executable).with_name("clientsim-sensitivity")
    script = str(script) if script.exists() else shutil.which("clientsim-sensitivity")
    assert script, "the clientsim-sensitivity console script is not installed"
    done = subprocess.run([script, "morris", "--help"], capture_output=True, text=True, check=True)
    assert "--trajectories" in done.stdout
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert all(p.name in done.stdout for p in sa.PARAMETERS)
