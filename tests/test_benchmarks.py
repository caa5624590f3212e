"""The benchmark's arithmetic: the cost fit and the targets' verdicts (benchmarks/engines.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "engines.py"
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


def test_target_figures_and_verdicts():
    new = {"rows": rows(4e-4, 5e-8), "million": {"peak_mb": 900.0}}
    old = {"rows": rows(6e-3, 2.6e-7), "million": {"peak_mb": 2000.0}}
    figures = bench.target_figures(new["rows"], new["million"])
    assert figures["fixed cost per week"] == pytest.approx(0.4)  # ms
    assert figures["marginal cost per client-step at 100,000"] == pytest.approx(0.05)  # µs
    assert figures["default run stepping (5,000 x 260)"] == pytest.approx(260 * 6.5e-4)
    assert figures["peak memory per client at 1,000,000"] == pytest.approx(0.9)  # kB
    batched = "the same, 10 seeds as one batch, per run"
    assert figures[batched] == figures["default run stepping (5,000 x 260)"]  # none: alone
    report = bench.targets_report(new, old)
    assert report.count(" met") == 5 and "missed" not in report
    assert "missed by" in bench.targets_report(old, None)
    slow = {"rows": rows(6e-3, 2.6e-7), "million": None}
    slow["batched"] = {"clients": 5_000, "weeks": 260, "replicas": 10, "run_s": 2.0,
                       "client_steps_per_s": 6.5e6, "peak_mb": 300.0}  # fmt: skip
    assert bench.target_figures(slow["rows"], None, slow["batched"])[batched] == pytest.approx(0.2)
    assert "10 seeds as one batch" in bench.targets_report(slow, None)
