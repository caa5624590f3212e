"""Scenario discovery: PRIM's boxes of conditions where filtering pays (ema_workbench).

PRIM (Friedman and Fisher 1999; ema_workbench's `prim.Prim`, lenient objective, peeling and
pasting alpha 0.05, least mass 0.05) peels the space toward the points where ``y`` is true,
giving a trajectory of ever smaller, denser boxes. **The rule** that picks one box of a
trajectory: the box of highest coverage whose density is at least `THRESHOLD` (0.8: in it,
filtering pays in at least four samples of five). When no box of the first trajectory reaches
it, its densest box is reported, marked ``dense`` false; no later box is reported unless it
reaches it. A next box is sought among the points outside the boxes found
(PRIM's covering), up to `MAX_BOXES`. Coverage is the share of all paying samples inside
the box, density the share of the box's samples that pay, mass the box's share of all
samples.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

THRESHOLD = 0.8
MAX_BOXES = 3
WHOLE = "(whole space)"  # the dimension of a box that restricts none
OUTCOMES = ("pays", "loses")  # boxes of the markets where filtering pays, and where it loses
#: The boxes table: one row per box and restricted dimension (its stats repeated).
BOX_COLUMNS = {
    "outcome": "string", "box": "int64", "dimension": "string", "low": "float64", "high": "float64",
    "coverage": "float64", "density": "float64", "mass": "float64", "n": "int64",
    "hits": "int64", "dense": "bool", "quasi_p": "float64",
}  # fmt: skip


def outcome_boxes(x: pd.DataFrame, pays: np.ndarray, **options) -> pd.DataFrame:
    """`find_boxes` of the markets where filtering pays, then of those where it loses.

    `outcome` says which; `options` are `find_boxes`'s.
    """
    pays = np.asarray(pays, dtype=bool)
    tables = [find_boxes(x, pays == (outcome == "pays"), **options).assign(outcome=outcome)
              for outcome in OUTCOMES]  # fmt: skip
    return pd.concat(tables, ignore_index=True)[list(BOX_COLUMNS)].astype(BOX_COLUMNS)


def find_boxes(
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    max_boxes: int = MAX_BOXES,
    spans: dict | None = None,
) -> pd.DataFrame:
    """PRIM's boxes where `y` holds, chosen by the module's rule (`BOX_COLUMNS`).

    Args:
        x: the conditions, one row per sample (numbers; an integer column is peeled as a
            float one: ema_workbench 3.0 fails pasting an integer column).
        y: whether each sample has the outcome sought (bool: filtering pays, or loses).
        threshold: the least density of a chosen box.
        max_boxes: at most this many successive boxes.
        spans: key -> (low, high) of the sampled space: a box's end that PRIM left at the
            samples' extreme value is reported as the space's end.

    Returns:
        The columns of `BOX_COLUMNS` but ``outcome``: one row per box (numbered from 1) and
        dimension it restricts, with the box's bounds on it (inclusive; an integer column's
        rounded inward to integers) and the box's coverage, density, mass, samples ``n``,
        samples with the outcome ``hits``, ``dense`` (density >= threshold) and ``quasi_p``
        (Bryant and Lempert's 2010 one-sided binomial test of the restriction, the larger of
        its ends': above 0.05, the restriction may be chance); a box that restricts nothing
        has one row, `WHOLE`, bounds NaN.
    """
    y = np.asarray(y, dtype=bool)
    integer = [c for c in x if pd.api.types.is_integer_dtype(x[c])]
    rows: list[dict] = []
    if y.any():
        prim = _prim(x.reset_index(drop=True).astype("float64"), y)
        for number in range(1, max_boxes + 1):
            box = _quiet(prim.find_box)
            if box is None:
                break
            trajectory = box.peeling_trajectory
            chosen = _choose(trajectory, threshold)
            dense = chosen is not None
            if not dense and number > 1:
                break
            chosen = chosen if dense else int(trajectory["density"].idxmax())
            box.select(chosen)
            stats = trajectory.iloc[chosen]
            limits = box.box_lims[chosen]
            restricted = [c for c in limits if not np.array_equal(limits[c], prim.box_init[c])]
            limits = _widened(limits, prim.box_init, spans or {})
            limits[integer] = np.vstack([np.ceil(limits[integer].iloc[0]),
                                         np.floor(limits[integer].iloc[1])])  # fmt: skip
            rows += _rows(number, limits[restricted], stats, dense, box.p_values[chosen])
            if not dense:
                break
    columns = {k: v for k, v in BOX_COLUMNS.items() if k != "outcome"}
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def _choose(trajectory: pd.DataFrame, threshold: float) -> int | None:
    """The index of the highest-coverage box of density >= threshold; None if none is."""
    dense = trajectory[trajectory["density"] >= threshold]
    if dense.empty:
        return None
    return int(dense["coverage"].idxmax())


def _widened(limits: pd.DataFrame, box_init: pd.DataFrame, spans: dict) -> pd.DataFrame:
    """`limits` with an end left at the samples' extreme replaced by the space's end."""
    limits = limits.copy()
    for key, span in spans.items():
        if key in limits:
            for end in (0, 1):
                if limits[key].iloc[end] == box_init[key].iloc[end]:
                    limits.loc[limits.index[end], key] = float(span[end])
    return limits


def _rows(number: int, limits: pd.DataFrame, stats, dense: bool, quasi_p: dict) -> list[dict]:
    """The table's rows of box `number`: its `limits` on the dimensions it restricts.

    `quasi_p`: dimension -> PRIM's quasi-p values of its two ends (-1: an end not restricted);
    a row gets the larger of its restricted ends'.
    """
    common = {"box": number, "dense": dense, "coverage": stats["coverage"],
              "density": stats["density"], "mass": stats["mass"], "n": int(stats["n"]),
              "hits": int(stats["k"])}  # fmt: skip
    if limits.columns.empty:
        return [{**common, "dimension": WHOLE, "low": np.nan, "high": np.nan, "quasi_p": np.nan}]
    return [
        {
            **common,
            "dimension": c,
            "low": float(limits[c].iloc[0]),
            "high": float(limits[c].iloc[1]),
            "quasi_p": max((float(p) for p in quasi_p.get(c, []) if p >= 0), default=np.nan),
        }
        for c in limits
    ]


def _prim(x: pd.DataFrame, y: np.ndarray):
    """ema_workbench's PRIM on (x, y), imported here: ema_workbench is heavy and noisy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ipyparallel not installed"
        from ema_workbench.analysis import prim
    return _quiet(prim.Prim, x, y)


def _quiet(function, *args):
    """Call `function` with ema_workbench's info logging and its pandas warnings held back."""
    logger = logging.getLogger("EMA")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' deprecations, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            return function(*args)
    finally:
        logger.setLevel(level)
