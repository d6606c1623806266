"""Spark connected components (Large-Star/Small-Star) against scipy's, on chains, stars and random graphs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

pytestmark = pytest.mark.spark


def _expected(edges: pd.DataFrame, n: int) -> dict[int, int]:
    graph = coo_matrix((np.ones(len(edges)), (edges["src"], edges["dst"])), shape=(n, n))
    _, labels = scipy_components(graph, directed=False)
    nodes = np.unique(np.concatenate([edges["src"], edges["dst"]]))
    smallest = pd.Series(np.arange(n)).groupby(labels).min()
    return {int(v): int(smallest[labels[v]]) for v in nodes}


def test_components_equal_scipy(spark):
    from aietl_pipelines.spark.graph import connected_components

    rng = np.random.default_rng(0)
    chain = pd.DataFrame({"src": np.arange(0, 199), "dst": np.arange(1, 200)})          # diameter 199
    star = pd.DataFrame({"src": np.full(50, 300), "dst": np.arange(250, 300)})
    shuffled = rng.permutation(np.arange(400, 700))                                     # a chain in random id order
    random_chain = pd.DataFrame({"src": shuffled[:-1], "dst": shuffled[1:]})
    sparse = pd.DataFrame({"src": rng.integers(800, 1400, 400), "dst": rng.integers(800, 1400, 400)})
    sparse = sparse[sparse["src"] != sparse["dst"]]  # self-loops carry no link (the pair builder never emits them)
    edges = pd.concat([chain, star, random_chain, sparse], ignore_index=True)
    got = connected_components(spark.createDataFrame(edges)).toPandas()
    assert dict(zip(got["node"], got["component"], strict=True)) == _expected(edges, 1400)
