"""docs/RESULTS.md: every experiment's claims judged, with its figures and tables.

`make results` runs every experiment at full size and writes it (`python -m sim.cli.report
--run`; without `--run` it writes from the last runs).

Each experiment's YAML states what its hypothesis predicts as claims (`experiment.expect`);
here every claim is checked against the paired differences over seeds and called
*supported* (the 95% interval lies on the predicted side), *rejected* (it lies on the other
side, or the shape is not there) or *inconclusive*. Trends and shapes are judged by the
gap's adjacent steps along x and its slope per seed (`sim.analysis.inference`); every verdict
carries its p-value, adjusted over its experiment's claims. The verdicts are computed, never
written by hand, so a change of the model refreshes them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from sim.analysis import decompose, factorial, inference
from sim.analysis import stats as analysis
from sim.analysis.expect import KINDS, check_claims
from sim.analysis.figures import paired_table, plot_dir
from sim.analysis.markdown import cell, markdown_table
from sim.analysis.shared_runs import shared_runs_note
from sim.config.compose import compose
from sim.errors import UserError
from sim.runs.record import METRICS

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "results"
DOCS = ROOT / "docs"
SWEEP_NAME = "make-results"  # results/<experiment>/make-results/: resumed by a rerun


# --- claims --------------------------------------------------------------------------------


def gaps(runs: pd.DataFrame, exp: dict, metric: str, *, policy: str | None = None):
    """Per (design point, seed): the compared arms' difference a - b of `metric` (`gap`).

    With `policy`, the "gap" is that policy's own value of the metric (e.g. its crossover
    week), for claims about one arm rather than the difference. A week that has not come by the
    horizon (a crossover that never happened) is censored, not missing: it counts as the
    horizon (``weeks``), a lower bound, and ``censored`` marks it; other nulls drop.
    """
    if policy is not None:
        own = runs[(runs["status"] == "ok") & (runs["policy"] == policy)]
        value = own[metric].astype(float)
        censored = value.isna() & (METRICS[metric][1] == "week") & ("weeks" in own)
        if censored.any():
            value = value.fillna(own["weeks"].astype(float).where(censored))
        return own.assign(gap=value, censored=censored).dropna(subset=["gap"])
    compare = exp["compare"]
    on = compare["on"]
    swept, keys = analysis.pairing(runs, on)
    pairs = analysis.arms(runs, compare["a"], compare["b"], metric, on=on,
                          policy=compare.get("policy"), keys=keys)  # fmt: skip
    return pairs.assign(gap=pairs["a"] - pairs["b"])


def _side(low: float, high: float, positive: bool) -> str:
    if np.isnan(low):
        return "inconclusive"
    if (low > 0) if positive else (high < 0):
        return "supported"
    if (high < 0) if positive else (low > 0):
        return "rejected"
    return "inconclusive"


def check_sign(g: pd.DataFrame, claim: dict, x: str | None) -> dict:
    """The gap's 95% interval is above (positive) or below (negative) zero, at every point.

    Its p is the largest of the points' two-sided p-values: the verdict holds at every point,
    so it is as strong as its weakest point (an intersection–union test).
    """
    positive = claim["sign"] == "positive"
    if g.empty:  # no pair has the metric (e.g. every business of a compared policy exited)
        return {"verdict": "inconclusive", "p": np.nan, "detail": "no paired values"}
    by = "point" if "point" in g else x if x in g else None
    parts = [part for _, part in g.groupby(by, sort=True)] if by else [g]
    tests = [inference.t_test(part["gap"]) for part in parts]
    per_point = [_side(low, high, positive) for _, low, high, _ in tests]
    counts = ", ".join(f"{v} at {per_point.count(v)}" for v in dict.fromkeys(per_point))
    return {
        "verdict": _combine(per_point),
        "p": float(np.max([p for *_, p in tests])),  # NaN (a point untested) stays NaN
        "detail": f"{counts} of {len(parts)} design point{'s' * (len(parts) > 1)}",
    }


def _combine(verdicts: list[str]) -> str:
    if all(v == "supported" for v in verdicts):
        return "supported"
    if all(v == "rejected" for v in verdicts):
        return "rejected"
    return "mixed" if "supported" in verdicts or "rejected" in verdicts else "inconclusive"


def _steps(g: pd.DataFrame, x: str) -> tuple[pd.DataFrame, str]:
    """The adjacent paired steps along x (Holm) and their account: shape found, then steps."""
    steps = inference.paired_steps(g, x)
    found = inference.shape_text(steps, x)
    return steps, f"{found} (steps {inference.steps_text(steps)}; * Holm p < {inference.ALPHA})"


def check_trend(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """A monotone claim, judged by the gap's adjacent steps along x and its slope over seeds.

    Each step (the gap at one value of x minus at the one below) is a paired t test over the
    seeds, Holm-corrected across the steps: a significant step against the claim rejects it, one
    with it (and none against) supports it (`inference.monotone_verdict`). With no significant
    step the slope decides: one least-squares slope per seed (common random numbers pair a
    seed's runs across points), then the 95% t interval of their mean over the seeds
    (`inference.slope_over_seeds`), never a regression pooling seeds × points.
    """
    increasing = claim["trend"] == "increasing"
    fit = inference.slope_over_seeds(g, x)
    steps, account = _steps(g, x)
    side = _side(fit["low"], fit["high"], increasing)
    verdict, p = inference.monotone_verdict(steps, increasing, side)
    detail = (f"{account}; slope over {fit['seeds']} seeds {fit['slope']:,.4g} per unit of {x}, "
              f"95% interval [{fit['low']:,.4g}, {fit['high']:,.4g}]")  # fmt: skip
    found = {"verdict": verdict, "p": fit["p"] if np.isnan(p) else p}
    if "policy" in claim:  # a policy's own metric, e.g. a week censored at the horizon
        censored = int(g["censored"].sum())
        return found | {"detail": detail + f", over {len(g)} runs ({censored} not reached by "
                        "the horizon, counted as the horizon: a lower bound)"}  # fmt: skip
    return found | {"detail": detail + zero_crossing(g, x)}


def zero_crossing(g: pd.DataFrame, x: str) -> str:
    """Where the mean gap changes sign along x (linear between design points), if it does."""
    means = g.groupby(x)["gap"].mean().sort_index()
    for (x0, y0), (x1, y1) in zip(means.items(), list(means.items())[1:], strict=False):
        if y0 == 0 or np.sign(y0) != np.sign(y1):
            at = x0 if y0 == 0 else x0 + (x1 - x0) * y0 / (y0 - y1)
            return f"; the mean gap crosses zero near {x} = {at:.3g}"
    return f"; the mean gap keeps its sign over {x} in [{means.index[0]}, {means.index[-1]}]"


def check_shape(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """A shape claim (`shape: hump`, `plateau`, `increasing` or `decreasing`) judged by steps.

    The gap's adjacent paired steps along x, Holm-corrected across the steps, give the shape
    found (`inference.pattern`): a hump rises then falls, a plateau rises then stops rising,
    a monotone shape never steps significantly the other way (`inference.hump_verdict`,
    `plateau_verdict`, `monotone_verdict`).
    """
    steps, account = _steps(g, x)
    means = g.groupby(x)["gap"].mean().sort_index()
    shape = claim["shape"]
    if shape == "hump":
        verdict, p = inference.hump_verdict(steps, means)
    elif shape == "plateau":
        verdict, p = inference.plateau_verdict(steps)
    else:
        verdict, p = inference.monotone_verdict(steps, shape == "increasing", "inconclusive")
    return {"verdict": verdict, "p": p,
            "detail": f"{account}; largest mean gap at {x} = {means.idxmax():g}"}  # fmt: skip


def check_larger_at(g: pd.DataFrame, claim: dict, x: str) -> dict:
    """The gap at x = value exceeds the gap at the other value of x, paired by seed."""
    wide = g.pivot_table(index="seed", columns=x, values="gap")
    value = claim["larger_at"]
    other = next(c for c in wide.columns if c != value)
    mean, low, high, p = inference.t_test((wide[value] - wide[other]).dropna())
    return {"verdict": _side(low, high, True), "p": p,
            "detail": f"gap at {x}={value} minus gap at {x}={other}: {mean:,.4g} "
            f"[{low:,.4g}, {high:,.4g}]"}  # fmt: skip


CHECKS = dict(zip(KINDS, (check_sign, check_trend, check_shape, check_larger_at), strict=True))

#: The columns of a verdict row (after its experiment's and hypothesis's).
VERDICT_COLUMNS = ["metric", "claim", "where", "verdict", "p", "p_holm", "p_bh", "survives",
                   "detail"]  # fmt: skip


def verdicts(runs: pd.DataFrame, exp: dict) -> list[dict]:
    """Every claim of the experiment, per value of its `group` key: verdict, p and detail.

    Each row's ``p`` is the two-sided p-value the verdict rests on; ``p_holm`` and ``p_bh``
    adjust it over the experiment's rows (Holm's family-wise and Benjamini–Hochberg's false
    discovery rate); ``survives`` says whether a supported, rejected or mixed verdict keeps
    Holm's p below 0.05 (empty for an inconclusive one).
    """
    rows = []
    for claim in exp.get("expect") or []:
        kind = next(k for k in CHECKS if k in claim)
        g = gaps(runs, exp, claim["metric"], policy=claim.get("policy"))
        if "at" in claim:  # the claim holds at one value of x only
            g = g[g[exp["x"]] == claim["at"]]
        for values, part in analysis.groups(g, [exp["group"]] if exp.get("group") else []):
            result = CHECKS[kind](part, claim, exp.get("x"))
            where = ", ".join(f"{k}={v}" for k, v in values.items())
            rows.append({"metric": claim["metric"], "claim": claim_text(claim, exp),
                         "where": where, **result})  # fmt: skip
    return adjust(rows)


def adjust(rows: list[dict]) -> list[dict]:
    """The rows with ``p_holm``, ``p_bh`` and ``survives`` added (over all of them)."""
    p = [row["p"] for row in rows]
    for row, p_holm, p_bh in zip(rows, inference.holm(p), inference.benjamini_hochberg(p),
                                 strict=True):  # fmt: skip
        decided = row["verdict"] != "inconclusive"
        survives = ("yes" if p_holm < inference.ALPHA else "no") if decided else ""
        row.update(p_holm=p_holm, p_bh=p_bh, survives=survives)
    return [{column: row[column] for column in VERDICT_COLUMNS} for row in rows]


SHAPE_WORDS = {"hump": "hump-shaped", "plateau": "rising to a plateau"}


def claim_text(claim: dict, exp: dict) -> str:
    """A claim in words, e.g. "fit_filter − serve_all increasing in market.demand_supply_ratio"."""
    compare, x = exp["compare"], exp.get("x")
    what = claim.get("policy") or f"{compare['a']} − {compare['b']}"
    if compare.get("on", "policy") != "policy" and not claim.get("policy"):
        what = f"{compare['on']}={compare['a']} − {compare['b']} ({compare['policy']})"
    at = f" at {x}={claim['at']}" if "at" in claim else ""
    kind = next(k for k in CHECKS if k in claim)
    shape = SHAPE_WORDS.get(claim.get("shape"), claim.get("shape"))
    return {"sign": f"{what} {claim.get('sign')}{at}",
            "trend": f"{what} {claim.get('trend')} in {x}",
            "shape": f"{what} {shape} in {x}",
            "larger_at": f"{what} larger at {x}={claim.get('larger_at')}"}[kind]  # fmt: skip


# --- docs/RESULTS.md ----------------------------------------------------------------------


def paired_section(runs: pd.DataFrame, exp: dict) -> str:
    """The table of paired differences of every metric, per design point."""
    table = paired_table(runs, exp)
    columns = [c for c in table.columns if c not in ("a", "b", "mean_a", "mean_b", "p_value")]
    table = table[columns].rename(columns={
        "mean_diff": "a − b", "ci_low": "t 95% low", "ci_high": "t 95% high",
        "boot_low": "BCa low", "boot_high": "BCa high", "effect_size": "d_z"})  # fmt: skip
    return markdown_table(table)


def docking_section(sweep_dir: Path) -> str:
    """The Bass docking's errors: the seeds' mean share against Bass's curves (shares of N)."""
    table = pd.read_csv(sweep_dir / "figures" / "bass.csv")
    errors = pd.DataFrame({
        "against": ["Bass closed form", "one-step map of the discrete process"],
        "max abs error of the mean share": [
            (table["mean"] - table["closed_form"]).abs().max(),
            (table["mean"] - table["discrete"]).abs().max(),
        ],
        "weeks": len(table), "seeds": int(table["seeds"].iloc[0]),
    })  # fmt: skip
    return markdown_table(errors)


