"""Emulators and implausibility: what history matching (`sim.validation.history`) rules with.

A Gaussian-process emulator of one fact (`fit_emulator`: scikit-learn, inputs scaled to
[0, 1], an ARD Matérn 5/2 kernel plus a white-noise kernel whose level is the seed-to-seed
variance, outputs standardised) predicts the fact's mean over seeds at any point, with its
uncertainty. A candidate's implausibility for a fact (`implausibility`) is how far the
emulator's mean lies outside the target range, over sqrt(emulator variance + seed variance);
`screen` rules out the candidates whose largest implausibility exceeds `CUTOFF` (3,
Pukelsheim's three-sigma rule). On simulated runs, `excesses` measures each fact outside its
range in seed s.d., and a run is kept within `KEEP` (2) of every range.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.validation.facts import Target

CUTOFF = 3.0  # implausibility beyond which a candidate is ruled out (three-sigma rule)
KEEP = 2.0  # a run is plausible if every fact is within range +- KEEP seed s.d.


# ---- implausibility ---------------------------------------------------------------------------


def excess(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """How far each value lies outside [low, high] (0 inside; a None bound is open; NaN: inf)."""
    values = np.asarray(values, dtype=float)
    below = np.zeros_like(values) if low is None else np.maximum(low - values, 0.0)
    above = np.zeros_like(values) if high is None else np.maximum(values - high, 0.0)
    return np.where(np.isnan(values), np.inf, below + above)


def implausibility(mean: np.ndarray, sd: np.ndarray, target: Target) -> np.ndarray:
    """I(x) = excess of the emulator's mean outside the target range / its total s.d.

    Args:
        mean: the emulator's mean of the fact at each candidate (the fact's units).
        sd: sqrt(emulator variance + seed variance) at each candidate (the same units).
        target: the fact's target range.
    """
    return excess(mean, target.low, target.high) / np.asarray(sd, dtype=float)


def excesses(facts: pd.DataFrame, targets: dict[str, Target], seed_sd: dict[str, float]):
    """Per run and fact: the excess outside the fact's range in seed s.d. (0 inside).

    A fact without a seed s.d. (a 0/1 fact, not emulated) must be inside its range: any
    excess is infinite, as is a fact that could not be measured (NaN).
    """
    out = {}
    for name, target in targets.items():
        gap = excess(facts[name].to_numpy(float), target.low, target.high)
        out[name] = gap / seed_sd[name] if name in seed_sd else np.where(gap > 0, np.inf, 0.0)
    return pd.DataFrame(out, index=facts.index)


def distance(facts: pd.DataFrame, targets: dict[str, Target], seed_sd: dict[str, float]):
    """Per run: the largest excess of a fact outside its range in seed s.d. (0 inside every one)."""
    return excesses(facts, targets, seed_sd).max(axis=1).to_numpy()


def binding(facts: pd.DataFrame, targets: dict[str, Target], seed_sd: dict[str, float]) -> dict:
    """Per fact: the runs outside its tolerance (range ± KEEP s.d.), and those it alone rules out.

    The facts that rule out most runs alone are the ones that bound the plausible set.
    """
    out = excesses(facts, targets, seed_sd) > KEEP
    alone = out.sum(axis=1) == 1
    return {name: {"outside": int(out[name].sum()), "alone": int((out[name] & alone).sum())}
            for name in targets}  # fmt: skip


# ---- emulators ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emulator:
    """A Gaussian process of one fact over the unit cube; outputs in the fact's units."""

    fact: str
    gp: object  # sklearn.gaussian_process.GaussianProcessRegressor, on standardised outputs
    centre: float
    scale: float

    @property
    def seed_sd(self) -> float:
        """The seed-to-seed s.d. of the fact (the white-noise kernel's), in its units."""
        return float(np.sqrt(self.gp.kernel_.k2.noise_level)) * self.scale

    def predict(self, unit: np.ndarray, chunk: int = 5000) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sqrt(emulator variance + seed variance) at points of the unit cube."""
        means, sds = [], []
        for start in range(0, len(unit), chunk):
            mean, sd = self.gp.predict(unit[start : start + chunk], return_std=True)
            means.append(mean)
            sds.append(sd)  # the white-noise kernel is in the kernel's diagonal: seed noise in
        return np.concatenate(means) * self.scale + self.centre, np.concatenate(sds) * self.scale


def fit_emulator(fact: str, unit: np.ndarray, values: np.ndarray, seed: int) -> Emulator:
    """A GP of `values` (one run each, NaNs left out) over the points `unit` in [0, 1]^d.

    Kernel: constant × Matérn 5/2 with one length scale per parameter (ARD: a long scale says
    the fact ignores that parameter) + white noise (the seed's variance). Outputs standardised.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    ok = ~np.isnan(values)
    x, y = unit[ok], values[ok]
    centre, scale = float(y.mean()), float(y.std()) or 1.0
    d = unit.shape[1]
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        np.full(d, 0.5), (0.05, 50.0), nu=2.5
    ) + WhiteKernel(0.1, (1e-6, 2.0))
    gp = GaussianProcessRegressor(kernel, n_restarts_optimizer=1, random_state=seed)
    with warnings.catch_warnings():  # a length scale at its bound: the fact ignores that input
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, (y - centre) / scale)
    return Emulator(fact, gp, centre, scale)


def screen(
    emulators: list[dict[str, Emulator]], targets: dict[str, Target], unit: np.ndarray
) -> np.ndarray:
    """Which points of `unit` no wave's emulators rule out (largest implausibility <= CUTOFF)."""
    alive = np.ones(len(unit), dtype=bool)
    for wave in emulators:
        for name, emulator in wave.items():
            idx = np.flatnonzero(alive)
            mean, sd = emulator.predict(unit[idx])
            alive[idx[implausibility(mean, sd, targets[name]) > CUTOFF]] = False
    return alive
