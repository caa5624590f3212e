"""Sensitivity of the paired profit gap fit_filter − serve_all: Morris screening, Sobol indices.

    clientsim-sensitivity morris --trajectories 10 --seeds 2    # every enabled parameter
    clientsim-sensitivity sobol --samples 64                    # the top three by mu*

The output is the **paired profit gap**: the mean cumulative profit per fit_filter business
minus that per serve_all business of the same market run, at week 13 and at the horizon,
averaged over `--seeds` seeds per sample. Every sample runs the same seeds (common random
numbers), so a difference between samples is the parameters', not the seeds'. The chain is
SALib's: a problem (`problem`), a sample (`morris_x`, `sobol_x`), runs in memory (`evaluate`,
joblib over samples and seeds), an analysis (`morris_table`, `sobol_table`).

The parameters are declared once, in `sim/validation/sensitivity.yaml`: a name, the config key a
sample sets, its bounds and how a sampled value maps to config overrides (`overrides_of`). The study
starts from the model's defaults with `market/policy_mix=half_half` (five fit_filter and five
serve_all businesses: the fit_filter share's midpoint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from sim.config.checks import validate
from sim.config.compose import compose_valid
from sim.config.schema import ConfigError
from sim.runs.run import simulate
from sim.runs.summary import SHORT_RUN_WEEK, cumulative_profit

A, B = "fit_filter", "serve_all"  # the gap is A − B, paired within a run
#: The outputs: column name -> what it is, in currency units.
OUTPUTS = {
    "week_13": f"paired profit gap {A} − {B} at week {SHORT_RUN_WEEK}",
    "horizon": f"paired profit gap {A} − {B} at the horizon",
}
#: What the study changes in the model's defaults before any sample (see the module's doc).
STUDY_BASE = ("market/policy_mix=half_half",)
#: SALib's Sobol analysis seeds its bootstrap only `if seed:`, so the seed is never 0.
SAMPLE_SEED = 1
MORRIS_COLUMNS = {
    "output": "string", "parameter": "string", "mu": "float64", "mu_star": "float64",
    "sigma": "float64", "mu_star_conf": "float64", "rank": "int64",
}  # fmt: skip
SOBOL_COLUMNS = {
    "output": "string", "parameter": "string", "S1": "float64", "S1_conf": "float64",
    "ST": "float64", "ST_conf": "float64",
}  # fmt: skip


@dataclass(frozen=True)
class Parameter:
    """A varied parameter: the key it sets, its bounds, how a value maps to overrides."""

    name: str
    key: str
    bounds: tuple[float, float]
    map: str = "value"
    enabled: bool = True
    note: str = ""

    def overrides(self, x: float, base: DictConfig) -> dict[str, Any]:
        """The config overrides (key -> value) of the sampled value `x` on `base`."""
        return MAPS[self.map](self, x, base)


def _value(p: Parameter, x: float, base: DictConfig) -> dict[str, Any]:
    current = OmegaConf.select(base, p.key)
    integer = isinstance(current, int) and not isinstance(current, bool)
    return {p.key: math.floor(x + 0.5) if integer else float(x)}


def _mix_share(p: Parameter, x: float, base: DictConfig) -> dict[str, Any]:
    """fit_filter = round(x n) of the n fit_filter + serve_all businesses, in [1, n − 1]."""
    mix = base.market.policy_mix
    n = mix.get(A, 0) + mix.get(B, 0)
    if n < 2:
        raise ConfigError("market.policy_mix", dict(mix), f"{p.name} needs {A} + {B} >= 2")
    k = min(max(math.floor(x * n + 0.5), 1), n - 1)
    return {f"market.policy_mix.{A}": k, f"market.policy_mix.{B}": n - k}


def _segment_share(p: Parameter, x: float, base: DictConfig) -> dict[str, Any]:
    """The segment's share x; the others scaled by (1 − x) / their sum: the total stays 1."""
    segment = p.key.split(".")[-2]  # clients.segments.<segment>.share
    others = {n: s.share for n, s in base.clients.segments.items() if n != segment}
    rest = math.fsum(others.values())
    if rest <= 0:
        raise ConfigError("clients.segments", list(others), f"{p.name} needs other segments")
    scaled = {f"clients.segments.{n}.share": s * (1 - x) / rest for n, s in others.items()}
    return {p.key: float(x), **scaled}


MAPS = {"value": _value, "mix_share": _mix_share, "segment_share": _segment_share}


