"""Phase 9 compiled: every business's accounts of the week, and its capacity for the next.

One pass over the businesses (a few dozen): what were some forty numpy calls on arrays of
a few dozen entries, most of a week's fixed cost at small markets. The formulas are those
of `sim.model.mechanics` (`smoothed`, `adjusted_capacity`, `capacity_change_costs`,
compiled by `formulas.scalar`), in the same order.
"""

from __future__ import annotations

import numba

from sim.model import mechanics
from sim.model.kernels.formulas import scalar

smoothed = scalar(mechanics.smoothed)
adjusted_capacity = scalar(mechanics.adjusted_capacity)
capacity_change_costs = scalar(mechanics.capacity_change_costs)

#: The counters `close` reads or books (`Firms` rows), in this order.
COUNTERS = ("accepted_hours", "screening_hours", "diagnosis_hours", "hours_worked", "rush_hours",
            "hiring_cost", "layoff_cost", "revenue", "fixed_costs")  # fmt: skip


@numba.njit(cache=True)
def close(
    active, capacity, start_capacity, expected_hours, planned_capacity, backlog_hours,
    fixed_cost, credit_limit, cash, weeks_below, costs, profit, float_counters, rows, exiting,
    capacity_rule, pay, exit_after,
):  # fmt: skip
    """Close the week of every business (`Firms.close_accounts`), in place.

    With capacity that adjusts (`capacity_rule[0]` > 0), each active business first plans
    next week's capacity: its week's load (accepted work, screening and diagnosis hours) is
    smoothed into `expected_hours` over `demand_weeks`; `planned_capacity` moves toward the
    desired capacity (`mechanics.adjusted_capacity`); hiring or layoff costs are booked
    this week (`mechanics.capacity_change_costs`). `capacity_rule`: (adjust, demand_weeks,
    target_backlog_weeks, adjust_weeks, min_share, max_share, hire_cost_weeks,
    layoff_cost_weeks).

    Then an active business pays wages for the hours worked (overtime at its premium),
    its fixed cost and any change of capacity (`costs`), and books its `profit` into its
    `cash`; below its `credit_limit` for `exit_after` weeks in a row it exits (`exiting`
    set, `active` cleared). `pay`: (wage, salary + wage, overtime pay an hour or 0: none).
    `float_counters` holds the counters of `COUNTERS` at `rows`.
    """
    accepted, screened, diagnosed, worked_hours, rush_hours = (
        rows[0],
        rows[1],
        rows[2],
        rows[3],
        rows[4],
    )
    hiring_row, layoff_row, revenue, fixed_row = rows[5], rows[6], rows[7], rows[8]
    wage, weekly_pay, rush_pay = pay[0], pay[1], pay[2]
    counters = float_counters
    for b in range(len(active)):
        if capacity_rule[0] > 0:
            load = counters[accepted, b] + counters[screened, b] + counters[diagnosed, b]
            if active[b]:
                expected_hours[b] = smoothed(expected_hours[b], load, capacity_rule[1])
                planned_capacity[b] = adjusted_capacity(
                    capacity[b], expected_hours[b], backlog_hours[b], start_capacity[b],
                    capacity_rule[2], capacity_rule[3], capacity_rule[4], capacity_rule[5],
                )  # fmt: skip
            else:
                planned_capacity[b] = capacity[b]
            hiring, layoff = capacity_change_costs(
                planned_capacity[b] - capacity[b], weekly_pay, capacity_rule[6], capacity_rule[7]
            )
            counters[hiring_row, b] += hiring
            counters[layoff_row, b] += layoff
        worked = counters[worked_hours, b] + counters[screened, b] + counters[diagnosed, b]
        wages = wage * worked
        if rush_pay > 0:
            wages = wages + rush_pay * counters[rush_hours, b]
        changing = counters[hiring_row, b] + counters[layoff_row, b]
        costs[b] = wages + fixed_cost[b] + changing if active[b] else 0.0
        counters[fixed_row, b] += fixed_cost[b] + changing if active[b] else 0.0
        profit[b] = counters[revenue, b] - costs[b] if active[b] else 0.0
        cash[b] += profit[b]
        if active[b]:
            weeks_below[b] = weeks_below[b] + 1 if cash[b] < -credit_limit[b] else 0
        exiting[b] = active[b] and weeks_below[b] >= exit_after
        if exiting[b]:
            active[b] = False
