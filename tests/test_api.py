"""The Python API (sim.api): what `clientsim` computes, in memory, from a notebook."""

import json
import subprocess
import sys
from pathlib import Path

import mesa
import pandas as pd
import pytest
from omegaconf import OmegaConf

import sim
from sim.cli.clientsim import main as clientsim_main
from sim.runs.record import clients_frame

SMALL = ["market.n_clients=300", "steps=8", "progress=false"]
BIN = Path(sys.executable).parent


def clientsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "clientsim", *args], capture_output=True, text=True, timeout=300)


def assert_same_run(result: sim.RunResult, other: sim.RunResult) -> None:
    for table in ("steps", "market", "clients", "pairs"):
        pd.testing.assert_frame_equal(getattr(result, table), getattr(other, table))
    assert result.summary == other.summary
    assert result.config == other.config


def test_import_sim_loads_no_heavy_module_until_the_api_is_used():
    code = (
        "import sys, sim; heavy = {'hydra', 'pandas', 'numpy', 'mesa', 'omegaconf'}; "
        "print(sorted(heavy & set(sys.modules))); sim.make_config; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before == "[]" and after != "[]"


def test_run_returns_the_tables_clientsim_writes_for_the_same_overrides(tmp_path):
    overrides = [*SMALL, "seed=4", "market/network=erdos_renyi"]
    done = clientsim(*overrides, f"output_dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr
    result = sim.run(overrides)
    for table in ("steps", "market", "clients", "pairs"):
        written = pd.read_parquet(tmp_path / "run" / f"{table}.parquet")
        pd.testing.assert_frame_equal(getattr(result, table), written, check_exact=True)
    assert result.summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    written = OmegaConf.to_container(OmegaConf.load(tmp_path / "run" / "config.yaml"))
    written.pop("clientsim_version")
    assert OmegaConf.to_container(result.config) == {**written, "output_dir": None}
    assert written["output_dir"] == str(tmp_path / "run")


def test_a_share_of_1_4_is_refused_with_the_line_clientsim_prints_and_nothing_runs():
    override = "clients.segments.partner.share=1.4"
    done = clientsim(*SMALL, override)
    with pytest.raises(sim.ConfigError) as error:
        sim.run([*SMALL, override])
    assert done.returncode == 2 and done.stderr == f"clientsim: {error.value}\n"
    assert error.value.key == "clients.segments.partner.share"


@pytest.mark.parametrize("override", ["market.pricee=1", "steps=many", "seed=-1", "engine=warp"])
def test_a_bad_value_raises_the_config_error_whose_text_clientsim_prints(
    override, tmp_path, capsys
):
    try:  # in-process: the command's own front end, as its tests run it
        code = clientsim_main([*SMALL, override, f"output_dir={tmp_path / 'run'}"])
    except SystemExit as stop:
        code = stop.code
    with pytest.raises(sim.ConfigError) as error:
        sim.run([*SMALL, override])
    assert code == 2 and capsys.readouterr().err == f"clientsim: {error.value}\n"
    assert not (tmp_path / "run").exists()
    assert error.value.key == override.partition("=")[0]


def test_an_experiment_is_refused_by_run_with_the_command_that_runs_it():
    with pytest.raises(sim.ConfigError, match="clientsim-experiment run strategy"):
        sim.run(["+experiment=strategy"])


@pytest.mark.parametrize("engine", ["vectorized", "agents"])
def test_run_batch_gives_every_seed_exactly_its_run_alone(engine):
    overrides = [*SMALL, f"engine={engine}", "seed=99"]
    seeds = [3, 0, 5]
    batch = sim.run_batch(overrides, seeds, batch=2)
    assert [result.summary["seed"] for result in batch] == seeds
    for seed, result in zip(seeds, batch, strict=True):
        assert_same_run(result, sim.run([*overrides, f"seed={seed}"]))


def test_run_batch_refuses_a_negative_seed_before_running_any():
    with pytest.raises(sim.ConfigError, match="seed=-1"):
        sim.run_batch(SMALL, [0, -1])


def test_stepping_the_built_model_by_hand_gives_the_runs_clients():
    model = sim.build_model(SMALL)
    assert isinstance(model, mesa.Model)
    for _ in range(model.cfg.steps):
        model.step()
    pd.testing.assert_frame_equal(clients_frame(model), sim.run(SMALL).clients)


def test_load_sweep_of_a_directory_without_a_sweep_names_the_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="runs.parquet"):
        sim.load_sweep(tmp_path)
