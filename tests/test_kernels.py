"""Tests of the compiled kernels' primitives (sim.model.kernels): draws identical to numpy's."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from conftest import unit_vectors

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


# --- choice ---
from types import SimpleNamespace  # noqa: E402

from sim.model import mechanics, phases  # noqa: E402
from sim.model.kernels import choice  # noqa: E402

COEF = SimpleNamespace(beta_reputation=1.5, reference_rating=3.5, beta_alignment=2.0,
                       beta_price=1.0, beta_wait=-0.5, beta_prepay=-0.3, noise=1.0)  # fmt: skip


def aligned(values, cultures, client, market):
    """`mechanics.alignment` of a client with each business of its market, in Python."""
    return np.array([mechanics.alignment(*values[client], *culture[market])
                     for culture in cultures])  # fmt: skip


def market(n_ids=60, n_b=6, markets=1, seed=3, shift=True):
    """A random choice problem: every input of `choice.candidates`, by name."""
    rng = np.random.default_rng(seed)
    n = n_ids // markets
    streams = Streams(11) if markets == 1 else BatchStreams(list(range(markets)), n)
    keys, per_market = streams.kernel_keys("choice")
    return dict(
        ids=np.arange(n_ids, dtype=np.int64), rows=np.arange(n_ids, dtype=np.int64), week=9,
        provider=rng.integers(-3, n_b, n_ids).clip(-1).astype(np.int16),
        declined_by=rng.integers(0, 1 << n_b, n_ids).astype(np.uint64)
        * (rng.random(n_ids) < 0.3),
        look_from=rng.integers(0, 12, n_ids).astype(np.int32),
        known_week=rng.integers(0, 14, (n_ids, n_b)).astype(np.int16),
        blocked_until=(rng.integers(0, 14, (n_ids, n_b)) * (rng.random((n_ids, n_b)) < 0.2))
        .astype(np.int16),
        values=unit_vectors(rng.uniform(0, 2 * np.pi, n_ids)),
        cultures=unit_vectors(rng.uniform(0, 2 * np.pi, (n_b, markets))),
        credit=rng.random((n_ids, n_b)),
        credit_week=np.where(rng.random((n_ids, n_b)) < 0.3, rng.integers(0, 10, (n_ids, n_b)), -1)
        .astype(np.int16),
        warning=rng.random((n_ids, n_b)),
        warning_week=np.where(rng.random((n_ids, n_b)) < 0.3, rng.integers(0, 10, (n_ids, n_b)),
                              -1).astype(np.int16),  # fmt: skip
        powers=mechanics.decayed(1.0, np.arange(12), 0.9),
        patience=rng.uniform(0.5, 4.0, n_ids), budget=rng.uniform(0.5, 2.0, n_ids),
        reputation=rng.uniform(1, 5, n_b * markets), queue=rng.uniform(0, 3, n_b * markets),
        active=rng.random(n_b * markets) < 0.85, price_ratio=rng.uniform(0.7, 1.4, n_b),
        prepayment=(rng.random(n_b) < 0.5).astype(float),
        shift=rng.uniform(-0.5, 0.5, n_b) if shift else np.zeros(n_b), tailored=shift,
        coef=choice.Coefficients.of(COEF),
        keys=keys, n=per_market, streams=streams,
    )  # fmt: skip


def kernel_choice(inputs):
    """The kernels' picks and open weeks, the noise taken in numpy between them."""
    args = {k: v for k, v in inputs.items() if k != "streams"}
    choosers, start, business, utility, u, picked, opens = choice.candidates(**args)
    choice.pick(choosers, start, business, utility, mechanics.gumbel(u), COEF.noise, picked)
    return picked, opens


