"""Candidate pairs: cheap blocking keys plus vector kNN, unioned and deduplicated."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from aietl_pipelines.embeddings import bf16_matmul_is_fast
from aietl_pipelines.errors import AietlInputError


def blocking_pairs(keys: pd.DataFrame, rules: Sequence[Sequence[str]], max_block_size: int = 100,
                   new_from: int | None = None, window: int = 5, sort_by: str | None = "__text") -> np.ndarray:
    """Pairs (i < j) of rows sharing all columns of at least one rule.

    A block of at most `max_block_size` rows gives all its pairs. A larger one cannot be one entity (its key is a
    common value such as a frequent name, and it grows with the number of records): it is not dropped but
    replaced by a sorted neighbourhood, its rows ordered by `sort_by` (the record text) and each paired with
    the next `window - 1`, so its pairs grow linearly. `block_statistics` counts such blocks before the join.
    With `new_from`, only pairs with at least one row at or after that position (incremental runs)."""
    order_key = (pd.factorize(keys[sort_by].astype(str), sort=True)[0] if sort_by and sort_by in keys.columns
                 else np.zeros(len(keys), dtype=np.int64))
    found = []
    column_codes: dict[str, np.ndarray] = {}  # a column shared by several rules is hashed once
    for rule in rules:
        codes, rows = block_codes(keys, rule, column_codes)
        if not len(codes):
            continue
        order = np.lexsort((order_key[rows], codes))
        codes, rows = codes[order], rows[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        sizes = np.diff(np.r_[starts, len(codes)])
        for size in np.unique(sizes[(sizes >= 2) & (sizes <= max_block_size)]):  # all pairs, one size at a time
            first = starts[sizes == size]
            a, b = np.triu_indices(size, k=1)
            found.append(np.stack([rows[(first[:, None] + a).ravel()], rows[(first[:, None] + b).ravel()]], axis=1))
        big = np.repeat(sizes > max_block_size, sizes)  # rows of oversized blocks, in text order
        for step in range(1, window):
            near = big[step:] & (codes[step:] == codes[:-step])
            found.append(np.stack([rows[:-step][near], rows[step:][near]], axis=1))
    pairs = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    if new_from is not None:
        pairs = pairs[pairs.max(axis=1) >= new_from]
    return _unique(pairs)


def block_codes(keys: pd.DataFrame, rule: Sequence[str], column_codes: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Block code of each row with every column of `rule`, and those rows' positions (an empty string is missing,
    as `prepare` makes it). `column_codes`: a dict kept across calls on the same frame (start with {}), so that
    rules sharing a column read its codes without hashing its strings again."""
    codes, valid = np.zeros(len(keys), dtype=np.int64), np.ones(len(keys), dtype=bool)
    for column in rule:  # hashed column by column (no sort): the time grows with the rows, not as N log N
        part = _codes_of(keys, column, column_codes)
        valid &= part >= 0
        codes = pd.factorize(codes * (int(part.max(initial=0)) + 1) + part)[0]  # compact again: no overflow
    if not valid.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return pd.factorize(codes[valid])[0].astype(np.int64), np.flatnonzero(valid)


def _codes_of(keys: pd.DataFrame, column: str, column_codes: dict[str, np.ndarray] | None) -> np.ndarray:
    if column_codes is None:
        return _string_codes(keys[column])
    if column not in column_codes:
        column_codes[column] = _string_codes(keys[column])
    return column_codes[column]


