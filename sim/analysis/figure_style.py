"""What every figure of clientsim shares: colours, titles, categorical axes and saving.

Built on ``matplotlib.figure.Figure`` (Agg canvas): nothing here touches pyplot's state.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter
from PIL import Image

POLICY_COLOURS = {
    "serve_all": "#4477aa",
    "fit_filter": "#ee6677",
    "picky": "#228833",
    "hard_sell": "#ccbb44",
}
FALLBACK_COLOURS = ("#66ccee", "#aa3377", "#bbbbbb", "#000000")
DPI = 100  # keeps a PNG well under 300 kB
CONFIDENCE = 0.95


def policy_colour(policy: str) -> str:
    """The colour of a policy in every figure; unknown policies get a stable fallback."""
    if policy in POLICY_COLOURS:
        return POLICY_COLOURS[policy]
    return FALLBACK_COLOURS[sum(map(ord, policy)) % len(FALLBACK_COLOURS)]


def short_key(key: str) -> str:
    """``policies.fit_filter.threshold`` → ``fit_filter.threshold``: enough to tell apart."""
    parts = key.split(".")
    return ".".join(parts[1:]) if len(parts) > 2 else key


def point_label(values: dict) -> str:
    """Swept values as ``key=value, ...`` with short keys (a legend entry, a panel title)."""
    return ", ".join(f"{short_key(key)}={value}" for key, value in values.items())


_ENG = EngFormatter(sep="")


def _number(x: float, position=None) -> str:
    """A tick: 1.25M or 250k from a thousand up, else the plain number (0.1, not 100m)."""
    return _ENG.format_eng(x) if abs(x) >= 1000 else f"{x:.4g}"


def number_ticks() -> FuncFormatter:
    """The tick formatter of every quantity axis: money in k and M, shares and weeks as they are."""
    return FuncFormatter(_number)


def design_order(design: pd.DataFrame, x: str | None = None) -> pd.DataFrame:
    """Design points in one order for every figure: by their swept values (False before True).

    The other keys first and `x` (an experiment's x axis) last, so that x rises within each
    value of the others.
    """
    keys = [k for k in design.columns if k != x] + [k for k in design.columns if k == x]
    return design.sort_values(keys, kind="stable") if keys else design


def categorical_ticks(ax, design: pd.DataFrame) -> None:
    """Categorical x axis: a tick per row with its values, the keys in the axis label."""
    keys = list(design.columns)
    ticks = ["\n".join(str(v) for v in row) for row in design.itertuples(index=False)]
    ax.set_xticks(range(len(design)), ticks if keys else ["all runs"] * len(design))
    ax.set_xlabel(" / ".join(map(short_key, keys)))
    ax.set_xlim(-0.6, len(design) - 0.4)


def title(fig: Figure, experiment: dict, what: str) -> None:
    """The figure's title: the experiment's hypothesis and question, then `what` it shows."""
    question = experiment.get("question") or experiment.get("name", "")
    head = f"{experiment.get('hypothesis', '')} {question}".strip()
    width = int(fig.get_figwidth() * 12)  # characters of a medium font per inch, about
    lines = [textwrap.fill(head, width), textwrap.fill(what, width)]
    fig.suptitle("\n".join(lines), fontsize="medium")


def save_figure(fig: Figure, directory: Path, name: str, formats) -> list[Path]:
    """Save `fig` as `directory/name.<format>` in each format; return the paths."""
    paths = [directory / f"{name}.{fmt}" for fmt in formats]
    for path in paths:
        if path.suffix == ".png":
            _save_png(fig, path)
        else:
            fig.savefig(path, dpi=DPI, metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths


def _save_png(fig: Figure, path: Path) -> None:
    """A PNG of 256 colours: a third of the size of the full-colour one, and looks the same."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    Image.open(buffer).convert("RGB").quantize(256).save(path, optimize=True)
