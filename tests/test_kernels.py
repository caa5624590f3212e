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
