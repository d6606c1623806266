"""The dedupe steps, shared by the Kedro nodes, the service and the benchmark.

records → prepare (validate, normalise, record text) → embed → candidates (blocking + kNN) → compare →
score (Fellegi-Sunter EM) → cluster → golden records (+ evaluation when ground truth exists).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe import normalize
from aietl_pipelines.dedupe.cluster import cluster_records
from aietl_pipelines.dedupe.compare import compare_pairs
from aietl_pipelines.dedupe.score import FellegiSunterModel, fit_em
from aietl_pipelines.dedupe.textparse import TEXT_KINDS, parse_text
from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)
TEXT_BLOCKING = [["email"], ["phone"], ["date"], ["number_key"], ["first_word", "date"]]


@dataclass
class DedupeConfig:
    """Everything tunable (`parameters_dedupe.yml`)."""

    id_column: str = "record_id"
    fields: dict[str, str] = field(default_factory=dict)   # structured mode: column -> kind
    text_column: str | None = None                          # free-text mode when `fields` is empty
    blocking: list[list[str]] = field(default_factory=list)
    knn_k: int = 10
    # structured mode embeds the fields of these kinds (names, addresses, free text): identifiers, phones, e-mails
    # and dates are matched exactly by blocking keys and comparisons, and their digits triple the embedding time
    embed_kinds: list[str] = field(default_factory=lambda: ["name", "street", "text"])
    knn_precision: str = "auto"
    knn_min_cosine: float = 0.6
    use_embeddings: bool = True
    cosine_in_score: bool = False   # measured: cosine correlates with the text comparisons and breaks EM
    match_threshold: float = 0.5
    max_cluster_size: int = 20
    max_block_size: int = 100
    em_iterations: int = 25
    u_sample_pairs: int = 50_000
    seed: int = 0
    cache_dir: str | None = None
    truth_column: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DedupeConfig:
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        config = cls(**known)
        if not config.fields and not config.text_column:
            raise AietlInputError("Declare `dedupe.fields` (column: kind) for structured records or "
                                  "`dedupe.text_column` for free text.")
        return config

    @property
    def mode(self) -> str:
        return "text" if self.text_column else "structured"


def _drop_boilerplate_words(parsed: list[dict[str, object]], max_share: float = 0.05) -> None:
    """Remove words that appear in more than `max_share` of the records (labels such as "born", "street"):
    they say nothing about identity and make every pair look alike."""
    from collections import Counter

    counts = Counter(w for p in parsed if p["words"] for w in set(str(p["words"]).split()))
    limit = max(2, int(max_share * len(parsed)))
    common = {w for w, c in counts.items() if c > limit}
    for p in parsed:
        if p["words"]:
            kept = [w for w in str(p["words"]).split() if w not in common]
            p["words"] = " ".join(kept) or None


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Validate and normalise: one row per input record, same order, plus `__text` (what is embedded)."""
    if not isinstance(records, pd.DataFrame) or records.empty:
        raise AietlInputError("The records to deduplicate are empty: nothing to do. Check the input file.")
    needed = [config.id_column, *([config.text_column] if config.mode == "text" else config.fields)]
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise AietlInputError(f"Declared column(s) {missing} are not in the records (columns: {list(records.columns)}). "
                              "Fix `dedupe.fields` / `dedupe.text_column` / `dedupe.id_column`.")
    ids = records[config.id_column]
    if ids.isna().any():
        raise AietlInputError(f"{int(ids.isna().sum())} record(s) have no id in '{config.id_column}'.")
    dupes = ids[ids.duplicated()].astype(str).unique().tolist()
    if dupes:
        raise AietlInputError(f"Duplicate record ids in '{config.id_column}': {dupes[:10]}"
                              f"{' ...' if len(dupes) > 10 else ''}. Ids must be unique.")
    out = pd.DataFrame({"record_id": ids.astype(str).to_numpy()})
    if config.mode == "structured":
        norm = normalize.normalize_frame(records, config.fields).reset_index(drop=True)
        for col in config.fields:
            out[col] = norm[col].to_numpy()
        embedded = [c for c, kind in config.fields.items() if kind in config.embed_kinds] or list(config.fields)
        out["__text"] = [" ".join(v for v in row if v) for row in norm[embedded].itertuples(index=False)]
    else:
        texts = records[config.text_column].tolist()
        clean = [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else (None if pd.isna(t) else str(t))
                 for t in texts]
        parsed = [parse_text(t) for t in clean]
        _drop_boilerplate_words(parsed)
        for key in TEXT_KINDS:
            out[key] = [p[key] for p in parsed]
        out["number_key"] = [" ".join(sorted(p["numbers"])) if p["numbers"] else None for p in parsed]
        out["first_word"] = [p["words"].split()[0] if p["words"] else None for p in parsed]
        out["__text"] = [t or "" for t in clean]
    empty = (out["__text"].str.strip() == "").sum()
    if empty:
        logger.warning("%d record(s) have no text or field values: each stays a cluster of its own", empty)
    return out


