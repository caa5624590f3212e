"""Every headline verdict as a probability over the plausible set.

A verdict of docs/RESULTS.md is computed at the default parameters, one point of a calibration
that has a set of plausible parameter vectors (`sim.validation.plausible`). Here an
experiment's design runs again at each of N vectors drawn from that set (the vector's values
set on every design point, S seeds each: one resumable sweep per vector), and each claim is
judged per vector on the mean over its seeds:

- a **sign** claim holds in a vector where the seed-mean gap a − b lies on the predicted side,
  at each design point (a row per point) and at every point at once (the claim's row: the
  verdict at the defaults also asks for every point);
- a **trend** claim (and a monotone shape) holds where the mean of the per-seed slopes of the
  gap on x (`sim.analysis.inference.slope_over_seeds`) has the predicted sign;
- a **hump** holds where the seed-mean gap is largest at an interior value of x; a
  **plateau** where it rises from the first x to the last and its last step is under half its
  largest; **larger_at** where the seed-mean gap at that value exceeds the other's;
- a factorial without claims (`instruments`): each factor's main effect on the gap of the
  first metric (`sim.analysis.factorial.seed_effects`, seed-mean) "holds" where it is positive,
  i.e. switching the instrument on adds to the gap.

Each row also carries the vector's own verdict by the rule of docs/RESULTS.md on its S seeds
(supported, rejected, ...). Over the vectors: the share where the claim holds with its 95%
Clopper–Pearson interval (an interval over the vectors sampled: it says how well N draws pin
the share of the set, not how the set was made), and the parameters the answer is most
sensitive to within the set (Spearman's rank correlation of the per-vector statistic with
each parameter, largest |rho| first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis import factorial, inference
from sim.analysis import report as claims
from sim.analysis import stats as analysis
from sim.errors import UserError
from sim.runs.owned import record_outputs, refuse_foreign
from sim.runs.record import write_json, write_parquet
from sim.sweeps.experiment import design
from sim.sweeps.points import code_hash
from sim.validation.plausible import PlausibleSet

#: The experiments whose verdicts are the headline answers (H1, H11, H3, H1 taken apart).
HEADLINE = ("strategy", "mix", "market", "instruments")
GAPS = "vector_gaps.parquet"  # one row per vector, claim and design point
SHARES = "plausible_verdicts.csv"  # one row per claim and design point, over the vectors
DRAWN = "vectors.parquet"  # the drawn vectors, so that a resumed folder holds the same ones
DONE = "finished.json"  # the vectors whose sweep ended without a failure (`finished`)
EVERY_POINT = ""  # the ``point`` of a claim's own row (not one design point's)
TOP = 3  # parameters named as the most sensitive
MIN_VECTORS = 5  # fewer vectors give no rank correlation worth naming

#: Runs one vector's sweep: (its directory, its overrides) -> exit code.
RunSweep = Callable[[Path, list[str]], int]


def default_dir(root: Path, name: str, vectors: int, seeds: int, seed: int) -> Path:
    """Where a run over the plausible set goes by default: ``root/NAME/plausible/NxS-drawK``."""
    return root / name / "plausible" / f"{vectors}x{seeds}-draw{seed}"


def vector_dir(out: Path, index: int) -> Path:
    """The sweep directory of vector `index` inside `out`."""
    return out / f"vector-{index}"


def overrides_of(vector: dict[str, float], swept: set[str]) -> list[str]:
    """A vector as Hydra overrides, leaving out a key the experiment sweeps (its axis wins).

    A whole number is written as an integer, so that it also sets an integer field.
    """
    return [f"{key}={int(value) if float(value).is_integer() else repr(float(value))}"
            for key, value in vector.items() if key not in swept]  # fmt: skip


def swept_keys(name: str, overrides: list[str]) -> set[str]:
    """The keys the experiment's design sweeps (with `overrides`, as it will run)."""
    _, _, points = design(name, overrides)
    return {o.partition("=")[0].lstrip("+~") for point in points for o in point}


