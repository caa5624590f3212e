"""Tests of the named random streams and the counter-based generator (sim.model.rng)."""

import numpy as np
import pytest

from sim.model.rng import STREAMS, BatchStreams, Streams, box_muller, stream_id

N = 200_000  # draws per statistical check: 5 sigma tolerances stay below ~1%
SIGMAS = 5.0


@pytest.fixture(scope="module")
def streams() -> Streams:
    return Streams(12345)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_uniforms_lie_in_the_open_unit_interval(streams):
    u = streams.uniform("need", 3, np.arange(N))
    assert u.shape == (N,)
    assert u.min() > 0.0
    assert u.max() < 1.0


def test_uniform_of_the_lowest_hash_is_above_zero(streams, monkeypatch):
    monkeypatch.setattr(Streams, "bits", lambda self, *args: np.zeros(1, dtype=np.uint64))
    assert streams.uniform("need", 0, 0)[0] > 0.0


def test_uniform_of_the_highest_hash_is_below_one(streams, monkeypatch):
    highest = np.full(1, np.iinfo(np.uint64).max, dtype=np.uint64)
    monkeypatch.setattr(Streams, "bits", lambda self, *args: highest)
    assert streams.uniform("need", 0, 0)[0] < 1.0


def test_uniforms_fill_equal_bins_equally(streams):
    bins = 100
    counts, _ = np.histogram(streams.uniform("choice", 7, np.arange(N)), bins=bins, range=(0, 1))
    expected = N / bins
    sd = np.sqrt(expected * (1 - 1 / bins))
    assert np.all(np.abs(counts - expected) < SIGMAS * sd)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    df = bins - 1
    assert chi2 < df + SIGMAS * np.sqrt(2 * df)


def test_pairs_from_two_streams_fill_the_unit_square_evenly(streams):
    ids = np.arange(N)
    cells = 10
    counts, _, _ = np.histogram2d(
        streams.uniform("payment", 1, ids),
        streams.uniform("service", 1, ids),
        bins=cells,
        range=((0, 1), (0, 1)),
    )
    expected = N / cells**2
    chi2 = np.sum((counts - expected) ** 2 / expected)
    df = cells**2 - 1
    assert chi2 < df + SIGMAS * np.sqrt(2 * df)


def test_every_pair_of_streams_is_uncorrelated_for_the_same_ids(streams):
    n = 50_000
    ids = np.arange(n)
    draws = np.stack([streams.uniform(name, 4, ids) for name in STREAMS])
    r = np.corrcoef(draws)
    off_diagonal = r[~np.eye(len(STREAMS), dtype=bool)]
    assert np.all(np.abs(off_diagonal) < SIGMAS / np.sqrt(n))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"week": 0, "slot": 0}, {"week": 0, "slot": 1}),
        ({"week": 0, "slot": 0}, {"week": 1, "slot": 0}),
        ({"week": 5, "slot": 2}, {"week": 2, "slot": 5}),
    ],
    ids=["slots", "weeks", "week-slot-swap"],
)
def test_slots_and_weeks_give_uncorrelated_uniforms(streams, first, second):
    ids = np.arange(N)
    a = streams.uniform("review", first["week"], ids, first["slot"])
    b = streams.uniform("review", second["week"], ids, second["slot"])
    assert abs(correlation(a, b)) < SIGMAS / np.sqrt(N)


def test_neighbouring_ids_give_uncorrelated_uniforms(streams):
    u = streams.uniform("wom", 0, np.arange(N + 1))
    assert abs(correlation(u[:-1], u[1:])) < SIGMAS / np.sqrt(N)


def test_a_clients_number_does_not_depend_on_who_else_draws(streams):
    alone = streams.uniform("need", 9, np.array([5]), 2)
    in_market = streams.uniform("need", 9, np.arange(1000), 2)
    shuffled_ids = np.random.default_rng(0).permutation(1000)
    shuffled = streams.uniform("need", 9, shuffled_ids, 2)
    assert alone[0] == in_market[5]
    np.testing.assert_array_equal(shuffled, in_market[shuffled_ids])


@pytest.mark.parametrize(
    ("week", "slot"),
    [(3, 1), (np.int64(3), np.int32(1)), (0, 0), (-2, 5), (2**40, 7), (259, np.uint8(3))],
)
def test_integer_and_array_keys_give_the_same_numbers(streams, week, slot):
    ids = np.arange(1000)
    as_ints = streams.uniform("deadline", week, ids, slot)
    as_arrays = streams.uniform("deadline", np.array([week]), ids, np.array([slot]))
    as_zero_d = streams.uniform("deadline", np.asarray(week), ids, np.asarray(slot))
    np.testing.assert_array_equal(as_ints, as_arrays)
    np.testing.assert_array_equal(as_ints, as_zero_d)


