"""Tests of the command line (sim.cli.clientsim): runs as a user would start them, in a subprocess.

Each subprocess takes a few seconds, so the runs are shared by module-scoped fixtures. Bad
input is refused before Hydra runs: those cases call the front end's `main` in this process
(the same code the console script runs), a few end to end in a subprocess.
"""

import itertools
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim.cli.clientsim import main, summary_table
from sim.config.compose import compose
from sim.model.ledger import MARKET_COLUMNS, STEP_COLUMNS
from sim.runs.output import MARKER
from sim.runs.record import CLIENT_COLUMNS, PAIR_COLUMNS, write_atomic
from sim.runs.run import package_version

RESULT_FILES = (
    "steps.parquet", "market.parquet", "clients.parquet", "pairs.parquet", "summary.json",
)  # fmt: skip
OUTPUT_FILES = ("config.yaml", *RESULT_FILES)
SUMMARY_KEYS = ("profit_week_13", "profit_horizon", "reputation", "referral_share", "survival")


def clientsim_script() -> str:
    """The `clientsim` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "clientsim"
    script = str(beside) if beside.exists() else shutil.which("clientsim")
    assert script, "the clientsim console script is not installed"
    return script


def run_cli(args: list[str], cwd: Path, *, script: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m sim args` (or the `clientsim` script) in `cwd`."""
    command = [clientsim_script()] if script else [sys.executable, "-m", "sim"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def run_dir(cwd: Path) -> Path:
    """The one Hydra run directory (results/runs/<date>/<time>) under `cwd`."""
    (summary,) = cwd.glob("results/runs/*/*/summary.json")
    return summary.parent


@pytest.fixture(scope="module")
def policies() -> list[str]:
    return list(compose([]).market.policy_mix)


def run_into_output_dir(tmp_path_factory, overrides, seed):
    """`python -m sim` with `seed` into an explicit output_dir."""
    tmp = tmp_path_factory.mktemp(f"seed{seed}")
    out = tmp / "out"
    return run_cli([*overrides, f"seed={seed}", f"output_dir={out}"], cwd=tmp), out


@pytest.fixture(scope="module")
def seed0(tmp_path_factory, small_overrides):
    return run_into_output_dir(tmp_path_factory, small_overrides, 0)


@pytest.fixture(scope="module")
def seed0_again(tmp_path_factory, small_overrides):
    """The `clientsim` script with seed 0 into Hydra's default run directory."""
    tmp = tmp_path_factory.mktemp("seed0_again")
    result = run_cli([*small_overrides, "seed=0"], cwd=tmp, script=True)
    return result, tmp


@pytest.fixture(scope="module")
def seed1(tmp_path_factory, small_overrides):
    return run_into_output_dir(tmp_path_factory, small_overrides, 1)


def test_small_run_exits_0_and_prints_every_policy(seed0, policies):
    result, _ = seed0
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()[1:]
    for policy in policies:
        assert any(line.startswith(policy) for line in table), result.stdout


def test_the_table_prints_counts_as_integers(seed0, policies):
    result, _ = seed0
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in
            [[p] for p in policies]]  # fmt: skip
    assert len(rows) == len(policies) and all(re.fullmatch(r"\d+", row[1]) for row in rows)


def test_the_table_explains_a_nan_in_one_footnote_line():
    outcome = dict(businesses=5, acceptance=0.7, profit_week_13=-9.0, profit_horizon=-36.0,
                   reputation=4.2, retention=0.9, referral_share=0.2, survival=1.0)  # fmt: skip
    gone = {**outcome, "reputation": None, "survival": 0.0}  # as summary.json writes it
    table = summary_table({"policies": {"fit_filter": outcome, "picky": gone}}).splitlines()
    assert table[2].split()[:2] == ["picky", "5"] and "NaN" in table[2]
    assert len(table) == 4 and table[3].startswith("NaN: ") and "picky" in table[3]
    assert "exited" in table[3]
    assert len(summary_table({"policies": {"fit_filter": outcome}}).splitlines()) == 2


def test_small_run_writes_every_output_file(seed0):
    _, out = seed0
    results = {p.name for p in out.iterdir()} - {".hydra", "clientsim.log", MARKER}
    assert sorted(results) == sorted(OUTPUT_FILES)