def finished(out: Path, index: int, overrides: list[str]) -> bool:
    """Whether vector `index`'s sweep ended without a failed run, with these overrides and code.

    `DONE` notes each sweep that ended so, with `sim.sweeps.points.code_hash`: a changed model
    runs it again (its design points' hashes change too, so the sweep redoes its runs).
    """
    manifest = vector_dir(out, index) / "manifest.json"
    if not (manifest.is_file() and (out / DONE).is_file()):
        return False
    noted = json.loads((out / DONE).read_text()).get(str(index))
    return noted == {"overrides": overrides, "code": code_hash()}


def note_finished(out: Path, index: int, overrides: list[str]) -> None:
    """Note in `DONE` that vector `index`'s sweep ended without a failure (`finished`)."""
    file = out / DONE
    noted = json.loads(file.read_text()) if file.is_file() else {}
    noted[str(index)] = {"overrides": overrides, "code": code_hash()}
    refuse_foreign([file], f"--dir {out}")
    write_json(file, noted)
    record_outputs([file])


def record_draw(out: Path, vectors: list[dict[str, float]]) -> None:
    """Write the drawn vectors into `out`, or check they are those already there.

    Raises:
        UserError: `out` holds other vectors (another set, size or draw seed).
    """
    drawn = pd.DataFrame(vectors).rename_axis("vector").reset_index()
    file = out / DRAWN
    if file.is_file():
        before = pd.read_parquet(file)
        same = before.shape == drawn.shape and list(before) == list(drawn)
        if not same or not np.allclose(before.to_numpy(float), drawn.to_numpy(float)):
            raise UserError(f"--dir {out}: holds other plausible vectors ({DRAWN}); give the "
                            "same set, --vectors and --draw-seed, another --dir, or remove "
                            "that folder")  # fmt: skip
        return
    refuse_foreign([file], f"--dir {out}")
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(file, drawn)
    record_outputs([file])


def run_vectors(
    name: str,
    plausible: PlausibleSet,
    *,
    vectors: int,
    seeds: int,
    seed: int,
    out: Path,
    overrides: list[str],
    run_sweep: RunSweep,
) -> tuple[pd.DataFrame, list[str]]:
    """Run the experiment at `vectors` plausible vectors, `seeds` seeds each; their gaps.

    Each vector's sweep is ``out/vector-i``: resumed if it is there, skipped if it finished
    without a failure with the same overrides and code (`finished`). Writes ``out/GAPS``
    (`vector_gaps`) and ``out/SHARES`` (`shares`, with the sensitivity). Returns the gaps and
    the keys of the set the experiment sweeps itself (left at the design's values).

    Raises:
        UserError: a sweep failed (its exit code is in the message), or `out` holds others.
    """
    drawn = plausible.draw(vectors, seed)
    fixed = [*overrides, f"experiment.seeds={seeds}"]
    swept = swept_keys(name, fixed) & set(plausible.parameters)
    record_draw(out, drawn)
    for index, vector in enumerate(drawn):
        given = [*fixed, *overrides_of(vector, swept)]
        if finished(out, index, given):
            continue
        code = run_sweep(vector_dir(out, index), given)
        if code:
            raise UserError(f"the sweep of vector {index} ended with exit code {code}; rerun "
                            f"the same command to resume")  # fmt: skip
        note_finished(out, index, given)
    table = vector_gaps([vector_dir(out, i) for i in range(vectors)], drawn)
    write_outputs(out, table, plausible.parameters)
    return table, sorted(swept)


def write_outputs(out: Path, table: pd.DataFrame, parameters: list[str]) -> list[Path]:
    """Write the per-vector gaps and the shares with their sensitivity into `out`."""
    files = [out / GAPS, out / SHARES]
    refuse_foreign(files, f"--dir {out}")
    write_parquet(files[0], table)
    summary = shares(table).merge(sensitivity(table, parameters), on=KEYS, how="left")
    summary.to_csv(files[1], index=False)
    record_outputs(files)
    return files


# --- one vector's claims ----------------------------------------------------------------


