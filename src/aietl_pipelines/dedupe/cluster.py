"""Clusters from scored pairs: connected components of the matches, split where links are weak.

A component of the match graph (pairs at or above the threshold) is kept whole unless the scored pairs inside
it also hold evidence against it: a candidate pair of two of its records scored below the threshold. Such a
component is rebuilt by average-link agglomeration on the signed evidence of its pairs (correlation
clustering, with the pairs' log-likelihood ratios as weights): each pair votes
v = clip(log2 odds(p) - log2 odds(threshold), ±VOTE_BITS) / VOTE_BITS, its evidence beyond the threshold in bits up
to VOTE_BITS, so a pair just at the threshold votes 0, a sure match +1 and a sure non-match -1, and a pair one bit
below the threshold a tenth of -1; two groups merge, strongest link first, only while the votes between them sum
above 0. So 1,000 records of one person stay one cluster whatever their number (every vote is +1), while A-B-C
with A-C scored a sure non-match is cut at its weakest link. Every split is logged and counted (`component_id`
keeps the component each cluster came from). An optional hard cap (`max_cluster_size`, off by default) applies
after that, as the old guard did, and is counted too.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aietl_pipelines.dedupe.candidates import count_equal_pairs
from aietl_pipelines.dedupe.config import DedupeConfig

logger = logging.getLogger(__name__)


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


#: Evidence (bits beyond the threshold) at which a pair's vote is full. Before, one bit (`max(|log2 odds(t)|, 1)`
#: at the 0.5 threshold): every pair scored under p = 0.33 voted as a sure non-match, and an entity whose records
#: are linked by a few sure matches and many uncertain non-matches (an inventor at two companies) was split. With
#: 10 bits (p = 0.999 at the 0.5 threshold) the votes weigh the evidence. F1 with 1 bit (cac8c6d) and 10 bits
#: (5667e51), `benchmarks.dedupe` and `benchmarks.dedupe_real`: FEBRL 2/3 free text 0.981 -> 0.988 and 0.977 ->
#: 0.989, patent inventors structured 0.9936 -> 0.9976 and free text 0.839 -> 0.864, organisations 0.9625 -> 0.9641
#: and 0.964 -> 0.976; FEBRL structured, FEBRL 1 free text, restaurants and persons unchanged (docs/dedupe.md).
VOTE_BITS = 10.0


def _votes(probability: np.ndarray, threshold: float) -> np.ndarray:
    eps = 1e-12
    p = np.clip(probability, eps, 1 - eps)
    t = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    return np.clip((np.log2(p / (1 - p)) - np.log2(t / (1 - t))) / VOTE_BITS, -1.0, 1.0)


def _agglomerate(n: int, a: np.ndarray, b: np.ndarray, vote: np.ndarray) -> np.ndarray:
    """Root of each record after average-link merging on signed votes (only the records of `a`/`b` move).

    The pairs with a vote of at least 0 are taken strongest first; the groups of a pair merge while the votes
    between them sum above 0. A refused merge may become possible after later merges, so the refused pairs are
    tried again, in the same order, until a pass merges nothing: the same merges as passes over all pairs until
    none merges (a pair that merged or whose records were already in one group stays inside one group), without
    visiting every pair of every split component once per pass of the slowest one. The records are numbered
    0..m-1 inside (lists, not arrays of n: the work is the pairs', whatever n is)."""
    roots = np.arange(n)
    if not len(a):
        return roots
    nodes, inverse = np.unique(np.r_[a, b], return_inverse=True)
    inverse = inverse.reshape(-1)
    ia, ib = inverse[: len(a)], inverse[len(a):]
    parent = list(range(len(nodes)))
    adjacency: list[dict[int, float] | None] = [{} for _ in range(len(nodes))]
    for i, j, v in zip(ia.tolist(), ib.tolist(), vote.tolist(), strict=True):
        if i == j:
            continue
        row = adjacency[i]
        row[j] = row.get(j, 0.0) + v
        row = adjacency[j]
        row[i] = row.get(i, 0.0) + v
    order = np.argsort(-vote, kind="stable")
    order = order[vote[order] >= 0]
    pending = list(zip(ia[order].tolist(), ib[order].tolist(), strict=True))
    while pending:
        refused = []
        merged = False
        for i, j in pending:
            while parent[i] != i:  # find with path halving
                parent[i] = parent[parent[i]]
                i = parent[i]
            while parent[j] != j:
                parent[j] = parent[parent[j]]
                j = parent[j]
            if i == j:
                continue
            row_i, row_j = adjacency[i], adjacency[j]
            if row_i.get(j, 0.0) <= 0:
                refused.append((i, j))  # roots now; a later root of theirs is found from them
                continue
            big, small, row_big, row_small = (i, j, row_i, row_j) if len(row_i) >= len(row_j) else (j, i, row_j, row_i)
            parent[small] = big
            adjacency[small] = None
            for other, v in row_small.items():
                if other == big:
                    row_big.pop(small, None)
                    continue
                row_big[other] = row_big.get(other, 0.0) + v
                row = adjacency[other]
                row.pop(small, None)
                row[big] = row.get(big, 0.0) + v
            merged = True
        if not merged:
            break
        pending = refused
    local = np.array(parent)
    while True:  # every record to its root, all at once
        up = local[local]
        if np.array_equal(up, local):
            break
        local = up
    roots[nodes] = nodes[local]
    return roots


#: Split components of at most this many records are merged together, as one dense matrix of group links each
#: (`_agglomerate_dense`); larger ones pair by pair (`_agglomerate`). DENSE_CHUNK components at a time.
DENSE_COMPONENT = 32
DENSE_CHUNK = 4096


def _agglomerate_dense(a: np.ndarray, b: np.ndarray, vote: np.ndarray, group: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """`_agglomerate` of many small components at once: the records of `a`/`b` and the root of each.

    The same merges, component by component: step k takes the k-th pair (in vote order) of every component that
    has one, with NumPy over the components, and the votes between groups are a matrix per component (its rows
    summed on a merge, as `_agglomerate` sums its dicts: each link gets the same additions in the same order).
    Which record of a group is its root differs, not the groups."""
    records, record_of = np.unique(np.r_[a, b], return_inverse=True)
    record_of = record_of.reshape(-1)
    record_component = np.empty(len(records), dtype=np.int64)
    record_component[record_of] = np.r_[group, group]
    components, record_component = np.unique(record_component, return_inverse=True)
    record_component = record_component.reshape(-1)
    by_component = np.argsort(record_component, kind="stable")
    sizes = np.bincount(record_component, minlength=len(components))
    firsts = np.cumsum(sizes) - sizes
    local = np.empty(len(records), dtype=np.int64)  # position of each record inside its component
    local[by_component] = np.arange(len(records)) - firsts[record_component[by_component]]
    edge_component = record_component[record_of[: len(a)]]
    la, lb = local[record_of[: len(a)]], local[record_of[len(a):]]
    positive = np.argsort(-vote, kind="stable")
    positive = positive[vote[positive] >= 0]
    positive = positive[np.argsort(edge_component[positive], kind="stable")]  # by component, in vote order
    roots = np.empty(len(records), dtype=np.int64)
    order = np.argsort(sizes, kind="stable")  # chunks of components of similar size: small matrices
    edge_order = np.argsort(edge_component, kind="stable")
    edge_ends = np.cumsum(np.bincount(edge_component, minlength=len(components)))
    positive_ends = np.cumsum(np.bincount(edge_component[positive], minlength=len(components)))
    for start in range(0, len(order), DENSE_CHUNK):
        chunk = order[start:start + DENSE_CHUNK]
        width = int(sizes[chunk].max())
        slot = np.full(len(components), -1, dtype=np.int64)
        slot[chunk] = np.arange(len(chunk))
        edges = _take_ranges(edge_order, edge_ends, chunk)
        link = np.zeros((len(chunk), width, width))
        c = slot[edge_component[edges]]
        keep = la[edges] != lb[edges]
        c, i, j, v = c[keep], la[edges][keep], lb[edges][keep], vote[edges][keep]
        # both directions of each pair in pair order: the additions of `_agglomerate`'s dicts, in their order
        np.add.at(link, (np.repeat(c, 2), np.c_[i, j].ravel(), np.c_[j, i].ravel()), np.repeat(v, 2))
        pairs = _take_ranges(positive, positive_ends, chunk)
        pc = slot[edge_component[pairs]]
        counts = np.bincount(pc, minlength=len(chunk))
        step = np.arange(len(pairs)) - (np.cumsum(counts) - counts)[pc]
        pend_i = np.zeros((len(chunk), max(int(counts.max(initial=0)), 1)), dtype=np.int64)
        pend_j = np.zeros_like(pend_i)
        pend_i[pc, step], pend_j[pc, step] = la[pairs], lb[pairs]
        root = np.tile(np.arange(width), (len(chunk), 1))
        while True:
            refused_i, refused_j = np.zeros_like(pend_i), np.zeros_like(pend_j)
            n_refused = np.zeros(len(chunk), dtype=np.int64)
            merged = np.zeros(len(chunk), dtype=bool)
            for k in range(int(counts.max(initial=0))):
                act = np.flatnonzero(counts > k)
                ri, rj = root[act, pend_i[act, k]], root[act, pend_j[act, k]]
                apart = ri != rj
                act, ri, rj = act[apart], ri[apart], rj[apart]
                ok = link[act, ri, rj] > 0
                no = act[~ok]
                refused_i[no, n_refused[no]], refused_j[no, n_refused[no]] = ri[~ok], rj[~ok]
                n_refused[no] += 1
                act, ri, rj = act[ok], ri[ok], rj[ok]
                if len(act):
                    big, small = np.minimum(ri, rj), np.maximum(ri, rj)
                    link[act, big, :] += link[act, small, :]
                    link[act, :, big] = link[act, big, :]
                    members = root[act]
                    root[act] = np.where(members == small[:, None], big[:, None], members)
                    merged[act] = True
            counts = np.where(merged, n_refused, 0)
            if not counts.any():
                break
            pend_i, pend_j = refused_i, refused_j
        mine = np.flatnonzero(slot[record_component] >= 0)
        row = slot[record_component[mine]]
        top = root[row, local[mine]]  # the local root; its record is the record at that position
        roots[mine] = records[by_component[firsts[record_component[mine]] + top]]
    return records, roots


def _take_ranges(values: np.ndarray, ends: np.ndarray, which: np.ndarray) -> np.ndarray:
    """values[ends[w-1]:ends[w]] for each w of `which`, concatenated (the ranges of sorted groups)."""
    starts = np.r_[0, ends[:-1]][which]
    lengths = ends[which] - starts
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return values[np.arange(int(lengths.sum())) + offsets]


def _cap(n: int, a: np.ndarray, b: np.ndarray, p: np.ndarray, labels: np.ndarray, max_size: int) -> np.ndarray:
    """The old last-resort guard: rebuild clusters above `max_size` from their strongest links."""
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes > max_size)
    if not len(big):
        return labels
    parent, size = np.arange(n), np.ones(n, dtype=int)
    in_big = np.isin(labels, big)
    for e in np.argsort(-p, kind="stable"):
        i, j = a[e], b[e]
        if not (in_big[i] and labels[i] == labels[j]):
            continue
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj and size[ri] + size[rj] <= max_size:
            parent[rj] = ri
            size[ri] += size[rj]
    roots = np.array([_find(parent, i) for i in range(n)])
    return np.where(in_big, n + roots, labels)


def _first_seen_codes(labels: np.ndarray) -> np.ndarray:
    """`pd.factorize(labels)[0]` of non-negative integer labels (0.. in order of first appearance), from arrays
    as long as the largest label instead of a hash table, whose lookups miss the cache at 1M labels."""
    if not len(labels):
        return np.zeros(0, dtype=np.int64)
    positions = np.arange(len(labels))
    first = np.full(int(labels.max()) + 1, len(labels))
    np.minimum.at(first, labels, positions)
    starts = first[labels] == positions  # the first record of each label, in record order
    code = np.zeros(len(first), dtype=np.int64)
    code[labels[starts]] = np.arange(int(starts.sum()))
    return code[labels]


def _clusters_per_component(labels: np.ndarray, components: np.ndarray, n_components: int) -> np.ndarray:
    """Number of clusters (0..k-1 `labels`) in each match component: a cluster lies inside one component (a split
    or a cap only divides one), so each cluster is counted once at its component, without hashing pairs."""
    component_of = np.zeros(int(labels.max(initial=-1)) + 1, dtype=np.int64)
    component_of[labels] = components
    if not np.array_equal(component_of[labels], components):  # never, by construction; hashed if it ever were
        distinct = pd.unique(components.astype(np.int64) * max(len(labels), 1) + labels) // max(len(labels), 1)
        return np.bincount(distinct, minlength=n_components)
    return np.bincount(component_of, minlength=n_components)


def cluster_with_components(n: int, left: np.ndarray, right: np.ndarray, probability: np.ndarray,
                            threshold: float, max_cluster_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label (0..k-1) of each of the n records, and the match-graph component each came from."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    probability = np.asarray(probability, dtype=float)
    keep = probability >= threshold
    graph = coo_matrix((np.ones(int(keep.sum())), (left[keep], right[keep])), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    labels = components.copy()
    # components holding a scored pair below the threshold (evidence against) between two of their records
    component_left = components[left]
    same = component_left == components[right]
    against = ~keep & same & (left != right)
    suspect = np.zeros(int(components.max(initial=-1)) + 1, dtype=bool)  # masks, not np.isin: no sort
    suspect[component_left[against]] = True
    if suspect.any():
        inside = same & suspect[component_left]
        a, b, group = left[inside], right[inside], component_left[inside]
        vote = _votes(probability[inside], threshold)
        dense = np.bincount(components)[group] <= DENSE_COMPONENT
        roots = _agglomerate(n, a[~dense], b[~dense], vote[~dense])
        records, dense_roots = _agglomerate_dense(a[dense], b[dense], vote[dense], group[dense])
        roots[records] = dense_roots
        labels = np.where(suspect[components], n + roots, labels)
    if max_cluster_size:
        labels = _cap(n, left[keep], right[keep], probability[keep], labels, int(max_cluster_size))
    labels = _first_seen_codes(labels)
    pieces = _clusters_per_component(labels, components, len(suspect))
    split = np.flatnonzero(pieces > 1)
    if len(split):
        sizes = np.bincount(components)
        logger.warning("Split %d match component(s) at weak links into %d clusters (largest component: %d records)",
                       len(split), int(pieces[split].sum()), int(sizes[split].max()))
    return labels, components


def cluster_records(n: int, left: np.ndarray, right: np.ndarray, probability: np.ndarray, threshold: float,
                    max_cluster_size: int | None = None) -> np.ndarray:
    """Cluster label (0..k-1) of each of the n records; every record gets exactly one (see the module doc)."""
    return cluster_with_components(n, left, right, probability, threshold, max_cluster_size)[0]


def _all_distinct(values: np.ndarray) -> bool:
    """Whether no two of `values` are equal (`not pd.Series(values).duplicated().any()`): equal values have equal
    Python hashes, and the hashes are counted one cache-sized partition at a time (`count_equal_pairs`), where
    one hash table of 1M strings makes every lookup a cache miss; only when two hashes are equal are the values
    compared. Missing values (NaN hashes by identity, pandas counts two as repeated) go to pandas directly."""
    exact = lambda: not pd.Series(values).duplicated().any()  # noqa: E731
    if pd.isna(values).any():
        return exact()
    try:
        hashes = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
    except TypeError:  # unhashable values
        return exact()
    return count_equal_pairs(hashes) == 0 or exact()


def split_counts(clusters: pd.DataFrame) -> dict[str, float]:
    """How many match components were split, and into how many clusters (from `cluster`'s output)."""
    pieces = clusters.groupby("component_id")["cluster_id"].nunique()
    split = pieces[pieces > 1]
    return {"n_split_components": float(len(split)), "n_clusters_from_splits": float(split.sum())}


def cluster(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, config: DedupeConfig) -> pd.DataFrame:
    """Stage 4 of dedupe: record_id → cluster_id (and the match component it came from) for every record."""
    labels, components = cluster_with_components(len(prepared), pairs["left"].to_numpy(), pairs["right"].to_numpy(),
                                                 probability, config.match_threshold, config.max_cluster_size)
    out = pd.DataFrame({"record_id": prepared["record_id"].to_numpy(), "cluster_id": labels,
                        "component_id": components})
    if len(out) != len(prepared) or not _all_distinct(out["record_id"].to_numpy()):  # the contract callers rely on
        raise AssertionError("dedupe clustering lost or duplicated a record id")
    return out
