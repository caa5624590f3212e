"""History matching: the set of parameter vectors whose facts are consistent with the targets.

Bayesian history matching with emulators (Vernon, Goldstein & Bower 2010, Galaxy formation: a
Bayesian uncertainty analysis, Bayesian Analysis 5(4); Andrianakis et al. 2015, Bayesian
history matching of complex infectious disease models using emulation, PLoS Comp Biol 11(1)).
It rules out the parameters that cannot give the targets, in waves, instead of keeping one
best point:

1. Wave 1 runs a Latin hypercube of the search space (`calibrate.latin_hypercube`), each
   point at its own seed (design points must not share their luck, or an emulator would take
   one seed's quirk for a parameter's effect).
2. One Gaussian-process emulator per continuous calibrated fact (`fit_emulator`: inputs
   scaled to [0, 1], an ARD Matérn 5/2 kernel plus a white-noise kernel whose level is the
   seed-to-seed variance, outputs standardised) predicts the fact's mean over seeds at any
   point, with its uncertainty.
3. A candidate's implausibility for a fact (`implausibility`) is how far the emulator's mean
   lies outside the target range, over sqrt(emulator variance + seed variance); it is ruled
   out when its largest implausibility exceeds 3 (Pukelsheim's three-sigma rule: at least 95 %
   of any unimodal distribution lies within 3 s.d.). The range stands for the source's spread
   (and the model's discrepancy), the seed variance for the model's own noise.
4. The next wave's points are drawn from the candidates of a large Latin hypercube that no
   wave's emulators rule out; every run so far refits the emulators.

The plausible set (`sim.validation.plausible`) is then made of simulated runs, not emulator
predictions: every run of every wave whose facts all lie within range ± `keep` (2) times
that fact's seed s.d., each with weight 1/n. Runs of every wave are pooled: the runs of a wave
are uniform over the region it was drawn from, and a wave's region contains the plausible
one, so the kept runs of each wave are uniform over the plausible region, and so are they
pooled. Facts that are 0/1 (the J shape) are not emulated; they must hold in the run itself.

A run kept on one seed may owe its place to luck, and the emulators' white noise is one
average over the space (a ratio's seed noise grows with it). So the kept vectors are then
confirmed (`confirm`): rerun at a few new seeds, their facts become the means over those
runs, the seed s.d. is re-measured from these replicates, and a vector stays if every mean
lies within range ± `keep` standard errors.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from sim.config.compose import compose_valid
from sim.errors import UserError
from sim.validation.calibrate import as_variant, latin_hypercube, parse_parameter, search_space
from sim.validation.emulator import (
    CUTOFF,
    KEEP,
    Emulator,
    binding,
    distance,
    fit_emulator,
    screen,
)
from sim.validation.facts import Target, load_targets
from sim.validation.measure import measure
from sim.validation.plausible import FACT_PREFIX

METHOD = ("history matching with Gaussian-process emulators (Vernon, Goldstein & Bower 2010; "
          "Andrianakis et al. 2015)")  # fmt: skip
CANDIDATES = 50_000  # Latin hypercube candidates screened by the emulators per wave


# ---- the waves -------------------------------------------------------------------------------


def matched_targets(names: list[str] | None = None) -> dict[str, Target]:
    """The calibrated targets `names` (default: every calibrated one), in the file's order.

    Raises:
        UserError: a name that is not a calibrated fact.
    """
    calibrated = {k: t for k, t in load_targets().items() if t.calibrate}
    unknown = sorted(set(names or ()) - set(calibrated))
    if unknown:
        raise UserError(f"{unknown[0]!r} is not a calibrated fact (one of {', '.join(calibrated)})")
    return {k: t for k, t in calibrated.items() if names is None or k in names}


def _unit(points: pd.DataFrame, space: dict[str, tuple[float, float]]) -> np.ndarray:
    lows, highs = (np.array(ends) for ends in zip(*space.values(), strict=True))
    return (points[list(space)].to_numpy(float) - lows) / (highs - lows)


def _wide(values: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per variant, one column per fact."""
    return values.pivot(index="variant", columns="fact", values="value")[names]