def embed(prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
    """Embeddings of the record texts (content-hash cache in `cache_dir`)."""
    if not config.use_embeddings:
        return np.zeros((len(prepared), 0), dtype=np.float32)
    from aietl_pipelines.embeddings import embed_texts

    return embed_texts(prepared["__text"].tolist(), cache_dir=config.cache_dir, show_progress=len(prepared) > 5000)


def _blocking_rules(prepared: pd.DataFrame, config: DedupeConfig) -> list[list[str]]:
    default = TEXT_BLOCKING if config.mode == "text" else [[c] for c in config.fields]
    # rules naming columns this mode does not have (structured rules in free-text mode) do not apply
    return [list(r) for r in config.blocking if all(c in prepared.columns for c in r)] or default


def _pairs_frame(pairs: np.ndarray, vectors: np.ndarray) -> pd.DataFrame:
    cosine = (cand.pair_cosines(vectors, pairs[:, 0], pairs[:, 1]) if vectors.shape[1] and len(pairs)
              else np.full(len(pairs), np.nan))
    return pd.DataFrame({"left": pairs[:, 0], "right": pairs[:, 1], "cosine": cosine})


def candidates_with_radius(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                           ) -> tuple[pd.DataFrame, np.ndarray]:
    """Blocking pairs ∪ kNN pairs with the embedding cosine of each pair, and each record's k-th neighbour
    cosine (kept in the state for incremental runs)."""
    groups = [cand.blocking_pairs(prepared, _blocking_rules(prepared, config), config.max_block_size)]
    kth = np.full(len(prepared), np.inf)
    k = min(config.knn_k, len(prepared) - 1)
    if vectors.shape[1] and k > 0:
        found = cand.knn_search(vectors, vectors, k, precision=config.knn_precision, self_offset=0)
        kth = found.cosines.min(axis=1).astype(np.float64)
        groups.append(cand.neighbour_pairs(found, config.knn_min_cosine)[0])
    return _pairs_frame(cand.union_pairs(*groups), vectors), kth


def candidate_pairs(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig) -> pd.DataFrame:
    """Blocking pairs ∪ kNN pairs, with the embedding cosine of each pair."""
    return candidates_with_radius(prepared, vectors, config)[0]


def _kinds(config: DedupeConfig) -> dict[str, str]:
    return dict(config.fields) if config.mode == "structured" else dict(TEXT_KINDS)


def structured_fields(config: DedupeConfig) -> list[str]:
    """Fields compared in structured mode (none in free-text mode)."""
    return list(config.fields) if config.mode == "structured" else []


def _levels(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
            ) -> tuple[np.ndarray, list[str], list[int]]:
    """Comparison levels of the given pairs, their names and level counts."""
    use_cos = bool(vectors.shape[1]) and config.cosine_in_score
    kinds = _kinds(config)
    return compare_pairs({c: prepared[c].tolist() for c in kinds}, kinds, pairs["left"].to_numpy(),
                         pairs["right"].to_numpy(), pairs["cosine"].to_numpy() if use_cos else None)


def compare(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
            ) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """Level matrices of the candidate pairs and of random pairs (for u), names and level counts."""
    levels, names, sizes = _levels(prepared, pairs, vectors, config)
    rng = np.random.default_rng(config.seed)
    n = len(prepared)
    m = min(config.u_sample_pairs, n * (n - 1) // 2)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    random_pairs = np.stack([a[keep], b[keep]], axis=1)
    random_levels, _, _ = _levels(prepared, _pairs_frame(random_pairs, vectors), vectors, config)
    return levels, random_levels, names, sizes


def score(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int], config: DedupeConfig,
          model: FellegiSunterModel | None = None) -> tuple[np.ndarray, FellegiSunterModel]:
    """Match probability of each candidate pair (EM-fitted model unless one is given)."""
    if model is None:
        model = fit_em(levels, random_levels, names, sizes, iterations=config.em_iterations)
    return (model.probability(levels) if len(levels) else np.zeros(0)), model


def cluster(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, config: DedupeConfig) -> pd.DataFrame:
    """record_id → cluster_id for every input record."""
    labels = cluster_records(len(prepared), pairs["left"].to_numpy(), pairs["right"].to_numpy(), probability,
                             config.match_threshold, config.max_cluster_size)
    return pd.DataFrame({"record_id": prepared["record_id"].to_numpy(), "cluster_id": labels})


@dataclass
class DedupeState:
    """What a run leaves for the next incremental run: the prepared records, their vectors, each record's
    k-th neighbour cosine, the matched pairs (by record id) and the fitted model. Saved with `save_state`."""

    prepared: pd.DataFrame
    vectors: np.ndarray
    kth_cosine: np.ndarray
    matches: pd.DataFrame            # left_id, right_id, match_probability (pairs at or above the threshold)
    model: FellegiSunterModel


@dataclass
class DedupeResult:
    prepared: pd.DataFrame
    pairs: pd.DataFrame
    clusters: pd.DataFrame
    model: FellegiSunterModel
    state: DedupeState | None = None


def scored_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, threshold: float
                 ) -> pd.DataFrame:
    """Candidate pairs by record id and position, with cosine, match probability and `is_match`."""
    ids = prepared["record_id"].to_numpy()
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    return pd.DataFrame({"left_id": ids[left], "right_id": ids[right], "left": left, "right": right,
                         "cosine": pairs["cosine"].to_numpy(), "match_probability": probability,
                         "is_match": probability >= threshold})