def crossover_section(sweep_dir: Path, a: str, b: str) -> str:
    """The crossover weeks over seeds, those that never cross censored at the horizon."""
    weeks = analysis.crossover_weeks(analysis.load_steps(sweep_dir), a, b)
    table = analysis.crossover_summary(weeks).drop(
        columns=["sweep_hash", "point", "a", "b"], errors="ignore"
    )
    for column in ("km_q25", "km_median", "km_q75"):  # not reached: beyond the horizon
        table[column] = [f"> {h:.0f}" if np.isnan(w) else f"{w:.0f}"
                         for w, h in zip(table[column], table["horizon"], strict=True)]  # fmt: skip
    return (f"Crossover week of {a} over {b}: the first week after which its mean cumulative "
            f"profit stays ahead. A seed that has not crossed by the horizon (`share_never`) is "
            f"censored there, not dropped: the quartiles are Kaplan–Meier's over all seeds "
            f"(\"> horizon\": not reached), `restricted_mean` is the mean week capped at the "
            f"horizon.\n\n" + markdown_table(table))  # fmt: skip


def _with_interval(row: pd.Series) -> str:
    """A part's mean and its 95% paired t interval, in currency units."""
    if np.isnan(row["ci_low"]):
        return cell(row["mean_diff"], ",.0f")
    return f"{row['mean_diff']:,.0f} [{row['ci_low']:,.0f}, {row['ci_high']:,.0f}]"


