"""Tests of the clients' social network (sim.model.network)."""

import networkx as nx
import numpy as np
import pytest

from sim.config.registry import MAX_COMPLETE_N, NETWORK_KINDS
from sim.model.network import build_network, concatenate_networks

SMALL_PARAMS = {
    "watts_strogatz": {"k": 6, "p": 0.2},
    "barabasi_albert": {"m": 3},
    "erdos_renyi": {"mean_degree": 8},
    "complete": {},
}


def random_values(n: int, seed: int = 0) -> np.ndarray:
    """Unit value vectors with uniformly random angles."""
    angles = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    return np.column_stack([np.cos(angles), np.sin(angles)])


def build(n: int, kind: str, seed: int = 1, homophily: float = 0.0, **params: float):
    """Build a network with random values; return (indptr, indices, values)."""
    values = random_values(n, seed + 1000)
    indptr, indices = build_network(
        n,
        kind,
        params=params or SMALL_PARAMS[kind],
        values=values,
        homophily=homophily,
        rng=np.random.default_rng(seed),
    )
    return indptr, indices, values


def edge_rows(indptr: np.ndarray) -> np.ndarray:
    """The row (client) of each CSR entry."""
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


def to_networkx(indptr: np.ndarray, indices: np.ndarray) -> nx.Graph:
    """Convert CSR arrays to a networkx graph."""
    graph = nx.empty_graph(indptr.size - 1)
    graph.add_edges_from(zip(edge_rows(indptr).tolist(), indices.tolist(), strict=True))
    return graph


def mean_edge_cosine(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> float:
    """Mean cosine similarity of values across the network's edges."""
    return float(np.einsum("ij,ij->i", values[edge_rows(indptr)], values[indices]).mean())


@pytest.mark.parametrize("homophily", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_network_is_symmetric_without_self_loops_or_duplicates(kind, homophily):
    n = 60 if kind == "complete" else 400
    indptr, indices, _ = build(n, kind, homophily=homophily)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert indptr.shape == (n + 1,) and indptr[0] == 0 and indptr[-1] == indices.size
    rows = edge_rows(indptr)
    assert np.all(rows != indices)
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(indices)[same_row] > 0)  # sorted ascending, hence no repeats
    forward = np.sort(rows.astype(np.int64) * n + indices)
    backward = np.sort(indices.astype(np.int64) * n + rows)
    np.testing.assert_array_equal(forward, backward)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_same_rng_seed_gives_identical_network(kind):
    first, second = build(200, kind, seed=7, homophily=0.5), build(200, kind, seed=7, homophily=0.5)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize("kind", ["watts_strogatz", "barabasi_albert", "erdos_renyi"])
def test_different_seeds_give_different_networks(kind):
    first, second = build(200, kind, seed=1), build(200, kind, seed=2)
    assert first[1].size != second[1].size or np.any(first[1] != second[1])


@pytest.mark.parametrize("kind", ["watts_strogatz", "barabasi_albert", "erdos_renyi"])
def test_homophily_raises_value_similarity_across_edges(kind):
    cosines = [mean_edge_cosine(*build(2000, kind, homophily=h)) for h in (0.0, 0.5, 1.0)]
    assert abs(cosines[0]) < 0.05
    assert 0.35 < cosines[1] < 0.65
    assert cosines[2] > 0.9


@pytest.mark.parametrize(
    ("n", "kind", "params"),
    [
        (1000, "watts_strogatz", {"k": 10, "p": 0.1}),
        (1000, "barabasi_albert", {"m": 4}),
        (1000, "erdos_renyi", {"mean_degree": 10}),
        (12, "watts_strogatz", {"k": 10, "p": 1.0}),  # tiny and dense: redraws often clash
        (20, "erdos_renyi", {"mean_degree": 15}),
    ],
)
def test_rewiring_keeps_the_number_of_edges(n, kind, params):
    degrees = [build(n, kind, homophily=h, **params)[1].size for h in (0.0, 0.5, 1.0)]
    assert degrees[0] == degrees[1] == degrees[2]


def test_homophily_leaves_complete_network_complete():
    indptr, indices, _ = build(50, "complete", homophily=1.0)
    assert np.all(np.diff(indptr) == 49)


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("watts_strogatz", {"k": 10, "p": 0.1}, 10),
        ("watts_strogatz", {"k": 4, "p": 1.0}, 4),
        ("barabasi_albert", {"m": 5}, 2 * 5 * (3000 - 5) / 3000),
        ("erdos_renyi", {"mean_degree": 10}, 10),
        ("erdos_renyi", {"mean_degree": 3.5}, 3.5),
    ],
)
def test_mean_degree_matches_parameters(kind, params, expected):
    _, indices, _ = build(3000, kind, **params)
    assert indices.size / 3000 == pytest.approx(expected, rel=0.03)


