"""Phase 1 (needs) in two passes over the clients whose need arrives (`phases.need_arrives`).

`draw`: each arriving client draws the uniform of its next need's gap, keyed by its count of
needs (`phases.need_gap`); each that opens a job also draws that job's uniforms
(`phases.OPEN_DRAWS`, keyed by the week). Draw for draw, these are
`sim.model.rng.Streams.uniform`'s. Numpy turns them into logs, normals (Box-Muller) and the
jobs' lognormal size factors: no transcendental in a kernel. `open_jobs` then sizes the
jobs (`sim.model.mechanics.scaled_size` and `misdiagnosed_share`, compiled) and sets their
deadlines. `counts` counts the market's needs at the end of the week (phase 9).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from sim.model import mechanics
from sim.model.kernels import draws


@numba.njit(cache=True, inline="always")
def _uniform(bases: np.ndarray, n: int, client: int) -> float:
    """`draws.uniform` of the client's market, from its key of (stream, week, slot) per market."""
    if bases.size == 1:  # one market: no division
        return draws.unit(draws.mix(bases[0] + np.uint64(client) * draws.GOLDEN))
    market = client // n
    return draws.unit(draws.mix(bases[market] + np.uint64(client - market * n) * draws.GOLDEN))


@numba.njit(cache=True)
def draw(ids, count, opening, week, need_keys, job_keys, slots, n, gap_u, job_u):
    """The uniforms of the arriving clients' next needs and of the jobs they open, in place.

    Args:
        ids: the arriving clients' ids (int64), each in its own market (``id // n``).
        count: each one's count of needs, this one included (int32; one for all if of size 1):
            it keys the need's draw, as the week keys other draws.
        opening: the ids of those of them who open a job (int64).
        week: this week (it keys the jobs' draws).
        need_keys: the `need` stream's key per market (`Streams.kernel_keys`).
        job_keys: the key per market of each job draw's stream, shape (draws, markets).
        slots: each job draw's slot (int64).
        n: clients per market.
        gap_u: out, one uniform per arriving client: slot 0 of `need` at its `count`.
        job_u: out, shape (draws, len(opening)): draw k of the job `opening[j]` opens.
    """
    need_bases = np.empty((count.max() + 1, need_keys.size), dtype=np.uint64)  # each count once
    for k in range(need_bases.shape[0]):
        for r in range(need_keys.size):
            need_bases[k, r] = draws.base(need_keys[r], k, 0)
    one_count = count.size == 1
    for i in range(ids.size):
        gap_u[i] = _uniform(need_bases[count[0] if one_count else count[i]], n, ids[i])
    for d in range(slots.size):
        job_bases = np.empty(job_keys.shape[1], dtype=np.uint64)
        for r in range(job_bases.size):
            job_bases[r] = draws.base(job_keys[d, r], week, slots[d])
        for j in range(opening.size):
            job_u[d, j] = _uniform(job_bases, n, opening[j])


class JobTerms(NamedTuple):
    """The terms of `sim.config.schema.Jobs` the formulas read: sizes (hours), deadline (weeks)."""

    median_hours: float
    misdiagnosed_low: float
    misdiagnosed_high: float
    deadline_weeks: int

    @classmethod
    def of(cls, jobs) -> JobTerms:
        """The terms of the `market.jobs` config."""
        return cls(float(jobs.median_hours), float(jobs.misdiagnosed_low),
                   float(jobs.misdiagnosed_high), int(jobs.deadline_weeks))  # fmt: skip


#: `mechanics.scaled_size` and `mechanics.misdiagnosed_share` compiled: the very formulas.
_scaled = numba.njit(cache=True, inline="always")(mechanics.scaled_size)
_share = numba.njit(cache=True, inline="always")(mechanics.misdiagnosed_share)


@numba.njit(cache=True)
def open_jobs(ids, factor, u, scale, misdiagnosis, unrealistic, terms, true, stated, deadline):
    """The sizes and deadlines of the jobs the clients `ids` open, in place.

    A job's true size is the client's `scale` x the median x its lognormal `factor`; a
    misdiagnosed one (row 2 of its uniforms `u` below the client's `misdiagnosis`) is stated
    as a share of it (row 3); an impossible one (row 4 below the client's `unrealistic`) has
    deadline 0, any other `terms.deadline_weeks`.

    Args:
        ids: the clients' ids (int64): their rows of the traits.
        factor: each job's size factor (`mechanics.size_factor`).
        u: the jobs' uniforms of `phases.OPEN_DRAWS`, shape (draws, len(ids)).
        scale: every client's size (trait).
        misdiagnosis: every client's probability of misdiagnosing its job (trait).
        unrealistic: every client's probability of asking for an impossible deadline (trait).
        terms: `JobTerms`.
        true: out: the jobs' true sizes (hours).
        stated: out: their stated sizes (hours).
        deadline: out: their deadlines (weeks; 0 impossible).
    """
    for j in range(ids.size):
        client = ids[j]
        true[j] = _scaled(factor[j], scale[client], terms)
        wrong = u[2, j] < misdiagnosis[client]  # `mechanics.stated_size`
        stated[j] = true[j] * _share(u[3, j], terms) if wrong else true[j]
        deadline[j] = 0 if u[4, j] < unrealistic[client] else terms.deadline_weeks


@numba.njit(cache=True)
def counts(job_open, job_provider, first_job_week, n, out):
    """The market's counts of needs, in one pass over the clients, into `out` (shape (3, markets)).

    Per market (clients ``r * n`` to ``(r + 1) * n - 1``): row 0 the clients with an unplaced
    job (open, no provider), row 1 those with an open job, row 2 those ever served (a first
    job done: `first_job_week` >= 0).
    """
    for r in range(out.shape[1]):
        market = slice(r * n, (r + 1) * n)  # (a loop from 0 over slices is vectorised)
        open_, provider, first = job_open[market], job_provider[market], first_job_week[market]
        unplaced, with_job, served = np.int64(0), np.int64(0), np.int64(0)
        for i in range(open_.size):
            with_job += open_[i]
            unplaced += open_[i] & (provider[i] < 0)
            served += first[i] >= 0
        out[0, r], out[1, r], out[2, r] = unplaced, with_job, served
