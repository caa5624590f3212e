"""Named random streams and common random numbers.

Every kind of random decision has its own stream, derived from the run's seed and the
stream's name. Decisions about clients use a *counter-based* generator: a uniform is a
keyed hash (SplitMix64) of (seed, stream, week, client id, slot), so a client's random
numbers do not depend on who else is in the market, on the policy mix or on the engine.
With one seed every policy mix sees the same clients, network and arrivals of need
(common random numbers), and both engines read exactly the same numbers.

One-off draws at initialisation (traits, network, cultures) use ordinary numpy
generators spawned from the same seed, one per stream.

A stream is keyed by a stable hash of its *name* (`stream_id`), never by its position in
`STREAMS`: adding, removing or reordering streams leaves the numbers of the others as they
were; renaming a stream changes its numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np

from sim.model.kernels import draws

STREAMS: tuple[str, ...] = (
    "traits",
    "network",
    "culture",
    "need",
    "size",
    "misdiagnosis",
    "deadline",
    "ads",
    "choice",
    "screening",
    "upsell",
    "service",
    "payment",
    "satisfaction",
    "retention",
    "review",
    "wom",
    "reform",
    # issue 23, jobs: late jobs disputed, impossible jobs failed
    "dispute",
    "failure",
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S12 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(12)
_TO_UNIT = 2.0**-52  # 52 bits: (2**52 - 1 + 0.5) * 2**-52 < 1 exactly
ONE_MARKET = 1 << 62  # clients per market of a single run, for `Streams.kernel_keys`
WEEK_BLOCK = 64  # weeks whose keys `Streams.week_bases` hashes at once


def stream_id(name: str) -> int:
    """A stable 64-bit id of a stream's name: the first 8 bytes of its BLAKE2b digest."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele, Lea & Flood 2014) on uint64 arrays, wrapping.

    Works in place on one fresh array (`z` itself is not changed): fewer temporaries.
    """
    z = z ^ (z >> _S30)
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def _few_distinct(slot) -> bool:
    """True for a long 1-D array of small non-negative slots (cheaper to tabulate)."""
    return isinstance(slot, np.ndarray) and slot.ndim == 1 and slot.size > 64 and _small_slots(slot)


def _to_unit(bits: np.ndarray) -> np.ndarray:
    """Uniforms in the open interval (0, 1) from 64-bit hashes: their top 52 bits, centred."""
    u = (bits >> _S12).astype(np.float64)
    u += 0.5
    u *= _TO_UNIT
    return u


def _small_slots(slot) -> bool:
    """True for a non-empty integer array of non-negative slots below 4096, of any shape.

    One pass: read as unsigned (of 16 bits or more), a negative slot is larger than those.
    """
    if not (isinstance(slot, np.ndarray) and slot.size > 0 and slot.dtype.kind in "iu"):
        return False
    if slot.dtype.kind == "i" and slot.itemsize > 1:
        slot = slot.view(f"u{slot.itemsize}")
    elif slot.dtype.kind == "i":
        return bool(slot.min() >= 0 and slot.max() < 4096)
    return bool(slot.max() < 4096)


def _u64(x: np.ndarray | int) -> np.ndarray:
    """Ids (or weeks, slots) as uint64, two's complement: a view when already int64."""
    x = np.atleast_1d(np.asarray(x, dtype=np.int64))
    return x.view(np.uint64) if x.flags.c_contiguous else x.astype(np.uint64)


