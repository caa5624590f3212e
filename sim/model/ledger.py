"""The ledger: every business counter and market tally with its type, and the columns they feed.

The businesses book their week through one method (`Firms.book`: one int64 or float64 array
entry per business, as the counter's type), the market through `MarketModel.count` (Python
ints while a run lasts); `sim.runs.record` turns them into steps.parquet and market.parquet with
the dtypes declared here. A market sum adds the businesses' rows with Python's compensated
`sum` of Python floats; every count is an int64 column.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

import numpy as np

#: A business's counters of one week: name -> type. Reset every week (`Firms.start_week`).
COUNTERS: dict[str, type] = {
    "revenue": float, "unpaid": float, "hours_worked": float, "difficult_hours": float,
    "screening_hours": float, "diagnosis_hours": float, "applicants": int, "accepted": int,
    "acquisitions": int, "declined": int, "completed": int, "abandoned": int,
    "satisfaction_sum": float,
    "retained": int, "referrals_made": int, "warnings_made": int, "referral_acquisitions": int,
    "accepted_difficulty_sum": float, "accepted_alignment_sum": float,
    # issue 23, jobs: what refunds, disputes, failed impossible jobs, rework and rush cost
    "refunds": float, "disputes": int, "failed": int, "rework_hours": float,
    "rush_hours": float, "billed_hours": float,
    # capacity that adjusts: the load it follows (work hours accepted), the cost of changing
    "accepted_hours": float, "hiring_cost": float, "layoff_cost": float,
    # refusals by reason (intake, `sim.model.intake.Refusal`): they sum to `declined`
    "declined_screen": int, "declined_full": int, "declined_deadline": int,
    "declined_prepayment": int,
    # the cost of capacity booked: salaries, ads, hiring and layoffs (sim.analysis.decompose)
    "fixed_costs": float,
}  # fmt: skip

#: The market's tallies of one week: name -> type (all counts). Reset every week.
TALLIES: dict[str, type] = dict.fromkeys(
    ("new_needs", "completed", "reviews", "rating_1", "rating_2", "rating_3", "rating_4",
     "rating_5", "wom_positive", "wom_negative", "unserved", "with_need", "adopters",
     "active_businesses", "abandoned", "gave_up"),
    int,
)  # fmt: skip


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The ratio num / den, NaN where den is 0."""
    return np.divide(num, den, out=np.full(len(den), np.nan), where=den != 0)


def _utilization(b) -> np.ndarray:
    return (b.hours_worked + b.screening_hours + b.diagnosis_hours) / b.capacity


def _idle_hours(b) -> np.ndarray:
    used = b.hours_worked + b.screening_hours + b.diagnosis_hours
    return np.maximum(b.capacity - used, 0.0)


def _per(counter: str, per: str) -> Callable:
    return lambda b: _ratio(getattr(b, counter), getattr(b, per))


def _column(dtype: str, read: Callable | str | None = None) -> tuple[str, Callable | None]:
    return dtype, attrgetter(read) if isinstance(read, str) else read


#: steps.parquet, one row per step and business: column -> (dtype, its values for the
#: businesses b, a `sim.model.business.Firms`). No reader means the `Firms` array of the
#: column's name.
STEP_COLUMNS: dict[str, tuple[str, Callable | None]] = {
    "step": _column("int64"),
    "business_id": _column("int64", "index"),
    "policy": _column("category", "policy_names"),
    "revenue": _column("float64"),
    "costs": _column("float64"),
    "profit": _column("float64"),
    "cash": _column("float64"),
    "reputation": _column("float64"),
    "n_reviews": _column("int64"),
    "applicants": _column("int64"),
    "accepted": _column("int64"),
    "declined": _column("int64"),
    "acquisitions": _column("int64"),
    "backlog_hours": _column("float64"),
    "utilization": _column("float64", _utilization),
    "difficult_hours_share": _column("float64", _per("difficult_hours", "hours_worked")),
    "completed": _column("int64"),
    "abandoned": _column("int64"),  # jobs whose clients left its queue out of patience
    "satisfaction": _column("float64", _per("satisfaction_sum", "completed")),
    "retention": _column("float64", _per("retained", "completed")),
    "referrals_made": _column("int64"),
    "warnings_made": _column("int64"),
    "referral_acquisitions": _column("int64"),
    "mean_difficulty": _column("float64", _per("accepted_difficulty_sum", "accepted")),
    "mean_alignment": _column("float64", _per("accepted_alignment_sum", "accepted")),
    "unpaid": _column("float64"),
    "active": _column("bool"),
    # issue 23, jobs: refunds (money, already taken off revenue), disputed late jobs, failed
    # impossible jobs, unbilled rework hours and billed hours of the jobs completed this week,
    # and overtime (rush) hours worked this week
    "refunds": _column("float64"),
    "disputes": _column("int64"),
    "failed": _column("int64"),
    "rework_hours": _column("float64"),
    "rush_hours": _column("float64"),
    "billed_hours": _column("float64"),
    # capacity that adjusts
    "capacity": _column("float64"),
    "idle_hours": _column("float64", _idle_hours),
    "accepted_hours": _column("float64"),
    "hiring_cost": _column("float64"),
    "layoff_cost": _column("float64"),
    # refusals by reason (intake): they sum to `declined`
    "declined_screen": _column("int64"),
    "declined_full": _column("int64"),
    "declined_deadline": _column("int64"),
    "declined_prepayment": _column("int64"),
    # the cost of capacity booked this week: salaries, ads, hiring and layoffs (the profit
    # gap's capacity part, `sim.analysis.decompose`)
    "fixed_costs": _column("float64"),
}

#: market.parquet columns that sum the week's business rows (in business order).
MARKET_SUMS: tuple[str, ...] = ("revenue", "costs", "profit", "unpaid")

#: market.parquet, one row per step: column -> dtype (the step, the tallies and the sums).
MARKET_COLUMNS: dict[str, str] = {
    "step": "int64",
    **{name: "int64" for name in ("adopters", "with_need", "unserved", "new_needs", "completed")},
    **dict.fromkeys(MARKET_SUMS, "float64"),
    **{name: "int64" for name in ("reviews", "rating_1", "rating_2", "rating_3", "rating_4",
                                  "rating_5", "wom_positive", "wom_negative",
                                  "active_businesses", "abandoned", "gave_up")},
}  # fmt: skip
assert set(MARKET_COLUMNS) == {"step", *TALLIES, *MARKET_SUMS}, "a tally without a column"


_READERS = {name: read or attrgetter(name) for name, (_, read) in STEP_COLUMNS.items()}
del _READERS["step"]


def business_columns(firms) -> dict[str, np.ndarray]:
    """The steps.parquet rows of every business after a week (but `step`), column by column.

    Copies: the arrays of `firms` change next week.
    """
    return {name: np.array(read(firms)) for name, read in _READERS.items()}