def test_same_seed_gives_the_same_numbers_in_a_new_instance():
    ids = np.arange(1000)
    np.testing.assert_array_equal(
        Streams(42).uniform("satisfaction", 11, ids, 3),
        Streams(42).uniform("satisfaction", 11, ids, 3),
    )


@pytest.mark.parametrize(("seed_a", "seed_b"), [(0, 1), (1, 2), (12345, 12346)])
def test_different_seeds_give_different_numbers(seed_a, seed_b):
    ids = np.arange(10_000)
    a = Streams(seed_a).uniform("need", 0, ids)
    b = Streams(seed_b).uniform("need", 0, ids)
    assert np.mean(a == b) == 0.0
    assert abs(correlation(a, b)) < SIGMAS / np.sqrt(ids.size)


def test_different_streams_give_different_numbers(streams):
    ids = np.arange(10_000)
    assert np.mean(streams.uniform("need", 0, ids) == streams.uniform("size", 0, ids)) == 0.0


def test_normals_have_mean_zero_and_unit_sd(streams):
    z = streams.normal("size", 2, np.arange(N))
    assert abs(z.mean()) < SIGMAS / np.sqrt(N)
    assert abs(z.std() - 1.0) < SIGMAS * np.sqrt(0.5 / N)
    beyond = np.mean(np.abs(z) > 1.959964)  # two-sided 5% tail of the standard normal
    assert abs(beyond - 0.05) < SIGMAS * np.sqrt(0.05 * 0.95 / N)


def test_normal_slots_are_uncorrelated(streams):
    ids = np.arange(N)
    a = streams.normal("satisfaction", 0, ids, 0)
    b = streams.normal("satisfaction", 0, ids, 1)
    assert abs(correlation(a, b)) < SIGMAS / np.sqrt(N)


def test_ids_column_broadcasts_against_slots(streams):
    n = 50
    ids = np.arange(n)
    draws = streams.uniform("screening", 6, ids[:, None], np.arange(4))
    assert draws.shape == (n, 4)
    for slot in range(4):
        np.testing.assert_array_equal(draws[:, slot], streams.uniform("screening", 6, ids, slot))


def test_ids_column_broadcasts_against_weeks(streams):
    ids = np.arange(20)
    weeks = np.arange(3)
    draws = streams.normal("ads", weeks[None, :], ids[:, None])
    assert draws.shape == (20, 3)
    np.testing.assert_array_equal(draws[:, 2], streams.normal("ads", 2, ids))


def test_generator_is_reproducible_per_seed_and_stream():
    first = Streams(8).generator("traits").random(100)
    np.testing.assert_array_equal(first, Streams(8).generator("traits").random(100))
    assert not np.array_equal(first, Streams(8).generator("network").random(100))
    assert not np.array_equal(first, Streams(9).generator("traits").random(100))


def test_generator_of_an_unknown_stream_raises():
    with pytest.raises(ValueError):
        Streams(0).generator("no_such_stream")


@pytest.mark.parametrize("seed", [-1, -100, None])
def test_invalid_seed_raises_value_error(seed):
    with pytest.raises(ValueError):
        Streams(seed)


def test_seed_zero_is_a_seed_like_any_other():
    ids = np.arange(1000)
    zero = Streams(0).uniform("need", 0, ids)
    assert np.all((zero > 0) & (zero < 1))
    assert not np.array_equal(zero, Streams(1).uniform("need", 0, ids))


@pytest.mark.parametrize("week", [0, 7, np.int64(300)])
def test_a_long_array_of_slots_gives_each_pairs_own_number(streams, week):
    """Slot arrays longer than 64 take the tabulated path: same numbers as one at a time."""
    ids = np.arange(500) * 37
    slots = np.arange(500) % 23
    together = streams.uniform("choice", week, ids, slots)
    pairs = zip(ids, slots, strict=True)
    one_by_one = [streams.uniform("choice", week, i, int(k))[0] for i, k in pairs]
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_a_long_array_of_need_counts_gives_each_client_its_own_number(streams, dtype):
    """Week arrays longer than 64 (a client's k-th need, keyed by k) take the tabulated path."""
    ids = np.arange(300) * 11
    counts = (np.arange(300) % 17 + 1).astype(dtype)
    together = streams.uniform("need", counts, ids)
    one_by_one = [streams.uniform("need", int(k), i)[0] for i, k in zip(ids, counts, strict=True)]
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.parametrize("slots", [np.array([-1] * 70), np.array([-3] * 70, dtype=np.int16),
                                   np.array([-3] * 70, dtype=np.int8)])  # fmt: skip
