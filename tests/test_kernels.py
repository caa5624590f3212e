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


# --- scatter (VectorizedModel.apply) ---
def test_put_sets_and_adds_as_numpy_does_for_distinct_ids():
    from sim.model.kernels import scatter

    column = np.array([1.5, 2.0, 3.0, 4.0])
    scatter.put(column, np.array([3, 0]), np.array([0.25, 0.5]), True)
    assert column.tolist() == [2.0, 2.0, 3.0, 4.25]
    scatter.put(column, np.array([1, 2]), np.array([7.0]), False)  # one value for all
    assert column.tolist() == [2.0, 7.0, 7.0, 4.25]
    counts = np.array([32767, 0], dtype=np.int16)
    scatter.put(counts, np.array([0, 1]), np.array([True, True]).astype(np.int16), True)
    assert counts.tolist() == (np.array([32767, 0], dtype=np.int16) + np.int16(1)).tolist()


def test_put_pairs_writes_each_clients_own_business():
    from sim.model.kernels import scatter

    matrix = np.zeros((3, 4))
    scatter.put_pairs(matrix, np.array([0, 2]), np.array([3, 1]), np.array([1.0, 2.0]), True)
    scatter.put_pairs(matrix, np.array([0, 1]), np.array([3]), np.array([0.5, 0.25]), True)
    expected = np.zeros((3, 4))
    expected[0, 3], expected[2, 1], expected[1, 3] = 1.5, 2.0, 0.25
    assert np.array_equal(matrix, expected)