def test_config_yaml_records_seed_overrides_and_version(seed0):
    _, out = seed0
    cfg = OmegaConf.load(out / "config.yaml")
    assert cfg.seed == 0 and cfg.steps == 8 and cfg.market.n_clients == 300
    assert cfg.clientsim_version == package_version()


def test_parquet_files_have_the_recorded_columns_and_rows(seed0):
    _, out = seed0
    cfg = compose([])
    businesses = sum(cfg.market.policy_mix.values())
    steps = pd.read_parquet(out / "steps.parquet")
    market = pd.read_parquet(out / "market.parquet")
    clients = pd.read_parquet(out / "clients.parquet")
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert tuple(steps.columns) == tuple(STEP_COLUMNS)
    assert tuple(market.columns) == tuple(MARKET_COLUMNS)
    assert tuple(clients.columns) == CLIENT_COLUMNS
    assert pairs.dtypes.astype(str).to_dict() == PAIR_COLUMNS
    assert len(steps) == 8 * businesses
    assert len(market) == 8
    assert len(clients) == 300
    assert 0 < len(pairs) <= 300 * businesses
    assert set(pairs["policy"].cat.categories) == set(steps["policy"].cat.categories)
    assert sorted(steps["step"].unique()) == list(range(8))


def test_summary_json_has_every_policy_and_crossover_pair(seed0, policies):
    _, out = seed0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["policies"]) == sorted(policies)
    for outcome in summary["policies"].values():
        assert set(SUMMARY_KEYS) <= set(outcome)
    pairs = {f"{a}_vs_{b}" for a, b in itertools.permutations(policies, 2)}
    assert set(summary["crossover_week"]) == pairs
    whale = summary["whale"]
    assert set(whale["market"]) == {"buyers", "applicants"}
    assert whale["market"]["buyers"]["clients"] > 0
    assert set(whale["by_final_provider"]) <= set(policies)


def test_console_script_writes_into_hydra_run_dir(seed0_again):
    result, cwd = seed0_again
    assert result.returncode == 0, result.stderr
    out = run_dir(cwd)
    assert set(OUTPUT_FILES) <= {p.name for p in out.iterdir()}
    assert str(out) in result.stdout


@pytest.mark.parametrize("name", RESULT_FILES)
def test_same_seed_gives_byte_identical_results(seed0, seed0_again, name):
    (_, out), (_, cwd) = seed0, seed0_again
    assert (out / name).read_bytes() == (run_dir(cwd) / name).read_bytes()


@pytest.mark.parametrize("name", RESULT_FILES)
def test_another_seed_gives_different_results(seed0, seed1, name):
    (_, out0), (result, out1) = seed0, seed1
    assert result.returncode == 0, result.stderr
    assert (out0 / name).read_bytes() != (out1 / name).read_bytes()