def agreement_rate(keys: pd.DataFrame, rule: Sequence[str], column_codes: dict[str, np.ndarray] | None = None
                   ) -> float | None:
    """Share of the pairs of rows with every column of `rule` present that agree on all of them: the sum of
    C(size, 2) over the blocks `block_codes(keys, rule)` makes, over C(rows, 2); None with fewer than 2 rows.

    Each column's strings are hashed once per `column_codes` dict (pass one dict to every call on the same frame).
    One column: its block sizes are a bincount of its codes. Several: a row whose value of some column no other
    present row holds is in a block of one and counts no pair, so only the rows sharing every value are combined,
    and their combined codes are counted a cache-sized partition at a time (`count_equal_pairs`)."""
    parts = [_codes_of(keys, column, column_codes) for column in rule]
    valid = parts[0] >= 0
    for part in parts[1:]:
        valid &= part >= 0
    n = int(valid.sum())
    if n < 2:
        return None
    if len(parts) == 1:
        agreeing = _pairs_within(np.bincount(parts[0][valid]))
    else:
        shared = valid.copy()
        for part in parts:  # rows whose value is held by another present row (bincount: no hashing, no sort)
            counts = np.bincount(part[valid], minlength=int(part.max()) + 1)
            shared &= counts[np.maximum(part, 0)] >= 2
        rows = np.flatnonzero(shared)
        combined = parts[0][rows]
        for part in parts[1:]:
            value = part[rows]
            width = int(value.max(initial=0)) + 1
            if int(combined.max(initial=0)) >= (1 << 62) // width:  # compact first: no overflow
                combined = pd.factorize(combined)[0]
            combined = combined * width + value
        agreeing = count_equal_pairs(combined)
    return float(agreeing / (n * (n - 1) / 2))  # exact integers: as the float sum of C(size, 2) below 2^53 was


def _pairs_within(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


#: Keys counted per hash table in `count_equal_pairs`: its table then fits a core's cache (2 MB L2 here), where one
#: table of 1M keys makes every lookup a cache miss and its time grow faster than the keys.
PARTITION_KEYS = 1 << 14


def count_equal_pairs(keys: np.ndarray) -> int:
    """Sum of C(size, 2) over the groups of equal values of int64 `keys`, hashed one partition (by the top bits of
    a multiplicative hash of the key) at a time: equal keys share a partition."""
    n_parts = 1
    while n_parts * PARTITION_KEYS < len(keys) and n_parts < 1 << 12:
        n_parts *= 2
    if n_parts == 1:
        return _pairs_within(np.bincount(pd.factorize(keys)[0])) if len(keys) else 0
    bits = n_parts.bit_length() - 1
    spread = (keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)
    order = np.argsort(spread.astype(np.uint16), kind="stable")  # a radix sort of 16-bit keys: linear
    ends = np.cumsum(np.bincount(spread.astype(np.int64), minlength=n_parts)).tolist()
    grouped = keys[order]
    total, start = 0, 0
    for end in ends:
        if end - start > 1:
            total += _pairs_within(np.bincount(pd.factorize(grouped[start:end])[0]))
        start = end
    return total


def _string_codes(values: pd.Series) -> np.ndarray:
    """A code per row for its value read as a string (1 and "1" are one key), -1 where missing or empty."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if pd.api.types.infer_dtype(uniques, skipna=False) == "string":  # distinct strings already: their own codes
        lookup = np.arange(len(uniques), dtype=np.int64)
        lookup[np.asarray(uniques, dtype=object) == ""] = -1
        return np.where(codes < 0, -1, lookup[codes] if len(codes) else codes).astype(np.int64)
    as_text = [str(u) for u in np.asarray(uniques, dtype=object).tolist()]
    merged, texts = pd.factorize(np.array(as_text + [""], dtype=object))
    lookup = np.where(np.asarray(texts, dtype=object)[merged] == "", -1, merged)  # "" is missing, as prepare makes it
    return np.where(codes < 0, -1, lookup[codes] if len(codes) else codes).astype(np.int64)


def block_statistics(keys: pd.DataFrame, rules: Sequence[Sequence[str]], max_block_size: int = 100,
                     window: int = 5) -> pd.DataFrame:
    """Per rule, before any pair is built: blocks, largest block, rows in blocks over `max_block_size` (which
    `blocking_pairs` turns into sorted neighbourhoods), and the pairs the rule yields."""
    rows_out = []
    column_codes: dict[str, np.ndarray] = {}
    for rule in rules:
        codes, _ = block_codes(keys, rule, column_codes)
        sizes = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
        small, big = sizes[sizes <= max_block_size], sizes[sizes > max_block_size]
        rows_out.append({"rule": "+".join(rule), "blocks": int((sizes >= 2).sum()),
                         "largest_block": int(sizes.max()) if len(sizes) else 0,
                         "oversized_blocks": len(big), "records_in_oversized_blocks": int(big.sum()),
                         "pairs": int((small * (small - 1) // 2).sum()
                                      + np.clip(big[:, None] - np.arange(1, window)[None, :], 0, None).sum()),
                         "pairs_all_in_oversized": int((big * (big - 1) // 2).sum())})
    return pd.DataFrame(rows_out)


class Neighbours(NamedTuple):
    """What `knn_search` finds: per query the top-k base rows and their exact cosines (q x k), and the
    (query, base row) pairs whose similarity reaches that base row's `radius` (empty without a radius)."""

    indices: np.ndarray
    cosines: np.ndarray
    reverse: np.ndarray


def products_in_bf16(n_base: int, precision: str = "auto", device: str = "auto", block: int = 2048) -> bool:
    """Whether `knn_search` over a base of `n_base` rows multiplies in bfloat16: always for `precision="bfloat16"`;
    for "auto" on a GPU or a CPU with native bf16 products, when the base is larger than 4 query blocks."""
    from aietl_pipelines.embeddings import resolve_device

    if precision not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"precision must be auto, bfloat16 or float32, not {precision!r}")
    fast_low = bf16_matmul_is_fast() if resolve_device(device) == "cpu" else True
    return precision == "bfloat16" or (precision == "auto" and fast_low and n_base > 4 * block)


