"""Refresh the regression baseline, tests/baseline.json: `python -m tests.make_baseline`.

The baseline holds the summaries of a few fixed-seed small runs. `tests/test_baseline.py`
reruns them under both engines and compares; a change to the model that moves results
(both engines together, so `test_engines` cannot see it) fails that test until the
baseline is refreshed here, deliberately, with the reason in the commit message.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from sim.config.compose import compose
from sim.runs.record import write_json
from sim.runs.run import simulate
from sim.runs.summary import summarize

PATH = Path(__file__).with_name("baseline.json")
ENGINES = ("vectorized", "agents")
#: The runs of the baseline: a name, and its overrides of the default config. The `before-`
#: runs set the structural mechanisms back (`structure=before`, docs/ODD.md §10a): their
#: summaries are those the model gave before the mechanisms (baseline of 0ada4d5), unchanged.
DEFAULT = ["seed=7", "market.n_clients=300", "steps=30"]
SELLERS_EXITS = [
    "seed=8", "market.n_clients=300", "steps=30", "market.demand_supply_ratio=2",
    "market.initial_cash_weeks=8", "market.credit_limit_weeks=0", "market.exit_after=1",
]  # fmt: skip
RUNS: dict[str, list[str]] = {
    "default": DEFAULT,
    "sellers-exits": SELLERS_EXITS,
    "before-default": ["structure=before", *DEFAULT],
    "before-sellers-exits": ["structure=before", *SELLERS_EXITS],
}
REL_TOL = 1e-9  # floats may differ in the last bits between machines (libm), not more


def baseline_summary(overrides: list[str], engine: str) -> dict:
    """The summary of the run of `overrides` under `engine`."""
    _, recorder = simulate(compose([*overrides, f"engine={engine}", "progress=false"]))
    return summarize(recorder.steps_frame())


def differences(expected, actual, where: str = "") -> list[str]:
    """Where two summaries differ: equal structure, ints and None exact, floats to REL_TOL."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{where}: keys {sorted(expected)} != {sorted(actual)}"]
        return [d for k in expected for d in differences(expected[k], actual[k], f"{where}.{k}")]
    if isinstance(expected, float) and isinstance(actual, float):
        close = math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=1e-12)
        return [] if close else [f"{where}: {expected!r} != {actual!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: {expected!r} != {actual!r}"]
    return []


def main() -> int:
    """Run every baseline run under both engines; write the baseline if they agree."""
    runs = {}
    for name, overrides in RUNS.items():
        summaries = [baseline_summary(overrides, engine) for engine in ENGINES]
        if problems := differences(*summaries):
            print(f"{name}: the engines disagree, baseline not written", *problems, sep="\n")
            return 1
        runs[name] = {"overrides": overrides, "summary": summaries[0]}
    about = "Regression baseline: refresh with `python -m tests.make_baseline` (see that file)."
    write_json(PATH, {"about": about, "runs": runs})
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