def decomposition_section(runs: pd.DataFrame, a: str, b: str) -> str:
    """The profit gap a − b at the horizon, split into its parts, per design point."""
    table = decompose.decompose_gap(runs, a, b)
    keys = list(table.columns[: list(table.columns).index("a")])
    rows = []
    for values, point in analysis.groups(table, keys):
        part = point.set_index("part")
        rows.append({
            **values, "gap": _with_interval(part.loc["gap"]),
            **{name: _with_interval(part.loc[name]) for name in decompose.PARTS[:-1]},
            "margin per billed hour (a / b)": f"{part.loc['quality', 'a_value']:,.1f} / "
                                              f"{part.loc['quality', 'b_value']:,.1f}",
            "billed hours a ÷ b": cell(part.loc["volume", "a_value"] /
                                       part.loc["volume", "b_value"], ".2f"),
            "survival (a / b)": f"{part.loc['gap', 'survival_a']:.2f} / "
                                f"{part.loc['gap', 'survival_b']:.2f}",
        })  # fmt: skip
    return (
        f"The gap {a} − {b} in mean cumulative profit per business at the horizon, decomposed "
        "(`sim.analysis.decompose`) seed by seed into quality + volume + capacity + exits; "
        "mean over seeds [95% paired t interval], currency units; margins per billed hour "
        "and billed hours are those of the businesses active at the horizon:\n\n"
        + markdown_table(pd.DataFrame(rows))
    )