def vector_gaps(sweep_dirs: list[Path], vectors: list[dict[str, float]]) -> pd.DataFrame:
    """The claims of each vector's sweep, per design point, with the vector's parameters.

    Returns:
        One row per vector, claim and point: ``vector``, a column per parameter, then
        `claim_rows`' columns.
    """
    rows = []
    for index, (sweep_dir, vector) in enumerate(zip(sweep_dirs, vectors, strict=True)):
        exp = analysis.load_manifest(sweep_dir)["experiment"]
        found = claim_rows(analysis.load_runs(sweep_dir), exp)
        rows += [{"vector": index, **vector, **row} for row in found]
    return pd.DataFrame(rows)


#: The columns of one claim's statistic in one vector (`claim_rows`).
ROW_COLUMNS = ("claim", "metric", "where", "point", "statistic", "value", "holds", "verdict",
               "seeds")  # fmt: skip
KEYS = ["claim", "metric", "where", "point"]


def claim_rows(runs: pd.DataFrame, exp: dict) -> list[dict]:
    """Every claim of `exp` (or a factorial's main effects) on one sweep's runs.

    Each row: ``claim`` and ``where`` (as `sim.analysis.report.verdicts` words them),
    ``point`` (one design point's, or "" for the claim as the defaults' verdict judges it),
    ``statistic`` (what ``value`` is) and ``value`` (mean over the seeds, in the metric's unit,
    per unit of x for a slope), ``holds`` (the rule of this module's doc), ``verdict`` (the
    vector's own, by docs/RESULTS.md's rule on its seeds) and ``seeds``.
    """
    if not exp.get("expect") and exp.get("factorial"):
        return effect_rows(runs, exp)
    rows = []
    for claim in exp.get("expect") or []:
        kind = next(k for k in claims.CHECKS if k in claim)
        g = claims.gaps(runs, exp, claim["metric"], policy=claim.get("policy"))
        x = exp.get("x")
        if "at" in claim:
            g = g[g[x] == claim["at"]]
        for values, part in analysis.groups(g, [exp["group"]] if exp.get("group") else []):
            head = {"claim": claims.claim_text(claim, exp), "metric": claim["metric"],
                    "where": ", ".join(f"{k}={v}" for k, v in values.items())}  # fmt: skip
            own = claims.CHECKS[kind](part, claim, x)["verdict"]
            rows.append({**head, "point": EVERY_POINT, **_holds(kind, claim, part, x),
                         "verdict": own, "seeds": part["seed"].nunique()})  # fmt: skip
            if kind == "sign" and x in part and part[x].nunique() > 1:
                rows += [_point_row(head, claim, x, value, at) for value, at in part.groupby(x)]
    return rows


def _point_row(head: dict, claim: dict, x: str, value, part: pd.DataFrame) -> dict:
    mean = float(part["gap"].mean())
    return {**head, "point": f"{x}={value}", "statistic": "mean gap", "value": mean,
            "holds": _on_side(mean, claim["sign"] == "positive"),
            "verdict": claims.check_sign(part, claim, None)["verdict"],
            "seeds": part["seed"].nunique()}  # fmt: skip


def _on_side(value: float, positive: bool) -> bool:
    return bool(value > 0) if positive else bool(value < 0)


def _holds(kind: str, claim: dict, g: pd.DataFrame, x: str | None) -> dict:
    """The statistic of a claim over one vector's seeds and whether it holds (module doc)."""
    if kind == "sign":
        means = g.groupby(x)["gap"].mean() if x in g else pd.Series([g["gap"].mean()])
        holds = all(_on_side(m, claim["sign"] == "positive") for m in means)
        return {"statistic": "mean gap, every point on the side", "value": float(means.mean()),
                "holds": holds and len(means) > 0}  # fmt: skip
    if kind == "larger_at":
        means = g.groupby(x)["gap"].mean()
        other = next(v for v in means.index if v != claim["larger_at"])
        value = float(means[claim["larger_at"]] - means[other])
        return {"statistic": f"mean gap at {claim['larger_at']} minus at {other}", "value": value,
                "holds": value > 0}  # fmt: skip
    shape = claim.get("trend") or claim["shape"]
    if shape in ("increasing", "decreasing"):
        slope = inference.slope_over_seeds(g, x)["slope"]
        return {"statistic": f"mean slope per seed, per unit of {x}", "value": float(slope),
                "holds": _on_side(slope, shape == "increasing")}  # fmt: skip
    means = g.groupby(x)["gap"].mean().sort_index()
    if shape == "hump":
        top = means.index.get_loc(means.idxmax())
        return {"statistic": f"{x} of the largest mean gap", "value": float(means.idxmax()),
                "holds": 0 < top < len(means) - 1}  # fmt: skip
    steps = np.diff(means.to_numpy())  # plateau
    rise = float(means.iloc[-1] - means.iloc[0])
    return {"statistic": "mean gap, last x minus first", "value": rise,
            "holds": bool(rise > 0 and steps[-1] < 0.5 * steps.max())}  # fmt: skip


