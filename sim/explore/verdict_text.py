"""The verdicts over the plausible set in words: a command's text and docs/RESULTS.md's parts.

The shares, intervals and rank correlations are `sim.explore.verdicts`'; here they become the
table `clientsim-experiment plausible` prints (`text`), the column beside the findings
(`findings_column`) and the section "Over the plausible set" (`results_section`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.analysis import stats as analysis
from sim.analysis.markdown import markdown_table
from sim.explore.verdicts import (
    EVERY_POINT,
    KEYS,
    MIN_VECTORS,
    claim_rows,
    sensitivity,
    shares,
)


def share_text(row) -> str:
    """A share and its interval in percent, e.g. "85% [62%, 97%]"."""
    return f"{row['share']:.0%} [{row['low']:.0%}, {row['high']:.0%}]"


def defaults_verdicts(sweep_dir: Path) -> pd.DataFrame:
    """The verdict of each claim and point at the defaults: a finished sweep's, by `claim_rows`.

    Empty (with `KEYS` and ``verdict``) when `sweep_dir` holds no finished sweep.
    """
    if not (sweep_dir / "manifest.json").is_file():
        return pd.DataFrame(columns=[*KEYS, "verdict"])
    exp = analysis.load_manifest(sweep_dir)["experiment"]
    found = pd.DataFrame(claim_rows(analysis.load_runs(sweep_dir), exp))
    return found[[*KEYS, "verdict", "seeds"]]


def summary_table(
    table: pd.DataFrame, parameters: list[str], defaults: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The shares in words, one row per claim and point, with the most sensitive parameters.

    With `defaults` (`defaults_verdicts`), each row's verdict at the defaults beside it.
    """
    found = shares(table).merge(sensitivity(table, parameters), on=KEYS, how="left")
    at_defaults = pd.Series("—", index=found.index)
    if defaults is not None and len(defaults):
        named = found[KEYS].merge(defaults, on=KEYS, how="left")
        at_defaults = [f"{v} ({s:.0f} seeds)" if isinstance(v, str) else "—"
                       for v, s in zip(named["verdict"], named["seeds"], strict=True)]  # fmt: skip
    words = pd.DataFrame({
        "metric": found["metric"], "claim": found["claim"], "where": found["where"],
        "point": found["point"].replace(EVERY_POINT, "the claim"),
        "at the defaults": at_defaults,
        "holds in (share [95% CI])": [share_text(r) for _, r in found.iterrows()],
        "vectors × seeds": [f"{n} × {s}" for n, s in zip(found["vectors"], found["seeds"],
                                                          strict=True)],
        "supported in vector": [f"{s} of {n}" for s, n in zip(found["supported"],
                                                              found["vectors"], strict=True)],
        "most sensitive to (Spearman)": found["sensitive"].replace("", "—"),
    })  # fmt: skip
    if defaults is None:
        words = words.drop(columns=["at the defaults"])
    return words.drop(columns=["where"]) if (words["where"] == "").all() else words


def sensitivity_paragraph(table: pd.DataFrame, parameters: list[str]) -> str:
    """A few sentences: for each claim (its own row), the parameters it is most sensitive to."""
    found = sensitivity(table, parameters)
    own = found[found["point"] == EVERY_POINT]
    if len(table) and table["vector"].nunique() < MIN_VECTORS:
        return f"Too few vectors (under {MIN_VECTORS}) to name the most sensitive parameters."
    parts = [f"*{r['metric']}: {r['claim']}*" + (f" ({r['where']})" if r["where"] else "")
             + f": {r['sensitive'] or '—'}" for _, r in own.iterrows()]  # fmt: skip
    return (
        "Most sensitive parameters within the set (Spearman's rho of the per-vector "
        "statistic with each parameter, largest |rho| first): " + "; ".join(parts) + "."
    )


def text(
    table: pd.DataFrame, parameters: list[str], defaults: pd.DataFrame | None, swept: list[str]
) -> str:
    """The shares over the plausible vectors as text: table, how to read it, sensitivity."""
    lines = [
        "", markdown_table(summary_table(table, parameters, defaults)), "",
        "holds in: the share of the plausible vectors drawn where the claim holds on the mean "
        "over their seeds (sim.explore.verdicts); [95% CI]: Clopper–Pearson, over the vectors "
        "sampled; supported in vector: the vector's own verdict on its seeds; at the defaults: "
        "the sweep results/NAME/make-results, if there is one.",
        sensitivity_paragraph(table, parameters),
    ]  # fmt: skip
    if swept:
        lines.append(f"Swept by the experiment, so not set from the vectors: {', '.join(swept)}.")
    return "\n".join(lines)


# --- docs/RESULTS.md ----------------------------------------------------------------------


def parameters_of(table: pd.DataFrame) -> list[str]:
    """The parameters of a per-vector gaps table: its columns between ``vector`` and ``claim``."""
    columns = list(table.columns)
    return columns[columns.index("vector") + 1 : columns.index("claim")]


def findings_column(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per experiment and claim (its own row): "holds in X% of plausible markets [lo, hi]".

    Args:
        tables: experiment name -> its per-vector gaps (`vector_gaps`).

    Returns:
        ``experiment``, ``metric``, ``claim``, ``where`` and ``plausible markets``, to join
        beside the verdicts at the defaults.
    """
    rows = []
    for name, table in tables.items():
        found = shares(table)
        for _, row in found[found["point"] == EVERY_POINT].iterrows():
            rows.append({"experiment": name, "metric": row["metric"], "claim": row["claim"],
                         "where": row["where"],
                         "plausible markets": f"holds in {share_text(row)} "
                         f"({row['vectors']} vectors × {row['seeds']} seeds)"})  # fmt: skip
    return pd.DataFrame(rows, columns=["experiment", *KEYS[:3], "plausible markets"])


def results_section(tables: dict[str, pd.DataFrame], command: str) -> str:
    """The section of docs/RESULTS.md on the verdicts over the plausible set.

    Args:
        tables: experiment name -> its per-vector gaps (`vector_gaps`).
        command: the command that ran them, as the reader would type it.
    """
    lines = [
        "## Over the plausible set", "",
        "The verdicts above are computed at the default parameters, one point of the",
        "calibration. Here each headline experiment's design ran again at parameter vectors",
        "drawn by weight from the plausible set (`sim.validation.plausible`: vectors whose",
        "stylised facts are consistent with the targets), each vector's values set on every",
        "design point, with a few seeds each (`sim.explore.verdicts`, run by",
        f"`{command}`). A sign claim holds in a vector when the mean gap over its seeds",
        "lies on the predicted side (at every design point, for the claim's own row); a trend",
        "claim when the mean of the per-seed slopes has the predicted sign; for `instruments`,",
        "an instrument's main effect on the gap holds when positive. The share of vectors",
        "where it holds has a 95% Clopper–Pearson interval, which reflects the vectors sampled",
        "(how well they pin the share of the set), not the set's own uncertainty. *supported",
        "in vector* counts the vectors whose own verdict, on their few seeds, is supported.", "",
    ]  # fmt: skip
    for name, table in tables.items():
        parameters = parameters_of(table)
        lines += [f"### {name}", "", markdown_table(summary_table(table, parameters)), "",
                  sensitivity_paragraph(table, parameters), ""]  # fmt: skip
    return "\n".join(lines)