def _matches(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, threshold: float) -> pd.DataFrame:
    keep = probability >= threshold
    ids = prepared["record_id"].to_numpy()
    return pd.DataFrame({"left_id": ids[pairs["left"].to_numpy()[keep]], "right_id": ids[pairs["right"].to_numpy()[keep]],
                         "match_probability": probability[keep]})


def build_state(prepared: pd.DataFrame, vectors: np.ndarray, pairs: pd.DataFrame, probability: np.ndarray,
                model: FellegiSunterModel, config: DedupeConfig, kth: np.ndarray) -> DedupeState:
    """The state of a full run (`kth`: each record's k-th neighbour cosine, from `candidates_with_radius`)."""
    return DedupeState(prepared, vectors, kth, _matches(prepared, pairs, probability, config.match_threshold), model)


def run(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> DedupeResult:
    """All steps in one call (the service and the benchmark use this; the pipeline runs them as nodes)."""
    prepared = prepare_records(records, config)
    vectors = embed(prepared, config)
    pairs, kth = candidates_with_radius(prepared, vectors, config)
    levels, random_levels, names, sizes = compare(prepared, pairs, vectors, config)
    probability, model = score(levels, random_levels, names, sizes, config)
    pairs = pairs.assign(match_probability=probability)
    state = build_state(prepared, vectors, pairs, probability, model, config, kth) if keep_state else None
    return DedupeResult(prepared, pairs, cluster(prepared, pairs, probability, config), model, state)


def run_incremental(new_records: pd.DataFrame, state: DedupeState, config: DedupeConfig) -> DedupeResult:
    """Add records to an earlier run: only the new records are embedded, and only pairs with a new record are
    compared and scored (with the earlier run's model, not refitted).

    Candidates of a new record: the blocking keys it shares with any record, its k nearest neighbours among
    all records, and every earlier record whose k-th neighbour it beats (so the pairs are those a full run
    would find). Clusters are rebuilt from the earlier matches plus the new ones; every record, old or new,
    gets one. Returns the result over all records, with the updated state.
    """
    new = prepare_records(new_records, config)
    clash = sorted(set(new["record_id"]) & set(state.prepared["record_id"]))
    if clash:
        raise AietlInputError(f"{len(clash)} new record id(s) are already in the earlier run, e.g. {clash[:5]}. "
                              "Incremental runs add records; re-run the full pipeline to change existing ones.")
    if list(new.columns) != list(state.prepared.columns):
        raise AietlInputError(f"The new records' fields {list(new.columns)} differ from the earlier run's "
                              f"{list(state.prepared.columns)}: use the same dedupe parameters.")
    n_old = len(state.prepared)
    prepared = pd.concat([state.prepared, new], ignore_index=True)
    new_vectors = embed(new, config)
    if new_vectors.shape[1] != state.vectors.shape[1]:
        raise AietlInputError("The earlier run's vectors have another dimension: run the full pipeline again.")
    vectors = np.concatenate([state.vectors, new_vectors]) if len(state.vectors) else new_vectors
    groups = [cand.blocking_pairs(prepared, _blocking_rules(prepared, config), config.max_block_size, new_from=n_old)]
    k = min(config.knn_k, len(prepared) - 1)
    kth_new = np.full(len(new), np.inf)
    if vectors.shape[1] and k > 0:
        # one pass over new x all: each new record's k nearest, and the earlier records whose k-th it beats
        found = cand.knn_search(new_vectors, vectors, k, precision="float32", self_offset=n_old,
                                radius=np.maximum(state.kth_cosine, config.knn_min_cosine))
        kth_new = found.cosines.min(axis=1).astype(np.float64)
        groups.append(cand.neighbour_pairs(found, config.knn_min_cosine, first_row=n_old)[0])
        groups.append(np.stack([found.reverse[:, 1], found.reverse[:, 0] + n_old], axis=1))
    pairs = _pairs_frame(cand.union_pairs(*groups), vectors)
    levels, _, _ = _levels(prepared, pairs, vectors, config)
    probability = state.model.probability(levels) if len(levels) else np.zeros(0)
    pairs = pairs.assign(match_probability=probability)
    # clusters from every match so far: the earlier ones (by id) and the new ones
    position = pd.Series(np.arange(len(prepared)), index=prepared["record_id"].to_numpy())
    old_left = position.reindex(state.matches["left_id"].to_numpy()).to_numpy()
    old_right = position.reindex(state.matches["right_id"].to_numpy()).to_numpy()
    all_pairs = pd.DataFrame({"left": np.r_[old_left, pairs["left"].to_numpy()].astype(np.int64),
                              "right": np.r_[old_right, pairs["right"].to_numpy()].astype(np.int64)})
    all_probability = np.r_[state.matches["match_probability"].to_numpy(dtype=float), probability]
    clusters = cluster(prepared, all_pairs, all_probability, config)
    new_state = DedupeState(prepared, vectors, np.r_[state.kth_cosine, kth_new],
                            pd.concat([state.matches, _matches(prepared, pairs, probability, config.match_threshold)],
                                      ignore_index=True), state.model)
    return DedupeResult(prepared, pairs, clusters, state.model, new_state)


def save_state(state: DedupeState, path: str | Path) -> None:
    """Write a state directory: prepared.parquet, vectors.npy, kth_cosine.npy, matches.parquet, model.json."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state.prepared.to_parquet(folder / "prepared.parquet", index=False)
    np.save(folder / "vectors.npy", state.vectors)
    np.save(folder / "kth_cosine.npy", state.kth_cosine)
    state.matches.to_parquet(folder / "matches.parquet", index=False)
    (folder / "model.json").write_text(json.dumps(state.model.to_dict()))


def load_state(path: str | Path) -> DedupeState:
    """Read a state directory written by `save_state`."""
    folder = Path(path)
    missing = [f for f in ("prepared.parquet", "vectors.npy", "kth_cosine.npy", "matches.parquet", "model.json")
               if not (folder / f).exists()]
    if missing:
        raise AietlInputError(f"No complete dedupe state in {folder} (missing {missing}): run the full dedupe "
                              "pipeline first (`kedro run --pipeline dedupe`).")
    return DedupeState(pd.read_parquet(folder / "prepared.parquet"), np.load(folder / "vectors.npy"),
                       np.load(folder / "kth_cosine.npy"), pd.read_parquet(folder / "matches.parquet"),
                       FellegiSunterModel.from_dict(json.loads((folder / "model.json").read_text())))
