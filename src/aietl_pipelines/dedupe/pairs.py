"""Stage 2 of dedupe: candidate pairs (blocking keys ∪ vector kNN) for a full run or for new records only.

The low-level searches live in `candidates.py`; this module picks the rules and assembles the pair frame.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.prepare import blocking_key_column

logger = logging.getLogger(__name__)
TEXT_BLOCKING = [["email"], ["phone"], ["date"], ["number_key"], ["first_word", "date"]]


def blocking_rules(prepared: pd.DataFrame, config: DedupeConfig) -> list[list[str]]:
    """The configured rules whose columns this mode has, else one rule per field (free text: TEXT_BLOCKING), as
    the prepared columns they join on (a phone's key column: `normalize.phone_key`)."""
    default = TEXT_BLOCKING if config.mode == "text" else [[c] for c in config.fields]
    # rules naming columns this mode does not have (structured rules in free-text mode) do not apply
    rules = [list(r) for r in config.blocking if all(c in prepared.columns for c in r)] or default
    return [[key_column(prepared, c) for c in r] for r in rules]


def key_column(prepared: pd.DataFrame, column: str) -> str:
    """The prepared column a blocking rule on `column` joins on (its key column where prepare made one)."""
    key = blocking_key_column(column)
    return key if key in prepared.columns else column


def _segment_keys(prepared: pd.DataFrame) -> pd.DataFrame:
    """Free text: one row per (record, text segment), with the record's row in `row` and its text in `__text`."""
    if "segments" not in prepared.columns:
        return pd.DataFrame({"segment": [], "row": [], "__text": []})
    frame = pd.DataFrame({"segment": [sorted(s) if s else [] for s in prepared["segments"]],
                          "row": np.arange(len(prepared)), "__text": prepared["__text"].to_numpy()})
    frame = frame.explode("segment").dropna(subset=["segment"]).reset_index(drop=True)
    frame["row"] = frame["row"].astype(np.int64)
    return frame


def segment_pairs(prepared: pd.DataFrame, config: DedupeConfig, new_from: int | None = None) -> np.ndarray:
    """Free text: records sharing a text segment (a field value between separators: a name, a street, a
    co-author) are candidates, each segment a blocking key (blocks above `max_block_size` as sorted
    neighbourhoods, as for the other rules)."""
    keys = _segment_keys(prepared)
    if keys.empty:
        return np.zeros((0, 2), dtype=np.int64)
    found = cand.blocking_pairs(keys, [["segment"]], config.max_block_size, window=config.block_window)
    rows = keys["row"].to_numpy()
    pairs = np.stack([rows[found[:, 0]], rows[found[:, 1]]], axis=1) if len(found) else found
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if new_from is not None:
        pairs = pairs[pairs.max(axis=1) >= new_from]
    return cand.union_pairs(pairs)


def oversized_blocks(prepared: pd.DataFrame, config: DedupeConfig, new_from: int | None = None) -> dict[str, float]:
    """Blocks larger than `max_block_size` (joined as sorted neighbourhoods by `blocking_pairs`, not all-pairs):
    how many, and the records they hold.

    With `new_from`, only the blocks holding a record at or after that row (incremental runs)."""
    blocks = records = 0
    for rule in blocking_rules(prepared, config):
        sub = prepared[list(rule)]
        valid = sub.notna().all(axis=1).to_numpy()
        if not valid.any():
            continue
        keys = sub[valid].astype(str).agg("\x1f".join, axis=1) if len(rule) > 1 else sub[valid].iloc[:, 0].astype(str)
        sizes = keys.value_counts()
        big = sizes[sizes > config.max_block_size]
        if new_from is not None and len(big):
            fresh = set(keys[np.flatnonzero(valid) >= new_from])
            big = big[[k in fresh for k in big.index]]
        blocks += len(big)
        records += int(big.sum())
    if config.mode == "text":  # the text segments' blocks (`segment_pairs`)
        keys = _segment_keys(prepared)
        sizes = keys["segment"].value_counts() if len(keys) else pd.Series(dtype=int)
        big = sizes[sizes > config.max_block_size]
        if new_from is not None and len(big):
            fresh = set(keys.loc[keys["row"] >= new_from, "segment"])
            big = big[[k in fresh for k in big.index]]
        blocks += len(big)
        records += int(big.sum())
    return {"n_dropped_blocks": float(blocks), "n_records_in_dropped_blocks": float(records)}


def _log_dropped(report: dict[str, float], config: DedupeConfig) -> None:
    if report["n_dropped_blocks"]:
        logger.warning("%d blocking block(s) larger than max_block_size=%d (%d records) were joined as sorted "
                       "neighbourhoods (each record with the next %d in text order), not all-pairs",
                       report["n_dropped_blocks"], config.max_block_size, report["n_records_in_dropped_blocks"],
                       config.block_window - 1)


def pairs_frame(pairs: np.ndarray, vectors: np.ndarray) -> pd.DataFrame:
    """left, right (row positions) and the embedding cosine of each pair (NaN without embeddings)."""
    cosine = (cand.pair_cosines(vectors, pairs[:, 0], pairs[:, 1]) if vectors.shape[1] and len(pairs)
              else np.full(len(pairs), np.nan))
    return pd.DataFrame({"left": pairs[:, 0], "right": pairs[:, 1], "cosine": cosine})


def candidates_with_radius(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                           ) -> tuple[pd.DataFrame, np.ndarray]:
    """Blocking pairs ∪ kNN pairs with the embedding cosine of each pair, and each record's k-th neighbour
    cosine (kept in the state for incremental runs)."""
    groups = [cand.blocking_pairs(prepared, blocking_rules(prepared, config), config.max_block_size,
                                  window=config.block_window), segment_pairs(prepared, config)]
    _log_dropped(oversized_blocks(prepared, config), config)
    kth = np.full(len(prepared), np.inf)
    k = min(config.knn_k, len(prepared) - 1)
    if vectors.shape[1] and k > 0:
        found = cand.nearest_neighbours(vectors, k, config.knn_method, config.knn_exact_max, config.knn_precision,
                                        config.device, config.knn_list_size, config.knn_probes)
        kth = found.cosines.min(axis=1).astype(np.float64)
        groups.append(cand.neighbour_pairs(found, config.knn_min_cosine)[0])
        deeper, kth = deeper_neighbours(vectors, kth, config)
        groups.append(deeper)
    found = pairs_frame(cand.union_pairs(*groups), vectors)
    cand.release_free_memory()  # the search's and the union's freed blocks, before the comparisons allocate theirs
    return found, kth


def similarity_floor(vectors: np.ndarray, k: int, min_cosine: float, seed: int = 0, sample: int = 50_000) -> float:
    """The cosine above which a record has, by chance, about k/2 other records: the 1 - k/(2N) quantile of the
    cosine of random record pairs (never below `min_cosine`). A record whose k-th neighbour is above it sits in a
    crowd of similar records (one entity with dozens of records, or many alike) and is searched deeper."""
    n = len(vectors)
    a, b = floor_pairs(n, seed, sample)
    cosines = cand.pair_cosines(vectors, a, b)
    return max(float(np.quantile(cosines, floor_quantile(n, k))) if len(cosines) else 1.0, min_cosine)


def floor_pairs(n: int, seed: int = 0, sample: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """The random pairs of distinct records whose cosines `similarity_floor` reads (left, right rows)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, sample), rng.integers(0, n, sample)
    keep = a != b
    return a[keep], b[keep]


def floor_quantile(n: int, k: int) -> float:
    """The quantile of the random pairs' cosines that `similarity_floor` takes: 1 - k/(2N), within [0.5, 1]."""
    return float(np.clip(1.0 - k / (2.0 * n), 0.5, 1.0))


def deeper_neighbours(vectors: np.ndarray, kth: np.ndarray, config: DedupeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Candidate search whose depth adapts to the data: records whose k-th neighbour is still above the
    similarity floor (`similarity_floor`) are searched again with 4 times k, and so on up to `knn_max_k`; the
    neighbours above the floor found so are added. Exact search only (up to `knn_exact_max` records, or on a GPU).

    Returns those pairs and each record's deepest neighbour cosine (its radius for incremental runs)."""
    n, k = len(vectors), min(config.knn_k, len(vectors) - 1)
    limit = min(config.knn_max_k, n - 1)
    from aietl_pipelines.embeddings import resolve_device

    if k >= limit or (n > config.knn_exact_max and resolve_device(config.device) == "cpu"):
        return np.zeros((0, 2), dtype=np.int64), kth
    floor = similarity_floor(vectors, k, config.knn_min_cosine, config.seed)
    found, kth = [], kth.copy()
    rows = np.flatnonzero(kth >= floor)
    depth = k
    while len(rows) and depth < limit:
        depth = min(4 * depth, limit)
        deep = cand.knn_search(vectors[rows], vectors, depth + 1, precision=config.knn_precision, device=config.device)
        left = np.repeat(rows, depth + 1)
        right, cosine = deep.indices.reshape(-1), deep.cosines.reshape(-1)
        keep = (right != left) & (cosine >= floor)
        found.append(np.stack([left[keep], right[keep]], axis=1))
        kth[rows] = deep.cosines.min(axis=1)
        rows = rows[kth[rows] >= floor]
    if found:
        logger.info("deeper kNN search: %d records in crowds above cosine %.3f, searched up to %d neighbours",
                    int((kth >= floor).sum()), floor, depth)
    return (np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)), kth


def candidate_pairs(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig) -> pd.DataFrame:
    """Blocking pairs ∪ kNN pairs, with the embedding cosine of each pair."""
    return candidates_with_radius(prepared, vectors, config)[0]


def new_record_candidates(prepared: pd.DataFrame, vectors: np.ndarray, n_old: int, old_kth: np.ndarray,
                          config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """Pairs with at least one record at or after row `n_old` (the new ones), and the new records' k-th cosine.

    Candidates of a new record: the blocking keys it shares with any record, its k nearest neighbours among
    all records, and every earlier record whose k-th neighbour (`old_kth`) it beats, so the pairs are those a
    full run would find.
    """
    new_vectors = vectors[n_old:]
    groups = [cand.blocking_pairs(prepared, blocking_rules(prepared, config), config.max_block_size, new_from=n_old,
                                  window=config.block_window), segment_pairs(prepared, config, new_from=n_old)]
    _log_dropped(oversized_blocks(prepared, config, new_from=n_old), config)
    k = min(config.knn_k, len(prepared) - 1)
    kth_new = np.full(len(prepared) - n_old, np.inf)
    if vectors.shape[1] and k > 0:
        # one pass over new x all: each new record's k nearest, and the earlier records whose k-th it beats
        found = cand.knn_search(new_vectors, vectors, k, precision="float32", self_offset=n_old,
                                radius=np.maximum(old_kth, config.knn_min_cosine), device=config.device)
        kth_new = found.cosines.min(axis=1).astype(np.float64)
        groups.append(cand.neighbour_pairs(found, config.knn_min_cosine, first_row=n_old)[0])
        groups.append(np.stack([found.reverse[:, 1], found.reverse[:, 0] + n_old], axis=1))
    return pairs_frame(cand.union_pairs(*groups), vectors), kth_new
