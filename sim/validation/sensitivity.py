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

Some factors are binary: a structural switch (`map: switch`, docs/ODD.md §10a) applies the keys
of its option of `configs/structure/` when the sampled value is above 0.5 and nothing below; the
market's composition (`map: choice`) takes the first of its options below 0.5 and the second
above. Morris's grid and Saltelli's sample are drawn on [0, 1] as for any factor, then cut at
0.5 (the usual practice for binary factors). A sample's overrides are made in stages, each on the
config the earlier ones made (`STAGES`): the composition, then the fit_filter share of it, then
the values, then the switches, so a switch that is on wins over a factor that sets the same key.

`positive` gives the probability that the gap is positive: the share of points whose seed-mean
gap is above 0 with its Clopper–Pearson 95% interval, and the share of (point, seed) runs, over
all points and with each binary factor off and on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
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

from sim.analysis.inference import clopper_pearson
from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose_valid
from sim.config.schema import ConfigError
from sim.runs.run import simulate, simulate_batch
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
#: P(gap > 0): over all points (factor "all") or with a binary factor off or on.
POSITIVE_COLUMNS = {
    "output": "string", "factor": "string", "level": "string", "points": "int64",
    "positive": "int64", "share": "float64", "ci_low": "float64", "ci_high": "float64",
    "runs": "int64", "runs_positive": "int64", "run_share": "float64",
}  # fmt: skip
#: A binary factor is on above this value of its [0, 1] sample.
CUT = 0.5


@dataclass(frozen=True)
class Parameter:
    """A varied parameter: the key it sets, its bounds, how a value maps to overrides."""

    name: str
    key: str
    bounds: tuple[float, float]
    map: str = "value"
    enabled: bool = True
    note: str = ""
    options: tuple[str, ...] = ()

    def overrides(self, x: float, base: DictConfig) -> dict[str, Any]:
        """The config overrides (key -> value) of the sampled value `x` on `base`.

        A key with a `/` is a config group (`market/policy_mix`), its value an option of it.
        """
        return MAPS[self.map](self, x, base)

    @property
    def binary(self) -> bool:
        """Whether the factor is a switch or a choice of two options (on above `CUT`)."""
        return self.map in ("switch", "choice")


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


def structure_keys(option: str) -> dict[str, Any]:
    """The keys (dotted, -> value) that `configs/structure/<option>.yaml` sets, read from it.

    Raises:
        ConfigError: no such option, or one that only lists others (`defaults`).
    """
    path = CONFIG_DIR / "structure" / f"{option}.yaml"
    if not path.is_file():
        raise ConfigError("structure", option, f"no option {path.name} in {path.parent}")
    table = OmegaConf.to_container(OmegaConf.load(path)) or {}
    if "defaults" in table:
        raise ConfigError("structure", option, "lists other options: not a single switch")
    return dict(_leaves(table))


def _leaves(table: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _switch(p: Parameter, x: float, base: DictConfig) -> dict[str, Any]:
    """Above CUT, the keys of the structure option `p.key` (`structure/<option>`); else none."""
    return structure_keys(p.key.split("/", 1)[1]) if x > CUT else {}


def _choice(p: Parameter, x: float, base: DictConfig) -> dict[str, Any]:
    """The config group `p.key` set to `p.options[0]` at or below CUT, `p.options[1]` above."""
    return {p.key: p.options[1 if x > CUT else 0]}


def group_value(key: str, option: str) -> dict[str, Any]:
    """The contents of option `option` of the config group `key` (e.g. `market/policy_mix`)."""
    path = CONFIG_DIR / key / f"{option}.yaml"
    if not path.is_file():
        raise ConfigError(key, option, f"no option {path.name} in {path.parent}")
    return OmegaConf.to_container(OmegaConf.load(path))


def apply(cfg: DictConfig, overrides: dict[str, Any]) -> None:
    """Set `overrides` on `cfg` in order; a group key's option replaces the group's node."""
    for key, value in overrides.items():
        if "/" in key:
            OmegaConf.update(cfg, key.replace("/", "."), group_value(key, value), merge=False)
        else:
            OmegaConf.update(cfg, key, value, merge=False)


MAPS = {
    "value": _value, "mix_share": _mix_share, "segment_share": _segment_share,
    "switch": _switch, "choice": _choice,
}  # fmt: skip
#: The order in which a sample's overrides are made, each on the config the earlier ones made:
#: the composition, then the fit_filter share of it, then values, then switches (which win).
STAGES = {"choice": 0, "mix_share": 1, "value": 2, "segment_share": 2, "switch": 3}


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
            tuple(e.get("options", ())),
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
        missing = [k for k in _keys(p) if OmegaConf.select(base, k, default=None) is None]
        if missing:
            skipped.append(f"{p.name} (no key {missing[0]} in the composed config)")
        else:
            kept.append(p)
    return kept, skipped


def _keys(p: Parameter) -> list[str]:
    """The config keys `p` sets (a switch: its structure option's)."""
    if p.map == "switch":
        return list(structure_keys(p.key.split("/", 1)[1]))
    return [p.key.replace("/", ".")]


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


def _staged(params: Sequence[Parameter], row, base: DictConfig):
    """The sample's overrides, made stage by stage (`STAGES`), and the config they make."""
    if len(row) != len(params):
        raise ValueError(f"{len(row)} values for {len(params)} parameters")
    cfg, out = base.copy(), {}
    order = sorted(range(len(params)), key=lambda i: STAGES[params[i].map])
    for i in order:
        made = params[i].overrides(float(row[i]), cfg)
        apply(cfg, made)
        out |= made
    return out, cfg


def overrides_of(params: Sequence[Parameter], row, base: DictConfig) -> dict[str, Any]:
    """The overrides (key -> value) of one sample: `row[i]` is the value of `params[i]`.

    In the order of `STAGES`; a key set twice (a switch's key that a value also sets) keeps
    its first place and its last value. As Hydra overrides they compose the same config.
    """
    return _staged(params, row, base)[0]


def sample_config(base: DictConfig, params: Sequence[Parameter], row) -> DictConfig:
    """The validated config of one sample: `base` with the sample's overrides applied.

    Raises:
        ConfigError: a value the schema refuses, or a mix without both compared policies.
    """
    cfg = _staged(params, row, base)[1]
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
    _, recorder = simulate(run_cfg, accounts=False)  # its pairs are not read
    return paired_gap(recorder.steps_frame())


def run_gaps(cfg: DictConfig, seeds: Sequence[int]) -> list[dict[str, float]]:
    """The paired gap of `cfg` with each of `seeds`, as `run_gap` gives it seed by seed.

    With the vectorized engine the seeds run as one batched model (`simulate_batch`), whose
    markets are exactly the runs alone (tests/test_engines.py), in about half the time.
    """
    if cfg.engine != "vectorized" or len(seeds) == 1:
        return [run_gap(cfg, seed) for seed in seeds]
    _, recorders = simulate_batch(cfg, list(seeds), accounts=False)
    return [paired_gap(recorder.steps_frame()) for recorder in recorders]


def _task(i: int, cfg: DictConfig, seeds: Sequence[int]) -> tuple[int, list[list[float]]]:
    return i, [[gap[name] for name in OUTPUTS] for gap in run_gaps(cfg, seeds)]


def evaluate(
    configs: Sequence[DictConfig], seeds: Sequence[int], *, jobs: int = 1, progress=None
) -> np.ndarray:
    """The outputs of every sample and seed: shape (samples, seeds, len(OUTPUTS)).

    Every sample runs the same `seeds` (common random numbers: the client-side draws are
    keyed by seed, stream, week and client, `sim.model.rng`), the samples `jobs` at a time
    (joblib), the seeds of a sample as one batch (`run_gaps`); `progress(done, total)` is
    called with the runs done as each sample finishes.
    """
    y = np.full((len(configs), len(seeds), len(OUTPUTS)), np.nan)
    tasks = [delayed(_task)(i, c, list(seeds)) for i, c in enumerate(configs)]
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)
    total = len(configs) * len(seeds)
    for done, (i, values) in enumerate(results, start=1):
        y[i] = values
        if progress is not None:
            progress(done * len(seeds), total)
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


