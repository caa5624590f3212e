"""The clients' social network, with homophily on values.

Networks are returned in CSR form (``indptr``, ``indices``): the neighbours of client
``i`` are ``indices[indptr[i]:indptr[i + 1]]``, sorted ascending. Graphs are undirected
(both directions are stored), without self loops or duplicate edges.

Watts-Strogatz and Erdős-Rényi are generated directly in numpy: networkx needs about
12 s and 1.3 GB of memory just to build a 1M-client Watts-Strogatz graph, before any
conversion, which would eat a third of a 1M-client run's memory budget. Barabási-Albert
(preferential attachment is inherently sequential) comes from networkx. The complete
graph is only meant for small teaching markets and is laid out directly as CSR.
"""

import itertools
import math
from collections.abc import Callable, Mapping

import networkx as nx
import numpy as np

from sim.config.registry import check_params

_MIN_HALF_WINDOW = 25  # homophilous partners are drawn within ±25 ranks (at least)
_MAX_REDRAW_ROUNDS = 50  # clashes are rare except in tiny dense graphs, which may give up

Edges = tuple[np.ndarray, np.ndarray]


def build_network(
    n: int,
    kind: str,
    *,
    params: Mapping[str, float],
    values: np.ndarray,
    homophily: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Build the clients' social network.

    With probability ``homophily`` each edge of the generated graph keeps one (random)
    endpoint and gets a new other endpoint near it in the clients' order by the angle
    of their values, within ±max(25, mean degree) positions. The number of edges is
    kept exactly, and the edges' value similarity rises with ``homophily``.

    Args:
        n: Number of clients.
        kind: One of `sim.config.registry.NETWORK_KINDS`.
        params: Parameters of the kind: every one `sim.config.registry.NETWORK_PARAMS`
            names for it (the defaults are in configs/market/network/KIND.yaml).
        values: Clients' value vectors, shape (n, k); the angle of the first two
            coordinates orders clients for homophily (for k > 2 the other coordinates
            are ignored, so homophily matches values less closely).
        homophily: Share of edges rewired toward similar clients, in [0, 1]. It has no
            effect on the complete graph, where every pair is already linked.
        rng: Source of randomness; the same state gives the same network.

    Returns:
        The network as CSR arrays: ``indptr`` (int64, length n + 1) and ``indices``
        (int32).

    Raises:
        ValueError: If the kind, a parameter, ``values`` or ``homophily`` is invalid.
    """
    resolved = check_params(n, kind, params)
    _check_inputs(n, values, homophily)
    if kind == "complete":
        return _complete_csr(n)
    u, v = _GENERATORS[kind](n, resolved, rng)
    if homophily > 0:
        u, v = _rewire_toward_similar(u, v, values, homophily, rng)
    return _edges_to_csr(u, v, n)


def _check_inputs(n: int, values: np.ndarray, homophily: float) -> None:
    """Validate the arguments shared by every kind."""
    if not 1 <= n < 2**31:  # indices are int32; n**2 keys must fit in int64
        raise ValueError(f"n must be in [1, 2**31), got {n}")
    if values.ndim != 2 or values.shape[0] != n or values.shape[1] < 1:
        raise ValueError(f"values must have shape (n={n}, k), got {values.shape}")
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"homophily must be in [0, 1], got {homophily}")


def _watts_strogatz(n: int, params: Mapping[str, float], rng: np.random.Generator) -> Edges:
    """Ring lattice of k neighbours, each edge's far end rewired with probability p.

    As in ``networkx.watts_strogatz_graph``, a rewired edge (u, v) becomes (u, w) with w
    uniform among the clients that are neither u nor already linked to u.
    """
    k, p = int(params["k"]), params["p"]
    u = np.tile(np.arange(n, dtype=np.int64), k // 2)
    v = (u + np.repeat(np.arange(1, k // 2 + 1), n)) % n

    def draw(idx: np.ndarray) -> np.ndarray:
        w = rng.integers(0, n - 1, size=idx.size)
        return w + (w >= u[idx])  # skip u itself: uniform over the other n - 1

    return u, _redraw_until_simple(u, v, rng.random(u.size) < p, draw, n)


def _erdos_renyi(n: int, params: Mapping[str, float], rng: np.random.Generator) -> Edges:
    """G(n, p) with p = mean_degree / (n - 1): a binomial number of distinct pairs."""
    mean_degree = params["mean_degree"]
    pairs = n * (n - 1) // 2
    count = rng.binomial(pairs, mean_degree / (n - 1)) if n > 1 else 0
    # Generator.choice without replacement uses Floyd's algorithm when count << pairs,
    # so memory is O(count), not O(n**2).
    t = rng.choice(pairs, size=count, replace=False).astype(np.int64)
    # Unrank t = j(j - 1)/2 + i with i < j; the float root can be off by one.
    j = ((1 + np.sqrt(1 + 8 * t.astype(np.float64))) // 2).astype(np.int64)
    j -= j * (j - 1) // 2 > t
    j += (j + 1) * j // 2 <= t
    return t - j * (j - 1) // 2, j


def _barabasi_albert(n: int, params: Mapping[str, float], rng: np.random.Generator) -> Edges:
    """Preferential attachment of m edges per new client, via networkx."""
    m = int(params["m"])
    graph = nx.barabasi_albert_graph(n, m, seed=int(rng.integers(2**63)))
    flat = itertools.chain.from_iterable(graph.edges())
    ends = np.fromiter(flat, dtype=np.int64, count=2 * graph.number_of_edges())
    return ends[0::2], ends[1::2]


_GENERATORS: dict[str, Callable[[int, Mapping[str, float], np.random.Generator], Edges]] = {
    "watts_strogatz": _watts_strogatz,
    "erdos_renyi": _erdos_renyi,
    "barabasi_albert": _barabasi_albert,
}


def _complete_csr(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay out the complete graph directly as CSR (networkx would need GBs at n=5000)."""
    columns = np.broadcast_to(np.arange(n, dtype=np.int32), (n, n))
    indices = columns[~np.eye(n, dtype=bool)]  # row-major, so rows come out sorted
    return np.arange(n + 1, dtype=np.int64) * (n - 1), indices


def _rewire_toward_similar(
    u: np.ndarray, v: np.ndarray, values: np.ndarray, homophily: float, rng: np.random.Generator
) -> Edges:
    """Give a share ``homophily`` of edges a new endpoint near the other in value order."""
    n = values.shape[0]
    mean_degree = 2 * u.size / n
    half = min(max(_MIN_HALF_WINDOW, math.ceil(mean_degree)), (n - 1) // 2)
    if half < 1:  # fewer than 3 clients: nowhere to move to
        return u, v
    second = values[:, 1] if values.shape[1] > 1 else np.zeros(n)
    order = np.argsort(np.arctan2(second, values[:, 0]), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    # Keep a random end, so hubs neither keep nor lose all their edges.
    swap = rng.random(u.size) < 0.5
    u, v = np.where(swap, v, u), np.where(swap, u, v)

    def draw(idx: np.ndarray) -> np.ndarray:
        offset = rng.integers(1, half + 1, size=idx.size) * rng.choice([-1, 1], size=idx.size)
        return order[(rank[u[idx]] + offset) % n]  # angles wrap around the circle

    return u, _redraw_until_simple(u, v, rng.random(u.size) < homophily, draw, n)


def _redraw_until_simple(
    u: np.ndarray,
    v: np.ndarray,
    movable: np.ndarray,
    draw: Callable[[np.ndarray], np.ndarray],
    n: int,
) -> np.ndarray:
    """Redraw the far end of the movable edges until the graph has no loops or repeats.

    The original edges must be distinct. Each round checks only the fresh draws, against
    sorted arrays of accepted edges and of the still pending edges' original places;
    the latter stay reserved, so an edge still clashing after the last round can take
    its original place back: the edge count never changes.
    """
    accepted = np.sort(_pair_keys(u[~movable], v[~movable], n))
    todo, new_v = np.flatnonzero(movable), v.copy()
    for _ in range(_MAX_REDRAW_ROUNDS):
        if todo.size == 0:
            break
        reserved = np.sort(_pair_keys(u[todo], v[todo], n))
        new_v[todo] = draw(todo)
        keys = _pair_keys(u[todo], new_v[todo], n)
        clash = (u[todo] == new_v[todo]) | _first_repeat_mask(keys)
        clash |= _is_in(keys, accepted) | _is_in(keys, reserved)
        good = np.sort(keys[~clash])
        accepted = np.insert(accepted, np.searchsorted(accepted, good), good)
        todo = todo[clash]
    new_v[todo] = v[todo]
    return new_v


def _pair_keys(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Encode undirected pairs as int64 keys, independent of the ends' order."""
    return np.minimum(u, v) * n + np.maximum(u, v)


def _first_repeat_mask(keys: np.ndarray) -> np.ndarray:
    """Mark every occurrence of a key except its first."""
    order = np.argsort(keys, kind="stable")
    repeat = np.zeros(keys.size, dtype=bool)
    repeat[order[1:]] = keys[order[1:]] == keys[order[:-1]]
    return repeat


def _is_in(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Membership of ``keys`` in a sorted array (cheaper than ``np.isin`` on big arrays)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def _edges_to_csr(u: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetrise an edge list and pack it as CSR, dropping self loops and repeats."""
    keep = u != v
    # Key = row * n + column: one sort orders by row, then column. np.unique is avoided
    # on purpose: in numpy 2.x it is ~15x slower than sorting on 10M int64 keys.
    keys = np.sort(np.concatenate([u[keep] * n + v[keep], v[keep] * n + u[keep]]))
    keys = keys[np.diff(keys, prepend=-1) != 0]  # keys are >= 0
    rows, columns = np.divmod(keys, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, columns.astype(np.int32)


def concatenate_networks(networks: list[tuple[np.ndarray, np.ndarray]]):
    """One CSR network of several markets' disjoint networks, one market after another.

    Market r's client i becomes client ``r * n + i`` (n clients in every market).
    """
    if len(networks) == 1:
        return networks[0]
    n = len(networks[0][0]) - 1
    if len(networks) * n >= 2**31:
        raise ValueError(f"{len(networks)} markets of {n} clients exceed int32 client ids")
    edges = np.cumsum([0] + [len(indices) for _, indices in networks])
    indptr = np.concatenate(
        [networks[0][0][:1]] + [ptr[1:] + edges[r] for r, (ptr, _) in enumerate(networks)]
    )
    indices = np.concatenate(
        [(indices + r * n).astype(np.int32) for r, (_, indices) in enumerate(networks)]
    )
    return indptr, indices
