"""The stylised facts measured over seeds, and their table against the targets.

Every run is in memory (`sim.runs.run.simulate`), one per (market, seed), in parallel with
joblib; only the facts' values and the whale curves come back. The table says, per fact, its
mean ± s.d. over seeds, its target range, whether the mean is inside, and its source
(`clientsim-facts`; `clientsim-calibrate` measures its samples the same way).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf

from sim.analysis.markdown import markdown_table
from sim.config.checks import validate
from sim.config.compose import compose_valid, first_line
from sim.config.schema import ConfigError
from sim.runs.owned import record_outputs
from sim.runs.record import clients_frame, pairs_frame, write_json, write_parquet
from sim.runs.summary import WHALE_WHO, whale_curve
from sim.validation.demand import Purchases
from sim.validation.facts import FACTS, MARKETS, Frames, Target, derive, needed

WHALE_GRID = np.linspace(0.0, 1.0, 101)  # client shares at which whale curves are stored


def market_configs(
    overrides: list[str], *, clients: int, weeks: int, markets: Iterable[str] = MARKETS
) -> dict[str, DictConfig]:
    """The config of each market (``MARKETS``), validated; raise ConfigError on a bad one."""
    size = [f"market.n_clients={clients}", f"steps={weeks}", "progress=false"]
    base = compose_valid([*overrides, *size])
    mix = dict(base.market.policy_mix)
    return {m: configure(base, MARKETS[m](mix)) for m in markets}


def configure(cfg: DictConfig, variant: dict | None = None, seed: int | None = None) -> DictConfig:
    """A copy of `cfg` with `variant`'s keys (and the seed) set, validated (else ConfigError).

    Cheaper than composing again (a calibration has hundreds of runs); keys, not groups.
    """
    out = copy.deepcopy(cfg)
    changes = {**(variant or {}), **({} if seed is None else {"seed": seed})}
    for key, value in changes.items():
        try:
            OmegaConf.update(out, key, value, merge=False)
        except Exception as error:  # OmegaConf: an unknown key or a wrong type
            raise ConfigError(key, value, first_line(error)) from None
    validate(out)
    return out


def run_market(cfg: DictConfig, names: list[str]) -> tuple[dict, list[dict]]:
    """One run: the facts `names` it gives, and its whale curve (both counts of clients)."""
    from sim.runs.run import simulate  # in the worker: joblib imports it there

    purchases = Purchases()
    model, recorder = simulate(cfg, observe=purchases)
    frames = Frames(recorder.market_frame(), recorder.steps_frame(), clients_frame(model),
                    purchases.spend(), purchases.purchases(), pairs_frame(model))  # fmt: skip
    values = {name: FACTS[name].measure(frames) for name in names}
    whale = []
    for who in WHALE_WHO:
        curve = whale_curve(frames.clients, who=who)
        share = np.interp(WHALE_GRID, [0.0, *curve["client_share"]], [0.0, *curve["profit_share"]])
        whale += [{"who": who, "client_share": x, "profit_share": y}
                  for x, y in zip(WHALE_GRID, share, strict=True)]  # fmt: skip
    return values, whale


def measure(
    names: Iterable[str],
    *,
    overrides: list[str],
    seeds: Iterable[int],
    clients: int,
    weeks: int,
    jobs: int = -1,
    variants: list[dict] | None = None,
    own_seeds: list[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The facts `names` over seeds: (one row per variant, seed and fact; the whale curves).

    Only the markets the facts need are run. Each variant is a dict of config keys set last
    (``clientsim-calibrate``'s samples; default one variant, none). Every variant runs on
    every seed of `seeds` (common random numbers), unless `own_seeds` gives each variant its
    own one seed (its markets share it; an emulator's design points then do not share their
    luck, `sim.validation.history`), when `seeds` is ignored. All runs of all variants go to
    one pool; `progress(done, total)` is called as each run finishes.
    """
    names = list(names)
    variants = [{}] if variants is None else variants
    if own_seeds is not None and len(own_seeds) != len(variants):
        raise ValueError(f"{len(own_seeds)} own seeds for {len(variants)} variants")
    shared = list(seeds)
    seeds_of = [shared if own_seeds is None else [own_seeds[v]] for v in range(len(variants))]
    by_market = needed(names)
    markets = market_configs(overrides, clients=clients, weeks=weeks, markets=by_market)
    tasks = [(v, m, seed) for v in range(len(variants)) for m in by_market for seed in seeds_of[v]]
    calls = [
        delayed(_tagged)(v, m, seed, configure(markets[m], variants[v], seed), by_market[m])
        for v, m, seed in tasks
    ]
    measured = {(v, seed): {} for v in range(len(variants)) for seed in seeds_of[v]}
    whale = []
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(calls)
    for done, (v, market, seed, values, curve) in enumerate(results, 1):
        measured[v, seed].update(values)
        whale += [{"variant": v, "market": market, "seed": seed, **row} for row in curve]
        if progress is not None:
            progress(done, len(tasks))
    rows = [
        {"variant": v, "seed": seed, "fact": name, "value": value}
        for (v, seed), values in measured.items()
        for name, value in derive(values, names).items()
    ]
    return pd.DataFrame(rows), pd.DataFrame(whale)


