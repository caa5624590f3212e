"""Calibration: search parameters to bring the stylised facts inside their targets.

A Latin hypercube sample (``scipy.stats.qmc.LatinHypercube``) over the parameters' ranges,
each point run over the same seeds (common random numbers, so points differ by their
parameters, not their luck), and selection: the point of least distance, the sum over the
calibrated facts of how far each fact's mean over seeds lies outside its range, in units of
the bound it misses (``sim.validation.facts.Target.distance``). The current defaults are
measured the same way first. Nothing in ``configs/`` changes: the proposal is a YAML of
overrides with each target's value and distance before and after, for a person to judge
(``clientsim-calibrate``: `sim.cli.calibrate`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf
from scipy.stats import qmc

from sim.config.compose import compose_valid
from sim.errors import UserError
from sim.runs.owned import record_outputs
from sim.validation.facts import Target, calibration_parameters, load_targets
from sim.validation.measure import configure, measure


def parse_parameter(text: str) -> tuple[str, float, float] | None:
    """``key=low:high`` as (key, low, high); None if `text` is not of that form."""
    key, sep, span = text.partition("=")
    low, colon, high = span.partition(":")
    if not sep or not colon:
        return None
    try:
        low_value, high_value = float(low), float(high)
    except ValueError:
        return None
    if not low_value < high_value:
        raise UserError(f"{text}: the low end must be below the high end")
    return key, low_value, high_value


def latin_hypercube(space: dict[str, tuple[float, float]], n: int, seed: int) -> pd.DataFrame:
    """`n` points of a Latin hypercube over `space` (key -> (low, high)), one row each."""
    unit = qmc.LatinHypercube(d=len(space), seed=seed).random(n)
    lows, highs = zip(*space.values(), strict=True)
    return pd.DataFrame(qmc.scale(unit, lows, highs), columns=list(space))


def distances(values: pd.DataFrame, targets: dict[str, Target]) -> pd.DataFrame:
    """Per variant and fact: the mean over seeds and its distance to the target."""
    means = values.groupby(["variant", "fact"], sort=False)["value"].mean().reset_index()
    pairs = zip(means["fact"], means["value"], strict=True)
    means["distance"] = [targets[fact].distance(value) for fact, value in pairs]
    return means


def as_variant(point: pd.Series, integer: set[str]) -> dict:
    """A sample as config values (the keys in `integer` rounded to int)."""
    return {k: int(round(v)) if k in integer else float(v) for k, v in point.items()}


def search_space(overrides: list[str], defaults) -> dict[str, tuple[float, float]]:
    """The search space from the overrides (else the targets file's), its ends checked."""
    given = {p[0]: p[1:] for p in map(parse_parameter, overrides) if p is not None}
    space = given or {k: (lo, hi) for k, (lo, hi, _) in calibration_parameters().items()}
    for end in (0, 1):
        configure(defaults, {k: span[end] for k, span in space.items()})
    return space


def calibrate(
    overrides: list[str],
    *,
    samples: int,
    seeds: int,
    clients: int,
    weeks: int,
    jobs: int = -1,
    sample_seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Measure the defaults and every sample; return the proposal (a plain dict).

    Args:
        overrides: `KEY=LOW:HIGH` to search (default: the targets file's set) and
            `KEY=VALUE` overrides that hold for every run.
        samples: Latin hypercube points.
        seeds: seeds 0..seeds-1 of every point (the same for each: common random numbers).
        clients: market.n_clients of every run.
        weeks: steps of every run.
        jobs: runs in parallel (joblib; -1: every core).
        sample_seed: the seed of the hypercube.
        progress: called with (runs done, runs in all) as each run finishes.

    Raises:
        UserError: a search range or an override that is not allowed (a ConfigError).
    """
    targets = {k: t for k, t in load_targets().items() if t.calibrate}
    base = [o for o in overrides if parse_parameter(o) is None]
    size = [f"market.n_clients={clients}", f"steps={weeks}"]
    defaults = compose_valid([*base, *size])
    space = search_space(overrides, defaults)
    integer = {k for k in space if isinstance(OmegaConf.select(defaults, k), int)}
    points = latin_hypercube(space, samples, sample_seed)
    points[list(integer)] = points[list(integer)].round()
    variants = [{}, *(as_variant(row, integer) for _, row in points.iterrows())]
    values, _ = measure(
        targets, overrides=base, seeds=range(seeds), clients=clients, weeks=weeks, jobs=jobs,
        variants=variants, progress=progress,
    )  # fmt: skip
    table = distances(values, targets)
    total = table.groupby("variant")["distance"].sum()
    best = int(total.idxmin())  # 0: no sample beats the defaults
    chosen = points.loc[best - 1] if best else {k: OmegaConf.select(defaults, k) for k in space}
    before, after = (table[table["variant"] == v].set_index("fact") for v in (0, best))
    return {
        "reason": f"least total distance to the calibrated targets of {samples} Latin "
        f"hypercube samples, {clients} clients x {weeks} weeks, seeds 0-"
        f"{seeds - 1}; check it at full size (clientsim-facts) before adopting it"
        + ("" if best else "; no sample beat the defaults, which are kept"),
        "proposal": {k: _plain(chosen[k]) for k in space},
        "defaults": {k: _plain(OmegaConf.select(defaults, k)) for k in space},
        "distance": {"before": float(total[0]), "after": float(total[best])},
        "targets": {
            name: {
                "range": t.range_text(), "before": _plain(before.loc[name, "value"]),
                "after": _plain(after.loc[name, "value"]),
                "distance_before": float(before.loc[name, "distance"]),
                "distance_after": float(after.loc[name, "distance"]),
            }
            for name, t in targets.items()
        },  # fmt: skip
        "search": {k: list(span) for k, span in space.items()},
        "settings": {"samples": samples, "seeds": seeds, "clients": clients, "weeks": weeks,
                     "sample_seed": sample_seed, "overrides": base},
        "samples": [{**{k: _plain(v) for k, v in row.items()}, "distance": float(total[i + 1])}
                    for i, row in points.iterrows()],
    }  # fmt: skip


def _plain(x):
    x = x.item() if isinstance(x, np.generic) else x
    return None if isinstance(x, float) and np.isnan(x) else x


def report(proposal: dict) -> str:
    """The before/after table of a proposal, and its overrides."""
    lines = [f"{'target':<26} {'range':>10} {'before':>9} {'dist':>6} {'after':>9} {'dist':>6}"]
    for name, t in proposal["targets"].items():
        b, a = (f"{v:.3g}" if v is not None else "nan" for v in (t["before"], t["after"]))
        lines.append(f"{name:<26} {t['range']:>10} {b:>9} {t['distance_before']:>6.2f} "
                     f"{a:>9} {t['distance_after']:>6.2f}")  # fmt: skip
    d = proposal["distance"]
    lines.append(f"{'total':<26} {'':>10} {'':>9} {d['before']:>6.2f} {'':>9} {d['after']:>6.2f}")
    lines.append("proposal: " + " ".join(f"{k}={v:.4g}" for k, v in proposal["proposal"].items()))
    return "\n".join(lines)


def write_proposal(proposal: dict, out: Path) -> None:
    """Write the proposal as YAML to `out` (noted as clientsim's: `sim.runs.owned`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(proposal, sort_keys=False, allow_unicode=True))
    record_outputs([out])