def factorial_section(runs: pd.DataFrame, exp: dict) -> str:
    """A factorial's main effects and two-way interactions on each metric's gap, per group."""
    table = factorial.experiment_effects(runs, exp)
    by = list(table.columns[1 : list(table.columns).index("term")])
    parts = []
    for metric, rows in table.groupby("metric", sort=False):
        wide = {}
        for values, group in analysis.groups(rows, by):
            column = ", ".join(str(v) for v in values.values()) or "effect"
            wide[column] = [_with_interval(r.rename({"effect": "mean_diff"}))
                            for _, r in group.iterrows()]  # fmt: skip
        frame = pd.DataFrame({"term": list(dict.fromkeys(rows["term"])), **wide})
        what, unit = METRICS.get(metric, (metric, "metric units"))
        parts.append(f"Effects on the gap in {metric} ({what}; {unit}), mean over seeds "
                     f"[95% paired t interval]:\n\n" + markdown_table(frame))  # fmt: skip
    varied = table.loc[table["order"] == 1, "term"].nunique()
    return (
        f"A two-level full factorial of {len(exp['factorial'])} factors ({varied} varied here) "
        "(`sim.analysis.factorial`): a main effect is what switching the factor on adds to the "
        "gap, averaged over the other factors' settings; an interaction A × B is half the "
        "change of A's effect when B is switched on. Per design point: "
        "`figures/paired.csv` and `figures/decomposition.csv` of the sweep.\n\n" + "\n".join(parts)
    )


