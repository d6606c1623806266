"""Linear-cost candidates: the partitioned kNN against the exact one, blocking that never drops a block."""

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.errors import AietlInputError


def _clustered(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n // 4, dim))
    vectors = centers[rng.integers(0, len(centers), n)] + 0.25 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _close_pairs(found: cand.Neighbours, cut: float) -> set[tuple[int, int]]:
    pairs, _ = cand.neighbour_pairs(found, cut)
    return {tuple(sorted(p)) for p in pairs.tolist()}


def test_partitioned_knn_finds_the_close_neighbours_of_the_exact_search():
    vectors = _clustered(6000)
    exact = cand.knn_search(vectors, vectors, 5, self_offset=0, precision="float32")
    approx = cand.partitioned_knn(vectors, 5, list_size=300, probes=6)
    assert approx.indices.shape == (6000, 5)
    assert not np.any(approx.indices == np.arange(6000)[:, None])  # never its own neighbour
    found = approx.cosines > -1.5
    again = np.einsum("nd,nkd->nk", vectors, vectors[approx.indices])
    assert np.allclose(approx.cosines[found], again[found], atol=1e-5)  # exact float32 cosines
    truth = _close_pairs(exact, 0.8)
    assert len(truth) > 3000
    assert len(truth & _close_pairs(approx, 0.8)) / len(truth) >= 0.99
    again_run = cand.partitioned_knn(vectors, 5, list_size=300, probes=6)
    assert np.array_equal(again_run.indices, approx.indices)  # seeded: the same lists every run


def test_nearest_neighbours_keeps_the_exact_path_for_small_inputs():
    vectors = _clustered(400)
    exact = cand.knn_search(vectors, vectors, 3, self_offset=0)
    assert np.array_equal(cand.nearest_neighbours(vectors, 3, exact_max=1000).indices, exact.indices)
    forced = cand.nearest_neighbours(vectors, 3, method="partitioned", list_size=100, probes=2)
    assert forced.indices.shape == (400, 3)
    with pytest.raises(AietlInputError, match="knn_method must be auto, exact or partitioned"):
        cand.nearest_neighbours(vectors, 3, method="hnsw")


def test_partitioned_knn_on_tiny_inputs():
    one = cand.partitioned_knn(_clustered(8)[:1], 5)
    assert one.indices.shape == (1, 0)
    few = cand.partitioned_knn(_clustered(8), 10, list_size=1000)
    assert few.indices.shape == (8, 7) and np.all(few.cosines > -1.5)


def test_oversized_blocks_become_sorted_neighbourhoods_never_dropped():
    n = 500
    keys = pd.DataFrame({"city": ["springfield"] * n, "email": [f"p{i // 2}@x.org" for i in range(n)],
                         "__text": [f"name{i:04d}" for i in range(n)]})
    keys.loc[3, "email"] = None
    pairs = cand.blocking_pairs(keys, [["city"], ["email"]], max_block_size=20, window=3)
    as_set = {tuple(p) for p in pairs.tolist()}
    # the 500-record city block: each record with the next two in text order, not 124,750 pairs
    assert (0, 1) in as_set and (0, 2) in as_set and (0, 3) not in as_set
    assert len(pairs) == (n - 1) + (n - 2)  # the e-mail pairs are neighbours in that order too
    stats = cand.block_statistics(keys, [["city"], ["email"]], max_block_size=20, window=3).set_index("rule")
    assert stats.loc["city", "oversized_blocks"] == 1 and stats.loc["city", "records_in_oversized_blocks"] == n
    assert stats.loc["city", "pairs"] == (n - 1) + (n - 2) and stats.loc["city", "pairs_all_in_oversized"] == n * (n - 1) // 2
    assert stats.loc["email", "oversized_blocks"] == 0 and stats.loc["email", "pairs"] == 249
    # incremental: only pairs with a record at or after new_from
    fresh = cand.blocking_pairs(keys, [["city"], ["email"]], max_block_size=20, window=3, new_from=490)
    assert len(fresh) and fresh.max(axis=1).min() >= 490
    assert {tuple(p) for p in fresh.tolist()} == {p for p in as_set if max(p) >= 490}


def test_blocking_pairs_grow_linearly_with_a_common_key():
    def count(n: int) -> int:
        rng = np.random.default_rng(1)
        keys = pd.DataFrame({"last": rng.choice(["smith", "jones", "lee"], n), "__text": rng.random(n).astype(str)})
        return len(cand.blocking_pairs(keys, [["last"]], max_block_size=20, window=5))

    assert count(20_000) / count(2_000) == pytest.approx(10, rel=0.01)  # not 100x


def test_block_codes_hash_values_as_text_and_treat_blank_as_missing():
    from aietl_pipelines.dedupe.candidates import block_codes

    keys = pd.DataFrame({"a": ["x", "y", "", None, "x", 1, "1"], "b": ["p", "p", "p", "p", np.nan, "p", "p"]},
                        dtype=object)
    codes, rows = block_codes(keys, ["a"])
    assert rows.tolist() == [0, 1, 4, 5, 6]  # "" and None are missing
    assert codes[0] == codes[2] and codes[3] == codes[4] and len(set(codes.tolist())) == 3  # 1 and "1": one key
    codes, rows = block_codes(keys, ["a", "b"])
    assert rows.tolist() == [0, 1, 5, 6] and codes[2] == codes[3] and len(set(codes.tolist())) == 3
    assert block_codes(keys.iloc[:0], ["a"])[0].size == 0
