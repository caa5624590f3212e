"""One markdown writer: a table as GitHub markdown (docs/RESULTS.md, facts.md, morris.md...)."""

from __future__ import annotations

import math

import pandas as pd


def cell(value: object, spec: str | None = None) -> str:
    """One cell: `value` in the format `spec`, else a float to three significant digits.

    Without `spec`, a float of 1,000 or more shows no decimals and thousands are separated;
    NaN (and None) is an empty cell.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """`frame` as a GitHub markdown table, numeric columns right-aligned.

    Args:
        frame: the rows; its column names are the header.
        formats: a format spec per column, e.g. ``{"mu_star": ",.0f"}`` (others: `cell`).

    Returns:
        The table, each line ending in a newline.
    """
    formats = formats or {}
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]  # fmt: skip
    rows = [
        [cell(value, formats.get(column)) for column, value in zip(frame.columns, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    rule = ["---:" if n else "---" for n in numeric]
    lines = [list(map(str, frame.columns)), rule, *rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)