def numpy_choice(inputs):
    """The rule in numpy, client by client: `choice_utility`, `gumbel`, `np.argmax`."""
    d = SimpleNamespace(**inputs)
    n_b, markets = d.known_week.shape[1], len(d.keys)
    picks, opens = [], []
    for i, client in enumerate(d.ids):
        bits = (int(d.declined_by[i]) >> np.arange(n_b)) & 1 == 1
        if d.provider[i] >= 0 and not bits[d.provider[i]]:
            picks.append(d.provider[i]), opens.append(d.week)
            continue
        if d.look_from[i] > d.week:
            picks.append(-1), opens.append(d.look_from[i])
            continue
        firm = np.arange(n_b) * markets + client // d.n
        open_from = np.where(d.active[firm], np.maximum(d.known_week[i], d.blocked_until[i]),
                             phases.NEVER)  # fmt: skip
        eligible = (open_from <= d.week) & ~bits
        candidate = eligible & ~(d.queue[firm] > d.patience[client])
        align = aligned(d.values, d.cultures, client, client // d.n)
        align = mechanics.tailored_alignment(align, d.shift) if d.tailored else align
        world = SimpleNamespace(decay_powers=lambda _: d.powers)
        u = d.streams.uniform("choice", d.week, np.full(n_b, client), np.arange(n_b))
        utility = mechanics.choice_utility(
            d.reputation[firm], align, d.price_ratio, d.budget[client],
            phases.standing(world, d.credit[i], d.credit_week[i], d.week),
            phases.standing(world, d.warning[i], d.warning_week[i], d.week),
            d.queue[firm], mechanics.gumbel(u), COEF, d.prepayment,
        )  # fmt: skip
        table = np.where(candidate, utility, -np.inf)
        picks.append(table.argmax() if candidate.any() else -1)
        opens.append(d.week if eligible.any() else open_from.min())
    return np.array(picks), np.array(opens)


@pytest.mark.parametrize("markets, shift", [(1, True), (1, False), (3, True)])
def test_the_choice_kernels_pick_as_the_numpy_rule_draw_for_draw(markets, shift):
    inputs = market(n_ids=300, markets=markets, shift=shift)
    picked, opens = kernel_choice(inputs)
    expected_picks, expected_opens = numpy_choice(inputs)
    np.testing.assert_array_equal(picked, expected_picks)
    np.testing.assert_array_equal(opens, expected_opens)
    assert ((picked >= 0) & (inputs["provider"] != picked)).sum() > 50  # many chose by logit


def one_client(n_b=3, **state):
    """One client (id 5, patience 2) to whom every business is open, with `state` changed."""
    inputs = market(n_ids=6, n_b=n_b, shift=False)
    inputs.update(ids=np.array([5]), rows=np.array([0]), provider=np.array([-1], np.int16),
                  declined_by=np.zeros(1, np.uint64), look_from=np.zeros(1, np.int32),
                  known_week=np.zeros((1, n_b), np.int16),
                  blocked_until=np.zeros((1, n_b), np.int16),
                  credit_week=np.full((1, n_b), -1, np.int16),
                  warning_week=np.full((1, n_b), -1, np.int16),
                  active=np.ones(n_b, bool), queue=np.zeros(n_b),
                  patience=np.full(6, 2.0))  # fmt: skip
    inputs.update(state)
    picked, opens = kernel_choice(inputs)
    return picked[0], opens[0]


def test_a_returning_client_goes_to_its_provider_unless_it_declined_the_job():
    assert one_client(provider=np.array([2], np.int16))[0] == 2
    assert one_client(provider=np.array([2], np.int16), look_from=np.array([50], np.int32))[0] == 2
    only_0 = dict(declined_by=np.array([0b110], np.uint64))  # businesses 1 and 2 declined it
    assert one_client(provider=np.array([2], np.int16), **only_0)[0] == 0


def test_a_client_chooses_only_among_open_businesses_it_does_not_balk_at():
    known = np.array([[0, 20, 3]], np.int16)  # business 1 is known from week 20
    assert one_client(known_week=known, declined_by=np.array([0b100], np.uint64)) == (0, 9)
    blocked = np.array([[12, 0, 0]], np.int16)  # business 0 blocked until week 12
    assert one_client(known_week=known, blocked_until=blocked, active=np.array([1, 1, 0], bool),
                      ) == (-1, 12)  # fmt: skip
    # it balks at a queue longer than its patience (2 weeks), but could choose
    assert one_client(known_week=known, queue=np.array([2.5, 0.0, 2.5])) == (-1, 9)
    assert one_client(known_week=known, queue=np.array([2.0, 0.0, 2.5])) == (0, 9)


def test_a_client_with_no_business_ever_open_or_not_looked_at_picks_none():
    assert one_client(active=np.zeros(3, bool)) == (-1, phases.NEVER)
    assert one_client(look_from=np.array([30], np.int32)) == (-1, 30)


def test_a_strong_credit_or_warning_decides_the_choice():
    credit, since = np.array([[0.0, 0.0, 50.0]]), np.array([[-1, -1, 9]], np.int16)
    assert one_client(credit=credit, credit_week=since)[0] == 2
    warned = dict(
        warning=np.array([[50.0, 50.0, 0.0]]), warning_week=np.array([[0, 0, -1]], np.int16)
    )
    assert one_client(**warned)[0] == 2


# --- wom ---
from sim.model.kernels import wom  # noqa: E402

#: A network of four clients in CSR form: 0 - 1, 0 - 2, 0 - 3, 1 - 2.
INDPTR = np.array([0, 3, 5, 7, 8], dtype=np.int64)
INDICES = np.array([1, 2, 3, 0, 2, 0, 1, 0], dtype=np.int32)
NONE = np.empty(0)


#: Values and cultures for `wom.told` when culture is off (they are not read).
NO_VALUES, NO_CULTURES = np.empty((0, 2)), np.empty((0, 1, 2))


def told_by(p_tell, story=1, week=3, values=NO_VALUES, cultures=NO_CULTURES, strength=NONE,
            reach=NONE, seed=7):  # fmt: skip
    """Who tellers 0 and 2 tell, with one probability for both, about business 1."""
    keys, n = Streams(seed).kernel_keys("wom")
    tellers = np.array([0, 2], dtype=np.int64)
    return wom.told(
        INDPTR, INDICES, tellers, np.full(2, float(p_tell)), keys, n, week,
        np.ones(2, dtype=np.int64), np.full(2, story, dtype=np.int64), values, cultures,
        strength, reach, reach.max(initial=0.0),
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
        story.astype(np.int64), NO_VALUES, NO_CULTURES, NONE, reach, reach.max(),
    )  # fmt: skip
    assert list(zip(owner.tolist(), neighbour.tolist(), strict=True)) == expected
    assert 0 < len(expected) < indptr[tellers + 1].sum() - indptr[tellers].sum()  # some, not all


def test_a_strong_culture_tells_only_aligned_neighbours_and_reach_only_scales_referrals():
    # clients 1 and 3 share business 1's values (alignment 1), 0 and 2 hold the opposite (0)
    values = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    cultures = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # (businesses, markets, 2)
    # culture strength 1: affinity 0 for the others, 2 for 1 and 3 (so told at p 1/2)
    owner, neighbour = told_by(0.5, values=values, cultures=cultures, strength=np.array([0, 1.0]))
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
        np.ones(4, dtype=np.int64), np.ones(4, dtype=np.int64), NO_VALUES, NO_CULTURES, NONE,
        NONE, 0.0,
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


# --- cache ---
def test_the_kernels_cache_is_named_by_their_sources_so_an_edit_compiles_afresh(
    tmp_path, monkeypatch
):
    import sim.model.kernels as kernels

    source = tmp_path / "draws.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(kernels, "SOURCES", (source,))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = kernels.cache_dir()
    assert before.parent == tmp_path / "cache" / "clientsim"
    source.write_text("x = 2\n")  # a primitive the kernels inline changes
    assert kernels.cache_dir() != before


def _version(root, name, *, age_days, extra=()):
    """A version's cache as numba and clientsim leave it, last used `age_days` ago."""
    folder = root / name / "kernels_0123"
    folder.mkdir(parents=True)
    files = [folder / "choice.pick-189.py313.nbi", folder / "choice.pick-189.py313.1.nbc",
             root / name / "used", *(root / name / e for e in extra)]  # fmt: skip
    stamp = time.time() - age_days * 86_400
    for path in files:
        path.write_text("x")
        os.utime(path, (stamp, stamp))
    return root / name


def test_a_new_version_prunes_the_caches_unused_for_a_month_and_nothing_else(tmp_path):
    import sim.model.kernels as kernels

    keep = _version(tmp_path, "numba-" + "a" * 16, age_days=90)  # this version: kept
    stale = _version(tmp_path, "numba-" + "b" * 16, age_days=31)
    recent = _version(tmp_path, "numba-" + "c" * 16, age_days=29)
    mixed = _version(tmp_path, "numba-" + "d" * 16, age_days=60, extra=["notes.txt"])
    foreign = _version(tmp_path, "numba-mine", age_days=90)  # not a name clientsim gives
    removed = kernels.prune(tmp_path, keep)
    assert not stale.exists() and stale in removed
    assert keep.exists() and recent.exists() and foreign.exists()
    assert [p.name for p in mixed.rglob("*")] == ["notes.txt"]  # a user's file stays


def test_the_kernels_sources_include_the_formulas_they_compile():
    import sim.model.kernels as kernels

    names = {path.name for path in kernels.SOURCES}
    assert {"mechanics.py", "draws.py", "choice.py", "wom.py"} <= names


#: Kernels written for any dtype of the field they write: compiled once per dtype.
PER_DTYPE = {"scatter.put", "scatter.put_pairs", "scatter.add_rows"}

ONE_SIGNATURE = """
import importlib, pkgutil, numba
from conftest import call_every_kernel
from sim.model import kernels
call_every_kernel()
for info in pkgutil.iter_modules(kernels.__path__):
    module = importlib.import_module(f"sim.model.kernels.{info.name}")
    for name, f in vars(module).items():
        if isinstance(f, numba.core.registry.CPUDispatcher) and f.__module__ == module.__name__:
            print(f"{info.name}.{name}", len(f.signatures))
"""


@pytest.mark.slow
def test_every_kernel_compiles_once_for_both_engines_and_a_batch():
    """One set of argument types per kernel: each compiled type set is seconds of a first run."""
    done = subprocess.run([sys.executable, "-c", ONE_SIGNATURE], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parent)  # fmt: skip
    counts = {name: int(n) for name, n in (line.split() for line in done.stdout.splitlines())}
    assert counts["intake.take"] == counts["finish.judge"] == 1  # called by both engines
    assert {name for name, n in counts.items() if n > 1} <= PER_DTYPE


# --- intake and service (phases 4-6) ---
from sim.model.kernels import service  # noqa: E402


def first_come(business, remaining, capacity):
    """`service.first_come` into a new array."""
    return service.first_come(business, remaining, capacity, np.empty(len(business)))


def test_a_queue_is_served_first_come_up_to_its_capacity():
    one = np.zeros(3, dtype=np.int64)
    np.testing.assert_array_equal(
        first_come(one, np.array([5.0, 3.0, 4.0]), np.array([7.0])), [5.0, 2.0, 0.0]
    )
    np.testing.assert_array_equal(
        first_come(one[:2], np.array([5.0, 3.0]), np.array([0.0])), [0.0, 0.0]
    )
    assert first_come(one[:0], np.zeros(0), np.array([10.0])).size == 0


@pytest.mark.parametrize("queues", [[5, 0, 7, 1], [0, 0, 3000, 1]])
def test_each_queue_is_served_bit_for_bit_as_numpy_serves_it_alone(queues):
    rng = np.random.default_rng(3)
    business = np.repeat(np.arange(len(queues)), queues)
    remaining = rng.uniform(0.1, 20, len(business))
    capacity = rng.uniform(0, 60, len(queues))
    worked = first_come(business, remaining, capacity)
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
    rng = np.random.default_rng(5)
    values = unit_vectors(rng.uniform(0, 2 * np.pi, 100))
    cultures = unit_vectors(rng.uniform(0, 2 * np.pi, (3, 2)))  # 3 businesses, 2 markets
    pay, unrealistic = np.linspace(0, 1, 100), np.linspace(1, 0, 100)
    signals, upsell, conflict = np.empty((5, 4)), np.empty(5), np.empty(5, dtype=bool)
    reform, noise = np.empty(5, dtype=bool), np.empty((8, 3))
    keys = np.stack(
        [streams.kernel_keys(s)[0] for s in ("service", "upsell", "reform", "screening")]
    )
    intake.applicants(
        ids, business, difficulty, np.full(5, 0.5), drawn, week, keys, 50, pay, unrealistic,
        values, cultures, 0.3, 0.6, signals, upsell, conflict, reform, noise,
    )  # fmt: skip
    np.testing.assert_array_equal(
        signals,
        np.column_stack(
            [
                1 - difficulty,
                pay[ids],
                [
                    aligned(values, cultures, i, i // 50)[b]
                    for i, b in zip(ids, business, strict=True)
                ],
                1 - unrealistic[ids],
            ]
        ),  # fmt: skip
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
    from sim.model.kernels import accounts as m  # the formulas as the kernel compiles them

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


# --- finish (phases 7-8) ---
from sim.model.kernels import finish  # noqa: E402

SAT = SimpleNamespace(
    baseline=0.9, alignment=0.3, wait=0.05, wait_grace=1.0, price=0.5, misfit=0.35, extras=0.2,
    late=0.2, failed=0.5, difficulty=0.4, noise=0.12,
)  # fmt: skip
PAY = SimpleNamespace(partial_prob=0.6, partial_share=0.5, dispute_share=0.5)
WOM = SimpleNamespace(positive=0.7, negative=0.35, p_positive=0.22, p_negative=0.29)


@numba.njit
def judged_one_by_one(x, flags, sat, pay, wom, patience, service):
    out = np.empty((12, len(x)))
    for i in range(len(x)):
        a, b, c = flags[i, 0], flags[i, 1], flags[i, 2]
        s = finish._satisfaction(x[i], 3 * x[i], 1.2, 0.9, a, b, c, 0.1 * x[i], x[i], 4 * x[i] - 2,
                                 sat, a and b)  # fmt: skip
        out[0, i], out[1, i] = s, finish._abandoned_satisfaction(s, patience)
        out[2, i] = finish._invoice_share(a, b, c, pay)
        out[3, i] = finish._payment_fraction(x[i], 1 - x[i], 0.5, pay)
        out[4, i], out[5, i] = finish._tell_probability(0.5, s, wom)
        out[6, i] = finish._rating(s)
        out[7, i] = finish._rework_hours(10.0, 20 * x[i], a, service)
        out[8, i] = finish._judged_satisfaction(s, x[i], a, 0.9)
        out[9, i] = finish._tailored(x[i], 0.4 * (c - 0.5))
        out[10, i] = finish._leaves_queue(int(20 * x[i]), 8.5, a, b)
        out[11, i] = finish._judged_satisfaction(s, x[i], a, 0.0)
    return out


def test_the_compiled_formulas_of_the_finish_are_mechanics_bit_for_bit():
    rng = np.random.default_rng(26)
    x, flags = rng.random(5_000), rng.random((5_000, 3)) < 0.5
    a, b, c = flags.T
    patience, service = SimpleNamespace(penalty=0.3), SimpleNamespace(rework_share=0.5)
    got = judged_one_by_one(
        x, flags, finish.terms(finish.Satisfaction, SAT), finish.terms(finish.Payment, PAY),
        finish.terms(finish.Wom, WOM), finish.terms(finish.Patience, patience),
        finish.terms(finish.Service, service),
    )  # fmt: skip
    s = mechanics.satisfaction(x, 3 * x, 1.2, 0.9, a, b, c, 0.1 * x, x, 4 * x - 2, SAT, a & b)
    p, sign = mechanics.tell_probability(0.5, s, WOM)
    expected = [
        s, mechanics.abandoned_satisfaction(s, patience), mechanics.invoice_share(a, b, c, PAY),
        mechanics.payment_fraction(x, 1 - x, 0.5, PAY), p, sign, mechanics.rating(s),
        mechanics.rework_hours(10.0, 20 * x, a, service),
        mechanics.judged_satisfaction(s, x, a, 0.9),
        mechanics.tailored_alignment(x, 0.4 * (c - 0.5)),
        mechanics.leaves_queue((20 * x).astype(int), 8.5, a, b),
        mechanics.judged_satisfaction(s, x, a, 0.0),
    ]  # fmt: skip
    assert (s == 0).any() and ((s > 0) & (s < 1)).any()  # clipped at 0, and within
    for row, values in zip(got, expected, strict=True):
        np.testing.assert_array_equal(row, values)


def judge_jobs(world_terms, *, prepaid, abandoned, deadline, week=5, failure=0.0, dispute=0.0):
    """Three jobs of 10 billed hours at business 0 (price 2), accepted in week 0, judged."""
    n = 3
    ids, kept = np.arange(n), np.zeros(n, dtype=np.int64)
    numbers, stars, story = np.empty((8, n)), np.empty(n, np.int64), np.empty(n, np.int64)
    failed, disputed = np.empty(n, bool), np.empty(n, bool)
    keys, per_market = Streams(3).kernel_keys("failure")
    finish.judge(
        ids, ids, week, np.zeros(n, np.int64), np.full(n, 10.0), np.full(n, prepaid),
        np.zeros(n, np.int32), np.full(n, deadline, np.int32), np.zeros(n, np.int32),
        np.zeros(n, bool), np.zeros(n, bool), np.full(n, 12.0), np.full(n, 10.0), kept,
        np.full(n, 0.2), np.full(n, abandoned), np.empty(0), False, np.full(n, 0.1),
        np.full(n, 0.9), np.zeros(n), np.full(n, 0.9), np.ones(n), np.full(n, 0.5),
        np.tile([0.0, 1.0], (n, 1)), np.array([[[1.0, 0.0]]]), np.zeros(1), False,
        np.array([2.0]), np.array([1.0]),
        np.array([0.1]), *world_terms, failure, keys, dispute, keys, per_market, numbers,
        stars, story, failed, disputed,
    )  # fmt: skip
    return dict(zip(finish.NUMBERS, numbers, strict=True)), failed, disputed


TERMS = (
    finish.terms(finish.Satisfaction, SAT), 0.9, finish.terms(finish.Payment, PAY),
    finish.Patience(0.3), finish.terms(finish.Wom, WOM), True, finish.Service(0.5),
)  # fmt: skip


def test_a_job_done_on_time_is_paid_in_full_and_its_rework_counted():
    out, failed, disputed = judge_jobs(TERMS, prepaid=False, abandoned=False, deadline=10)
    np.testing.assert_array_equal(out["paid"], 20.0)  # u_full 0.1 < reliability 0.9
    np.testing.assert_array_equal(out["unpaid"], 0.0)
    np.testing.assert_array_equal(out["billed"], 10.0)
    np.testing.assert_array_equal(out["rework"], 0.0)  # no misfit
    assert not failed.any() and not disputed.any()


def test_an_abandoned_prepaid_job_is_refunded_its_quote_and_judged_with_the_penalty():
    kept, _, _ = judge_jobs(TERMS, prepaid=True, abandoned=False, deadline=10)
    left, _, _ = judge_jobs(TERMS, prepaid=True, abandoned=True, deadline=10)
    np.testing.assert_array_equal(left["refund"], 20.0)
    np.testing.assert_array_equal(left["paid"], 0.0)
    np.testing.assert_array_equal(left["billed"], 0.0)
    np.testing.assert_array_equal(left["satisfaction"], np.maximum(kept["satisfaction"] - 0.3, 0))
    _, failed, _ = judge_jobs(TERMS, prepaid=True, abandoned=True, deadline=0, failure=1.0)
    assert not failed.any()  # an abandoned job does not fail


def test_impossible_jobs_fail_and_late_ones_are_disputed_when_sure_to():
    out, failed, disputed = judge_jobs(TERMS, prepaid=False, abandoned=False, deadline=0,
                                       failure=1.0, dispute=1.0)  # fmt: skip
    assert failed.all() and not disputed.any()  # a failed job is not disputed
    np.testing.assert_array_equal(out["paid"], 0.0)
    late, failed, disputed = judge_jobs(TERMS, prepaid=True, abandoned=False, deadline=2,
                                        dispute=1.0)  # fmt: skip
    assert disputed.all() and not failed.any()
    np.testing.assert_array_equal(late["refund"], 10.0)  # dispute_share of the quote


def test_the_business_totals_are_bincounts_in_job_order():
    rng = np.random.default_rng(7)
    n, n_b = 3_000, 6
    firm = rng.integers(0, n_b, n)
    paid, refund, unpaid, s, billed, rework = rng.random((6, n)) * [[1e3], [10], [50], [1], [9],
                                                                       [3]]  # fmt: skip
    rating = rng.integers(0, 6, n)
    abandoned, retained, disputed, failed = rng.random((4, n)) < 0.3
    floats, ints = np.empty((7, n_b)), np.empty((6, n_b), np.int64)
    finish.totals(firm, paid, refund, unpaid, s, billed, rework, rating, abandoned, retained,
                  disputed, failed, floats, ints)  # fmt: skip

    def total(mask=None, weights=None):
        rows = slice(None) if mask is None else mask
        w = None if weights is None else weights[rows]
        return np.bincount(firm[rows], weights=w, minlength=n_b)

    done, reviewed = ~abandoned, rating > 0
    expected_floats = [total(None, paid - refund), total(None, unpaid),
                       total(None, np.where(done, s, 0.0)), total(None, refund),
                       total(None, billed), total(None, rework),
                       total(None, np.where(reviewed, rating, 0))]  # fmt: skip
    expected_ints = [total(done), total(abandoned), total(retained), total(disputed),
                     total(failed), total(reviewed)]  # fmt: skip
    np.testing.assert_array_equal(floats, expected_floats)
    np.testing.assert_array_equal(ints, expected_ints)


def test_the_closing_jobs_are_the_finished_and_those_left_in_id_order():
    provider = np.array([-1, 2, 0, 1, 3, 0], np.int16)
    remaining = np.array([0.0, 0.0, 5.0, 5.0, 5.0, -1.0])
    need_week = np.array([0, 9, 0, 9, 0, 0], np.int32)  # waited 10, 1, 10, 1, 10, 10 weeks
    prepaid = np.array([False, False, False, False, True, True])
    patience = np.full(6, 5.0)
    for leave, closes in ((False, [1, 2, 5]), (True, [1, 2, 4, 5])):
        ids, firm, abandoned = np.empty(6, np.int64), np.empty(6, np.int64), np.empty(6, bool)
        k = finish.closing(provider, remaining, need_week, prepaid, patience, 9, leave, ids, firm,
                           abandoned)  # fmt: skip
        np.testing.assert_array_equal(ids[:k], closes)
        np.testing.assert_array_equal(firm[:k], provider[closes])
        np.testing.assert_array_equal(abandoned[:k], remaining[closes] > 0)


# --- needs ---
from sim.model.kernels import needs  # noqa: E402


@pytest.mark.parametrize("batch", [False, True])
def test_needs_draw_the_uniforms_the_streams_draw(batch):
    n = 1_000
    streams = BatchStreams([3, 9, 4], n) if batch else Streams(3)
    ids = np.sort(np.random.default_rng(2).choice(3 * n if batch else n, 300, replace=False))
    count = np.random.default_rng(3).integers(1, 40, len(ids)).astype(np.int32)
    opening = ids[::3]
    gap_u, job_u = np.empty(len(ids)), np.empty((len(phases.OPEN_DRAWS), len(opening)))
    needs.draw(ids, count, opening, 17, *phases._need_keys(streams), gap_u, job_u)
    np.testing.assert_array_equal(gap_u, streams.uniform("need", count, ids))
    np.testing.assert_array_equal(job_u, streams.uniforms(17, opening, phases.OPEN_DRAWS))


def test_one_count_keys_every_arriving_need_and_no_job_draws_nothing():
    streams, ids = Streams(5), np.array([4, 2, 9])
    gap_u, job_u = np.empty(3), np.empty((len(phases.OPEN_DRAWS), 0))
    opening = np.empty(0, dtype=np.int64)
    needs.draw(ids, np.array([7], dtype=np.int32), opening, 0, *phases._need_keys(streams), gap_u,
               job_u)  # fmt: skip
    np.testing.assert_array_equal(gap_u, streams.uniform("need", 7, ids))


def test_jobs_are_sized_and_dated_as_the_numpy_formulas_bit_for_bit():
    jobs = SimpleNamespace(median_hours=12.5, sigma=0.8, misdiagnosed_low=0.3,
                           misdiagnosed_high=0.9, deadline_weeks=6)  # fmt: skip
    rng = np.random.default_rng(8)
    n, ids = 500, np.sort(rng.choice(2000, 500, replace=False))
    scale, misdiagnosis, unrealistic = rng.lognormal(0, 1, 2000), rng.random(2000), rng.random(2000)
    u, z = rng.random((len(phases.OPEN_DRAWS), n)), rng.standard_normal(n)
    true, stated, deadline = np.empty(n), np.empty(n), np.empty(n, dtype=np.int32)
    needs.open_jobs(ids, mechanics.size_factor(z, jobs), u, scale, misdiagnosis, unrealistic,
                    needs.JobTerms.of(jobs), true, stated, deadline)  # fmt: skip
    expected = mechanics.job_size(z, scale[ids], jobs)
    np.testing.assert_array_equal(true, expected)
    wrong = u[2] < misdiagnosis[ids]
    np.testing.assert_array_equal(stated, mechanics.stated_size(expected, wrong, u[3], jobs))
    np.testing.assert_array_equal(deadline, np.where(u[4] < unrealistic[ids], 0, 6))
    assert 0 < wrong.sum() < n and 0 < (deadline == 0).sum() < n


def test_a_sure_misdiagnosis_states_the_share_and_a_sure_impossible_job_has_deadline_0():
    jobs = needs.JobTerms(10.0, 0.5, 0.5, 4)
    true, stated, deadline = np.empty(2), np.empty(2), np.empty(2, dtype=np.int32)
    u = np.full((len(phases.OPEN_DRAWS), 2), 0.5)
    scale, misdiagnosis, unrealistic = (
        np.array([1.0, 3.0]),
        np.array([1.0, 0.0]),
        np.array([0.0, 1.0]),
    )
    needs.open_jobs(np.array([0, 1]), np.array([1.0, 2.0]), u, scale, misdiagnosis, unrealistic,
                    jobs, true, stated, deadline)  # fmt: skip
    np.testing.assert_array_equal(true, [10.0, 60.0])  # scale x median x factor
    np.testing.assert_array_equal(stated, [5.0, 60.0])  # the first misdiagnosed: half
    np.testing.assert_array_equal(deadline, [4, 0])


def test_needs_are_counted_per_market():
    job_open = np.array([True, True, False, True, False, True])
    job_provider = np.array([-1, 2, -1, 0, 1, -1], dtype=np.int16)
    first_job_week = np.array([-1, 3, 5, -1, -1, 0], dtype=np.int32)
    out = np.zeros((3, 2), dtype=np.int64)
    needs.counts(job_open, job_provider, first_job_week, 3, out)  # markets of 3 clients
    np.testing.assert_array_equal(out, [[1, 1], [2, 2], [2, 1]])  # unplaced, open, served
