"""Which verdicts rest on the same runs: experiments that run one design point with one seed.

Every experiment runs seeds 0..n−1, so two experiments whose design points have the same
model config run the very same runs there (common random numbers make them identical), and
their verdicts are not independent evidence. Changing the seeds would change every published
number; docs/RESULTS.md says plainly instead which verdicts share runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from sim.analysis import inference
from sim.analysis import stats as analysis


def design_points(label: str, sweep_dir: Path) -> pd.DataFrame:
    """A sweep's runs as ``experiment``, ``where``, ``design``, ``seed`` (`inference.shared_runs`).

    ``design`` hashes the point's resolved config without its ``experiment`` block: the same
    model config in any experiment gives the same key, and with the same seed the same run.
    """
    runs = analysis.load_runs(sweep_dir)
    runs = runs[runs["status"] == "ok"]
    points = [json.loads(f.read_text()) for f in sorted(sweep_dir.glob("points/*/point.json"))]
    values = pd.DataFrame([point["values"] for point in points]).astype(str)
    swept = [key for key in values.columns if values[key].nunique() > 1]
    rows = []
    for point in points:
        model = {key: value for key, value in point["config"].items() if key != "experiment"}
        design = hashlib.sha256(json.dumps(model, sort_keys=True, default=str).encode())
        where = ", ".join(f"{key}={point['values'][key]}" for key in swept)
        seeds = runs.loc[runs["point_hash"] == point["hash"], "seed"].unique()
        rows += [{"experiment": label, "where": where, "design": design.hexdigest()[:16],
                  "seed": int(seed)} for seed in seeds]  # fmt: skip
    return pd.DataFrame(rows, columns=["experiment", "where", "design", "seed"])


def shared_runs_note(sweeps: dict[str, Path]) -> str:
    """A sentence that names the verdicts resting on the same runs (`inference.shared_runs`)."""
    tables = [design_points(label, sweep_dir) for label, sweep_dir in sweeps.items()]
    shared = inference.shared_runs(pd.concat(tables, ignore_index=True))
    if shared.empty:
        return "**Shared runs.** No two experiments ran the same design point with a same seed."
    items = [f"{' = '.join(row.experiments)}: the same {len(row.seeds)} runs (seeds "
             f"{row.seeds[0]}–{row.seeds[-1]})" for row in shared.itertuples()]  # fmt: skip
    return ("**Shared runs.** Every experiment runs seeds 0..n−1 (common random numbers), so "
            "experiments that run the same design point run the very same runs there, and a "
            "quirk of those seeds repeats in every verdict that uses them: these verdicts are "
            "not independent evidence. " + "; ".join(items) + ".")  # fmt: skip
