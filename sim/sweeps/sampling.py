"""Sampled designs: design points drawn over ranges, beside (or instead of) a grid.

An experiment's ``hydra.sweeper.sample`` (read by the designed sweeper,
``hydra_plugins.clientsim``, and by `sim.sweeps.experiment.design`, so both form the same
points) asks for `n` points over named ranges, as NetLogo's BehaviorSpace, EMA workbench and
SALib offer::

    hydra:
      sweeper:
        sample:
          method: lhs          # lhs: a Latin hypercube (scipy.stats.qmc); random: uniform
          n: 40                # points
          seed: 0              # the same seed, the same points
          ranges:              # key: [low, high]
            market.demand_supply_ratio: [0.5, 2.0]
            market.policy_mix.fit_filter: [1, 9]
          integer: [market.policy_mix.fit_filter]   # whole numbers, each equally likely

Each sampled point is a list of ``key=value`` overrides, crossed with the grid's points
(``hydra.sweeper.params``); its values are recorded in the sweep's tables like any swept
key's. Values keep six significant digits, so that a point reads as it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.config.schema import ConfigError

METHODS = ("lhs", "random")
WHERE = "hydra.sweeper.sample"


def _plain(sample) -> dict[str, Any]:
    """`sample` (a DictConfig or a dict) as a plain dict, its keys checked."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(sample) if OmegaConf.is_config(sample) else dict(sample)
    allowed = {"method", "n", "seed", "ranges", "integer"}
    for key in plain:
        if key not in allowed:
            raise ConfigError(f"{WHERE}.{key}", plain[key], f"allowed keys: {', '.join(allowed)}")
    return plain


def _ranges(plain: dict) -> dict[str, tuple[float, float]]:
    ranges = plain.get("ranges")
    if not isinstance(ranges, Mapping) or not ranges:
        raise ConfigError(f"{WHERE}.ranges", ranges, "give at least one key: [low, high]")
    checked = {}
    for key, span in ranges.items():
        ok = isinstance(span, list | tuple) and len(span) == 2
        numbers = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in span)
        if not numbers or not span[0] < span[1]:
            raise ConfigError(f"{WHERE}.ranges.{key}", span, "must be [low, high] with low < high")
        checked[str(key)] = (float(span[0]), float(span[1]))
    return checked


def _count(plain: dict, key: str, default: int | None, low: int) -> int:
    value = plain.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{WHERE}.{key}", value, f"must be an integer >= {low}")
    return value


def unit_sample(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """`n` points in the unit cube of `d` dimensions: a Latin hypercube or uniform draws."""
    if method == "lhs":
        from scipy.stats import qmc  # about 0.4 s to import: only for a sampled design

        return qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(n)
    return np.random.default_rng(seed).random((n, d))


def sample_overrides(sample) -> list[list[str]]:
    """The sampled design points of `sample` (``hydra.sweeper.sample``): ``key=value`` lists.

    None gives one empty point (a grid alone). Raises ConfigError (one line) naming a wrong
    method, count, seed, range or integer key.
    """
    if sample is None:
        return [[]]
    plain = _plain(sample)
    method = plain.get("method", "lhs")
    if method not in METHODS:
        raise ConfigError(f"{WHERE}.method", method, f"allowed: {', '.join(METHODS)}")
    n = _count(plain, "n", None, 1)
    seed = _count(plain, "seed", 0, 0)
    ranges = _ranges(plain)
    integer = list(plain.get("integer") or [])
    for key in integer:
        if key not in ranges:
            raise ConfigError(f"{WHERE}.integer", key, f"not a key of ranges: {', '.join(ranges)}")
    unit = unit_sample(method, n, len(ranges), seed)
    columns = [_scaled(unit[:, i], *span, key in integer) for i, (key, span) in
               enumerate(ranges.items())]  # fmt: skip
    return [[f"{key}={value}" for key, value in zip(ranges, row, strict=True)]
            for row in zip(*columns, strict=True)]  # fmt: skip


def _scaled(unit: np.ndarray, low: float, high: float, integer: bool) -> list[str]:
    """Unit draws as values of [low, high]: each integer of the range equally likely."""
    if integer:
        count = int(np.floor(high)) - int(np.ceil(low)) + 1
        return [str(int(np.ceil(low)) + min(int(u * count), count - 1)) for u in unit]
    return [f"{low + u * (high - low):.6g}" for u in unit]
