"""The plausible set: parameter vectors whose stylised facts are consistent with the targets.

``clientsim-calibrate --plausible`` writes it (`sim.validation.history`); the experiments'
verdicts and ``clientsim-explore`` draw markets from it, so that an answer carries the
calibration's uncertainty rather than one best point's. Two files in one folder:

- ``plausible.parquet``: one row per vector. ``vector`` (int64, 0..n-1), one float64 column
  per calibrated parameter (its dotted config key, e.g. ``clients.reviews.floor``),
  ``distance`` (float64: the largest standardised excess of a simulated fact outside its
  target range, 0 inside every range), ``weight`` (float64, summing to 1), and one
  ``fact:<name>`` float64 column per calibrated fact (its simulated value; in a confirmed set,
  its mean over the confirmation's seeds, and the excess is in standard errors).
- ``plausible.yaml``: ``method``, ``parameters`` (key -> [low, high] searched), ``targets``
  (name -> range, tolerance, seed s.d.), ``settings``, ``command``, a summary of the
  waves, and ``confirmation`` (the seeds, the vectors rerun and kept) when confirmed.

A small set made at the default size ships with the package (``sim/validation/plausible/``);
`load_plausible()` without a path reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sim.errors import UserError
from sim.runs.owned import record_outputs
from sim.runs.record import write_parquet

TABLE = "plausible.parquet"
META = "plausible.yaml"
FACT_PREFIX = "fact:"
COLUMNS = ("vector", "distance", "weight")
#: An answer over the set, by default: this many vectors (each of the shipped set's once) ...
VECTORS = 15
#: ... at this many seeds each (`clientsim-experiment plausible`, `make results`)
SEEDS = 4


def shipped() -> Path:
    """The folder of the plausible set that ships with the package."""
    return Path(str(resources.files("sim.validation") / "plausible"))


@dataclass(frozen=True)
class PlausibleSet:
    """A plausible set: its table (one row per parameter vector) and its description."""

    table: pd.DataFrame
    meta: dict

    @property
    def parameters(self) -> list[str]:
        """The calibrated parameters' config keys, in the table's order."""
        return list(self.meta["parameters"])

    def draw(self, n: int, seed: int) -> list[dict[str, float]]:
        """`n` parameter vectors drawn by weight (without replacement while rows last).

        Each is a dict of config key -> value, ready to set on a config; the draw is the same
        for the same `seed`.
        """
        if n < 1:
            raise UserError(f"the number of plausible vectors to draw must be at least 1, not {n}")
        rng = np.random.default_rng(seed)
        weights = self.table["weight"].to_numpy(float)
        replace = n > len(self.table)
        rows = rng.choice(len(self.table), size=n, replace=replace, p=weights / weights.sum())
        values = self.table.iloc[rows][self.parameters]
        return [{k: float(v) for k, v in row.items()} for _, row in values.iterrows()]

    @property
    def facts(self) -> list[str]:
        """The calibrated facts whose simulated values the table holds."""
        return [c.removeprefix(FACT_PREFIX) for c in self.table if c.startswith(FACT_PREFIX)]


def load_plausible(path: str | Path | None = None) -> PlausibleSet:
    """Read a plausible set: a folder holding both files, or its parquet file; None: shipped.

    Raises:
        UserError: the files are missing or the table lacks a column the description names.
    """
    folder = shipped() if path is None else Path(path)
    if folder.suffix == ".parquet":
        folder = folder.parent
    table_file, meta_file = folder / TABLE, folder / META
    if not (table_file.is_file() and meta_file.is_file()):
        raise UserError(f"plausible set {folder}: needs {TABLE} and {META} there")
    meta = yaml.safe_load(meta_file.read_text())
    table = pd.read_parquet(table_file)
    missing = [c for c in (*COLUMNS, *meta.get("parameters", {})) if c not in table]
    if missing:
        raise UserError(f"plausible set {folder}: {TABLE} has no column {missing[0]!r}")
    return PlausibleSet(table, meta)


def write_plausible(table: pd.DataFrame, meta: dict, folder: Path) -> list[Path]:
    """Write both files into `folder` (noted as clientsim's: `sim.runs.owned`); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table_file, meta_file = folder / TABLE, folder / META
    write_parquet(table_file, table.reset_index(drop=True))
    meta_file.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    record_outputs([table_file, meta_file])
    return [table_file, meta_file]