def knn_search(queries: np.ndarray, base: np.ndarray, k: int, block: int = 2048, precision: str = "auto",
               self_offset: int | None = None, radius: np.ndarray | None = None, device: str = "auto") -> Neighbours:
    """Top-k rows of `base` for each row of `queries` (normalised vectors), from one matrix product and one top-k
    per block of queries (PyTorch, both cores).

    With ``precision="auto"`` the products run in bfloat16 where the CPU has native bf16 instructions (4x
    faster than float32 on 100K vectors, 98.8% of the float32 top-10 kept: benchmarks/dedupe_components.py) and the cosine of
    every returned pair is then recomputed in float32, so scores and cuts are exact. `self_offset`: query i is base
    row self_offset + i and is never its own neighbour. `radius` (one value per leading base row): also report
    the pairs whose similarity is at least that row's radius — the base rows that would count the query among
    their own k nearest (incremental runs), from the same products. `device` (`embeddings.resolve_device`): on a
    GPU the products run there (bfloat16 unless ``precision="float32"``), block by block.
    """
    import torch
    from tqdm.auto import tqdm

    from aietl_pipelines.embeddings import resolve_device

    target = torch.device(resolve_device(device))
    low = products_in_bf16(len(base), precision, device, block)
    full_q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    full_b = torch.from_numpy(np.ascontiguousarray(base, dtype=np.float32))
    q, b = (full_q.to(torch.bfloat16), full_b.to(torch.bfloat16)) if low else (full_q, full_b)
    b = b.to(target)
    limit = (torch.from_numpy(np.asarray(radius, dtype=np.float32)).to(q.dtype).to(target)
             if radius is not None else None)
    tops, cosines, reverse = [], [], []
    starts = range(0, len(queries), block)
    with torch.inference_mode():
        for start in tqdm(starts, desc="nearest neighbours", unit="block", disable=len(starts) < 10):
            stop = min(start + block, len(queries))
            sims = q[start:stop].to(target) @ b.T
            if self_offset is not None:
                rows = torch.arange(stop - start, device=target)
                sims[rows, rows + start + self_offset] = -2.0
            if limit is not None:
                hit = torch.nonzero(sims[:, : len(limit)] >= limit[None, :]).cpu().numpy()
                reverse.append(hit + np.array([[start, 0]]))
            top = torch.topk(sims, k, dim=1).indices.cpu()
            del sims
            tops.append(top.numpy().astype(np.int64))
            cosines.append(torch.einsum("bd,bkd->bk", full_q[start:stop], full_b[top]).numpy())  # exact
    if not tops:
        return Neighbours(np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32), np.zeros((0, 2), np.int64))
    return Neighbours(np.concatenate(tops), np.concatenate(cosines),
                      np.concatenate(reverse).astype(np.int64) if reverse else np.zeros((0, 2), dtype=np.int64))