def test_complete_network_links_every_pair():
    indptr, indices, _ = build(30, "complete")
    assert to_networkx(indptr, indices).number_of_edges() == 30 * 29 // 2


def test_numpy_watts_strogatz_matches_networkx_statistics():
    n, k, p = 2000, 10, 0.1
    ours = to_networkx(*build(n, "watts_strogatz", k=k, p=p)[:2])
    theirs = nx.watts_strogatz_graph(n, k, p, seed=3)
    assert 2 * ours.number_of_edges() / n == 2 * theirs.number_of_edges() / n == k
    # Clustering of a rewired ring lattice: about 3(k-2)/(4(k-1)) * (1-p)^3 = 0.486.
    expected = 3 * (k - 2) / (4 * (k - 1)) * (1 - p) ** 3
    assert nx.average_clustering(ours) == pytest.approx(expected, abs=0.02)
    assert nx.average_clustering(ours) == pytest.approx(nx.average_clustering(theirs), abs=0.03)
    our_spread = np.std([d for _, d in ours.degree()])
    their_spread = np.std([d for _, d in theirs.degree()])
    assert our_spread == pytest.approx(their_spread, rel=0.15)


def test_numpy_erdos_renyi_matches_networkx_statistics():
    n, mean_degree = 2000, 8
    ours = to_networkx(*build(n, "erdos_renyi", mean_degree=mean_degree)[:2])
    theirs = nx.gnp_random_graph(n, mean_degree / (n - 1), seed=3)
    assert 2 * ours.number_of_edges() / n == pytest.approx(mean_degree, rel=0.03)
    our_spread = np.std([d for _, d in ours.degree()])
    their_spread = np.std([d for _, d in theirs.degree()])
    assert our_spread == pytest.approx(their_spread, rel=0.1)
    assert nx.average_clustering(ours) < 0.02  # about p = 0.004, as in networkx


@pytest.mark.parametrize(
    ("n", "kind", "params", "homophily", "message"),
    [
        (10, "small_world", {}, 0.0, "unknown network kind"),
        (50, "watts_strogatz", {"beta": 0.1}, 0.0, "unknown parameter"),
        (50, "watts_strogatz", {"k": 4}, 0.0, r"missing parameter\(s\) \['p'\]"),
        (50, "watts_strogatz", {"k": 5, "p": 0.1}, 0.0, "even k"),
        (50, "watts_strogatz", {"k": 50, "p": 0.1}, 0.0, "must be an integer"),
        (50, "watts_strogatz", {"k": 4, "p": 1.5}, 0.0, "p in"),
        (50, "barabasi_albert", {"m": 2.5}, 0.0, "must be an integer"),
        (50, "erdos_renyi", {"mean_degree": 60}, 0.0, "mean_degree"),
        (MAX_COMPLETE_N + 1, "complete", {}, 0.0, "small markets"),
        (50, "complete", {}, 1.5, "homophily"),
    ],
)
def test_invalid_arguments_raise(n, kind, params, homophily, message):
    with pytest.raises(ValueError, match=message):
        build_network(
            n,
            kind,
            params=params,
            values=random_values(n),
            homophily=homophily,
            rng=np.random.default_rng(0),
        )


def test_values_of_wrong_shape_raise():
    with pytest.raises(ValueError, match="shape"):
        build_network(
            50,
            "complete",
            params={},
            values=random_values(40),
            homophily=0.0,
            rng=np.random.default_rng(0),
        )


def test_markets_networks_join_as_disjoint_blocks_of_client_ids():
    nets = [build(40, "watts_strogatz", seed)[:2] for seed in range(3)]
    indptr, indices = concatenate_networks(nets)
    assert len(indptr) == 121 and indices.dtype == np.int32
    for r, (ptr, idx) in enumerate(nets):
        for i in (0, 17, 39):
            g = r * 40 + i
            np.testing.assert_array_equal(
                indices[indptr[g] : indptr[g + 1]], idx[ptr[i] : ptr[i + 1]] + r * 40
            )
    assert concatenate_networks(nets[:1]) is nets[0]