def effect_rows(runs: pd.DataFrame, exp: dict) -> list[dict]:
    """A factorial's main effects on the gap of its first metric, per other swept axis."""
    compare, factors = exp["compare"], dict(exp["factorial"])
    metric = exp["metrics"][0]
    swept, keys = analysis.pairing(runs, compare["on"])
    pairs = analysis.arms(runs, compare["a"], compare["b"], metric, on=compare["on"],
                          policy=compare.get("policy"), keys=keys)  # fmt: skip
    g = pairs.assign(gap=pairs["a"] - pairs["b"])
    factors = {k: on for k, on in factors.items() if k in g and g[k].nunique() > 1}
    by = [c for c in swept if c not in factors]
    rows = []
    for values, part in analysis.groups(g, by):
        where = ", ".join(f"{k}={v}" for k, v in values.items())
        for key in factors:
            per_seed = factorial.seed_effects(part, factors, (key,))
            mean, low, high, _ = inference.t_test(per_seed.to_numpy())
            own = "supported" if low > 0 else "rejected" if high < 0 else "inconclusive"
            rows.append({"claim": f"{factorial.short(key)} adds to {claims.arms_text(exp)}",
                         "metric": metric, "where": where, "point": EVERY_POINT,
                         "statistic": "mean main effect", "value": float(mean),
                         "holds": bool(mean > 0), "verdict": own,
                         "seeds": len(per_seed)})  # fmt: skip
    return rows


# --- over the vectors ---------------------------------------------------------------------


def shares(table: pd.DataFrame) -> pd.DataFrame:
    """Per claim and point: in how many vectors it holds, the share and its 95% interval.

    Returns:
        One row per claim and point (their order in `table`): `KEYS`, ``vectors``, ``holds``
        (count), ``share`` (0-1), ``low``, ``high`` (Clopper–Pearson), ``supported`` (vectors
        whose own verdict on their seeds is supported), ``seeds`` (per vector, fewest).
    """
    rows = []
    for key, part in table.groupby(KEYS, sort=False):
        k, n = int(part["holds"].sum()), len(part)
        low, high = inference.clopper_pearson(k, n)
        rows.append({**dict(zip(KEYS, key, strict=True)), "vectors": n, "holds": k,
                     "share": k / n, "low": low, "high": high,
                     "supported": int((part["verdict"] == "supported").sum()),
                     "seeds": int(part["seeds"].min())})  # fmt: skip
    return pd.DataFrame(rows)


def sensitivity(table: pd.DataFrame, parameters: list[str], top: int = TOP) -> pd.DataFrame:
    """Per claim and point, the `top` parameters whose rank best follows the statistic.

    Spearman's rho of the per-vector ``value`` with each parameter over the vectors; a
    parameter constant over them has none, nor does any below `MIN_VECTORS` vectors.
    ``sensitive`` reads "key (rho +0.62); ...".
    """
    from scipy.stats import spearmanr

    rows = []
    for key, part in table.groupby(KEYS, sort=False):
        rho = {}
        for parameter in parameters if len(part) >= MIN_VECTORS else []:
            if part[parameter].nunique() > 1 and part["value"].nunique() > 1:
                rho[parameter] = float(spearmanr(part[parameter], part["value"]).statistic)
        ranked = sorted(rho.items(), key=lambda item: -abs(item[1]))[:top]
        rows.append({**dict(zip(KEYS, key, strict=True)),
                     "sensitive": "; ".join(f"{p} (rho {r:+.2f})" for p, r in ranked)})  # fmt: skip
    return pd.DataFrame(rows, columns=[*KEYS, "sensitive"])
