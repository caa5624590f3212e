"""Tests of the compiled kernels' primitives (sim.model.kernels): draws identical to numpy's."""

import numba
import numpy as np
import pytest

from sim.model.kernels import draws as kernels
from sim.model.rng import BatchStreams, Streams


@numba.njit
def uniforms_of(keys, n, week, slot, clients):
    out = np.empty(len(clients))
    for i in range(len(clients)):
        out[i] = kernels.uniform(keys, n, week, slot, clients[i])
    return out


@pytest.mark.parametrize("week, slot", [(0, 0), (7, 3), (259, 4095), (100_000, 1 << 40)])
def test_a_kernel_draws_the_very_uniform_of_the_streams(week, slot):
    streams = Streams(2024)
    clients = np.random.default_rng(1).integers(0, 1 << 31, 5_000)
    for stream in ("need", "wom", "choice"):
        keys, n = streams.kernel_keys(stream)
        expected = streams.uniform(stream, week, clients, slot)
        assert np.array_equal(uniforms_of(keys, n, week, slot, clients), expected)


def test_a_kernel_draws_each_batch_member_from_its_own_market():
    n = 1_000
    batch = BatchStreams([5, 0, 31], n)
    clients = np.arange(3 * n)
    keys, per_market = batch.kernel_keys("wom")
    drawn = uniforms_of(keys, per_market, 12, 6, clients)
    assert np.array_equal(drawn, batch.uniform("wom", 12, clients, 6))
    for r, seed in enumerate([5, 0, 31]):
        alone = Streams(seed).uniform("wom", 12, np.arange(n), 6)
        assert np.array_equal(drawn[r * n : (r + 1) * n], alone)


# --- intake and service (phases 4-6) ---
from sim.model.kernels import service  # noqa: E402


def test_a_queue_is_served_first_come_up_to_its_capacity():
    one = np.zeros(3, dtype=np.int64)
    np.testing.assert_array_equal(
        service.first_come(one, np.array([5.0, 3.0, 4.0]), np.array([7.0])), [5.0, 2.0, 0.0]
    )
    np.testing.assert_array_equal(
        service.first_come(one[:2], np.array([5.0, 3.0]), np.array([0.0])), [0.0, 0.0]
    )
    assert service.first_come(one[:0], np.zeros(0), np.array([10.0])).size == 0


@pytest.mark.parametrize("queues", [[5, 0, 7, 1], [0, 0, 3000, 1]])
def test_each_queue_is_served_bit_for_bit_as_numpy_serves_it_alone(queues):
    rng = np.random.default_rng(3)
    business = np.repeat(np.arange(len(queues)), queues)
    remaining = rng.uniform(0.1, 20, len(business))
    capacity = rng.uniform(0, 60, len(queues))
    worked = service.first_come(business, remaining, capacity)
    for b in range(len(queues)):
        mine = remaining[business == b]  # each queue's own running sums (np.cumsum), in order
        alone = np.clip(capacity[b] - (np.cumsum(mine) - mine), 0.0, mine)
        np.testing.assert_array_equal(worked[business == b], alone)
        assert worked[business == b].sum() <= capacity[b] * (1 + 1e-12)


def test_overtime_goes_to_the_unfinished_jobs_due_in_queue_order():
    business = np.array([0, 0, 0, 1], dtype=np.int64)
    remaining = np.array([4.0, 6.0, 5.0, 3.0])
    due = np.array([False, True, True, True])
    counters, backlog, worked = np.zeros((3, 2)), np.full(2, 99.0), np.empty(4)
    service.serve(
        business, remaining, np.array([8.0, 1.0]), np.array([True, True, False, False]), due,
        np.array([3.0, 0.0]), counters, np.array([0, 1, 2]), backlog, worked,
    )  # business 1 works no overtime  # fmt: skip
    hours, difficult, rush = counters
    # business 0: 4 + 4 hours in capacity, then 2 of overtime finish job 1, 1 goes to job 2
    np.testing.assert_array_equal(worked, [4.0, 6.0, 1.0, 1.0])
    np.testing.assert_array_equal(hours, [8.0, 1.0])
    np.testing.assert_array_equal(difficult, [8.0, 0.0])
    np.testing.assert_array_equal(rush, [3.0, 0.0])
    np.testing.assert_array_equal(backlog, [4.0, 2.0])