def _tagged(variant: int, market: str, seed: int, cfg: DictConfig, names: list[str]):
    values, whale = run_market(cfg, names)
    return variant, market, seed, values, whale


def summary(values: pd.DataFrame, targets: dict[str, Target]) -> pd.DataFrame:
    """One row per fact: mean, s.d., min, max over seeds (NaNs left out), target, inside."""
    rows = []
    for name, group in values.groupby("fact", sort=False):
        x = group["value"].astype(float)
        target, mean = targets[name], x.mean()
        rows.append({
            "fact": name, "mean": mean, "sd": x.std(ddof=1), "min": x.min(), "max": x.max(),
            "seeds": int(x.notna().sum()), "of": len(x), "target": target.range_text(),
            "inside": target.inside(mean), "distance": target.distance(mean),
            "source": target.source, "citation": target.citation,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _number(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3g}" if abs(x) < 10 else f"{x:.0f}"


def markdown(table: pd.DataFrame, command: str) -> str:
    """The table as markdown, with the command that made it."""
    rows = [
        {
            "fact": r.fact,
            "mean ± s.d.": f"{_number(r.mean)} ± {_number(r.sd)}",
            "min–max": f"{_number(r.min)}–{_number(r.max)}",
            "seeds": f"{r.seeds}" if r.seeds == r.of else f"{r.seeds} of {r.of}",
            "target": r.target,
            "inside": "reported" if r.target == "reported" else "yes" if r.inside else "**no**",
            "distance": r.distance,
            "source": r.source,
            "citation": r.citation,
        }
        for r in table.itertuples()
    ]
    return f"Made by `{command}`.\n\n" + markdown_table(pd.DataFrame(rows), {"distance": ".2f"})


def beside(out: Path) -> list[Path]:
    """The files written beside the table `out`: per-seed values (.json), whale curves."""
    return [out.with_suffix(".json"), out.with_suffix(".whale.parquet")]


def write_facts(out: Path, text: str, values: pd.DataFrame, table: pd.DataFrame,
                whale: pd.DataFrame, command: str) -> None:  # fmt: skip
    """Write the table `text` to `out`, the per-seed values and whale curves beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    per_seed = {"command": command, "values": values.to_dict("records"),
                "summary": table.drop(columns="citation").to_dict("records")}  # fmt: skip
    values_file, whale_file = beside(out)
    write_json(values_file, _finite(per_seed))
    write_parquet(whale_file, whale)
    record_outputs([out, values_file, whale_file])


def _finite(data):
    """NaN as None, numpy scalars as Python numbers (JSON has neither)."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    if isinstance(data, np.generic):
        data = data.item()
    return None if isinstance(data, float) and math.isnan(data) else data