def _minutes(manifest: dict) -> float:
    started = pd.Timestamp(manifest["started"])
    return (pd.Timestamp(manifest["ended"]) - started).total_seconds() / 60


#: Draws a sweep's figures into DIR/figures/: `plot_dir`, or one that also draws dockings.
Draw = Callable[..., list[Path]]


def experiment_section(
    name: str, sweep_dir: Path, figures: Path, draw: Draw = plot_dir
) -> tuple[str, list[dict]]:
    """The RESULTS.md section of one experiment, and its verdicts."""
    manifest = analysis.load_manifest(sweep_dir)
    exp, runs = manifest["experiment"], analysis.load_runs(sweep_dir)
    stated = compose([f"+experiment={name}"]).experiment  # claims as stated now
    exp = {**exp, "expect": OmegaConf.to_container(stated.expect),
           "figures": list(stated.figures)}  # fmt: skip
    draw(sweep_dir, formats=("png",))
    named = exp.get("figures") or ["paired", "profit"]
    for figure in named:
        shutil.copyfile(sweep_dir / "figures" / f"{figure}.png", figures / f"{name}-{figure}.png")
    found = verdicts(runs, exp) or [
        {
            "metric": "—",
            "claim": "—",
            "where": "",
            "verdict": "not tested",
            "detail": exp["question"],
        }
    ]
    n_runs = runs[["point", "seed"]].drop_duplicates().shape[0]
    compare, arms = exp["compare"], arms_text(exp)
    factorial = bool(exp.get("factorial"))
    paired = "paired" in named or factorial  # the docking (one business) compares nothing
    lines = [
        f"## {exp['hypothesis']}: {name}", "", f"**{exp['question']}**", "",
        f"`clientsim-experiment run {name}`: {len(manifest['points'])} design points × "
        f"{exp['seeds']} seeds = {n_runs} runs ({manifest['failed']} failed), "
        f"{_minutes(manifest):.1f} min wall on this machine."
        + (f" Paired differences {arms}." if paired else ""), "",
        f"![{name}: {named[0]}](figures/{name}-{named[0]}.png)", "",
    ]  # fmt: skip
    if factorial:  # 2^k design points: the effects, not a row per point (figures/paired.csv)
        lines += [factorial_section(runs, exp), ""]
    else:
        lines += [paired_section(runs, exp) if paired else docking_section(sweep_dir), ""]
    if compare["on"] == "policy" and paired and not factorial:
        lines += [crossover_section(sweep_dir, compare["a"], compare["b"]), ""]
    if compare["on"] == "policy" and paired and not factorial and decompose.has_factors(runs):
        lines += [decomposition_section(runs, compare["a"], compare["b"]), ""]
        if "decomposition" not in named:
            shutil.copyfile(sweep_dir / "figures" / "decomposition.png",
                            figures / f"{name}-decomposition.png")  # fmt: skip
            lines += [f"![{name}: decomposition](figures/{name}-decomposition.png)", ""]
    lines += [f"![{name}: {figure}](figures/{name}-{figure}.png)\n" for figure in named[1:]]
    lines += ["**What the model finds:** " + finding_sentence(exp, found), ""]
    return "\n".join(lines), [{"experiment": name, "hypothesis": exp["hypothesis"], **v}
                              for v in found]  # fmt: skip


def arms_text(exp: dict) -> str:
    """The compared arms in words: "fit_filter − serve_all", "True − False (KEY, policy P)"."""
    compare = exp["compare"]
    return f"{compare['a']} − {compare['b']}" + (
        f" ({compare['on']}, policy {compare['policy']})" if compare["on"] != "policy" else ""
    )