def load_parameters() -> tuple[Parameter, ...]:
    """The declared parameters (`sim/validation/sensitivity.yaml`), in their declared order."""
    text = files("sim.validation").joinpath("sensitivity.yaml").read_text()
    table = OmegaConf.to_container(OmegaConf.create(text))
    return tuple(
        Parameter(
            name,
            e["key"],
            tuple(e["bounds"]),
            e.get("map", "value"),
            e.get("enabled", True),
            e.get("note", ""),
        )  # fmt: skip
        for name, e in table.items()
    )


PARAMETERS = load_parameters()


def select(names: Sequence[str] | None, base: DictConfig) -> tuple[list[Parameter], list[str]]:
    """The parameters to vary, and a line for each declared one that is skipped.

    Without `names`, every enabled parameter; a disabled one named in `names` is tried. A
    parameter whose key is absent from the composed `base` is skipped (e.g. a mechanic that
    is not in the model yet).
    """
    by_name = {p.name: p for p in PARAMETERS}
    chosen = [by_name[n] for n in names] if names else [p for p in PARAMETERS if p.enabled]
    disabled = [] if names else [p for p in PARAMETERS if not p.enabled]
    skipped = [f"{p.name} (disabled: {p.note})" for p in disabled]
    kept = []
    for p in chosen:
        if OmegaConf.select(base, p.key, default=None) is None:
            skipped.append(f"{p.name} (no key {p.key} in the composed config)")
        else:
            kept.append(p)
    return kept, skipped


def base_config(
    overrides: Sequence[str] = (), *, clients: int | None = None, weeks: int | None = None
) -> DictConfig:
    """The study's base market: STUDY_BASE, then `overrides`, composed, validated, resolved.

    Args:
        overrides: Hydra overrides of the base market (a key they set wins over STUDY_BASE).
        clients: market.n_clients, if given.
        weeks: steps, if given; at least SHORT_RUN_WEEK (the gap is read at that week).

    Raises:
        ConfigError: an override that does not compose, a value not allowed, too few weeks.
    """
    given = {o.partition("=")[0].lstrip("+~") for o in overrides}
    study = [o for o in STUDY_BASE if o.partition("=")[0] not in given]
    flags = [f"market.n_clients={clients}"] if clients else []
    flags += [f"steps={weeks}"] if weeks else []
    cfg = compose_valid([*study, "progress=false", *overrides, *flags])
    OmegaConf.resolve(cfg)
    if cfg.steps < SHORT_RUN_WEEK:
        raise ConfigError("steps", cfg.steps, f"must be at least {SHORT_RUN_WEEK} (the gap is "
                          f"read at week {SHORT_RUN_WEEK})")  # fmt: skip
    return cfg


def problem(params: Sequence[Parameter]) -> dict:
    """SALib's problem description of `params`."""
    return {
        "num_vars": len(params),
        "names": [p.name for p in params],
        "bounds": [list(p.bounds) for p in params],
    }


def overrides_of(params: Sequence[Parameter], row, base: DictConfig) -> dict[str, Any]:
    """The overrides (key -> value) of one sample: `row[i]` is the value of `params[i]`."""
    out: dict[str, Any] = {}
    for p, x in zip(params, row, strict=True):
        out |= p.overrides(float(x), base)
    return out


def sample_config(base: DictConfig, params: Sequence[Parameter], row) -> DictConfig:
    """The validated config of one sample: `base` with the sample's overrides applied.

    Raises:
        ConfigError: a value the schema refuses, or a mix without both compared policies.
    """
    cfg = base.copy()
    for key, value in overrides_of(params, row, base).items():
        OmegaConf.update(cfg, key, value, merge=False)
    validate(cfg)
    mix = cfg.market.policy_mix
    for policy in (A, B):
        if mix.get(policy, 0) < 1:
            raise ConfigError(f"market.policy_mix.{policy}", mix.get(policy, 0),
                              f"the gap {A} − {B} needs at least one of each")  # fmt: skip
    return cfg


def paired_gap(steps: pd.DataFrame) -> dict[str, float]:
    """The paired profit gap A − B of one run's steps frame, at week 13 and at the horizon."""
    cum = cumulative_profit(steps)
    gap = cum[A] - cum[B]
    return {"week_13": float(gap.iloc[SHORT_RUN_WEEK - 1]), "horizon": float(gap.iloc[-1])}


def run_gap(cfg: DictConfig, seed: int) -> dict[str, float]:
    """Run `cfg` with `seed` in memory and return its paired gap."""
    run_cfg = cfg.copy()
    run_cfg.seed = seed
    _, recorder = simulate(run_cfg)
    return paired_gap(recorder.steps_frame())


