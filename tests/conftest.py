"""Shared fixtures, and the markers each test gets from what it does.

Markers (registered in pyproject.toml), so that `make test-fast` can leave out the slow part:
- `browser`: the tests of test_app_browser.py (a real Chromium);
- `slurm`: set by hand in test_slurm.py (a real Slurm);
- `subprocess`: the test starts a process: its code, or a helper or fixture of tests/ that it
  uses, refers to the `subprocess` module;
- `slow`: the tests named in SLOW or using a fixture in SLOW_FIXTURES (over about 1 s).

Under pytest-xdist, `make test` runs `-n auto --dist loadfile` (`-n auto`: a worker more than
the cores, `pytest_xdist_auto_num_workers` below): a module's tests stay on one
worker, so that a module-scoped fixture (a sweep, the facts table, a Bass run) is built once and
the tests marked `slurm` (one node; they queue, hold and cancel jobs) run one after another.
The modules run in the order of LONGEST_FIRST (xdist would order them by their number of
tests), and the tests of the modules in APART are shared out one by one
(`pytest_xdist_make_scheduler` below; `--dist loadgroup` with `xdist_group` marks would do it,
but with pytest 9.2 and pytest-xdist 3.8 it ignores the marks: pytest-dev/pytest-xdist#1386).
"""

import contextlib
import hashlib
import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

# The suite starts hundreds of Python processes (the console scripts, sweep workers). Where the
# environment sets PYTHONDONTWRITEBYTECODE, each of them would compile the package anew (about
# 0.4 s): let this process and its children keep the compiled modules (git ignores them).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

TESTS = Path(__file__).resolve().parent
ALL = None  # in SLOW: every test of the module

#: Tests that start no process but take over about 1 s on a quiet 2-core machine (measured with
#: `pytest -n 2 --durations=0`; refresh when the fast set grows past a minute). A module's name
#: alone marks all of it; every parameter of a named test is marked.
SLOW = {
    "test_app_browser.py": ALL,
    "test_stylised_facts.py": ALL,
    "test_docking.py": ALL,
    "test_api.py": {
        "test_a_bad_value_raises_the_config_error_whose_text_clientsim_prints",
        "test_run_batch_gives_every_seed_exactly_its_run_alone",
    },
    "test_app.py": {
        "test_the_classroom_market_records_referrals_and_intake_by_segment",
        "test_the_page_renders_steps_and_resets_with_a_slider_moved",
        "test_five_years_of_the_classroom_market_play_within_the_tutorials_time",
    },
    "test_baseline.py": {"test_fixed_seed_run_reproduces_the_baseline_summary"},
    "test_calibrate.py": {
        "test_calibration_runs_end_to_end_and_writes_its_proposal",
        "test_the_default_out_replaces_the_proposal_clientsim_wrote",
    },
    "test_cli.py": {
        "test_bad_input_exits_2_with_one_line_and_writes_nothing",
        "test_every_flag_hydra_lists_is_read_before_hydra_runs",
        "test_help_lists_the_config_groups_without_the_schemas",
    },
    "test_engines.py": {
        "test_engines_agree_within_sampling_error_over_8_seeds",
        "test_policy_mixes_see_the_same_clients_network_and_need_arrivals",
    },
    "test_facts.py": {
        "test_facts_command_replaces_its_own_files_but_not_one_changed_since",
        "test_facts_command_writes_table_values_and_whale_curves",
    },
    "test_model.py": {
        "test_a_batch_of_seeds_gives_every_seed_exactly_its_run_alone",
        "test_a_model_runs_past_its_configured_steps_and_the_engines_still_agree",
        "test_a_strong_culture_draws_and_accepts_clients_of_like_values",
        "test_buying_centre_changes_outcomes_not_traits",
        "test_capacity_is_never_exceeded",
        "test_declined_difficult_clients_reform_by_the_reform_amount",
        "test_diagnosis_quotes_the_true_need",
        "test_diagnosis_raises_satisfaction_and_revenue",
        "test_engines_agree_exactly_run_for_run",
        "test_every_network_kind_runs",
        "test_in_a_sellers_market_impatient_clients_leave_and_queues_stay_bounded",
        "test_money_is_conserved",
        "test_patience_off_is_infinite_and_changes_no_other_trait",
        "test_ratings_are_j_shaped",
        "test_referral_matching_sends_referrals_to_clients_who_fit",
        "test_same_seed_gives_identical_tables_and_another_seed_different",
        "test_screening_lowers_mean_difficulty_of_accepted_clients",
        "test_serving_the_decider_wins_more_first_sales_and_fewer_repeats_than_the_user",
        "test_upselling_bills_more_per_completed_job",
        "test_word_of_mouth_off_removes_referrals",
    },
    "test_phases.py": {
        "test_a_business_serving_the_decider_wins_more_choices_than_one_serving_the_user",
    },
    "test_plot.py": {
        "test_a_comparison_of_parameter_values_draws_points_and_no_crossover",
        "test_a_second_plot_replaces_the_figures_the_first_one_wrote",
        "test_main_prints_a_line_per_file",
        "test_paired_csv_holds_one_row_per_design_point_and_metric",
        "test_plot_dir_writes_every_figure_in_every_format",
        "test_plot_refuses_a_figure_changed_since_it_wrote_it",
    },
    "test_readme.py": ALL,
    "test_sensitivity.py": {
        "test_bad_input_exits_2_with_one_line",
        "test_difficult_share_keeps_segment_shares_summing_to_one",
        "test_mix_share_maps_to_integer_counts_of_ten_businesses",
        "test_morris_again_replaces_its_own_files_and_the_named_figure",
        "test_morris_writes_its_table_figure_and_samples",
        "test_sobol_takes_morris_top_three_and_writes_its_indices",
    },
    "test_state.py": {"test_a_phase_written_once_runs_alike_in_both_engines"},
    "test_history.py": {
        "test_a_tiny_history_match_writes_a_readable_set_the_same_for_the_same_seed"
    },
    "test_sensitivity_factors.py": {
        "test_a_tiny_morris_runs_with_the_new_factors_and_prints_p_gap"
    },
    "test_sampling.py": {"test_the_readme_sampled_design_runs_and_records_each_samples_values"},
    "test_sweep.py": {"test_list_shows_every_experiment_with_its_size"},
}