BAD_INPUTS = {
    "negative count": (["market.policy_mix.serve_all=-1"], "market.policy_mix.serve_all", "-1"),
    "share above 1": (
        ["clients.segments.partner.share=1.5"],
        "clients.segments.partner.share",
        "1.5",
    ),
    "shares not summing to 1": (
        ["clients.segments.partner.share=0.5"],
        "clients.segments.*.share",
        "'partner': 0.5",
    ),
    "unknown policy": (["+market.policy_mix.nonexistent=2"], "market.policy_mix.nonexistent", "2"),
    "unknown key": (["market.nonexistent=1"], "market.nonexistent", "1"),
    "wrong type": (["steps=abc"], "steps", "abc"),
    "bad engine": (["engine=warp"], "engine", "warp"),
    "culture strength above 1": (
        ["policies.fit_filter.culture_strength=1.5"],
        "policies.fit_filter.culture_strength",
        "1.5: must be a finite number in [0, 1]",
    ),
    "negative tailoring": (
        ["clients.buying_centre.tailoring=-0.1"],
        "clients.buying_centre.tailoring",
        "-0.1: must be a finite number in [0, 1]",
    ),
    "serves nobody we know": (
        ["policies.fit_filter.serves=payer"],
        "policies.fit_filter.serves",
        "'payer': allowed: decider, user, all",
    ),
    "multirun, bad fixed value": (
        ["-m", "seed=1,2", "market.n_clients=-5"],
        "market.n_clients",
        "-5",
    ),
    "multirun, bad swept value": (["-m", "market.n_clients=300,-5"], "market.n_clients", "-5"),
    "multirun, bad value past the 64th": (
        ["-m", f"market.n_clients={','.join(map(str, range(300, 370)))},-5"],
        "market.n_clients",
        "-5",
    ),
    "multirun, bad group option": (
        ["-m", "seed=range(0,200)", "market/network=complete,nope"],
        "market/network",
        "nope",
    ),
    "nan": (["clients.satisfaction.baseline=nan"], "clients.satisfaction.baseline", "nan"),
    "negative hours": (
        ["market.service.difficulty_hours=-5"],
        "market.service.difficulty_hours",
        "-5",
    ),
    "inf": (["market.jobs.misdiagnosed_high=inf"], "market.jobs.misdiagnosed_high", "inf"),
    "nan boost": (["market.ads.dishonesty_boost=nan"], "market.ads.dishonesty_boost", "nan"),
    "nan price weight": (["clients.choice.beta_price=nan"], "clients.choice.beta_price", "nan"),
    "negative floor": (["clients.reviews.floor=-1"], "clients.reviews.floor", "-1"),
    "tiny ratio": (["market.demand_supply_ratio=1e-9"], "market.demand_supply_ratio", "1e-09"),
    "negative sigma": (
        ["clients.buying_centre.budget_sigma=-1"],
        "clients.buying_centre.budget_sigma",
        "-1",
    ),
    "huge sigma": (["market.jobs.sigma=100"], "market.jobs.sigma", "100"),
    "huge price": (["market.price=1e308"], "market.price", "1e+308"),
    "too big for memory": (
        ["market.n_clients=1000000000000"],
        "market.n_clients",
        "GiB of memory",
    ),
    "too small for the network": (["market.n_clients=2"], "market.n_clients", "at least 11"),
    "typo in a policy": (
        ["+policies.fit_filter.treshold=0.9"],
        "policies.fit_filter.treshold",
        "unknown key",
    ),
    "typo in the market": (["+market.n_client=5"], "market.n_client", "unknown key"),
    "forced typo": (["++stepz=5"], "stepz", "unknown key"),
    "output_dir in /proc": (["output_dir=/proc/x"], "output_dir", "/proc/x"),
    "output_dir under a file": (["output_dir=/etc/hostname/x"], "output_dir", "is a file"),
    "output_dir unresolvable": (["output_dir=/tmp/x_${nosuch}"], "output_dir", "nosuch"),
}


def with_defaults(args: list[str], out: Path) -> list[str]:
    """`args` with a short run into `out` (unless `args` set those keys)."""
    defaults = ["steps=2", "progress=false", f"output_dir={out}"]
    given = {a.partition("=")[0] for a in args}
    return [*args, *[d for d in defaults if d.partition("=")[0] not in given]]