def _spherical_kmeans(vectors: Any, n_lists: int, iterations: int, seed: int,
                      rows_of: Callable[[np.ndarray], np.ndarray] | None = None) -> Any:
    """Centroids (unit rows) of `n_lists` spherical k-means clusters, fitted on a sample of 64 vectors per list.
    `rows_of`: the vectors of the sampled rows when `vectors` is not an array (Spark's `VectorsTable.rows`)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    picked = torch.randperm(len(vectors), generator=gen)[: 64 * n_lists]
    sample = (vectors[picked] if rows_of is None else torch.from_numpy(rows_of(picked.numpy()))).float()
    centroids = sample[torch.randperm(len(sample), generator=gen)[:n_lists]].clone()
    for _ in range(iterations):
        assign = (sample @ centroids.T).argmax(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, sample)
        empty = sums.norm(dim=1) == 0
        sums[empty] = centroids[empty]  # a list that lost every member keeps its centroid
        centroids = torch.nn.functional.normalize(sums, dim=1)
    return centroids


def partitioned_knn(vectors: np.ndarray, k: int, list_size: int = 1000, probes: int = 8, iterations: int = 8,
                    seed: int = 0, block: int = 8192) -> Neighbours:
    """Approximate top-k neighbours of every row among all rows, with cost linear in N (an inverted-file index,
    written with the same matrix products as `knn_search`).

    The vectors are split into N / `list_size` lists by spherical k-means (each vector in the list of its nearest
    centroid); each vector then meets only the members of its `probes` nearest lists, in one bfloat16 matrix
    product per list (float32 where the CPU has no native bf16). The cosine of every kept pair is recomputed in
    float32. Recall against the exact search is measured by `benchmarks/dedupe_components.py`.
    """
    import torch

    n = len(vectors)
    k = min(k, n - 1)
    if k <= 0:
        return Neighbours(np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32), np.zeros((0, 2), np.int64))
    full = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    low = full.to(torch.bfloat16) if bf16_matmul_is_fast() else full
    n_lists = max(1, n // list_size)
    probes = min(probes, n_lists)
    with torch.inference_mode():
        centroids = _spherical_kmeans(full, n_lists, iterations, seed).to(low.dtype)
        nearest = torch.empty((n, probes), dtype=torch.int64)
        for start in range(0, n, block):  # each vector's `probes` nearest lists, a block of vectors at a time
            nearest[start:start + block] = torch.topk(low[start:start + block] @ centroids.T, probes, dim=1).indices
        # work in list order: each list's members are one contiguous slice (no gathers in the loop)
        perm = torch.argsort(nearest[:, 0], stable=True)
        nearest, by_list = nearest[perm], low[perm]
        del low  # the list-ordered copy is all the passes read (768 MB less at 1M records in bfloat16)
        bounds = torch.searchsorted(nearest[:, 0].contiguous(), torch.arange(n_lists + 1)).tolist()
        best_sim = torch.full((n, k), -3.0)
        best_idx = torch.zeros((n, k), dtype=torch.int64)
        for rank in range(probes):  # pass r: every vector meets the members of its r-th nearest list
            order = torch.argsort(nearest[:, rank], stable=True) if rank else None
            q_bounds = (torch.searchsorted(nearest[order, rank].contiguous(), torch.arange(n_lists + 1)).tolist()
                        if rank else bounds)
            found_sim = torch.full((n, k), -3.0)
            found_idx = torch.zeros((n, k), dtype=torch.int64)
            for lst in range(n_lists):
                lo, hi, q_lo, q_hi = bounds[lst], bounds[lst + 1], q_bounds[lst], q_bounds[lst + 1]
                kk = min(k, hi - lo - (rank == 0))
                if kk <= 0 or q_hi == q_lo:
                    continue
                base = by_list[lo:hi]
                for qs in range(q_lo, q_hi, block):
                    qe = min(qs + block, q_hi)
                    # this pass's queries of the list, gathered a block at a time (a whole permuted copy of the
                    # vectors per pass was 1.5 GB more peak memory at 1M records)
                    queries = by_list[order[qs:qe]] if rank else by_list[qs:qe]
                    sims = (queries @ base.T).float()
                    if rank == 0:  # the queries are the members: never its own neighbour
                        pos = torch.arange(qe - qs)
                        sims[pos, pos + (qs - lo)] = -2.0
                    top_sim, top_pos = torch.topk(sims, kk, dim=1)
                    found_sim[qs:qe, :kk] = top_sim
                    found_idx[qs:qe, :kk] = top_pos + lo
            if rank:  # back from this pass's query order to list order
                found_sim[order], found_idx[order] = found_sim.clone(), found_idx.clone()
            keep_sim, keep = torch.topk(torch.cat([best_sim, found_sim], dim=1), k, dim=1)
            best_idx = torch.gather(torch.cat([best_idx, found_idx], dim=1), 1, keep)
            best_sim = keep_sim
        # back to the caller's row order and row numbers
        out_idx, out_sim = torch.empty_like(best_idx), torch.empty_like(best_sim)
        out_idx[perm], out_sim[perm] = perm[best_idx], best_sim
        best_idx, best_sim = out_idx, out_sim
        cosines = torch.empty((n, k))
        for start in range(0, n, block):  # exact float32 cosines of what was kept
            stop = min(start + block, n)
            cosines[start:stop] = torch.einsum("bd,bkd->bk", full[start:stop], full[best_idx[start:stop]])
        cosines[best_sim < -1.5] = -2.0  # fewer than k neighbours met: empty slots never pass a cut
        del by_list, full, nearest
    release_free_memory()
    return Neighbours(best_idx.numpy(), cosines.numpy(), np.zeros((0, 2), dtype=np.int64))


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc `malloc_trim`; elsewhere nothing). The index's many
    block-sized products (16-32 MB each, under glibc's mmap threshold) are freed into the heap, which glibc keeps:
    at 300K records the process held 0.7 GB more after the search than it used, and the pairs built next did not
    reuse it all (measured with /proc/self/statm around each candidate step)."""
    import ctypes

    try:
        process = ctypes.CDLL(None)  # the symbols already loaded in this process, the C library's among them
    except OSError:
        return
    if hasattr(process, "malloc_trim"):
        process.malloc_trim(0)