def sweep_report(sweep_dir: Path) -> str:
    """A sweep's paired table and its claims' verdicts, as text; nothing is written.

    What `clientsim-experiment report DIR` prints: the claims are those the sweep ran with
    (its manifest's experiment, `experiment.expect`), judged by `verdicts` as in
    docs/RESULTS.md; the table is `paired_section`'s (a factorial's: `factorial_section`).

    Raises:
        UserError: `sweep_dir` holds no finished experiment's sweep (no manifest.json).
        ConfigError: a claim that cannot be judged (`check_claims`).
    """
    if not (sweep_dir / "manifest.json").is_file():
        raise UserError(f"{sweep_dir}: no manifest.json: not the directory of a finished "
                        "sweep of clientsim-experiment run")  # fmt: skip
    manifest = analysis.load_manifest(sweep_dir)
    exp, runs = manifest["experiment"], analysis.load_runs(sweep_dir)
    check_claims(exp, runs.columns)
    n_runs = runs[["point", "seed"]].drop_duplicates().shape[0]
    lines = [
        f"{exp['name']} ({exp['hypothesis']}): {exp['question']}",
        f"{sweep_dir}: {len(manifest['points'])} design points × {exp['seeds']} seeds = "
        f"{n_runs} runs ({manifest['failed']} failed)", "",
    ]  # fmt: skip
    if exp.get("factorial"):
        lines += [factorial_section(runs, exp), ""]
    elif "paired" in (exp.get("figures") or ["paired"]):
        lines += [f"Paired differences {arms_text(exp)}, per design point (mean over seeds):",
                  "", paired_section(runs, exp)]  # fmt: skip
    found = verdicts(runs, exp)
    if not found:
        return "\n".join([*lines, "No claims to judge (experiment.expect is empty)."]) + "\n"
    table = pd.DataFrame(found, columns=VERDICT_COLUMNS)
    lines += ["Verdicts (experiment.expect, as the sweep ran it):", "", markdown_table(table),
              "What the model finds: " + finding_sentence(exp, found)]  # fmt: skip
    return "\n".join(lines) + "\n"


def finding_sentence(exp: dict, found: list[dict]) -> str:
    """One sentence per claim: what it predicts, where, and the verdict with its numbers."""
    if found[0]["verdict"] == "not tested":
        return (
            "no directional claim is tested here (the experiment's YAML says why); the "
            "table reports the differences as measured."
        )
    parts = [f"{f['metric']}: {f['claim']}" + (f" ({f['where']})" if f["where"] else "")
             + f": **{f['verdict']}** ({_p_text(f)}{f['detail']})" for f in found]  # fmt: skip
    return "; ".join(parts) + "."


def _p_text(found: dict) -> str:
    if np.isnan(found["p"]):
        return ""
    return f"p {found['p']:.2g}, Holm {found['p_holm']:.2g}; "


