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


# --- wom ---
from sim.model.kernels import wom  # noqa: E402

#: A network of four clients in CSR form: 0 - 1, 0 - 2, 0 - 3, 1 - 2.
INDPTR = np.array([0, 3, 5, 7, 8], dtype=np.int64)
INDICES = np.array([1, 2, 3, 0, 2, 0, 1, 0], dtype=np.int32)
NONE = np.empty(0)


def told_by(p_tell, story=1, week=3, alignment=NONE, strength=NONE, reach=NONE, seed=7):
    """Who tellers 0 and 2 tell, with one probability for both, about business 1."""
    keys, n = Streams(seed).kernel_keys("wom")
    tellers = np.array([0, 2], dtype=np.int64)
    return wom.told(
        INDPTR, INDICES, tellers, np.full(2, float(p_tell)), keys, n, week,
        np.ones(2, dtype=np.int64), np.full(2, story, dtype=np.int64), alignment, strength, reach,
        reach.max(initial=0.0),
    )  # fmt: skip


def test_a_sure_teller_tells_every_neighbour_in_network_order_and_an_unsure_one_none():
    owner, neighbour = told_by(1.0)
    np.testing.assert_array_equal(owner, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(neighbour, [1, 2, 3, 0, 1])
    assert [len(a) for a in told_by(0.0)] == [0, 0]


@pytest.mark.parametrize("reach", [NONE, np.array([0.3, 1.7, 0.9, 1.2])])
def test_neighbour_k_is_told_when_the_uniform_of_slot_k_is_below_the_probability(reach):
    streams, scale = Streams(7), reach if len(reach) else np.ones(4)
    for p in (0.2, 0.4, 0.5, 0.8):
        expected = [
            (i, int(h))
            for i, t in enumerate([0, 2])
            for k, h in enumerate(INDICES[INDPTR[t] : INDPTR[t + 1]])
            if streams.uniform("wom", 3, np.array([t]), k)[0] < p * scale[h]
        ]
        owner, neighbour = told_by(p, reach=reach)
        assert list(zip(owner.tolist(), neighbour.tolist(), strict=True)) == expected


def test_many_tellers_tell_as_the_draws_say():
    rng, n = np.random.default_rng(3), 60  # more tellers than the kernel fetches ahead
    degree = rng.integers(0, 9, n)
    indptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    indices = rng.integers(0, n, indptr[-1]).astype(np.int32)
    tellers, reach = np.arange(0, n, 2, dtype=np.int64), rng.uniform(0.0, 2.0, n)
    p, story = rng.uniform(0.0, 1.0, len(tellers)), np.where(rng.random(len(tellers)) < 0.5, 1, -1)
    scaled = np.where(story[:, None] > 0, p[:, None] * reach, p[:, None])  # (teller, neighbour)
    streams = Streams(5)
    keys, per_market = streams.kernel_keys("wom")
    expected = [
        (i, int(h))
        for i, t in enumerate(tellers)
        for k, h in enumerate(indices[indptr[t] : indptr[t + 1]])
        if streams.uniform("wom", 9, np.array([t]), k)[0] < scaled[i, h]
    ]
    owner, neighbour = wom.told(
        indptr, indices, tellers, p, keys, per_market, 9, np.zeros(len(tellers), np.int64),
        story.astype(np.int64), NONE, NONE, reach, reach.max(),
    )  # fmt: skip
    assert list(zip(owner.tolist(), neighbour.tolist(), strict=True)) == expected
    assert 0 < len(expected) < indptr[tellers + 1].sum() - indptr[tellers].sum()  # some, not all


def test_a_strong_culture_tells_only_aligned_neighbours_and_reach_only_scales_referrals():
    alignment = np.zeros((4, 2))
    alignment[[1, 3], 1] = 1.0  # clients 1 and 3 share business 1's values
    # culture strength 1: affinity 0 for the others, 2 for 1 and 3 (so told at p 1/2)
    owner, neighbour = told_by(0.5, alignment=alignment.reshape(-1), strength=np.array([0, 1.0]))
    np.testing.assert_array_equal(neighbour, [1, 3, 1])
    reach = np.array([0.0, 1.0, 0.0, 1.0])  # referrals reach clients 1 and 3 only
    np.testing.assert_array_equal(told_by(1.0, reach=reach)[1], [1, 3, 1])
    np.testing.assert_array_equal(told_by(1.0, story=-1, reach=reach)[1], [1, 2, 3, 0, 1])


def test_a_batch_tells_as_each_market_alone():
    n, seeds = 4, [7, 11]
    keys, per_market = BatchStreams(seeds, n).kernel_keys("wom")
    indptr = np.concatenate([INDPTR, INDPTR[1:] + INDPTR[-1]])
    indices = np.concatenate([INDICES, INDICES + n]).astype(np.int32)
    tellers = np.array([0, 2, 4, 6], dtype=np.int64)
    owner, neighbour = wom.told(
        indptr, indices, tellers, np.full(4, 0.5), keys, per_market, 3,
        np.ones(4, dtype=np.int64), np.ones(4, dtype=np.int64), NONE, NONE, NONE, 0.0,
    )  # fmt: skip
    for r, seed in enumerate(seeds):
        mine = owner // 2 == r
        alone = told_by(0.5, seed=seed)
        np.testing.assert_array_equal(owner[mine] - 2 * r, alone[0])
        np.testing.assert_array_equal(neighbour[mine] - n * r, alone[1])


def test_a_story_heard_decays_its_standing_once_then_adds_per_story():
    powers = 0.5 ** np.arange(10.0)
    known_week = np.array([9, 2, 9], dtype=np.int16)
    credit, credit_week = np.full(3, 8.0), np.array([3, 4, -1], dtype=np.int16)
    warning, warning_week = np.full(3, 8.0), np.array([-1, 5, 1], dtype=np.int16)
    flat, story = np.array([2, 1, 0, 2, 0]), np.array([1, -1, 1, 1, -1])
    wom.hear(known_week, credit, credit_week, warning, warning_week, flat, story,
             np.array([1.5, 3.0]), 6, powers)  # fmt: skip
    np.testing.assert_array_equal(known_week, [6, 2, 6])
    np.testing.assert_array_equal(credit, [8.0 / 8 + 1.5, 8.0, 1.5 + 1.5])
    np.testing.assert_array_equal(credit_week, [6, 4, 6])
    np.testing.assert_array_equal(warning, [3.0, 8.0 / 2 + 3.0, 8.0])
    np.testing.assert_array_equal(warning_week, [6, 6, 1])


def test_a_pair_told_this_week_remembers_its_highest_teller_only():
    referrer = np.array([9, 9, 9], dtype=np.int32)
    wom.remember(referrer, np.array([2, 0, 2]), np.array([4, 1, 3]))
    np.testing.assert_array_equal(referrer, [1, 9, 4])
