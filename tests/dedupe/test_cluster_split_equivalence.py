"""The weak-link split (cluster._agglomerate) gives exactly the clusters of the first implementation: average-link
merging on signed votes with passes over all pairs of all split components until none merges (kept here as the
reference), on random match graphs with many split components, chains, ties and repeated pairs."""

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aietl_pipelines.dedupe.cluster import (
    _agglomerate,
    _cap,
    _clusters_per_component,
    _first_seen_codes,
    _votes,
    cluster_with_components,
)

_REFERENCE_PASSES: list[int] = []  # passes over all pairs of each reference call (the last pass merges nothing)


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _reference_agglomerate(n: int, a: np.ndarray, b: np.ndarray, vote: np.ndarray) -> np.ndarray:
    """The implementation of 9efefaa: a dict of dicts, passes over every pair until nothing merges."""
    parent = np.arange(n)
    adjacency: dict[int, dict[int, float]] = {}
    for i, j, v in zip(a.tolist(), b.tolist(), vote.tolist(), strict=True):
        if i == j:
            continue
        adjacency.setdefault(i, {})[j] = adjacency.setdefault(i, {}).get(j, 0.0) + v
        adjacency.setdefault(j, {})[i] = adjacency.setdefault(j, {}).get(i, 0.0) + v
    order = np.argsort(-vote, kind="stable")
    order = order[vote[order] >= 0]
    merged, passes = True, 0
    while merged:
        merged, passes = False, passes + 1
        for e in order.tolist():
            ri, rj = _find(parent, int(a[e])), _find(parent, int(b[e]))
            if ri == rj or adjacency[ri].get(rj, 0.0) <= 0:
                continue
            big, small = (ri, rj) if len(adjacency[ri]) >= len(adjacency[rj]) else (rj, ri)
            parent[small] = big
            for other, v in adjacency.pop(small).items():
                if other == big:
                    adjacency[big].pop(small, None)
                    continue
                adjacency[big][other] = adjacency[big].get(other, 0.0) + v
                row = adjacency[other]
                row.pop(small, None)
                row[big] = row.get(big, 0.0) + v
            merged = True
    _REFERENCE_PASSES.append(passes)
    roots = np.arange(n)
    for i in np.unique(np.r_[a, b]).tolist():
        roots[i] = _find(parent, i)
    return roots


def _reference_labels(n: int, left: np.ndarray, right: np.ndarray, probability: np.ndarray, threshold: float,
                      max_cluster_size: int | None = None):
    """cluster_with_components of 9efefaa: components, split components rebuilt by the reference, the cap."""
    keep = probability >= threshold
    graph = coo_matrix((np.ones(int(keep.sum())), (left[keep], right[keep])), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    labels = components.copy()
    against = ~keep & (components[left] == components[right]) & (left != right)
    suspect = np.zeros(int(components.max(initial=-1)) + 1, dtype=bool)
    suspect[components[left[against]]] = True
    if suspect.any():
        inside = suspect[components[left]] & (components[left] == components[right])
        roots = _reference_agglomerate(n, left[inside], right[inside], _votes(probability[inside], threshold))
        labels = np.where(suspect[components], n + roots, labels)
    if max_cluster_size:
        labels = _cap(n, left[keep], right[keep], probability[keep], labels, max_cluster_size)
    return pd.factorize(labels)[0], components


def _random_graph(rng: np.random.Generator, n: int):
    """Records in neighbourhoods of a few entities (a common name); pairs only inside a neighbourhood: sure
    links inside an entity, uncertain and non-match pairs across, repeated pairs, self pairs; probabilities on a
    coarse grid, so that votes tie."""
    hood = np.sort(rng.integers(0, max(1, n // 12), n))
    entity = hood * 4 + rng.integers(0, 1 + int(rng.integers(1, 4)), n)
    starts = np.searchsorted(hood, hood, side="left")
    stops = np.searchsorted(hood, hood, side="right")
    left = rng.integers(0, n, 3 * n)
    right = starts[left] + (rng.random(3 * n) * (stops[left] - starts[left])).astype(int)
    same = entity[left] == entity[right]
    grid = np.array([1e-9, 0.01, 0.2, 0.45, 0.5, 0.55, 0.8, 0.99, 1 - 1e-9])
    p = np.where(same, grid[rng.integers(3, 9, len(left))], grid[rng.integers(0, 8, len(left))])
    return left, right, p


@pytest.mark.parametrize("seed", range(60))
def test_split_gives_the_reference_clusters(seed, monkeypatch):
    from aietl_pipelines.dedupe import cluster

    # small components all at once (dense), large ones pair by pair, or a mix; chunks of few components
    monkeypatch.setattr(cluster, "DENSE_COMPONENT", [32, 6, 0, 1000][seed % 4])
    monkeypatch.setattr(cluster, "DENSE_CHUNK", [4096, 7][seed % 2])
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 600))
    left, right, p = _random_graph(rng, n)
    threshold = float(rng.choice([0.3, 0.5, 0.7]))
    cap = [None, 3, 8][seed % 3]
    labels, components = cluster_with_components(n, left, right, p, threshold, cap)
    expected, expected_components = _reference_labels(n, left, right, p, threshold, cap)
    assert np.array_equal(components, expected_components)
    assert np.array_equal(labels, expected)


def test_random_graphs_split_many_components():
    # what the equivalence above covers: many split components of one call, with refused merges
    rng = np.random.default_rng(3)
    n = 5000
    left, right, p = _random_graph(rng, n)
    labels, components = cluster_with_components(n, left, right, p, 0.5)
    split = pd.DataFrame({"c": components, "l": labels}).groupby("c")["l"].nunique()
    assert (split > 1).sum() >= 50
    assert np.array_equal(labels, _reference_labels(n, left, right, p, 0.5)[0])
    assert _REFERENCE_PASSES[-1] >= 2


def test_agglomerate_on_no_pairs_and_self_pairs():
    assert np.array_equal(_agglomerate(3, np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0)), [0, 1, 2])
    roots = _agglomerate(4, np.array([2, 1]), np.array([2, 3]), np.array([1.0, 0.5]))
    assert roots[0] == 0 and roots[2] == 2 and roots[1] == roots[3]


def test_first_seen_codes_and_clusters_per_component():
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 1000):
        labels = rng.integers(0, max(1, size // 3) * 2, size)
        assert np.array_equal(_first_seen_codes(labels), pd.factorize(labels)[0])
    components = np.array([0, 0, 1, 1, 1, 2])
    labels = np.array([0, 0, 1, 2, 2, 3])
    assert _clusters_per_component(labels, components, 4).tolist() == [1, 2, 1, 0]
    # a cluster across two components (never made by cluster_with_components) is still counted per component
    assert _clusters_per_component(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist() == [1, 2]


def test_all_distinct_says_what_pandas_duplicated_says(monkeypatch):
    from aietl_pipelines.dedupe import candidates
    from aietl_pipelines.dedupe.cluster import _all_distinct

    monkeypatch.setattr(candidates, "PARTITION_KEYS", 64)  # several partitions on small inputs
    rng = np.random.default_rng(0)
    ids = np.array([f"id-{k}" for k in rng.permutation(5000)], dtype=object)
    cases = [ids, np.r_[ids, ids[:1]], np.arange(3000), np.r_[np.arange(3000), [7]], np.array([1, 1.0], dtype=object),
             np.array(["a", None, None], dtype=object), np.array([float("nan"), float("nan")], dtype=object),
             np.array(["a", None], dtype=object), np.zeros(0, dtype=object)]
    for values in cases:
        assert _all_distinct(values) == (not pd.Series(values).duplicated().any())
