"""The map's files: its tables, boxes, figure, manifest and summary, in one folder.

``samples.parquet`` (one row per sample and seed), ``points.parquet`` (one row per sample),
``boxes.csv`` (PRIM's boxes), ``map.png`` (or ``map.svg``), ``manifest.json`` (the command,
space, settings and versions) and ``summary.md`` (`markdown`). A file of the same name
that clientsim did not write is never replaced (`sim.runs.owned`); nothing is deleted.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from sim.analysis.markdown import markdown_table
from sim.errors import UserError
from sim.explore.boxes import BOX_COLUMNS, OUTCOMES
from sim.explore.figure import label, map_figure
from sim.explore.map import A, B, Map
from sim.runs.owned import record_outputs
from sim.runs.record import package_version, write_atomic, write_json, write_parquet

TABLES = ("samples.parquet", "points.parquet", "boxes.csv", "manifest.json", "summary.md")
FIGURE = "map"


def outputs(out: Path, figure_format: str = "png") -> list[Path]:
    """The files `write` writes into `out`."""
    return [out / name for name in TABLES] + [out / f"{FIGURE}.{figure_format}"]


def write(
    found: Map, out: Path, *, axes: tuple[str, str], command: str, figure_format: str = "png"
) -> list[Path]:
    """Write every file of the map `found` into `out`; return their paths (listed as ours)."""
    out.mkdir(parents=True, exist_ok=True)
    samples, points, boxes, manifest, summary, figure = outputs(out, figure_format)
    write_parquet(samples, found.samples)
    write_parquet(points, found.points)
    write_atomic(boxes, lambda tmp: found.boxes.to_csv(tmp, index=False))
    map_figure(found.points, found.boxes, axes, figure, title=title(found),
               spans=found.settings["space"])  # fmt: skip
    write_json(manifest, _manifest(found, command, axes))
    text = markdown(found, command=command)
    write_atomic(summary, lambda tmp: tmp.write_text(text))
    paths = [samples, points, boxes, manifest, summary, figure]
    record_outputs(paths)
    return paths


def read(out: Path) -> Map:
    """The map `write` wrote into `out`, read back (its settings hold the command).

    Raises:
        UserError: a file of the map is missing.
    """
    missing = [p.name for p in outputs(out)[:-1] if not p.is_file()]
    if missing:
        raise UserError(f"{out}: no {missing[0]}; is it a clientsim-explore --out folder?")
    manifest = json.loads((out / "manifest.json").read_text())
    boxes = pd.read_csv(out / "boxes.csv").astype(BOX_COLUMNS)
    settings = {**manifest["settings"], "command": manifest["command"]}
    return Map(pd.read_parquet(out / "samples.parquet"), pd.read_parquet(out / "points.parquet"),
               boxes, manifest["conditions"], manifest["parameters"], settings)  # fmt: skip


def title(found: Map) -> str:
    """The figure's title: what it shows and the map's size."""
    s = found.settings
    over = " over the plausible set" if found.parameters else ""
    return (f"Where does filtering pay? P({A} beats {B} in cumulative profit per business, "
            f"week {s['weeks']}){over}\n{s['samples']} markets x {s['seeds']} seeds, "
            f"{s['clients']:,} clients; "
            f"rectangles: PRIM boxes where it pays or loses "
            f"(dashed: density < {s['threshold']})")  # fmt: skip


def _manifest(found: Map, command: str, axes) -> dict:
    return {
        "command": command,
        "settings": found.settings,
        "conditions": found.conditions,
        "parameters": found.parameters,
        "axes": list(axes),
        "share_pays": found.share_pays,
        "versions": {
            "clientsim": package_version(),
            "ema_workbench": version("ema_workbench"),
            "python": platform.python_version(),
        },  # fmt: skip
    }


def boxes_table(boxes: pd.DataFrame) -> pd.DataFrame:
    """The boxes as a readable table: one row per box and restricted dimension."""
    shown = boxes.assign(dimension=boxes["dimension"].map(label),
                         bounds=[f"{lo:.3g} – {hi:.3g}" if pd.notna(lo) else "any"
                                 for lo, hi in zip(boxes["low"], boxes["high"], strict=True)],
                         samples=[f"{k} of {n}" for k, n in zip(boxes["hits"], boxes["n"],
                                                                strict=True)])  # fmt: skip
    return shown[["box", "dimension", "bounds", "quasi_p", "coverage", "density", "mass",
                  "samples"]]  # fmt: skip


def markdown(found: Map, *, command: str | None = None) -> str:
    """The map as markdown: the share of the space that pays, the boxes, the command.

    `command`: the command that made it (default: the one `read` found in its manifest).
    """
    s = found.settings
    command = command or s.get("command")
    pays = int(found.points["pays"].sum())
    gap = found.points["gap_mean"]
    lines = [
        f"**Where filtering pays.** In {found.share_pays:.0%} of the sampled markets ({pays} of "
        f"{len(found.points)}; {s['seeds']} seeds each, {s['clients']:,} clients, {s['weeks']} "
        f"weeks) the mean cumulative profit per {A} business exceeds that per {B} business at "
        f"the horizon (mean over seeds of the paired gap; an exited business's cumulative "
        f"profit is frozen at its exit and counts).",
        "",
        f"The mean gap per market: median {gap.median():,.0f}, from {gap.min():,.0f} to "
        f"{gap.max():,.0f} (currency units).",
        "",
        "Space: "
        + ", ".join(
            f"{k} in [{s['space'][k][0]:g}, {s['space'][k][1]:g}]" for k in found.conditions
        )
        + (
            f"; a plausible vector per sample ({len(found.parameters)} parameters)."
            if found.parameters
            else "; the model's defaults otherwise."
        ),  # fmt: skip
        "",
        f"PRIM's boxes of the markets where filtering pays, and of those where it loses (the "
        f"highest-coverage box of each peeling trajectory with density >= {s['threshold']}; "
        f"coverage: share of all markets of that outcome inside the box, density: share of the "
        f"box's markets with it, mass: the box's share of all markets; quasi_p: PRIM's test of a "
        f"dimension's restriction, above 0.05 it may be chance):",
    ]
    for outcome in OUTCOMES:
        boxes = found.boxes[found.boxes["outcome"] == outcome]
        lines += ["", f"Where filtering {outcome}:", ""]
        if boxes.empty:
            lines.append(f"No box: filtering {outcome} in no market.")
            continue
        formats = {"coverage": ".2f", "density": ".2f", "mass": ".2f", "quasi_p": ".2g"}
        lines.append(markdown_table(boxes_table(boxes), formats).rstrip("\n"))
        if not boxes["dense"].all():
            lines += ["", f"No box reaches density {s['threshold']}: the densest is shown."]
    if command:
        lines += ["", f"Made by `{command}`."]
    return "\n".join(lines) + "\n"