class Streams:
    """The random streams of one run, all derived from one seed.

    Args:
        seed: the run's seed (a non-negative integer).
    """

    def __init__(self, seed: int) -> None:
        if seed is None or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.per_market = ONE_MARKET  # clients per market: ids are in market id // per_market
        self._tables: dict[tuple, np.ndarray] = {}
        self._keys = {name: self._key(name) for name in STREAMS}

    def _key(self, name: str) -> np.uint64:
        sequence = np.random.SeedSequence(self.seed, spawn_key=(stream_id(name),))
        return np.uint64(sequence.generate_state(1, np.uint64)[0])

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed})"

    def generator(self, stream: str) -> np.random.Generator:
        """A numpy Generator for one-off draws of `stream` (e.g. traits at initialisation)."""
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS)}")
        sequence = np.random.SeedSequence(self.seed, spawn_key=(stream_id(stream), 1))
        return np.random.default_rng(sequence)

    def bits(self, stream: str, week, ids, slot=0) -> np.ndarray:
        """Keyed 64-bit hashes of (stream, week, id, slot); arguments broadcast together."""
        key = self._keys[stream]
        if isinstance(week, int | np.integer) and isinstance(slot, int | np.integer):
            base = self._week_base(stream, week, slot)  # the common case: one key for all
        elif isinstance(week, int | np.integer) and _few_distinct(slot):
            # one week, many slots from a small range (one per business, or per neighbour):
            # hash each possible slot once and look it up
            slot = np.asarray(slot, dtype=np.int64)
            base = self._base(key, week, np.arange(slot.max() + 1)).take(slot)
        elif isinstance(slot, int | np.integer) and _few_distinct(week):
            # one slot, many "weeks" from a small range (a client's k-th need is keyed by k)
            week = np.asarray(week, dtype=np.int64)
            base = self._base(key, np.arange(week.max() + 1), slot).take(week)
        else:
            base = self._base(key, week, slot)
        return _mix(base + _u64(ids) * _GOLDEN)

    def _week_base(self, stream: str, week: int, slot: int) -> np.uint64:
        """The key of (stream, week, slot) (`week_bases` of the one market)."""
        return self.week_bases(stream, week, slot)[0]

    def week_bases(self, stream: str, week: int, slot: int) -> np.ndarray:
        """The key of (stream, week, slot) of each market, shape (markets,), for the kernels.

        Looked up in a table of the keys of `WEEK_BLOCK` weeks, hashed at once (`_base`) the
        first time one of them is asked for.
        """
        block, row = divmod(int(week), WEEK_BLOCK)
        return self._block(stream, slot, block)[row]

    def _block(self, stream: str, slot: int, block: int) -> np.ndarray:
        """The keys of (stream, week, slot) of the `WEEK_BLOCK` weeks of `block`, per market."""
        table = self._tables.get((stream, slot, block))
        if table is None:
            if len(self._tables) > 4096:
                self._tables.clear()
            weeks = np.arange(block * WEEK_BLOCK, (block + 1) * WEEK_BLOCK)
            keys = self.kernel_keys(stream)[0]
            table = self._tables[stream, slot, block] = self._base(keys, weeks[:, None], slot)
        return table

    def uniforms(self, week: int, ids, draws: tuple) -> np.ndarray:
        """Several draws for the same clients at once: one row per (stream, slot) of `draws`.

        Row k equals ``uniform(*draws[k][:1], week, ids, draws[k][1])`` exactly, computed
        in one compiled pass over the clients (`sim.model.kernels.draws.uniforms_from`). The
        keys of `draws` (a tuple) are tabulated for `WEEK_BLOCK` weeks at once.
        """
        block, row = divmod(int(week), WEEK_BLOCK)
        table = self._tables.get((draws, block))
        if table is None:
            rows = [self._block(stream, slot, block) for stream, slot in draws]
            table = self._tables[draws, block] = np.stack(rows, axis=1)  # (weeks, rows, markets)
        return _kernel_draws(table[row], self.per_market, ids)

    @staticmethod
    def _base(key, week, slot) -> np.ndarray:
        return _mix(key ^ _mix(_u64(week) * _GOLDEN ^ _mix(_u64(slot) + _GOLDEN)))

    def uniform(self, stream: str, week, ids, slot=0) -> np.ndarray:
        """Uniforms in the open interval (0, 1), one per broadcast (week, id, slot).

        A 1-D array of ids, with one week and slot, or one of them per id from a small range,
        is drawn in one compiled pass (`sim.model.kernels.draws`); other shapes broadcast
        through `bits`.
        """
        ids = np.asarray(ids)
        if ids.ndim == 1 and ids.dtype.kind in "iu":
            one_week = isinstance(week, int | np.integer)
            one_slot = isinstance(slot, int | np.integer)
            if one_week and one_slot:
                bases = self.week_bases(stream, week, slot)[None]
                return _kernel_draws(bases, self.per_market, ids)[0]
            varying = slot if one_week else week
            if (one_week or one_slot) and np.shape(varying) == ids.shape and _small_slots(varying):
                # few distinct keys (a slot per neighbour, a need's count): each hashed once
                index = np.asarray(varying).astype(np.int64, copy=False)
                every = np.arange(int(index.max()) + 1)[None, :]
                keys = self.kernel_keys(stream)[0][:, None]
                table = self._base(keys, week, every) if one_week else self._base(keys, every, slot)
                bases = np.ascontiguousarray(table.T)  # (keys, markets)
                clients = ids.astype(np.int64, copy=False)
                return _numpy_dtype(draws.uniforms_tabled(bases, self.per_market, index, clients))
        return _to_unit(self.bits(stream, week, ids, slot))

    def kernel_keys(self, stream: str) -> tuple[np.ndarray, int]:
        """The stream's key per market and the clients per market, for `sim.model.kernels`.

        One market: every id is in market 0.
        """
        return np.array([self._keys[stream]], dtype=np.uint64), self.per_market

    def normal(self, stream: str, week, ids, slot=0) -> np.ndarray:
        """Standard normals by Box-Muller from the uniforms of slots 2*slot and 2*slot+1."""
        slot2 = 2 * np.asarray(slot, dtype=np.int64)
        return box_muller(self.uniform(stream, week, ids, slot2),
                          self.uniform(stream, week, ids, slot2 + 1))  # fmt: skip


