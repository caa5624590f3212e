"""The primitives of the kernels: counter-based draws identical to `sim.model.rng.Streams`.

`uniform(keys, n, week, slot, client)` equals ``Streams.uniform(stream, week, client, slot)``
of the client's own market, where ``keys, n = streams.kernel_keys(stream)``. `prefetch` asks
the CPU for memory a kernel will read soon (a hint: it changes no result).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
TO_UNIT = 2.0**-52  # as `sim.model.rng._TO_UNIT`


@numba.njit(cache=True, inline="always")
def mix(z: np.uint64) -> np.uint64:
    """The SplitMix64 finalizer of `sim.model.rng._mix` on one 64-bit word (wrapping)."""
    z = z ^ (z >> np.uint64(30))
    z = z * M1
    z = z ^ (z >> np.uint64(27))
    z = z * M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def unit(bits: np.uint64) -> float:
    """A uniform in (0, 1) from a hash: its top 52 bits, centred (`sim.model.rng._to_unit`)."""
    return (np.float64(bits >> np.uint64(12)) + 0.5) * TO_UNIT


@numba.njit(cache=True, inline="always")
def base(key: np.uint64, week: int, slot: int) -> np.uint64:
    """The key of (stream, week, slot) that every client's hash starts from (`Streams._base`)."""
    w = np.uint64(week) * GOLDEN
    return mix(key ^ mix(w ^ mix(np.uint64(slot) + GOLDEN)))


@numba.njit(cache=True, inline="always")
def uniform(keys: np.ndarray, n: int, week: int, slot: int, client: int) -> float:
    """``Streams.uniform(stream, week, client, slot)`` of the client's own market.

    Args:
        keys: the stream's key per market (`Streams.kernel_keys`).
        n: clients per market (ids ``r * n + i`` are client ``i`` of market ``r``).
        week: the week (or the count that keys the draw).
        slot: the draw's slot.
        client: the client's id (in the batch).
    """
    market = client // n
    local = client - market * n
    return unit(mix(base(keys[market], week, slot) + np.uint64(local) * GOLDEN))


@numba.njit(cache=True)
def uniforms_from(bases: np.ndarray, n: int, clients: np.ndarray) -> np.ndarray:
    """Rows of uniforms of `clients`, one row per key of (stream, week, slot) in `bases`.

    Args:
        bases: shape (rows, markets): each row's key per market (`Streams.week_bases`).
        n: clients per market.
        clients: the clients' ids (in the batch).

    Returns:
        shape (rows, len(clients)): ``out[k, i]`` is draw k of client i.
    """
    out = np.empty((bases.shape[0], clients.size))
    if bases.shape[1] == 1:  # one market: no division
        for k in range(bases.shape[0]):
            key = bases[k, 0]
            for i in range(clients.size):
                out[k, i] = unit(mix(key + np.uint64(clients[i]) * GOLDEN))
        return out
    for i in range(clients.size):
        market = clients[i] // n
        local = np.uint64(clients[i] - market * n) * GOLDEN
        for k in range(bases.shape[0]):
            out[k, i] = unit(mix(bases[k, market] + local))
    return out


@numba.njit(cache=True)
def uniforms_tabled(
    bases: np.ndarray, n: int, index: np.ndarray, clients: np.ndarray
) -> np.ndarray:
    """A uniform per client from a table of keys: client i draws with ``bases[index[i]]``.

    For draws whose week or slot differs by client but takes few values (a slot per
    neighbour, a need's count): each (week, slot) key is hashed once, into `bases`, shape
    (keys, markets).
    """
    out = np.empty(clients.size)
    if bases.shape[1] == 1:  # one market: no division
        for i in range(clients.size):
            out[i] = unit(mix(bases[index[i], 0] + np.uint64(clients[i]) * GOLDEN))
        return out
    for i in range(clients.size):
        market = clients[i] // n
        local = np.uint64(clients[i] - market * n) * GOLDEN
        out[i] = unit(mix(bases[index[i], market] + local))
    return out


@intrinsic
def prefetch(typingctx, array, row, column):
    """Ask the CPU to bring ``array[row, column]`` (``array[row]`` if 1-d) into its caches.

    A hint (LLVM's ``llvm.prefetch``: a read, kept in all cache levels); it changes no result.
    The rows of the clients a kernel works on lie far apart in memory: asking for those of
    the clients a few places on while one is worked overlaps the waits for memory.
    """

    def codegen(context, builder, signature, args):
        kind = signature.args[0]
        data = context.make_array(kind)(context, builder, args[0])
        index = [context.cast(builder, args[1], signature.args[1], types.intp)]
        if kind.ndim == 2:
            index.append(context.cast(builder, args[2], signature.args[2], types.intp))
        address = cgutils.get_item_pointer(context, builder, kind, data, index, wraparound=False)
        byte = builder.bitcast(address, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [byte.type, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch")
        builder.call(function, [byte, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, column), codegen
