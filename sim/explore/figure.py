"""The map's figure: the probability that filtering pays over two axes, PRIM's boxes drawn."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim.analysis.figure_style import save_figure, short_key

#: Axis labels with units for the default space's keys; another key shows its short name.
LABELS = {
    "market.demand_supply_ratio": "demand/supply (hours wanted per hour offered)",
    "clients.segments.difficult.share": "share of difficult clients (0-1)",
    "clients.wom.p_positive": "P(positive story) per unit talkativeness",
    "market.policy_mix.fit_filter": "fit_filter businesses of ten (count)",
}
DEFAULT_AXES = ("market.demand_supply_ratio", "market.policy_mix.fit_filter")
MAX_BINS = 10
#: Boxes 1, 2, 3 of each outcome: visible on red, white and blue.
BOX_COLOURS = {"pays": ("black", "#aa3377", "#882255"), "loses": ("#ddcc77", "#44bb99", "#ee8866")}
EMPTY = "#dddddd"  # a bin without samples


def label(key: str) -> str:
    """The axis label of `key`."""
    return LABELS.get(key, short_key(key))


def edges(span: tuple[float, float], integer: bool, bins: int) -> np.ndarray:
    """Bin edges over `span` (low, high): one bin per integer, else `bins` equal bins."""
    if integer:
        return np.arange(span[0] - 0.5, span[1] + 1.0)
    return np.linspace(span[0], span[1], bins + 1)


def probability_grid(points: pd.DataFrame, ax_x, ax_y, spans: dict) -> tuple[np.ndarray, ...]:
    """(x edges, y edges, share of samples that pay per bin; NaN where a bin is empty).

    `spans`: key -> (low, high) of the sampled space; an axis not in it spans its values.
    """
    bins = int(np.clip(np.sqrt(len(points) / 4), 2, MAX_BINS))
    ex, ey = (
        edges(spans.get(k, (points[k].min(), points[k].max())),
              pd.api.types.is_integer_dtype(points[k]), bins)
        for k in (ax_x, ax_y)
    )  # fmt: skip
    pays = points["pays"].astype(float)
    total, _, _ = np.histogram2d(points[ax_x], points[ax_y], bins=[ex, ey])
    paying, _, _ = np.histogram2d(points[ax_x], points[ax_y], bins=[ex, ey], weights=pays)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, paying / total, np.nan)
    return ex, ey, share


def map_figure(points, boxes, axes, path: Path, *, title: str, spans: dict) -> None:
    """Draw the binned share of samples that pay over `axes`, the samples and the boxes.

    Args:
        points: the map's points (`sim.explore.map.Map.points`).
        boxes: its boxes (`sim.explore.boxes.BOX_COLUMNS`), drawn projected on the axes.
        axes: the keys of the x and y axes.
        path: the figure's file (.png or .svg).
        title: the figure's title.
        spans: key -> (low, high) of the sampled space: the axes' extent.
    """
    ax_x, ax_y = axes
    ex, ey, share = probability_grid(points, ax_x, ax_y, spans)
    fig = Figure(figsize=(7.5, 5.5))
    ax = fig.add_subplot()
    cmap = colormaps["RdBu"].with_extremes(bad=EMPTY)
    mesh = ax.pcolormesh(ex, ey, share.T, cmap=cmap, vmin=0, vmax=1, shading="flat")
    fig.colorbar(mesh, ax=ax, label="P(fit_filter beats serve_all): share of samples in bin")
    for pays, marker in ((True, "o"), (False, "x")):
        shown = points[points["pays"] == pays]
        what = "pays" if pays else "does not pay"
        ax.scatter(shown[ax_x], shown[ax_y], s=10, marker=marker, linewidths=0.8, color="black",
                   label=f"sample where filtering {what}")  # fmt: skip
    integer = [pd.api.types.is_integer_dtype(points[k]) for k in axes]
    for (outcome, number), box in boxes.groupby(["outcome", "box"], sort=False):
        _draw_box(ax, f"{outcome} box {number}", box, (ex, ey), (ax_x, ax_y), integer)
    ax.set_xlim(ex[0], ex[-1])
    ax.set_ylim(ey[0], ey[-1])
    ax.set_xlabel(label(ax_x))
    ax.set_ylabel(label(ax_y))
    ax.set_title("grey: no sample in the bin", fontsize="small")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2)
    width = int(fig.get_figwidth() * 12)  # characters of a medium font per inch, about
    lines = [textwrap.fill(line, width) for line in title.splitlines()]
    fig.suptitle("\n".join(lines), fontsize="medium")
    fig.tight_layout()
    save_figure(fig, path.parent, path.stem, [path.suffix.lstrip(".")])


def _draw_box(ax, name: str, box: pd.DataFrame, grid, axes, integer) -> None:
    """A box's projection on the two axes (a dimension it leaves free: the full span).

    On an integer axis the box spans the bins of the integers inside its bounds.
    """
    bounds = box.set_index("dimension")
    corners = []
    for key, edge, whole in zip(axes, grid, integer, strict=True):
        low = bounds.loc[key, "low"] if key in bounds.index else edge[0]
        high = bounds.loc[key, "high"] if key in bounds.index else edge[-1]
        if whole and key in bounds.index:
            low, high = math.ceil(low) - 0.5, math.floor(high) + 0.5
        corners.append((max(low, edge[0]), min(high, edge[-1])))
    (x0, x1), (y0, y1) = corners
    first = box.iloc[0]
    colours = BOX_COLOURS[first["outcome"]]
    colour = colours[(first["box"] - 1) % len(colours)]
    what = f"{name}: density {first['density']:.2f}, coverage {first['coverage']:.2f}"
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linewidth=2,
                           edgecolor=colour, linestyle="-" if first["dense"] else "--",
                           label=what))  # fmt: skip
