"""Clusters from scored pairs: connected components with a guard against chaining."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aietl_pipelines.dedupe.config import DedupeConfig


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cluster_records(n: int, left: np.ndarray, right: np.ndarray, probability: np.ndarray, threshold: float,
                    max_cluster_size: int) -> np.ndarray:
    """Cluster label (0..k-1) of each of the n records; every record gets exactly one.

    Pairs at or above `threshold` link records. A component larger than `max_cluster_size` (a chain of weak
    links) is rebuilt greedily from its strongest links, refusing any link that would grow a cluster past the
    limit.
    """
    keep = probability >= threshold
    a, b, p = left[keep], right[keep], probability[keep]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes > max_cluster_size)
    if len(big):
        parent = np.arange(n)
        size = np.ones(n, dtype=int)
        in_big = np.isin(labels, big)
        order = np.argsort(-p, kind="stable")
        for e in order:
            i, j = a[e], b[e]
            if not in_big[i]:
                continue
            ri, rj = _find(parent, i), _find(parent, j)
            if ri != rj and size[ri] + size[rj] <= max_cluster_size:
                parent[rj] = ri
                size[ri] += size[rj]
        roots = np.array([_find(parent, i) for i in range(n)])
        labels = np.where(in_big, n + roots, labels)
    return pd.factorize(labels)[0]


def cluster(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, config: DedupeConfig) -> pd.DataFrame:
    """Stage 4 of dedupe: record_id → cluster_id for every input record."""
    labels = cluster_records(len(prepared), pairs["left"].to_numpy(), pairs["right"].to_numpy(), probability,
                             config.match_threshold, config.max_cluster_size)
    return pd.DataFrame({"record_id": prepared["record_id"].to_numpy(), "cluster_id": labels})