#: Module-scoped fixtures that run simulations or sweeps: a test that uses one is slow too.
SLOW_FIXTURES = {"smoke_dirs", "facts_table", "bass_run", "morris_dir", "two_sweeps", "plain_sweep",
                 "smoke_out", "run_dir"}  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Compile the model's numba kernels once, before any worker or console script runs.

    While the disk cache (`sim.model.kernels.cache_dir`) is empty, every process that runs a
    model compiles them on its own (about 10 s each): the workers of pytest-xdist and the
    first console scripts would, side by side. Tiny markets of both engines and a batch
    call every kernel. Once they have run here, a file in the cache says so (`warmed_stamp`)
    and later sessions skip them (about 1.5 s, while every worker waits).
    """
    if hasattr(config, "workerinput"):  # a worker of pytest-xdist: its controller did it
        return
    stamp = warmed_stamp()
    if stamp.exists():
        return
    call_every_kernel()
    with contextlib.suppress(OSError):  # (a read-only cache: warmed again next time)
        stamp.touch()


def warmed_stamp() -> Path:
    """The file that says every kernel of this checkout is compiled in numba's cache.

    In the kernels' cache directory (`sim.model.kernels.cache_dir`, a new one when their
    sources change), named by this checkout's package, Python and numba: numba keeps a
    cache per source path, and recompiles for another Python or numba.
    """
    import numba

    import sim
    from sim.model.kernels import cache_dir

    where = Path(numba.config.CACHE_DIR or cache_dir())
    key = f"{Path(sim.__file__).resolve().parent}|{sys.version}|{numba.__version__}"
    return where / f"warmed-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def unit_vectors(angles: np.ndarray) -> np.ndarray:
    """Unit vectors of `angles` (radians), stacked on a last axis of 2."""
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def call_every_kernel() -> None:
    """Step tiny markets of both engines and a batch: every kernel is called (and compiled)."""
    from sim.config.compose import compose
    from sim.model.engines import engine_class

    for engine, seeds in (("vectorized", None), ("vectorized", [0, 1]), ("agents", None)):
        cfg = compose([f"engine={engine}", "market.n_clients=200", "steps=3"])
        model = engine_class(engine)(cfg) if seeds is None else engine_class(engine)(cfg, seeds)
        for _ in range(3):
            model.step()


@pytest.fixture(scope="session")
def small_overrides() -> list[str]:
    """Overrides for a run small enough for a test: 300 clients, 8 weeks, no progress bar."""
    return ["market.n_clients=300", "steps=8", "progress=false"]


def referred_names(function: types.FunctionType) -> set[str]:
    """The global and attribute names the code of `function` refers to, nested code included."""
    names, codes = set(), [function.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [const for const in code.co_consts if isinstance(const, types.CodeType)]
    return names


def starts_a_process(function: object, seen: set) -> bool:
    """Whether `function` (a test, helper or fixture of tests/) uses the subprocess module."""
    function = inspect.unwrap(function) if callable(function) else function
    if not inspect.isfunction(function) or function in seen:
        return False
    if not Path(function.__code__.co_filename).resolve().is_relative_to(TESTS):
        return False  # the library's own use of subprocess (sbatch, ...) does not count
    seen.add(function)
    scope = function.__globals__
    for name in referred_names(function):
        value = scope.get(name)
        if value is subprocess or starts_a_process(value, seen):
            return True
    return False


def is_slow(item: pytest.Item) -> bool:
    """Whether SLOW names the test (or its module), or it uses one of SLOW_FIXTURES."""
    module = item.path.name
    if module in SLOW and (SLOW[module] is ALL or item.originalname in SLOW[module]):
        return True
    return bool(SLOW_FIXTURES & set(item.fixturenames))


#: The files that take longest, longest first: run first, so that with `pytest -n 2 --dist
#: loadfile` no long file starts last while the other worker idles (about 30 s on 2 cores).
LONGEST_FIRST = (
    "test_slurm.py", "test_sweep.py", "test_sweep_safety.py", "test_sweep_runs.py",
    "test_output.py", "test_cli.py", "test_tutorial.py", "test_layout.py", "test_app_browser.py",
    "test_model.py", "test_engines.py", "test_stylised_facts.py", "test_docking.py",
    "test_sensitivity.py",
)  # fmt: skip


#: Modules of slow tests that share no module-scoped fixture: under `--dist loadfile` each of
#: their tests goes to whichever worker is free, not the whole module to one worker.
APART = {"test_tutorial.py", "test_sweep_runs.py", "test_layout.py", "test_history.py",
         "test_plausible_verdicts.py", "test_own_experiment.py"}  # fmt: skip


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, when it is installed
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker more than the CPUs this process may use.

    Many tests wait more than they compute (a Slurm job queued, a signalled console script,
    a browser), so one more worker keeps every core busy while one of them waits. On 2 cores
    (2026-12-07) the suite took 232 and 235 s with 3 workers, 252 s with 2, 245 s with 4.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` chooses the number instead, as pytest-xdist reads it.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) + 1


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, when it is installed
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadfile` in the order of LONGEST_FIRST, each test of an APART module apart."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if Path(module).name in APART else module

    config.option.loadscopereorder = False  # keep the collection's order (LONGEST_FIRST)
    return Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test `browser`, `slow` or `subprocess` by what it does; long files first."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept
    for item in items:
        if item.path.name == "test_app_browser.py":
            item.add_marker(pytest.mark.browser)
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        module = vars(item.module)
        uses = [item.function, *(module.get(name) for name in item.fixturenames)]
        if any(starts_a_process(function, set()) for function in uses):
            item.add_marker(pytest.mark.subprocess)


def in_process(main, capsys, monkeypatch):
    """A console script's `main(argv)` run in this process from `cwd`, as a subprocess would.

    Returns `run(args, cwd)`: the exit code and output as a `subprocess.CompletedProcess`.
    """

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run