def _task(i: int, k: int, cfg: DictConfig, seed: int) -> tuple[int, int, list[float]]:
    gap = run_gap(cfg, seed)
    return i, k, [gap[name] for name in OUTPUTS]


def evaluate(
    configs: Sequence[DictConfig], seeds: Sequence[int], *, jobs: int = 1, progress=None
) -> np.ndarray:
    """The outputs of every sample and seed: shape (samples, seeds, len(OUTPUTS)).

    Runs every (sample, seed) pair, `jobs` at a time (joblib); `progress(done, total)` is
    called as each run finishes.
    """
    y = np.full((len(configs), len(seeds), len(OUTPUTS)), np.nan)
    tasks = [delayed(_task)(i, k, c, s) for i, c in enumerate(configs) for k, s in enumerate(seeds)]
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)
    for done, (i, k, values) in enumerate(results, start=1):
        y[i, k] = values
        if progress is not None:
            progress(done, len(tasks))
    return y


def morris_x(params: Sequence[Parameter], *, trajectories: int, levels: int) -> np.ndarray:
    """Morris's trajectories: trajectories × (parameters + 1) samples."""
    return morris_sample.sample(problem(params), trajectories, num_levels=levels, seed=SAMPLE_SEED)


def sobol_x(params: Sequence[Parameter], *, samples: int) -> np.ndarray:
    """Saltelli's sample without second order: samples × (parameters + 2) rows."""
    return sobol_sample.sample(problem(params), samples, calc_second_order=False, seed=SAMPLE_SEED)


def morris_table(params, x: np.ndarray, y: np.ndarray, *, levels: int) -> pd.DataFrame:
    """mu, mu*, sigma and mu*'s 95% half-width per output and parameter; rank 1 = largest mu*.

    SALib divides each elementary effect by the step in the unit cube, so mu* is the change
    of the gap per move across a parameter's whole range, in currency units.
    """
    frames = []
    for j, output in enumerate(OUTPUTS):
        res = morris_analyze.analyze(
            problem(params), x, y[:, j], num_levels=levels, num_resamples=1000, seed=SAMPLE_SEED
        )
        frame = res.to_df().reset_index(names="parameter").assign(output=output)
        frame["rank"] = frame["mu_star"].rank(ascending=False, method="first")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)[list(MORRIS_COLUMNS)].astype(MORRIS_COLUMNS)
    return table.sort_values(["output", "rank"], key=_output_order, ignore_index=True)


def sobol_table(params, y: np.ndarray) -> pd.DataFrame:
    """First-order and total Sobol indices with their 95% half-widths, per output."""
    frames = []
    for j, output in enumerate(OUTPUTS):
        res = sobol_analyze.analyze(problem(params), y[:, j], calc_second_order=False,
                                    num_resamples=1000, seed=SAMPLE_SEED)  # fmt: skip
        first, total = res.to_df()
        frames.append(total.join(first).reset_index(names="parameter").assign(output=output))
    return pd.concat(frames, ignore_index=True)[list(SOBOL_COLUMNS)].astype(SOBOL_COLUMNS)


def _output_order(column: pd.Series) -> pd.Series:
    order = {name: i for i, name in enumerate(OUTPUTS)}
    return column.map(order) if column.name == "output" else column


def top(morris: pd.DataFrame, n: int = 3, *, by: str = "horizon") -> list[str]:
    """The `n` parameters with the largest mu* for output `by`."""
    return morris[morris["output"] == by].sort_values("rank")["parameter"].head(n).tolist()


def samples_frame(params, x: np.ndarray, y: np.ndarray, base: DictConfig) -> pd.DataFrame:
    """One row per sample: its parameter values, the overrides they map to, its outputs.

    `y` is `evaluate`'s (samples, seeds, outputs): each output's mean over the seeds, and its
    s.d. over them (NaN with one seed), which measures the noise the seeds leave.
    """
    frame = pd.DataFrame(x, columns=[p.name for p in params]).astype("float64")
    frame.insert(0, "sample", np.arange(len(x), dtype=np.int64))
    lines = [" ".join(f"{k}={v}" for k, v in overrides_of(params, r, base).items()) for r in x]
    frame["overrides"] = pd.array(lines, dtype="string")
    sd = y.std(axis=1, ddof=1) if y.shape[1] > 1 else np.full(y[:, 0].shape, np.nan)
    for j, name in enumerate(OUTPUTS):
        frame[f"gap_{name}"] = y[:, :, j].mean(axis=1)
        frame[f"gap_{name}_sd"] = sd[:, j]
    return frame