class BatchStreams(Streams):
    """The streams of R markets stepped as one (`MarketModel` with several seeds).

    The markets' clients are numbered one after another: client id ``r * n + i`` is client
    ``i`` of market ``r``, seeded ``seeds[r]``. Every draw for it is exactly the draw of
    `Streams(seeds[r])` for client ``i``: a replication's numbers do not depend on the
    others in the batch.

    Args:
        seeds: the markets' seeds.
        n: clients in each market.
    """

    def __init__(self, seeds, n: int) -> None:
        self.members = [Streams(seed) for seed in seeds]
        self.seed, self.n = self.members[0].seed, int(n)
        self.per_market = self.n
        self._tables = {}
        self._keys = {
            name: np.array([m._keys[name] for m in self.members], dtype=np.uint64)
            for name in STREAMS
        }

    def __repr__(self) -> str:
        return f"BatchStreams(seeds={[m.seed for m in self.members]}, n={self.n})"

    def generator(self, stream: str) -> np.random.Generator:
        """One-off draws belong to one market: use ``members[r].generator``."""
        raise TypeError("a batch has one generator per market: use members[r].generator")

    def _split(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """(market, id within it) of each of the batch's client ids."""
        ids = np.asarray(ids, dtype=np.int64)
        market = ids // self.n
        return market, ids - market * self.n

    def bits(self, stream: str, week, ids, slot=0) -> np.ndarray:
        """`Streams.bits` of each client's own market, for the clients' local ids."""
        market, local = self._split(ids)
        keys = self._keys[stream]
        if isinstance(week, int | np.integer) and isinstance(slot, int | np.integer):
            base = self.week_bases(stream, week, slot).take(market)
        elif isinstance(week, int | np.integer) and _small_slots(slot):
            # one week: hash each market's possible slots once and look them up
            slot = np.asarray(slot, dtype=np.int64)
            width = int(slot.max()) + 1
            table = self._base(keys[:, None], week, np.arange(width))  # (markets, slots)
            base = table.reshape(-1).take(market * width + slot)
        else:
            base = self._base(keys.take(market), week, slot)
        return _mix(base + _u64(local) * _GOLDEN)

    def kernel_keys(self, stream: str) -> tuple[np.ndarray, int]:
        """The stream's key per market and the clients per market (`Streams.kernel_keys`)."""
        return self._keys[stream], self.per_market


def _kernel_draws(bases: np.ndarray, n: int, ids) -> np.ndarray:
    """`draws.uniforms_from` for ids of any integer dtype (as int64)."""
    return _numpy_dtype(draws.uniforms_from(bases, n, np.asarray(ids).astype(np.int64, copy=False)))


def _numpy_dtype(u: np.ndarray) -> np.ndarray:
    """A kernel's float64 array viewed with numpy's own float64 dtype.

    An array a cached kernel returns carries an unpickled copy of the dtype, on which some
    numpy functions take a slow path (`np.add.at` 20 times slower); a view is free.
    """
    return u.view(np.float64)


def box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two arrays of uniforms (`Streams.normal`); changes both."""
    np.log(u1, out=u1)
    u1 *= -2.0
    np.sqrt(u1, out=u1)
    u2 *= 2.0 * np.pi
    np.cos(u2, out=u2)
    u1 *= u2
    return u1