def hydra_line(key: str, value: Any) -> str:
    """`key=value` as a Hydra override (booleans lower case: `true`, `false`)."""
    return f"{key}={str(value).lower() if isinstance(value, bool) else value}"


def samples_frame(params, x: np.ndarray, y: np.ndarray, base: DictConfig) -> pd.DataFrame:
    """One row per sample: its parameter values, the overrides they map to, its outputs.

    `y` is `evaluate`'s (samples, seeds, outputs): each output's mean over the seeds, and its
    s.d. over them (NaN with one seed), which measures the noise the seeds leave.
    """
    frame = pd.DataFrame(x, columns=[p.name for p in params]).astype("float64")
    frame.insert(0, "sample", np.arange(len(x), dtype=np.int64))
    lines = [
        " ".join(hydra_line(k, v) for k, v in overrides_of(params, r, base).items()) for r in x
    ]
    frame["overrides"] = pd.array(lines, dtype="string")
    sd = y.std(axis=1, ddof=1) if y.shape[1] > 1 else np.full(y[:, 0].shape, np.nan)
    for j, name in enumerate(OUTPUTS):
        frame[f"gap_{name}"] = y[:, :, j].mean(axis=1)
        frame[f"gap_{name}_sd"] = sd[:, j]
    return frame


def positive_share(gaps: np.ndarray) -> dict[str, float | int]:
    """P(gap > 0) over points: `gaps` is (points, seeds) of one output.

    A point counts as positive when its mean over the seeds is above 0; `ci_low`, `ci_high`
    are the Clopper–Pearson 95% interval of that share (points taken as independent draws,
    which Morris's trajectories are only roughly). `run_share` is the share of the single
    (point, seed) runs whose gap is above 0.

    Raises:
        ValueError: no point.
    """
    gaps = np.asarray(gaps, dtype=float)
    if gaps.ndim != 2 or len(gaps) == 0:
        raise ValueError(f"gaps must be (points, seeds) with a point, not {gaps.shape}")
    n, k = len(gaps), int((gaps.mean(axis=1) > 0).sum())
    low, high = clopper_pearson(k, n)
    runs, runs_positive = gaps.size, int((gaps > 0).sum())
    return {
        "points": n, "positive": k, "share": k / n, "ci_low": low,
        "ci_high": high, "runs": runs, "runs_positive": runs_positive,
        "run_share": runs_positive / runs,
    }  # fmt: skip


def positive(params: Sequence[Parameter], x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """P(gap > 0) per output: over every point, then with each binary factor off and on.

    `x` is the sample (points, parameters) on its bounds, `y` `evaluate`'s (points, seeds,
    outputs). A level with no point has no row.
    """
    rows = []
    for j, output in enumerate(OUTPUTS):
        rows.append({"output": output, "factor": "all", "level": "all",
                     **positive_share(y[:, :, j])})  # fmt: skip
        for i, p in enumerate(params):
            if not p.binary:
                continue
            on = x[:, i] > CUT
            for level, where in (("off", ~on), ("on", on)):
                if where.any():
                    rows.append({"output": output, "factor": p.name, "level": level,
                                 **positive_share(y[where, :, j])})  # fmt: skip
    return pd.DataFrame(rows)[list(POSITIVE_COLUMNS)].astype(POSITIVE_COLUMNS)
