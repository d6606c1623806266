"""Candidate pairs: cheap blocking keys plus vector kNN, unioned and deduplicated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def blocking_pairs(keys: pd.DataFrame, rules: Sequence[Sequence[str]], max_block_size: int = 100) -> np.ndarray:
    """Pairs (i < j) of rows sharing all columns of at least one rule; oversized blocks are skipped."""
    found = []
    for rule in rules:
        sub = keys[list(rule)]
        valid = sub.notna().all(axis=1).to_numpy()
        if not valid.any():
            continue
        codes = pd.MultiIndex.from_frame(sub[valid].astype(str)).factorize()[0] if len(rule) > 1 else \
            pd.factorize(sub[valid].iloc[:, 0].astype(str))[0]
        rows = np.flatnonzero(valid)
        order = np.argsort(codes, kind="stable")
        codes, rows = codes[order], rows[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        for s, e in zip(starts, ends, strict=True):
            size = e - s
            if size < 2 or size > max_block_size:
                continue
            members = rows[s:e]
            a, b = np.triu_indices(size, k=1)
            found.append(np.stack([members[a], members[b]], axis=1))
    return _unique(np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64))


def knn_pairs(vectors: np.ndarray, k: int, min_cosine: float = 0.5, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of each row with its k nearest neighbours (cosine, normalised vectors) above `min_cosine`."""
    n = len(vectors)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    pairs, sims = [], []
    for start in range(0, n, block):
        s = vectors[start:start + block] @ vectors.T
        idx = np.arange(start, min(start + block, n))
        s[np.arange(len(idx)), idx] = -np.inf
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(s, top, axis=1)
        keep = vals >= min_cosine
        rows = np.repeat(idx, k).reshape(-1, k)
        pairs.append(np.stack([rows[keep], top[keep]], axis=1))
        sims.append(vals[keep])
    return np.concatenate(pairs), np.concatenate(sims)


def _unique(pairs: np.ndarray) -> np.ndarray:
    if not len(pairs):
        return pairs.astype(np.int64)
    ordered = np.sort(pairs, axis=1)
    return np.unique(ordered, axis=0).astype(np.int64)


def union_pairs(*groups: np.ndarray) -> np.ndarray:
    """Union of pair arrays as sorted unique (i < j) rows."""
    nonempty = [g for g in groups if len(g)]
    return _unique(np.concatenate(nonempty)) if nonempty else np.zeros((0, 2), dtype=np.int64)
