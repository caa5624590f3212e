"""Phase 1 (needs) drawn in one pass over the clients whose need arrives (`phases.need_arrives`).

Each arriving client draws the uniform of its next need's gap, keyed by its count of needs
(`phases.need_gap`); each that opens a job also draws that job's uniforms (`phases.OPEN_DRAWS`,
keyed by the week). Numpy turns them into weeks and sizes (logs, Box-Muller, a lognormal: no
transcendental in a kernel). Draw for draw, these are `sim.model.rng.Streams.uniform`'s.
"""

from __future__ import annotations

import numba
import numpy as np

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
