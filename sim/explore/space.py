"""The space a map samples: market conditions as ``KEY=LOW:HIGH``, each a config key.

A dimension sets one config key. How a sampled value becomes config overrides is declared
once, in `sim/validation/sensitivity.yaml` (`sim.validation.sensitivity.Parameter`): a key
declared there keeps its map, so ``clients.segments.difficult.share`` rescales the other
segments' shares to keep the total 1, and ``market.policy_mix.fit_filter`` (an integer: the
number of fit_filter businesses among the ten of the ``half_half`` mix) leaves serve_all the
rest. Any other key is set as it is. An integer key is sampled uniformly over its integers:
a value drawn in [LOW - 0.5, HIGH + 0.5) is rounded, so each integer has the same mass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from sim.config.checks import validate
from sim.errors import UserError
from sim.validation import sensitivity as sa
from sim.validation.calibrate import latin_hypercube, parse_parameter

#: The space without --space: demand/supply, difficult clients, word of mouth, the policy mix.
DEFAULT_SPACE = (
    "market.demand_supply_ratio=0.5:2.0",
    "clients.segments.difficult.share=0.0:0.3",
    "clients.wom.p_positive=0.1:0.4",
    "market.policy_mix.fit_filter=1:9",
)


@dataclass(frozen=True)
class Dimension:
    """One sampled condition: the config key it sets, its bounds, whether it is an integer."""

    key: str
    low: float
    high: float
    integer: bool
    parameter: sa.Parameter

    def value(self, unit: float) -> float | int:
        """The condition of a point `unit` in [0, 1) of the dimension."""
        if not self.integer:
            return float(self.low + unit * (self.high - self.low))
        drawn = self.low - 0.5 + unit * (self.high - self.low + 1)
        return int(min(max(math.floor(drawn + 0.5), self.low), self.high))

    def mapped(self, value: float, base: DictConfig) -> float:
        """The value handed to the declared map: a count of fit_filter as its share."""
        if self.parameter.map != "mix_share":
            return float(value)
        mix = base.market.policy_mix
        return value / (mix.get(sa.A, 0) + mix.get(sa.B, 0))


def parse_space(texts: Sequence[str], base: DictConfig) -> list[Dimension]:
    """The dimensions of ``KEY=LOW:HIGH`` texts on the composed `base` config.

    Raises:
        UserError: a text not of that form, a key twice, a key not in the config, LOW >= HIGH,
            or an end the config refuses (checked by building the configs of both corners).
    """
    declared = {p.key: p for p in sa.PARAMETERS}
    dims: list[Dimension] = []
    for text in texts:
        parsed = parse_parameter(text)
        if parsed is None:
            raise UserError(f"--space {text!r}: expected KEY=LOW:HIGH, e.g. {DEFAULT_SPACE[0]} "
                            "(an override goes before --space or after --)")  # fmt: skip
        key, low, high = parsed
        current = OmegaConf.select(base, key, default=None)
        if current is None or isinstance(current, DictConfig | bool):
            raise UserError(f"--space {text}: {key} is not a number in the config")
        if key in (d.key for d in dims):
            raise UserError(f"--space {text}: {key} is given twice")
        integer = isinstance(current, int)
        if integer and not (low.is_integer() and high.is_integer()):
            raise UserError(f"--space {text}: {key} is an integer; give integer ends")
        parameter = declared.get(key, sa.Parameter(key, key, (low, high)))
        dims.append(Dimension(key, low, high, integer, parameter))
    for corner in (0.0, 1.0 - 1e-12):
        configure(base, dims, {d.key: d.value(corner) for d in dims})
    return dims


def sample(dims: Sequence[Dimension], n: int, seed: int) -> pd.DataFrame:
    """`n` conditions of a Latin hypercube over `dims` (one row each, a column per key)."""
    unit = latin_hypercube({d.key: (0.0, 1.0) for d in dims}, n, seed)
    return pd.DataFrame({d.key: [d.value(u) for u in unit[d.key]] for d in dims}).astype(
        {d.key: "int64" if d.integer else "float64" for d in dims}
    )


def set_keys(dims: Sequence[Dimension], base: DictConfig) -> set[str]:
    """Every config key the dimensions set (a segment's share sets the others' too)."""
    middle = [d.mapped(d.value(0.5), base) for d in dims]
    return set(sa.overrides_of([d.parameter for d in dims], middle, base))


def configure(
    base: DictConfig, dims: Sequence[Dimension], conditions: dict, drawn: dict | None = None
) -> DictConfig:
    """The validated config of one sample: `base`, its `conditions`, then `drawn` parameters.

    Raises:
        ConfigError: a value the schema refuses, or a mix without both compared policies.
    """
    row = [d.mapped(conditions[d.key], base) for d in dims]
    cfg = sa.sample_config(base, [d.parameter for d in dims], row)
    if drawn:
        for key, value in drawn.items():
            OmegaConf.update(cfg, key, value, merge=False)
        validate(cfg)
    return cfg