def write_results(
    names: list[str],
    *,
    root: Path = RESULTS_DIR,
    out: Path = DOCS / "RESULTS.md",
    draw: Draw = plot_dir,
    plausible: pd.DataFrame | None = None,
    plausible_section: str = "",
    map_section: str = "",
) -> Path:
    """Write docs/RESULTS.md (and docs/figures/) from `root`/<name>/make-results/.

    `draw(sweep_dir, formats=...)` writes each sweep's figures (a docking's too:
    `sim.validation.docking_figures.plot_sweep`). `plausible` (columns ``experiment``,
    ``metric``, ``claim``, ``where`` and ``plausible markets``: in what share of plausible
    markets a claim holds, `sim.explore.verdicts`) is set beside the verdicts it names, and
    `plausible_section` (markdown) follows the findings; then `map_section` (markdown: where
    filtering pays, `clientsim-explore`).
    """
    figures = out.parent / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sections, found, labels = [], [], {}
    for name in names:
        section, rows = experiment_section(name, root / name / SWEEP_NAME, figures, draw)
        sections.append(section)
        found += rows
        labels[f"{rows[0]['hypothesis']} {name}"] = root / name / SWEEP_NAME
    summary = pd.DataFrame(found, columns=["hypothesis", "experiment", *VERDICT_COLUMNS])
    if plausible is not None and len(plausible):
        summary = _beside_verdict(summary, plausible)
    head = [
        "# Results", "",
        "Every experiment of `experiments/` at full size (5,000 clients, 260 weeks), paired by",
        "seed (common random numbers), regenerated by `make results`. A claim is *supported*",
        "when the 95% interval of the paired differences lies on the predicted side, *rejected*",
        "when it lies on the other side (or the predicted shape is absent), *mixed* when points",
        "disagree, and *inconclusive* otherwise. Trends and shapes are judged by the gap's",
        "steps between adjacent values of x, paired by seed and Holm-corrected across the steps",
        "(a significant step against a predicted trend rejects it; the shape found is stated),",
        "and by one slope per seed with its t interval over the seeds. `p` is the two-sided",
        "p-value a verdict rests on, `p_holm` and `p_bh` adjust it over the experiment's claims",
        "(Holm; Benjamini–Hochberg), `survives` says whether a verdict keeps Holm's p < 0.05.",
        "Differences are in the metric's unit: currency units for profit and revenue (mean",
        "cumulative per business), stars for reputation, shares for retention, satisfaction",
        "and referral share.", "",
        "Profit and survival are reported separately. A verdict on profit uses the mean",
        "cumulative profit per business of all the policy's businesses, an exited business",
        "counted at its frozen loss (`profit_horizon`); `survival` is the share of them still",
        "active at the horizon, and no verdict here uses it.", "",
        "**What decides a profit gap.** Where two policies are compared, the gap at the",
        "horizon is split exactly, seed by seed (`sim.analysis.decompose`). A policy's profit",
        "per business is Π = s·(m·h − c) + x: s its survival, and for its businesses active at",
        "the horizon m the margin per billed hour (the price less the wages of the hours it",
        "took and unpaid invoices), h the hours billed and c the cost of capacity (salaries,",
        "ads, hiring and layoffs); x the frozen losses of those that exited, per business.",
        "With bars for means of a and b and Δ for a − b: Π_a − Π_b = s̄·h̄·Δm (*quality*)",
        "+ s̄·m̄·Δh (*volume*) − s̄·Δc (*capacity*: what paying for more or less capacity adds)",
        "+ Δx + (m·h − c)‾·Δs (*exits*). The parts' means over seeds add up to the mean gap;",
        "each has its paired 95% t interval. A policy that earns more per hour but sells",
        "fewer hours wins only if quality outweighs volume.", "",
        "**Factorial experiments** (`experiment.factorial`, e.g. `instruments`) sweep each",
        "factor at two levels in every combination; their sections give, per market, each",
        "factor's main effect on the gap (what switching it on adds, averaged over the other",
        "factors) and each two-way interaction (half the change of one factor's effect when",
        "the other is on), seed by seed with paired 95% t intervals (`sim.analysis.factorial`).",
        "",
        "## Findings", "", markdown_table(summary), "", shared_runs_note(labels), "",
        *([plausible_section, ""] if plausible_section else []),
        *([map_section, ""] if map_section else []),
    ]  # fmt: skip
    out.write_text("\n".join([*head, *sections]))
    return out


def _beside_verdict(summary: pd.DataFrame, plausible: pd.DataFrame) -> pd.DataFrame:
    """The findings with the column ``plausible markets`` after ``verdict`` ("—" where none)."""
    keys = ["experiment", "metric", "claim", "where"]
    merged = summary.merge(plausible[[*keys, "plausible markets"]], on=keys, how="left")
    merged["plausible markets"] = merged["plausible markets"].fillna("—")
    columns = list(summary.columns)
    columns.insert(columns.index("verdict") + 1, "plausible markets")
    return merged[columns]


def by_hypothesis(chosen: list[str]) -> list[str]:
    """Experiments in the order of their hypotheses (H1, H2, ... H11), then validations (V1)."""

    def order(name: str) -> tuple[bool, int]:  # hypotheses H1... first, validations V1... last
        label = compose([f"+experiment={name}"]).experiment.hypothesis
        return label[0] != "H", int(label[1:])

    return sorted(chosen, key=order)
