"""Phase 6 compiled: each business works its queue first come, first served (`serve`).

One sequential pass over the jobs, sorted by business and, within a business, in queue
order: a queue's running sums are exactly those of ``np.cumsum`` over that queue alone, and
each business's totals are summed in the order of its jobs (as ``np.bincount``).
"""

from __future__ import annotations

import numba
import numpy as np

from sim.model.kernels.scatter import add_rows

#: The per-business hours `serve` books (`Firms` counters), in the order of its rows.
TOTALS = ("hours_worked", "difficult_hours", "rush_hours")


@numba.njit(cache=True, inline="always")
def _clip(hours: float, most: float) -> float:
    """``np.clip(hours, 0.0, most)``, as numpy computes it (max, then min)."""
    hours = hours if hours > 0.0 else 0.0
    return hours if hours < most else most


@numba.njit(cache=True)
def first_come(business, remaining_hours, capacity_hours, worked):
    """Hours worked on each job: each business's `capacity_hours` go to its jobs in order.

    A job gets what is left of its business's hours after the jobs before it in its queue
    asked for theirs, at most its `remaining_hours` (`business`: sorted; `capacity_hours`:
    one per business). Written into `worked` (one per job), which is returned.
    """
    asked = 0.0  # the hours asked so far in the current queue, the job's own included
    for i in range(len(business)):
        if i == 0 or business[i] != business[i - 1]:
            asked = 0.0
        asked += remaining_hours[i]
        worked[i] = _clip(capacity_hours[business[i]] - (asked - remaining_hours[i]),
                          remaining_hours[i])  # fmt: skip
    return worked


@numba.njit(cache=True)
def serve(
    business, remaining_hours, capacity_left, difficult, due, rush_capacity, float_counters,
    counter_rows, backlog_hours, worked,
):  # fmt: skip
    """Phase 6: hours worked on each job, and each business's hours and backlog.

    Each business works its queue first come, first served with `capacity_left` hours
    (`first_come`); then, with `rush_capacity` hours of overtime (a business's; all 0: none),
    the jobs still unfinished that are `due`, in the same order.

    Args:
        business: the business of each job (an entry of the per-business arrays), sorted.
        remaining_hours: work hours left of each job, each queue in first-come order.
        capacity_left: hours each business has for service this week.
        difficult: mask of the jobs of difficult clients.
        due: mask of the jobs due this week or overdue (read only with overtime).
        rush_capacity: overtime hours each business may work on the due jobs.
        float_counters: the businesses' counters (`Firms`), rows of one array.
        counter_rows: the rows of `TOTALS` in it, which gain each business's hours worked
            in capacity, of them on difficult jobs, and overtime hours (each summed in the
            order of the jobs, then added).
        backlog_hours: each business's backlog, set to the work left after service (hours).
        worked: set to the hours worked on each job, overtime included (an array of the
            caller's: `sim.model.kernels.intake.take` says why).

    This kernel is the one writer of these counters and of the backlog at service, for
    both engines.
    """
    n_b = len(capacity_left)
    first_come(business, remaining_hours, capacity_left, worked)
    late = np.zeros(len(business), dtype=np.bool_)
    for i in range(len(business)):
        late[i] = rush_capacity[business[i]] > 0 and due[i] and worked[i] < remaining_hours[i]
    late_rows = np.flatnonzero(late)
    rush = np.empty(len(late_rows))  # the unfinished jobs due, in their queues' order
    first_come(business[late_rows], remaining_hours[late_rows] - worked[late_rows],
               rush_capacity, rush)  # fmt: skip
    hours = np.zeros((len(TOTALS), n_b))
    hours_worked, difficult_hours, rush_hours = hours[0], hours[1], hours[2]
    backlog_hours[:] = 0.0
    for i in range(len(business)):
        b = business[i]
        hours_worked[b] += worked[i]
        if difficult[i]:
            difficult_hours[b] += worked[i]
    for k in range(len(late_rows)):
        i = late_rows[k]
        rush_hours[business[i]] += rush[k]
        worked[i] = worked[i] + rush[k]
    for i in range(len(business)):
        backlog_hours[business[i]] += remaining_hours[i] - worked[i]
    add_rows(float_counters, counter_rows, hours)


@numba.njit(cache=True)
def queues(
    job_provider, job_accept_week, job_remaining, difficulty, job_deadline, replicas, n_clients,
    span, ids, firm, provider, remaining, difficult_of, accept_week, deadline,
):  # fmt: skip
    """The vectorized engine's queues: every open job with a provider, in service order.

    Sorted by business (its entry in `Firms`: ``provider * replicas + market``), then
    acceptance week (< `span`), then client id: a stable counting sort, the order of
    ``np.argsort(key, kind="stable")``. Fills the caller's arrays, one entry per job (as
    many as clients with ``job_provider >= 0``): the client `ids`, `firm`, `provider`, and
    the jobs' `remaining` hours, clients' difficulty (`difficult_of`), `accept_week` and
    `deadline`, read from the clients' state arrays (``job_`` + name, `difficulty`).
    """
    n_firms = 0
    for i in range(len(job_provider)):
        n_firms = max(n_firms, (job_provider[i] + 1) * replicas)
    starts = np.zeros(n_firms * span + 1, dtype=np.int64)
    for market in range(replicas):  # (client i of market r: i // n_clients == r)
        for i in range(market * n_clients, (market + 1) * n_clients):
            if job_provider[i] >= 0:
                starts[(job_provider[i] * replicas + market) * span + job_accept_week[i] + 1] += 1
    for key in range(n_firms * span):
        starts[key + 1] += starts[key]
    for market in range(replicas):  # in id order: ties stay in id order
        for i in range(market * n_clients, (market + 1) * n_clients):
            if job_provider[i] < 0:
                continue
            entry = job_provider[i] * replicas + market
            key = entry * span + job_accept_week[i]
            row = starts[key]
            starts[key] += 1
            ids[row], firm[row], provider[row] = i, entry, job_provider[i]
            remaining[row], difficult_of[row] = job_remaining[i], difficulty[i]
            accept_week[row], deadline[row] = job_accept_week[i], job_deadline[i]
