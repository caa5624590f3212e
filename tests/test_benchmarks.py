"""The benchmark's arithmetic: the cost fit and the targets' verdicts (benchmarks/engines.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "engines.py"
sys.path.insert(0, str(_PATH.parent))  # engines.py imports anchors.py beside it
_SPEC = importlib.util.spec_from_file_location("bench_engines", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def rows(fixed: float, marginal: float, peak_mb: float = 200.0) -> list[dict]:
    """Runs of 260 weeks whose every week costs exactly fixed + marginal x clients seconds."""
    out = []
    for n in bench.TARGET_SIZES:
        run = 260 * (fixed + marginal * n)
        out.append({"clients": n, "weeks": 260, "run_s": run,
                    "client_steps_per_s": n * 260 / run, "peak_mb": peak_mb})  # fmt: skip
    return out


def test_the_cost_fit_recovers_fixed_and_marginal_costs():
    fixed, marginal = bench.cost_fit(rows(3e-3, 2.5e-7))
    assert fixed == pytest.approx(3e-3) and marginal == pytest.approx(2.5e-7)


ANCHORS = [
    {"anchor": "numpy", "agents": 100_000, "steps": 400, "agent_steps_per_s": 1e8},
    {"anchor": "starsim", "agents": 100_000, "steps": 100, "agent_steps_per_s": None},
]
BATCHED = "default run stepping, 10 seeds as one batch, per run"


def batched(run_s: float) -> dict:
    return {"clients": 5_000, "weeks": 260, "replicas": 10, "run_s": run_s,
            "client_steps_per_s": 5_000 * 260 * 10 / run_s, "peak_mb": 300.0}  # fmt: skip


def test_target_figures_and_verdicts():
    new = {"rows": rows(4e-4, 5e-8), "million": {"peak_mb": 700.0}, "batched": batched(0.9),
           "anchors": ANCHORS}  # fmt: skip
    old = {"rows": rows(6e-3, 2.6e-7), "million": {"peak_mb": 2000.0}, "batched": batched(3.0)}
    figures = bench.target_figures(new["rows"], new["million"], new["batched"], 1e8)
    assert figures["fixed cost per week"] == pytest.approx(0.4)  # ms
    # 50 ns a client-step against 10 ns a Boltzmann agent-step
    assert figures["marginal cost per client-step at 100,000"] == pytest.approx(5.0)
    assert figures[BATCHED] == pytest.approx(0.09)
    assert figures["peak memory per client at 1,000,000"] == pytest.approx(0.7)  # kB
    report = bench.targets_report(new, old)
    assert report.count(" met") == 4 and "missed" not in report
    assert "numpy Boltzmann" in report and "not installed" in report
    assert "missed by" in bench.targets_report(old | {"anchors": ANCHORS}, None)


def test_a_run_without_a_batch_is_charged_its_run_alone():
    alone = bench.target_figures(rows(6e-3, 2.6e-7), None, None, 1e8)
    assert alone[BATCHED] == pytest.approx(260 * (6e-3 + 2.6e-7 * 5_000))


@pytest.mark.subprocess
def test_the_startup_is_measured_with_a_cold_and_a_warm_cache():
    measured = bench.startup_in_subprocess()
    for side in ("cold", "warm"):
        assert set(measured[side]) == {"import_s", "build_s", "first_week_s"}
        assert all(v > 0 for v in measured[side].values())
    assert "empty numba cache" in bench.startup_line("new", measured)


@pytest.mark.subprocess
def test_the_sweep_benchmark_prints_its_rows_beside_the_machines_speed(tmp_path):
    """benchmarks/sweep.py at a tiny size: the sweep's row and the numpy anchor around it."""
    import json
    import subprocess

    out = tmp_path / "sweep.json"
    done = subprocess.run(
        [sys.executable, str(_PATH.parent / "sweep.py"), "--runs", "2", "--clients", "100",
         "--weeks", "3", "--jobs", "1", "--chunk-size", "2", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(out.read_text())
    (row,) = measured["sweeps"]
    assert row["runs"] == 2 and row["wall_s"] > 0 and row["stepping_s"] > 0
    assert [a["anchor"] for a in measured["anchors"]] == ["numpy", "numpy"]
    assert all(a["agent_steps_per_s"] > 0 for a in measured["anchors"])
    assert done.stdout.count("agent-steps/s (") == 2 and "overhead" in done.stdout
