"""Where does filtering pay? Paired comparisons over a sampled space of market conditions.

    explore(None, samples=600, seeds=5)   # the default space, the model's defaults otherwise

Each sample is a market: a point of a Latin hypercube over the space's conditions
(`sim.explore.space`) on the study's base market (`sim.validation.sensitivity.base_config`:
the ``half_half`` mix of ten businesses, five fit_filter and five serve_all), and, given a
plausible set, a parameter vector drawn from it by weight (`PlausibleSet.draw`), so that the
map carries the calibration's uncertainty. Every sample runs the same seeds (common random
numbers), batched into one model (`sim.runs.run.simulate_batch`), and the samples run in
parallel (joblib).

The metric is the **paired profit gap** of a run: the mean cumulative profit per fit_filter
business minus that per serve_all business at the horizon, each policy's ``profit_horizon``
of the run's summary (`sim.runs.summary.summarize`, the value a sweep's runs.parquet holds
and experiment strategy's verdict compares). It counts profit, not survival: a business that
exited keeps its cumulative profit frozen at its exit (no profit or loss after it) and counts
in its policy's mean like any other. A sample **pays** when its mean gap over the seeds is
positive. PRIM (`sim.explore.boxes`) then finds the boxes of conditions where it pays, and
those where it loses (the informative side when it pays almost everywhere).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf

from sim.explore import boxes as prim_boxes
from sim.explore import space as sp
from sim.runs.run import simulate, simulate_batch
from sim.runs.summary import summarize
from sim.sweeps.jobs import BATCH_CLIENTS
from sim.validation import sensitivity as sa
from sim.validation.plausible import PlausibleSet

A, B = sa.A, sa.B  # the gap is A − B, paired within a run
METRIC = "profit_horizon"  # each policy's mean cumulative profit per business at the horizon


@dataclass(frozen=True)
class Map:
    """A map of where filtering pays: its tables in memory, and how it was made.

    Attributes:
        samples: one row per sample and seed: ``sample``, ``seed`` (int64), each condition
            (its config key; float64, int64 for an integer key), each drawn plausible
            parameter (float64), ``gap`` (float64, currency units: the paired profit gap).
        points: one row per sample: the conditions and drawn parameters, ``seeds`` (int64),
            ``gap_mean``, ``gap_sd`` (float64, currency units; the s.d. over seeds, NaN with
            one seed), ``share_positive`` (float64: the share of seeds with gap > 0),
            ``pays`` (bool: gap_mean > 0).
        boxes: PRIM's boxes (`sim.explore.boxes.BOX_COLUMNS`).
        conditions: the sampled conditions' keys, in the space's order.
        parameters: the drawn plausible parameters' keys (none without a plausible set).
        settings: the space, sizes, seeds and base overrides (the manifest's).
    """

    samples: pd.DataFrame
    points: pd.DataFrame
    boxes: pd.DataFrame
    conditions: list[str]
    parameters: list[str]
    settings: dict = field(default_factory=dict)

    @property
    def share_pays(self) -> float:
        """The share of the sampled space (of the samples) where filtering pays."""
        return float(self.points["pays"].mean())


def explore(
    space: Sequence[str] | None = None,
    *,
    samples: int,
    seeds: int,
    clients: int | None = None,
    weeks: int | None = None,
    plausible: PlausibleSet | None = None,
    sample_seed: int = 0,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    overrides: Sequence[str] = (),
    threshold: float = prim_boxes.THRESHOLD,
    max_boxes: int = prim_boxes.MAX_BOXES,
) -> Map:
    """Sample the space, run every sample's paired comparison, find PRIM's boxes.

    Args:
        space: ``KEY=LOW:HIGH`` texts (`sim.explore.space`); None: `DEFAULT_SPACE`.
        samples: points of the Latin hypercube.
        seeds: seeds per sample (0 .. seeds − 1, the same for every sample).
        clients: market.n_clients, if given.
        weeks: steps (the horizon, weeks), if given; at least 13.
        plausible: a plausible set to draw one parameter vector per sample from; a key the
            space sets is the space's (the drawn value is dropped).
        sample_seed: seed of the hypercube and of the draws.
        jobs: samples run in parallel.
        progress: called with (runs done, runs in all) as samples finish.
        overrides: Hydra overrides of the base market.
        threshold: the least density of a box PRIM reports (`sim.explore.boxes`).
        max_boxes: at most this many successive boxes.

    Raises:
        UserError: a space or override the config refuses (nothing runs).
    """
    base = sa.base_config(overrides, clients=clients, weeks=weeks)
    dims = sp.parse_space(space or sp.DEFAULT_SPACE, base)
    conditions = sp.sample(dims, samples, sample_seed)
    drawn = _draws(plausible, samples, sample_seed, sp.set_keys(dims, base), base)
    configs = [
        sp.configure(base, dims, row, drawn.iloc[i].to_dict() if len(drawn.columns) else None)
        for i, row in enumerate(conditions.to_dict("records"))
    ]
    seed_list = list(range(seeds))
    gaps = _run(configs, seed_list, jobs=jobs, progress=progress)
    design = pd.concat([conditions, drawn], axis=1)
    table = _samples_table(design, seed_list, gaps)
    points = _points_table(design, gaps)
    x = points[list(design.columns)]
    spans = {d.key: (d.low, d.high) for d in dims}
    found = prim_boxes.outcome_boxes(x, points["pays"].to_numpy(), threshold=threshold,
                                  max_boxes=max_boxes, spans=spans)  # fmt: skip
    settings = {
        "space": {d.key: [d.low, d.high] for d in dims},
        "integer": [d.key for d in dims if d.integer],
        "samples": samples, "seeds": seeds, "sample_seed": sample_seed,
        "clients": int(base.market.n_clients), "weeks": int(base.steps),
        "overrides": [*sa.STUDY_BASE, *overrides],
        "plausible": None if plausible is None else plausible.meta.get("method", "given"),
        "threshold": threshold, "max_boxes": max_boxes,
        "metric": f"{METRIC} {A} − {B}",
    }  # fmt: skip
    return Map(table, points, found, list(conditions.columns), list(drawn.columns), settings)


def _draws(plausible, n: int, seed: int, space_keys: set[str], base: DictConfig) -> pd.DataFrame:
    """One plausible vector per sample (a column per key the space does not set)."""
    if plausible is None:
        return pd.DataFrame(index=range(n))
    vectors = pd.DataFrame(plausible.draw(n, seed))
    keep = [k for k in vectors.columns if k not in space_keys]
    integer = [k for k in keep if isinstance(OmegaConf.select(base, k, default=None), int)]
    return vectors[keep].astype(dict.fromkeys(keep, "float64")).round(dict.fromkeys(integer, 0))


def _run(configs, seeds, *, jobs, progress) -> np.ndarray:
    """The gap of every sample and seed: shape (samples, seeds)."""
    gaps = np.full((len(configs), len(seeds)), np.nan)
    tasks = [delayed(_sample_gaps)(i, cfg, seeds) for i, cfg in enumerate(configs)]
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)
    for done, (i, values) in enumerate(results, start=1):
        gaps[i] = values
        if progress is not None:
            progress(done * len(seeds), len(configs) * len(seeds))
    return gaps


def _sample_gaps(i: int, cfg: DictConfig, seeds: list[int]) -> tuple[int, list[float]]:
    """Run one sample's seeds (batched while the clients fit) and return their gaps."""
    size = max(1, min(len(seeds), BATCH_CLIENTS // cfg.market.n_clients))
    if cfg.engine != "vectorized":
        size = 1
    gaps = []
    for start in range(0, len(seeds), size):
        group = seeds[start : start + size]
        if len(group) == 1:
            one = cfg.copy()
            one.seed = group[0]
            recorders = [simulate(one, accounts=False)[1]]  # its pairs are not read
        else:
            recorders = simulate_batch(cfg, group, accounts=False)[1]
        gaps += [gap(recorder.steps_frame()) for recorder in recorders]
    return i, gaps


def gap(steps: pd.DataFrame) -> float:
    """A run's paired profit gap: `METRIC` of A minus that of B in its summary."""
    policies = summarize(steps)["policies"]
    return float(policies[A][METRIC] - policies[B][METRIC])


def _samples_table(design: pd.DataFrame, seeds: list[int], gaps: np.ndarray) -> pd.DataFrame:
    n, k = gaps.shape
    index = pd.DataFrame({"sample": np.repeat(np.arange(n), k), "seed": np.tile(seeds, n)})
    rows = design.iloc[index["sample"]].reset_index(drop=True)
    table = pd.concat([index, rows], axis=1).assign(gap=gaps.ravel())
    return table.astype({"sample": "int64", "seed": "int64", "gap": "float64"})


def _points_table(design: pd.DataFrame, gaps: np.ndarray) -> pd.DataFrame:
    sd = [statistics.stdev(g) if len(g) > 1 else np.nan for g in gaps]
    points = pd.DataFrame({"sample": np.arange(len(gaps), dtype="int64")})
    points = pd.concat([points, design.reset_index(drop=True)], axis=1)
    mean = gaps.mean(axis=1)
    return points.assign(
        seeds=np.int64(gaps.shape[1]), gap_mean=mean, gap_sd=np.asarray(sd, dtype=float),
        share_positive=(gaps > 0).mean(axis=1), pays=mean > 0,
    ).astype({"seeds": "int64", "pays": "bool"})  # fmt: skip