@pytest.mark.parametrize(("args", "key", "value"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, args, key, value
):
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert main(with_defaults(args, out)) == 2
    result = capsys.readouterr()
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith("clientsim: ") and "Traceback" not in line
    assert f" {key}=" in line
    assert value in line.split(f" {key}=", 1)[1]
    assert list(cwd.iterdir()) == []
    assert not out.exists()


@pytest.mark.parametrize("args", [["clients.segments.partner.share=1.5"], ["-m", "--frobnicate"]])
def test_bad_input_from_the_shell_exits_2_with_one_line_and_writes_nothing(tmp_path, args):
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    result = run_cli(with_defaults(args, out), cwd=cwd, script=True)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("clientsim: ") and args[-1] in line
    assert list(cwd.iterdir()) == [] and not out.exists()


def test_output_dir_that_is_a_file_exits_2_and_keeps_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert main(["steps=2", "progress=false", f"output_dir={target}"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "output_dir=" in line and "existing file" in line
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


def test_help_lists_the_config_groups_without_the_schemas(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["clientsim"])
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--multirun" in out and "--cfg" in out
    groups = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    for group in ("clients:", "market:", "market/network:", "policies:"):
        assert group in groups
    assert "difficult_heavy" in groups and "watts_strogatz" in groups
    assert "base_" not in out  # the schemas the YAML files extend are not options
    assert list(tmp_path.iterdir()) == []


def test_every_flag_hydra_lists_is_read_before_hydra_runs(tmp_path, monkeypatch, capsys):
    from sim.cli.clientsim import hydra_flags
    from sim.errors import UserError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["clientsim"])
    assert main(["--hydra-help"]) == 0
    section = capsys.readouterr().out.split("== Flags ==")[1].split("== ")[0]
    flags = [f for line in re.findall(r"^(-[-\w]+(?:,-[-\w]+)*) :", section, re.M)
             for f in line.split(",")]  # fmt: skip
    assert "--multirun" in flags and "-cd" in flags and len(flags) >= 20
    for flag in flags:
        try:
            _, unknown = hydra_flags().parse_known_args([flag])
        except UserError:  # known, and wants a value
            continue
        assert unknown == [], flag


def test_a_reader_that_leaves_early_ends_a_console_script_quietly(tmp_path):
    script = Path(clientsim_script()).with_name("clientsim-experiment")
    pipe = f"{shlex.quote(str(script))} list | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipe], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("experiment")


def test_write_atomic_replaces_the_target_in_one_step(tmp_path):
    target = tmp_path / "summary.json"
    write_atomic(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert list(tmp_path.iterdir()) == [target]


def test_write_atomic_leaves_no_file_when_the_writer_fails(tmp_path):
    def failing_writer(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    target = tmp_path / "results" / "steps.parquet"
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, failing_writer)
    assert list(target.parent.iterdir()) == []


def test_write_atomic_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def interrupted_writer(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, interrupted_writer)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_multirun_gives_every_job_its_own_directory(tmp_path, small_overrides):
    out = tmp_path / "sweep"
    result = run_cli(["-m", "seed=1,2", *small_overrides, f"output_dir={out}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seeds = [json.loads((out / job / "summary.json").read_text())["seed"] for job in "01"]
    assert seeds == [1, 2]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [MARKER]


def start_long_run(tmp_path: Path, out: Path, seed: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "sim", f"seed={seed}", "market.n_clients=20000"]
    return subprocess.Popen(
        [*command, "steps=2000", "progress=false", f"output_dir={out}"],
        cwd=tmp_path,
        # as from a terminal: a suite started in the background (`cmd &`) ignores SIGINT, and
        # its children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_staging(out: Path, timeout: float = 60.0) -> Path:
    """The staging directory of a run into `out`, once Hydra has written .hydra/ there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        staged = [p for p in out.parent.glob(f".{out.name}.tmp-*") if (p / ".hydra").exists()]
        if staged:
            return staged[0]
        time.sleep(0.1)
    raise AssertionError("the run never started")


def test_a_run_killed_mid_write_leaves_the_old_complete_run(tmp_path, small_overrides):
    out = tmp_path / "out"
    first = run_cli([*small_overrides, "seed=0", f"output_dir={out}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    writer = start_long_run(tmp_path, out, seed=1)
    wait_for_staging(out)
    time.sleep(1.0)  # into the steps
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    overrides = OmegaConf.load(out / ".hydra" / "overrides.yaml")
    assert "seed=0" in overrides
    again = run_cli([*small_overrides, "seed=2", f"output_dir={out}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert "seed=2" in OmegaConf.load(out / ".hydra" / "overrides.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the killed run's .tmp too


def test_ctrl_c_exits_130_with_one_line_and_writes_no_results(tmp_path):
    out = tmp_path / "out"
    writer = start_long_run(tmp_path, out, seed=1)
    wait_for_staging(out)
    time.sleep(1.0)
    writer.send_signal(signal.SIGINT)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 130, stderr[-3000:]
    (line,) = stderr.splitlines()
    assert "interrupted" in line
    assert list(tmp_path.iterdir()) == []


class Stop(BaseException):
    pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_whose_exception_python_dropped_is_raised_at_the_next_check():
    """A handler's raise inside a ctypes callback (llvmlite's, loading a kernel) is dropped."""
    import ctypes
    import os

    from sim.runs import signals

    callback = ctypes.CFUNCTYPE(None)(lambda: os.kill(os.getpid(), signal.SIGUSR1))
    with signals.raising({signal.SIGUSR1: Stop}):
        callback()  # Python prints "Exception ignored on calling ctypes callback" and goes on
        with pytest.raises(Stop):
            signals.check()
        signals.check()  # raised once
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