def history_match(
    overrides: list[str],
    *,
    waves: int,
    samples: int,
    clients: int,
    weeks: int,
    jobs: int = -1,
    sample_seed: int = 0,
    candidates: int = CANDIDATES,
    facts: list[str] | None = None,
    confirm_seeds: int = 0,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    on_wave: Callable[[dict], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Run the waves; return the plausible set's table and description (`plausible.py`).

    Args:
        overrides: `KEY=LOW:HIGH` to search (default: the targets file's set) and
            `KEY=VALUE` overrides that hold for every run.
        waves: waves of runs (the first a Latin hypercube, the others drawn from what the
            emulators leave).
        samples: runs per wave (fewer if fewer candidates are left).
        clients: market.n_clients of every run.
        weeks: steps of every run.
        jobs: runs in parallel (joblib; -1: every core).
        sample_seed: the seed of every draw (hypercubes, candidates, emulator fits); the
            model's seed of the n-th run overall is n.
        candidates: Latin hypercube candidates each wave's emulators screen.
        facts: the calibrated facts to match (default: every one; a test matches fewer).
        confirm_seeds: rerun the set's vectors at this many new seeds and keep those whose
            mean facts meet the targets (`confirm`; 0: not confirmed).
        progress: given a stage ("wave 1", ..., "confirmation"), the callable its runs
            report (done, total) to.
        on_wave: called with each wave's summary once it is run and the emulators refitted.

    Raises:
        UserError: a search range or an override that is not allowed, or no candidate left.
    """
    if importlib.util.find_spec("sklearn") is None:
        raise UserError("history matching needs scikit-learn: pip install 'clientsim[explore]'")
    targets = matched_targets(facts)
    base = [o for o in overrides if parse_parameter(o) is None]
    defaults = compose_valid([*base, f"market.n_clients={clients}", f"steps={weeks}"])
    space = search_space(overrides, defaults)
    integer = {k for k in space if isinstance(OmegaConf.select(defaults, k), int)}
    rng = np.random.default_rng(sample_seed)
    points = latin_hypercube(space, samples, sample_seed)
    runs, facts, emulators, summaries, left = [], [], [], [], 1.0
    for wave in range(1, waves + 1):
        if wave > 1:
            pool = latin_hypercube(space, candidates, sample_seed + 1000 * wave)
            alive = screen(emulators, targets, _unit(pool, space))
            left = float(alive.mean())
            if not alive.any():
                raise UserError(
                    f"wave {wave}: the emulators rule out every one of {candidates} candidates; "
                    "no parameters in the space meet the targets"
                )
            chosen = rng.choice(np.flatnonzero(alive), min(samples, alive.sum()), replace=False)
            points = pool.iloc[np.sort(chosen)].reset_index(drop=True)
        points[list(integer)] = points[list(integer)].round()
        start = sum(len(p) for p in runs)
        values, _ = measure(
            targets, overrides=base, seeds=[], clients=clients, weeks=weeks, jobs=jobs,
            variants=[as_variant(row, integer) for _, row in points.iterrows()],
            own_seeds=list(range(start, start + len(points))),
            progress=None if progress is None else progress(f"wave {wave}"),
        )  # fmt: skip
        wide = _wide(values, list(targets))
        check = _emulator_check(emulators[-1], points, wide, space) if emulators else {}
        runs.append(points.assign(wave=wave, seed=range(start, start + len(points))))
        facts.append(wide.reset_index(drop=True))
        emulators.append(_fit_all(pd.concat(runs), pd.concat(facts), space, targets, sample_seed))
        summaries.append({"wave": wave, "runs": len(points), "space_left": left,
                          "emulator_check": check})  # fmt: skip
        if on_wave is not None:
            on_wave(_kept(summaries[-1], runs, facts, targets, emulators[-1]))
    last = latin_hypercube(space, candidates, sample_seed + 1000 * (waves + 1))
    final_left = float(screen(emulators, targets, _unit(last, space)).mean())
    table, meta = _result(runs, facts, emulators[-1], space, targets, summaries, final_left)
    if confirm_seeds and len(table):
        first = meta["runs"]  # the next seeds: no run of the waves shares one
        table, meta = confirm(
            table, meta, seeds=list(range(first, first + confirm_seeds)), clients=clients,
            weeks=weeks, overrides=base, jobs=jobs,
            progress=None if progress is None else progress("confirmation"),
        )  # fmt: skip
    return table, meta


def _fit_all(runs, facts, space, targets, seed) -> dict[str, Emulator]:
    unit = _unit(runs, space)
    return {name: fit_emulator(name, unit, facts[name].to_numpy(float), seed)
            for name in targets if not _binary(facts[name])}  # fmt: skip


def _binary(values: pd.Series) -> bool:
    """A 0/1 fact (or one with a single value): not emulated, checked on the runs."""
    seen = values.dropna()
    return seen.isin([0.0, 1.0]).all() or seen.nunique() < 2


def _emulator_check(emulators, points, wide, space) -> dict[str, float]:
    """Share of a wave's runs within 3 s.d. of the previous wave's emulators' predictions."""
    unit = _unit(points, space)
    check = {}
    for name, emulator in emulators.items():
        mean, sd = emulator.predict(unit)
        actual = wide[name].to_numpy(float)
        ok = ~np.isnan(actual)
        check[name] = round(float(np.mean(np.abs(actual[ok] - mean[ok]) <= 3 * sd[ok])), 3)
    return check


def _kept(summary: dict, runs, facts, targets, emulators) -> dict:
    """The wave's summary with the number of its runs that are plausible (today's s.d.)."""
    seed_sd = {name: e.seed_sd for name, e in emulators.items()}
    d = distance(facts[-1], targets, seed_sd)
    return {**summary, "kept": int((d <= KEEP).sum())}


def _result(runs, facts, emulators, space, targets, summaries, final_left):
    runs, facts = pd.concat(runs, ignore_index=True), pd.concat(facts, ignore_index=True)
    seed_sd = {name: e.seed_sd for name, e in emulators.items()}
    dist = distance(facts, targets, seed_sd)
    for s in summaries:
        s["kept"] = int((dist[runs["wave"] == s["wave"]] <= KEEP).sum())
    kept = dist <= KEEP
    table = runs.loc[kept, list(space)].reset_index(drop=True)
    table.insert(0, "vector", np.arange(len(table), dtype="int64"))
    table["distance"] = dist[kept]
    table["weight"] = 1.0 / len(table) if len(table) else []
    for name in targets:
        table[FACT_PREFIX + name] = facts.loc[kept, name].to_numpy(float)
    meta = {
        "method": METHOD,
        "parameters": {k: [float(lo), float(hi)] for k, (lo, hi) in space.items()},
        "targets": {name: _target_meta(t, seed_sd.get(name)) for name, t in targets.items()},
        "rules": {
            "cutoff": CUTOFF,
            "keep": KEEP,
            "weights": "uniform, 1/n",
            "implausibility": "max over emulated facts of excess of the emulator mean "
            "outside the range / sqrt(emulator variance + seed variance)",
            "kept": f"runs of every wave whose facts all lie within range +- {KEEP} seed "
            "s.d. (0/1 facts exactly inside)",
        },  # fmt: skip
        "waves": summaries,
        "binding": binding(facts, targets, seed_sd),
        "space_left": final_left,
        "size": len(table),
        "runs": len(runs),
    }
    return table, meta


def _target_meta(target: Target, seed_sd: float | None) -> dict:
    if seed_sd is None:
        exact = "exactly inside (a 0/1 fact, not emulated)"
        return {"range": target.range_text(), "low": target.low, "high": target.high,
                "seed_sd": None, "tolerance": exact}  # fmt: skip
    low = None if target.low is None else float(target.low - KEEP * seed_sd)
    high = None if target.high is None else float(target.high + KEEP * seed_sd)
    return {"range": target.range_text(), "low": target.low, "high": target.high,
            "seed_sd": float(seed_sd), "tolerance": [low, high]}  # fmt: skip


# ---- what the command prints -----------------------------------------------------------------


def wave_line(summary: dict) -> str:
    """One wave: its runs, the share of candidate space it was drawn from, the runs kept."""
    return (f"wave {summary['wave']}: {summary['runs']} runs, space left "
            f"{summary['space_left']:.2%}, {summary['kept']} plausible")  # fmt: skip


def report(table: pd.DataFrame, meta: dict) -> str:
    """The set's table: per fact and per parameter.

    Per fact: its range, seed s.d., min–max over the set, the runs outside its tolerance and
    those it alone rules out; per parameter: the range searched and the set's.
    """
    lines = [f"plausible set: {meta['size']} of {meta['runs']} runs; space left after the last "
             f"wave {meta['space_left']:.2%}",
             f"{'fact':<26} {'range':>9} {'seed sd':>8} {'set min':>9} {'set max':>9} "
             f"{'runs out':>8} {'alone':>6}"]  # fmt: skip
    confirmed = meta.get("confirmation")
    if confirmed is not None:
        lines.insert(
            1,
            f"confirmed at seeds {confirmed['seeds']}: {confirmed['kept']} of "
            f"{confirmed['vectors']} vectors kept (facts: their means over those seeds)",
        )
    binds = (confirmed or meta)["binding"]
    for name, t in meta["targets"].items():
        x = table[FACT_PREFIX + name]
        sd = "—" if t["seed_sd"] is None else f"{t['seed_sd']:.3g}"
        low, high = (f"{v:.3g}" if len(x) else "—" for v in (x.min(), x.max()))
        bound = binds[name]
        lines.append(f"{name:<26} {t['range']:>9} {sd:>8} {low:>9} {high:>9} "
                     f"{bound['outside']:>8} {bound['alone']:>6}")  # fmt: skip
    lines.append(f"{'parameter':<41} {'searched':>13} {'in the set':>13}")
    for key, (lo, hi) in meta["parameters"].items():
        x = table[key]
        inside = f"{x.min():.3g}–{x.max():.3g}" if len(x) else "—"
        lines.append(f"{key:<41} {f'{lo:.3g}–{hi:.3g}':>13} {inside:>13}")
    return "\n".join(lines)


# ---- confirmation on replicate seeds ------------------------------------------------------------


def confirm(
    table: pd.DataFrame,
    meta: dict,
    *,
    seeds: list[int],
    clients: int,
    weeks: int,
    overrides: list[str],
    jobs: int = -1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Rerun every vector of a set at `seeds`; keep those whose mean facts meet the targets.

    A vector enters the set on one run, which its luck may have carried inside a range (and
    the emulators' white noise is an average over the space: the seed noise of a ratio grows
    with it). Here each vector runs again at the same new seeds; its facts become their means
    over those runs alone (its first run was chosen for landing inside, so it would bias
    them), each fact's seed s.d. is re-measured as the pooled s.d. within vectors, and a
    vector is kept when every mean lies within range ± KEEP standard errors (seed s.d. /
    sqrt(len(seeds))) and every run of a 0/1 fact holds.
    """
    targets = matched_targets(list(meta["targets"]))
    params = list(meta["parameters"])
    variants = [{k: float(row[k]) for k in params} for _, row in table.iterrows()]
    values, _ = measure(
        targets, overrides=overrides, seeds=seeds, clients=clients, weeks=weeks, jobs=jobs,
        variants=variants, progress=progress,
    )  # fmt: skip
    runs = values.set_index(["variant", "seed", "fact"])["value"].unstack("fact")[list(targets)]
    means = runs.groupby(level="variant").mean()
    emulated = [n for n, t in meta["targets"].items() if t["seed_sd"] is not None]
    seed_sd = {n: float(np.sqrt(runs[n].groupby(level="variant").var().mean())) for n in emulated}
    error = {n: sd / np.sqrt(len(seeds)) for n, sd in seed_sd.items()}
    dist = distance(means, targets, error)  # a 0/1 fact's mean is 1 only if every run holds
    kept = dist <= KEEP
    out = table.iloc[np.flatnonzero(kept)][params].reset_index(drop=True)
    out.insert(0, "vector", np.arange(len(out), dtype="int64"))
    out["distance"] = dist[kept]
    out["weight"] = 1.0 / len(out) if len(out) else []
    for name in targets:
        out[FACT_PREFIX + name] = means.loc[kept, name].to_numpy(float)
    confirmed = {**meta, "size": len(out)}
    confirmed["targets"] = {
        name: {**_target_meta(t, error.get(name)), "seed_sd": seed_sd.get(name),
               "seed_sd_emulator": meta["targets"][name]["seed_sd"]}
        for name, t in targets.items()
    }  # fmt: skip
    confirmed["confirmation"] = {
        "seeds": list(seeds), "vectors": len(table), "kept": len(out),
        "rule": f"mean over the confirmation seeds within range +- {KEEP} standard errors "
        "(pooled within-vector seed s.d. / sqrt(seeds)); 0/1 facts hold in every run",
        "binding": binding(means, targets, error),
    }  # fmt: skip
    return out, confirmed