def test_negative_slots_in_a_long_array_give_their_own_numbers(streams, slots):
    ids = np.arange(70)
    together = streams.uniform("wom", 3, ids, slots)
    assert together[5] == streams.uniform("wom", 3, 5, int(slots[5]))[0]


def test_large_slots_in_a_long_array_give_their_own_numbers(streams):
    ids, slots = np.arange(100), np.r_[np.arange(99), 10**6]
    together = streams.uniform("wom", 3, ids, slots)
    assert together[-1] == streams.uniform("wom", 3, 99, 10**6)[0]


def test_remembered_keys_do_not_leak_between_weeks_streams_or_slots():
    fresh, reused = Streams(5), Streams(5)
    ids = np.arange(50)
    for week in (1, 2, 1):
        for stream, slot in (("need", 0), ("size", 1), ("need", 1)):
            reused.uniform(stream, week, ids, slot)  # fills the cache
    for week in (1, 2):
        for stream, slot in (("need", 0), ("size", 1), ("need", 1)):
            np.testing.assert_array_equal(
                reused.uniform(stream, week, ids, slot), fresh.uniform(stream, week, ids, slot)
            )


def test_a_stream_added_earlier_in_the_list_leaves_the_others_unchanged(monkeypatch):
    import sim.model.rng

    ids = np.arange(1000)
    before = {name: Streams(3).uniform(name, 2, ids, 1) for name in STREAMS}
    traits = Streams(3).generator("traits").random(100)
    monkeypatch.setattr(sim.model.rng, "STREAMS", ("a_new_stream", *STREAMS))
    after = Streams(3)
    for name in STREAMS:
        np.testing.assert_array_equal(after.uniform(name, 2, ids, 1), before[name], err_msg=name)
    np.testing.assert_array_equal(after.generator("traits").random(100), traits)


def test_every_stream_has_its_own_key():
    assert len({stream_id(name) for name in STREAMS}) == len(STREAMS)


def test_draws_made_at_once_equal_the_draws_made_one_by_one():
    streams, ids = Streams(3), np.arange(0, 50_000, 7)
    u = streams.uniforms(5, ids, (("size", 0), ("size", 1), ("payment", 1)))
    np.testing.assert_array_equal(u[2], streams.uniform("payment", 5, ids, 1))
    np.testing.assert_array_equal(box_muller(u[0], u[1]), streams.normal("size", 5, ids))


@pytest.mark.parametrize(
    "slot",
    [0, 5, np.arange(300) % 7, np.arange(300) % 5000, np.arange(30) % 3],
    ids=["zero", "scalar", "few-slots", "many-slots", "short"],
)
def test_a_batch_draws_for_each_client_what_its_own_market_draws(slot):
    seeds, n = [4, 0, 9], 100
    batch, alone = BatchStreams(seeds, n), [Streams(seed) for seed in seeds]
    ids = (
        np.arange(len(seeds) * n) if np.ndim(slot) == 0 or len(slot) == 300 else np.arange(30) * 10
    )
    got = batch.uniform("wom", 7, ids, slot)
    market, local = ids // n, ids % n
    slots = np.broadcast_to(slot, ids.shape)
    want = [
        alone[m].uniform("wom", 7, [i], s)[0] for m, i, s in zip(market, local, slots, strict=True)
    ]
    np.testing.assert_array_equal(got, want)
    draws = (("size", 0), ("payment", 1))
    want = np.column_stack(
        [alone[m].uniforms(7, [i], draws)[:, 0] for m, i in zip(market, local, strict=True)]
    )
    np.testing.assert_array_equal(batch.uniforms(7, ids, draws), want)


def test_a_batch_draws_a_clients_row_of_slots_as_its_market_does():
    batch, alone = BatchStreams([2, 8], 50), Streams(8)
    ids = np.array([51, 60, 99])[:, None]  # market 1's clients 1, 10, 49
    got = batch.uniform("ads", 0, ids, np.arange(12))
    np.testing.assert_array_equal(got, alone.uniform("ads", 0, (ids - 50), np.arange(12)))
    with pytest.raises(TypeError, match="one generator per market"):
        batch.generator("traits")