def nearest_neighbours(vectors: np.ndarray, k: int, method: str = "auto", exact_max: int = 50_000,
                       precision: str = "auto", device: str = "auto", list_size: int = 1000,
                       probes: int = 8) -> Neighbours:
    """Each row's k nearest other rows: the exact search (`knn_search`) for up to `exact_max` rows and on a GPU,
    the partitioned index (`partitioned_knn`, linear in N) for more rows on the CPU (``method="auto"``);
    ``exact`` or ``partitioned`` force one."""
    from aietl_pipelines.embeddings import resolve_device

    if method not in ("auto", "exact", "partitioned"):
        raise AietlInputError(f"knn_method must be auto, exact or partitioned, not {method!r}.")
    k = min(k, len(vectors) - 1)
    on_cpu = resolve_device(device) == "cpu"
    if method == "partitioned" or (method == "auto" and on_cpu and len(vectors) > exact_max):
        return partitioned_knn(vectors, k, list_size=list_size, probes=probes)
    return knn_search(vectors, vectors, k, precision=precision, self_offset=0, device=device)


def neighbour_pairs(found: Neighbours, min_cosine: float, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(query row + first_row, neighbour) pairs of a `knn_search` whose cosine >= `min_cosine`, and the cosines."""
    q, k = found.indices.shape
    left = np.repeat(np.arange(first_row, first_row + q, dtype=np.int64), k)
    right, cosine = found.indices.reshape(-1), found.cosines.reshape(-1).astype(np.float64)
    keep = cosine >= min_cosine
    return np.stack([left[keep], right[keep]], axis=1), cosine[keep]


def knn_pairs(vectors: np.ndarray, k: int, min_cosine: float = 0.5, block: int = 2048,
              precision: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of each row with its k nearest neighbours whose cosine >= `min_cosine` (see `knn_search`)."""
    k = min(k, len(vectors) - 1)
    if k <= 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    return neighbour_pairs(knn_search(vectors, vectors, k, block, precision, self_offset=0), min_cosine)


def pair_cosines(vectors: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Cosine of each pair (normalised vectors), in chunks: gathering 1M pairs at once would take 3 GB."""
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), chunk):
        a, b = left[start:start + chunk], right[start:start + chunk]
        out[start:start + chunk] = np.einsum("ij,ij->i", vectors[a], vectors[b])
    return out


def _unique(pairs: np.ndarray) -> np.ndarray:
    if not len(pairs):
        return pairs.astype(np.int64)
    ordered = np.sort(pairs, axis=1)
    return np.unique(ordered, axis=0).astype(np.int64)


def union_pairs(*groups: np.ndarray) -> np.ndarray:
    """Union of pair arrays as sorted unique (i < j) rows."""
    nonempty = [g for g in groups if len(g)]
    return _unique(np.concatenate(nonempty)) if nonempty else np.zeros((0, 2), dtype=np.int64)