def test_numba_floor_division_of_hours_is_numpys():
    @numba.njit
    def floor_divide(a, b):
        out = np.empty(len(a))
        for i in range(len(a)):
            out[i] = a[i] // b[i]
        return out

    rng = np.random.default_rng(4)
    hours = np.concatenate([rng.random(200_000) * 500, np.arange(0.0, 200.0, 0.1)])
    per = rng.choice([0.5, 0.25, 0.3, 0.1, 0.7, 1 / 3], len(hours))
    np.testing.assert_array_equal(floor_divide(hours, per), hours // per)


def test_applicants_read_their_signals_and_draw_what_streams_draw():
    from sim.model.kernels import intake

    streams, week = BatchStreams([3, 8], 50), 17
    ids = np.array([2, 7, 49, 50, 88], dtype=np.int64)  # markets 0, 0, 0, 1, 1
    business = np.array([1, 0, 2, 2, 0], dtype=np.int64)
    difficulty = np.array([0.2, 0.9, 0.5, 0.7, 0.0])
    drawn = np.array([True, False, True, False, True])
    align = np.random.default_rng(5).random((100, 3))
    pay, unrealistic = np.linspace(0, 1, 100), np.linspace(1, 0, 100)
    signals, upsell, conflict = np.empty((5, 4)), np.empty(5), np.empty(5, dtype=bool)
    reform, noise = np.empty(5, dtype=bool), np.empty((8, 3))
    keys = np.stack(
        [streams.kernel_keys(s)[0] for s in ("service", "upsell", "reform", "screening")]
    )
    intake.applicants(
        ids, business, difficulty, np.full(5, 0.5), drawn, week, keys, 50, pay, unrealistic,
        align, 0.3, 0.6, signals, upsell, conflict, reform, noise,
    )  # fmt: skip
    np.testing.assert_array_equal(
        signals,
        np.column_stack([1 - difficulty, pay[ids], align[ids, business], 1 - unrealistic[ids]]),
    )
    np.testing.assert_array_equal(upsell, streams.uniform("upsell", week, ids))
    np.testing.assert_array_equal(conflict, streams.uniform("service", week, ids) < 0.5)
    expected = (difficulty > 0.3) & (streams.uniform("reform", week, ids) < 0.6)
    np.testing.assert_array_equal(reform, expected)
    for slot in range(8):
        np.testing.assert_array_equal(
            noise[slot], streams.uniform("screening", week, ids[drawn], slot)
        )


def test_queues_are_gathered_by_business_then_acceptance_week_then_id():
    # two markets of 4 clients, two businesses: entry provider * 2 + market
    provider = np.array([1, -1, 0, 1, 0, 0, -1, 1], dtype=np.int16)
    accept = np.array([3, 0, 2, 1, 2, 0, 0, 1], dtype=np.int32)
    remaining = np.arange(8, dtype=float)
    n = np.count_nonzero(provider >= 0)
    ids, firm, business = (np.empty(n, dtype=np.int64) for _ in range(3))
    hours, difficulty, weeks, deadline = np.empty(n), np.empty(n), *np.empty((2, n), np.int32)
    service.queues(
        provider, accept, remaining, remaining / 10, accept + 4, 2, 4, 4, ids, firm, business,
        hours, difficulty, weeks, deadline,
    )  # fmt: skip
    np.testing.assert_array_equal(ids, [2, 5, 4, 3, 0, 7])
    np.testing.assert_array_equal(firm, [0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(business, provider[ids])
    np.testing.assert_array_equal(weeks, accept[ids])
    np.testing.assert_array_equal(hours, remaining[ids])
    np.testing.assert_array_equal(deadline, accept[ids] + 4)


def test_applications_are_gathered_by_business_then_id():
    from sim.model.kernels import intake

    # two markets of 3 clients, two businesses (entry business * 2 + market); business 1 screens
    applied = np.array([1, 0, -1, 1, 1, 0], dtype=np.int16)
    provider = np.array([1, -1, 0, -1, 1, 0], dtype=np.int16)
    values = np.arange(6, dtype=float)
    n = 5
    ints, floats, flags = np.empty((5, n), np.int64), np.empty((3, n)), np.empty((3, n), bool)
    deadline = np.empty(n, np.int32)
    intake.applications(
        applied, provider, values, values + 10, np.arange(6, dtype=np.int32), values / 10,
        np.arange(6, dtype=np.int32) - 3, np.array([0, -1, 0, -1, 5, -1], dtype=np.int32),
        np.array([False, False, True, True]), 2, 3, 2, ints, floats, flags, deadline,
    )  # fmt: skip
    ids, entry, business, flat, referred_by = ints
    np.testing.assert_array_equal(ids, [1, 5, 0, 3, 4])
    np.testing.assert_array_equal(entry, [0, 1, 2, 3, 3])
    np.testing.assert_array_equal(flat, ids * 2 + business)
    np.testing.assert_array_equal(referred_by, ids - 3)
    np.testing.assert_array_equal(floats[1], ids + 10.0)
    np.testing.assert_array_equal(flags[0], [True, False, False, True, False])  # new
    np.testing.assert_array_equal(flags[1], [False, False, False, True, False])  # screened
    np.testing.assert_array_equal(flags[2], [False, False, True, False, True])  # ever served
    np.testing.assert_array_equal(deadline, ids)


def test_compiled_capacity_plans_are_the_numpy_formulas_bit_for_bit():
    from sim.model import mechanics as m

    rng = np.random.default_rng(6)
    capacity, expected, backlog, start = (rng.uniform(0, 80, 2000) for _ in range(4))
    target = 1.0 * expected  # target_backlog_weeks 1, adjust_weeks 13, shares 0.25 and 4
    desired = np.maximum(expected + (backlog - target) / 13, 0.0)
    numpy_plan = np.clip(capacity + (desired - capacity) / 13, 0.25 * start, 4.0 * start)
    compiled = [m.adjusted_capacity(*x, 1.0, 13.0, 0.25, 4.0)
                for x in zip(capacity, expected, backlog, start, strict=True)]  # fmt: skip
    np.testing.assert_array_equal(compiled, numpy_plan)
    change = capacity - start
    hiring, layoff = zip(
        *(m.capacity_change_costs(c, 50.0, 12.0, 4.0) for c in change), strict=True
    )
    np.testing.assert_array_equal(hiring, 12.0 * 50.0 * np.maximum(change, 0.0))
    np.testing.assert_array_equal(layoff, 4.0 * 50.0 * np.maximum(-change, 0.0))
