"""The claims of an experiment (`experiment.expect`): their kinds, and whether runs can judge them.

Kept apart from `sim.analysis.report`, which judges the claims (statistics, figures), so that
`clientsim-experiment run` checks them before anything runs without importing scipy.stats and
matplotlib (about 0.7 s of every sweep's process).
"""

from __future__ import annotations

from collections.abc import Collection

from sim.config.schema import ConfigError
from sim.runs.record import METRICS

#: The kinds of claim, each judged by `sim.analysis.report.CHECKS[kind]`.
KINDS = ("sign", "trend", "shape", "larger_at")


def check_claims(exp: dict, columns: Collection[str]) -> None:
    """Raise ConfigError naming the first claim of `experiment.expect` that cannot be judged.

    A claim has a `metric` (one of `columns`, those of the sweep's runs table) and one of
    `KINDS`; `at` and the kinds other than `sign` need the experiment's `x` among `columns`.
    `clientsim-experiment run` checks the claims before anything runs, `report` before judging.
    """
    runs = set(columns)
    for i, claim in enumerate(exp.get("expect") or []):
        where = f"experiment.expect[{i}]"
        kinds = [k for k in KINDS if k in claim] if isinstance(claim, dict) else []
        if len(kinds) != 1:
            raise ConfigError(where, claim, f"one of {', '.join(KINDS)} (and a metric)")
        if claim.get("metric") not in runs:
            raise ConfigError(f"{where}.metric", claim.get("metric"),
                              f"allowed: {', '.join(m for m in METRICS if m in runs)}")  # fmt: skip
        if (kinds[0] != "sign" or "at" in claim) and exp.get("x") not in runs:
            raise ConfigError("experiment.x", exp.get("x"), f"a swept key, for the claim "
                              f"{where} ({kinds[0]}{', at' if 'at' in claim else ''})")  # fmt: skip
