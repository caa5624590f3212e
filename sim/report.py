"""`make results`: every experiment at full size, its figures, and docs/RESULTS.md.

    python -m sim.report --run              # run (or resume) every experiment, then write
    python -m sim.report                    # write docs/RESULTS.md from the last runs
    python -m sim.report --run --only mix   # one experiment

Each experiment's YAML states what its hypothesis predicts as claims (`experiment.expect`);
here every claim is checked against the paired differences over seeds and called
*supported* (the 95% interval lies on the predicted side), *rejected* (it lies on the other
side, or the shape is not there) or *inconclusive*. The verdicts are computed, never
written by hand, so a change of the model refreshes them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim import analysis
from sim.plot import plot_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "results"
DOCS = ROOT / "docs"
SWEEP_NAME = "make-results"  # results/<experiment>/make-results/: resumed by a rerun


# --- claims --------------------------------------------------------------------------------


def gaps(runs: pd.DataFrame, exp: dict, metric: str) -> pd.DataFrame:
    """Per (design point, seed): the compared arms' difference a - b of `metric` (`gap`)."""
    compare = exp["compare"]
    on = compare["on"]
    swept = [c for c in analysis.swept_columns(runs) if c != on]
    keys = ["point", "seed", *swept] if on == "policy" else ["seed", *swept]
    pairs = analysis.arms(runs, compare["a"], compare["b"], metric, on=on,
                          policy=compare.get("policy"), keys=keys)  # fmt: skip
    return pairs.assign(gap=pairs["a"] - pairs["b"])


