"""A plain `clientsim -m` sweep read as an experiment's: runs and steps tables of its jobs.

A plain sweep (Hydra's multirun of `clientsim`, no experiment) writes one whole run per job,
in `DIR/<job number>/` with Hydra's `.hydra/` beside its files, and no joined table. Its
tables are built from those run directories as a sweep's join builds them from its runs
(`sim.sweeps.tables`): a design point is a combination of the swept values (the seed aside),
each swept key a column with its values, and every row names the sweep: `experiment` is empty
and `sweep_hash` the hash of its design (`design_hash`), so two plain sweeps stay apart when
their tables are concatenated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from sim.sweeps.points import config_hash, swept_values
from sim.sweeps.tables import (
    design_hash,
    run_rows,
    step_means,
    swept_keys,
    tidy_runs,
    tidy_steps,
)

#: Hydra's record of a multirun, at the top of its sweep directory.
MULTIRUN_FILE = "multirun.yaml"
#: The files of one job of a plain sweep (beside `.hydra/hydra.yaml`).
JOB_FILES = ("config.yaml", "steps.parquet")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a plain sweep's jobs (each holds JOB_FILES and `.hydra/`)."""
    found = [
        hydra.parent.parent
        for hydra in sweep_dir.rglob(".hydra/hydra.yaml")
        if all((hydra.parent.parent / name).is_file() for name in JOB_FILES)
    ]
    return sorted(found, key=lambda d: (len(d.parts), int(d.name) if d.name.isdigit() else 0, d))


def is_plain_sweep(sweep_dir: Path) -> bool:
    """Whether `sweep_dir` is a plain `clientsim -m` sweep (Hydra's multirun.yaml, job runs)."""
    return (sweep_dir / MULTIRUN_FILE).is_file() and bool(job_dirs(sweep_dir))


def plain_tables(sweep_dir: Path, *, runs: bool = True) -> pd.DataFrame:
    """runs.parquet (or, with ``runs=False``, steps.parquet) of a plain sweep, in memory.

    The columns and dtypes of an experiment's tables (`tidy_runs`, `tidy_steps`); `job` is
    Hydra's job number.
    """
    jobs = []
    for job_dir in job_dirs(sweep_dir):
        cfg = OmegaConf.load(job_dir / "config.yaml")
        hc = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra
        jobs.append((job_dir, cfg, int(hc.job.num), swept_values(cfg, hc)))
    params = swept_keys([values for *_, values in jobs])
    design: list[str] = []  # each point's swept values, as JSON, in the order first met
    frames, hashes, seeds = [], [], []
    for job_dir, cfg, job, values in jobs:
        point_values = {k: values.get(k) for k in params}
        text = json.dumps(point_values, sort_keys=True, default=str)
        if text not in design:
            design.append(text)
        keys = {"point": design.index(text), "point_hash": config_hash(cfg), "seed": cfg.seed}
        hashes.append(keys["point_hash"])
        seeds.append(cfg.seed)
        steps = pd.read_parquet(job_dir / "steps.parquet")
        if runs:
            frames.append(run_rows(steps).assign(**keys, job=job, status="ok", error=None,
                                                 **point_values))  # fmt: skip
        else:
            frames.append(step_means(steps).assign(**keys, **point_values))
    tidy = tidy_runs if runs else tidy_steps
    return tidy(frames, "", params, design_hash("", hashes, seeds))