def _interval(sample: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t interval of a sample (NaN interval below two values)."""
    if len(sample) < 2 or np.std(sample) == 0:
        return float(np.mean(sample)) if len(sample) else np.nan, np.nan, np.nan
    low, high = stats.ttest_1samp(sample, 0.0).confidence_interval(0.95)
    return float(np.mean(sample)), float(low), float(high)


def _side(low: float, high: float, positive: bool) -> str:
    if np.isnan(low):
        return "inconclusive"
    if (low > 0) if positive else (high < 0):
        return "supported"
    if (high < 0) if positive else (low > 0):
        return "rejected"
    return "inconclusive"


def check_sign(g: pd.DataFrame, claim: dict, x: str | None) -> dict:
    """The gap's 95% interval is above (positive) or below (negative) zero, at every point."""
    positive = claim["sign"] == "positive"
    by = "point" if "point" in g else x if x in g else None
    parts = [part for _, part in g.groupby(by, sort=True)] if by else [g]
    per_point = [_side(*_interval(part["gap"].to_numpy())[1:], positive) for part in parts]
    counts = ", ".join(f"{per_point.count(v)} {v}" for v in dict.fromkeys(per_point))
    return {"verdict": _combine(per_point), "detail": f"{len(parts)} points: {counts}"}


def _combine(verdicts: list[str]) -> str:
    if all(v == "supported" for v in verdicts):
        return "supported"
    if all(v == "rejected" for v in verdicts):
        return "rejected"
    return "mixed" if "supported" in verdicts or "rejected" in verdicts else "inconclusive"


def check_trend(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """Least-squares slope of the gap on x (every seed a point): its 95% interval's side."""
    fit = stats.linregress(g[x].astype(float), g["gap"])
    half = stats.t.ppf(0.975, len(g) - 2) * fit.stderr
    verdict = _side(fit.slope - half, fit.slope + half, claim["trend"] == "increasing")
    low, high = fit.slope - half, fit.slope + half
    detail = f"slope {fit.slope:,.4g} per unit of {x}, 95% interval [{low:,.4g}, {high:,.4g}]"
    return {"verdict": verdict, "detail": detail}


def check_hump(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """An interior maximum of the mean gap, above both ends (paired by seed, 95% intervals)."""
    means = g.groupby(x)["gap"].mean().sort_index()
    best = means.idxmax()
    if best in (means.index[0], means.index[-1]):
        return {"verdict": "rejected", "detail": f"the maximum is at an end ({x} = {best})"}
    wide = g.pivot_table(index="seed", columns=x, values="gap")
    sides = [_side(*_interval((wide[best] - wide[end]).dropna().to_numpy())[1:], True)
             for end in (means.index[0], means.index[-1])]  # fmt: skip
    return {"verdict": _combine(sides), "detail": f"maximum at {x} = {best}; above the low "
            f"end: {sides[0]}, above the high end: {sides[1]}"}  # fmt: skip


def check_larger_at(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """The gap at x = value exceeds the gap at the other value of x, paired by seed."""
    wide = g.pivot_table(index="seed", columns=x, values="gap")
    value = claim["larger_at"]
    other = next(c for c in wide.columns if c != value)
    mean, low, high = _interval((wide[value] - wide[other]).dropna().to_numpy())
    return {"verdict": _side(low, high, True),
            "detail": f"gap at {x}={value} minus gap at {x}={other}: {mean:,.4g} "
            f"[{low:,.4g}, {high:,.4g}]"}  # fmt: skip


CHECKS = {"sign": check_sign, "trend": check_trend, "shape": check_hump,
          "larger_at": check_larger_at}  # fmt: skip


def verdicts(runs: pd.DataFrame, exp: dict) -> list[dict]:
    """Every claim of the experiment, per value of its `group` key: verdict and detail."""
    rows = []
    for claim in exp.get("expect") or []:
        kind = next(k for k in CHECKS if k in claim)
        g = gaps(runs, exp, claim["metric"])
        for values, part in analysis.groups(g, [exp["group"]] if exp.get("group") else []):
            result = CHECKS[kind](part, claim, exp.get("x"))
            where = ", ".join(f"{k}={v}" for k, v in values.items())
            rows.append({"metric": claim["metric"], "claim": _claim_text(claim), "where": where,
                         **result})  # fmt: skip
    return rows


def _claim_text(claim: dict) -> str:
    kind = next(k for k in CHECKS if k in claim)
    return {"sign": f"gap {claim.get('sign')}", "trend": f"gap {claim.get('trend')} in x",
            "shape": "hump-shaped in x", "larger_at": f"gap larger at {claim.get('larger_at')}"
            }[kind]  # fmt: skip


# --- docs/RESULTS.md ----------------------------------------------------------------------


def _fmt(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub table."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body])


def paired_section(runs: pd.DataFrame, exp: dict) -> str:
    """The table of paired differences of every metric, per design point."""
    from sim.plot import paired_table

    table = paired_table(runs, exp)
    columns = [c for c in table.columns if c not in ("a", "b", "mean_a", "mean_b", "p_value")]
    table = table[columns].rename(columns={
        "mean_diff": "a − b", "ci_low": "t 95% low", "ci_high": "t 95% high",
        "boot_low": "BCa low", "boot_high": "BCa high", "effect_size": "d_z"})  # fmt: skip
    return markdown_table(table)


def _minutes(manifest: dict) -> float:
    started = pd.Timestamp(manifest["started"])
    return (pd.Timestamp(manifest["ended"]) - started).total_seconds() / 60


def experiment_section(name: str, sweep_dir: Path, figures: Path) -> tuple[str, list[dict]]:
    """The RESULTS.md section of one experiment, and its verdicts."""
    manifest = analysis.load_manifest(sweep_dir)
    exp, runs = manifest["experiment"], analysis.load_runs(sweep_dir)
    plot_dir(sweep_dir, formats=("png",))
    for figure in ("paired", "profit", "crossover"):
        source = sweep_dir / "figures" / f"{figure}.png"
        if source.exists():
            shutil.copyfile(source, figures / f"{name}-{figure}.png")
    found = verdicts(runs, exp)
    n_runs = runs[["point", "seed"]].drop_duplicates().shape[0]
    compare = exp["compare"]
    arms = f"{compare['a']} − {compare['b']}" + (
        f" ({compare['on']}, policy {compare['policy']})" if compare["on"] != "policy" else ""
    )
    lines = [
        f"## {exp['hypothesis']}: {name}", "", f"**{exp['question']}**", "",
        f"`clientsim-experiment run {name}`: {len(manifest['points'])} design points × "
        f"{exp['seeds']} seeds = {n_runs} runs ({manifest['failed']} failed), "
        f"{_minutes(manifest):.1f} min wall on this machine. Paired differences {arms}.", "",
        f"![{name}: paired differences](figures/{name}-paired.png)", "",
        paired_section(runs, exp), "",
    ]  # fmt: skip
    lines += [f"![{name}: profit over time](figures/{name}-profit.png)", ""]
    lines += ["**What the model finds:** " + finding_sentence(exp, found), ""]
    return "\n".join(lines), [{"experiment": name, "hypothesis": exp["hypothesis"], **v}
                              for v in found]  # fmt: skip


def finding_sentence(exp: dict, found: list[dict]) -> str:
    """One sentence per claim: what it predicts, where, and the verdict with its numbers."""
    if not found:
        return (
            "no directional claim is tested here (see the question above); the table "
            "reports the differences as measured."
        )
    parts = [f"{f['metric']} {f['claim']}" + (f" ({f['where']})" if f["where"] else "")
             + f": **{f['verdict']}** ({f['detail']})" for f in found]  # fmt: skip
    return "; ".join(parts) + "."


def write_results(names: list[str], *, root: Path = RESULTS_DIR,
                  out: Path = DOCS / "RESULTS.md") -> Path:  # fmt: skip
    """Write docs/RESULTS.md (and docs/figures/) from `root`/<name>/make-results/."""
    figures = out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sections, found = [], []
    for name in names:
        section, rows = experiment_section(name, root / name / SWEEP_NAME, figures)
        sections.append(section)
        found += rows
    summary = pd.DataFrame(found, columns=["hypothesis", "experiment", "metric", "claim",
                                           "where", "verdict"])  # fmt: skip
    head = [
        "# Results", "",
        "Every experiment of `experiments/` at full size (5,000 clients, 260 weeks), paired by",
        "seed (common random numbers), regenerated by `make results`. A claim is *supported*",
        "when the 95% interval of the paired differences lies on the predicted side, *rejected*",
        "when it lies on the other side (or the predicted shape is absent), *mixed* when points",
        "disagree, and *inconclusive* otherwise. Differences are in the metric's unit:",
        "currency units for profit and revenue (mean cumulative per business), stars for",
        "reputation, shares for retention, satisfaction and referral share.", "",
        "## Findings", "", markdown_table(summary), "",
    ]  # fmt: skip
    out.write_text("\n".join([*head, *sections]))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m sim.report [--run] [--only NAME ...]`."""
    from sim.experiment import main as experiment
    from sim.experiment import names

    p = argparse.ArgumentParser(prog="python -m sim.report", description=__doc__.split("\n")[0])
    p.add_argument("--run", action="store_true", help="run (or resume) the experiments first")
    p.add_argument("--only", nargs="*", help="these experiments only")
    p.add_argument("--jobs", type=int, help="parallel jobs (default: the cores)")
    args = p.parse_args(argv)
    chosen = args.only or names()
    for name in chosen if args.run else []:
        sweep_dir = RESULTS_DIR / name / SWEEP_NAME
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        try:
            experiment(["run", name, "--dir", str(sweep_dir), *jobs])
        except SystemExit as stop:
            if stop.code:
                raise
    print(write_results(names() if not args.only else chosen))
    print(json.dumps({"experiments": chosen}))


if __name__ == "__main__":
    main()
