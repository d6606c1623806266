"""Stage 5 of dedupe: the state a full run leaves for incremental runs, and its files."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.prepare import python_values
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.scoring import matched_pairs
from aietl_pipelines.errors import AietlInputError

STATE_FILES = ("prepared.parquet", "vectors.npy", "kth_cosine.npy", "matches.parquet", "model.json")
#: The vectors as a parquet directory, instead of vectors.npy, when an engine wrote them (`save_state`).
VECTORS_TABLE = "vectors.parquet"


@dataclass
class DedupeState:
    """What a run leaves for the next incremental run: the prepared records, their vectors, each record's
    k-th neighbour cosine, the matched pairs (by record id) and the fitted model. Saved with `save_state`.
    `prepared` / `vectors` are an engine's tables in a Spark full run (`kedro run --env spark`: written by the
    executors); `load_state` always returns the frame and the array."""

    prepared: pd.DataFrame
    vectors: np.ndarray
    kth_cosine: np.ndarray
    matches: pd.DataFrame   # left_id, right_id, match_probability: the matches + non-matches inside their components
    model: FellegiSunterModel


def build_state(prepared: pd.DataFrame, vectors: np.ndarray, pairs: pd.DataFrame, probability: np.ndarray,
                model: FellegiSunterModel, config: DedupeConfig, kth: np.ndarray) -> DedupeState:
    """The state of a full run (`kth`: each record's k-th neighbour cosine, from `candidates_with_radius`)."""
    return DedupeState(prepared, vectors, kth, evidence_pairs(prepared, pairs, probability, config.match_threshold),
                       model)


def evidence_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, threshold: float
                   ) -> pd.DataFrame:
    """What later clustering needs from these pairs: the matches, and the pairs scored below the threshold
    whose two records the matches connect (the evidence that splits a chain, `cluster.py`)."""
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    keep = probability >= threshold
    n = len(prepared)
    graph = coo_matrix((np.ones(int(keep.sum())), (left[keep], right[keep])), shape=(n, n))
    components = connected_components(graph, directed=False)[1]
    inside = keep | (components[left] == components[right])
    return matched_pairs(prepared, pairs[inside], probability[inside], -np.inf)


def check_new_records(new: pd.DataFrame, state: DedupeState) -> None:
    """New records must have new ids and the earlier run's prepared columns."""
    clash = sorted(set(new["record_id"]) & set(state.prepared["record_id"]))
    if clash:
        raise AietlInputError(f"{len(clash)} new record id(s) are already in the earlier run, e.g. {clash[:5]}. "
                              "Incremental runs add records; re-run the full pipeline to change existing ones.")
    if list(new.columns) != list(state.prepared.columns):
        raise AietlInputError(f"The new records' fields {list(new.columns)} differ from the earlier run's "
                              f"{list(state.prepared.columns)}: use the same dedupe parameters.")


def earlier_match_positions(prepared: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """The earlier run's matches as row positions in `prepared`: left, right, match_probability."""
    position = pd.Series(np.arange(len(prepared)), index=prepared["record_id"].to_numpy())
    return pd.DataFrame({"left": position.reindex(matches["left_id"].to_numpy()).to_numpy().astype(np.int64),
                         "right": position.reindex(matches["right_id"].to_numpy()).to_numpy().astype(np.int64),
                         "match_probability": matches["match_probability"].to_numpy(dtype=float)})


def _storable(prepared: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Set-valued columns (free text's `numbers`) as sorted lists, which parquet stores; and their names."""
    out, set_columns = prepared.copy(), []
    for col in out.columns:
        if out[col].dtype == object and any(isinstance(v, set | frozenset) for v in out[col].head(1000)):
            out[col] = [sorted(v) if isinstance(v, set | frozenset) else v for v in out[col]]
            set_columns.append(col)
    return out, set_columns


def save_state(state: DedupeState, path: str | Path) -> None:
    """Write a state directory: prepared.parquet, vectors.npy, kth_cosine.npy, matches.parquet, model.json.

    The files are written to a new directory that then replaces the old one, so a failed save leaves the
    earlier state whole. A state whose prepared records and vectors are an engine's tables (Spark's
    `record_tables.RecordsTable` / `VectorsTable`, which have `write_parquet`) has them written by that engine:
    prepared.parquet and vectors.parquet are then parquet directories (with the row numbers, `__row` / `row`)."""
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.writing-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if hasattr(state.prepared, "write_parquet"):  # an engine's table (Spark): written by its executors
            set_columns = state.prepared.write_parquet(str(tmp / "prepared.parquet"))
        else:
            prepared, set_columns = _storable(state.prepared)
            prepared.to_parquet(tmp / "prepared.parquet", index=False)
        if hasattr(state.vectors, "write_parquet"):
            state.vectors.write_parquet(str(tmp / VECTORS_TABLE))
        else:
            np.save(tmp / "vectors.npy", state.vectors)
        np.save(tmp / "kth_cosine.npy", state.kth_cosine)
        state.matches.to_parquet(tmp / "matches.parquet", index=False)
        (tmp / "model.json").write_text(json.dumps({**state.model.to_dict(), "set_columns": set_columns}))
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_state(path: str | Path) -> DedupeState:
    """Read a state directory written by `save_state`."""
    folder = Path(path)
    missing = [f for f in STATE_FILES if not (folder / f).exists()
               and not (f == "vectors.npy" and (folder / VECTORS_TABLE).exists())]
    if missing:
        raise AietlInputError(f"No complete dedupe state in {folder} (missing {missing}): run the full dedupe "
                              "pipeline first (`kedro run --pipeline dedupe`).")
    model = json.loads((folder / "model.json").read_text())
    prepared = pd.read_parquet(folder / "prepared.parquet")
    if "__row" in prepared.columns:  # written by an engine's executors: in row order again
        prepared = prepared.sort_values("__row", kind="stable").drop(columns="__row").reset_index(drop=True)
    prepared = python_values(prepared)
    for col in model.get("set_columns", []):
        prepared[col] = pd.Series([frozenset(v) if v is not None else frozenset() for v in prepared[col]],
                                  dtype=object)
    matches = pd.read_parquet(folder / "matches.parquet").astype({"left_id": object, "right_id": object})
    return DedupeState(prepared, _load_vectors(folder), np.load(folder / "kth_cosine.npy"), matches,
                       FellegiSunterModel.from_dict(model))


def _load_vectors(folder: Path) -> np.ndarray:
    """vectors.npy, or the vectors.parquet directory an engine wrote (row, vector: float32 bytes) in row order."""
    if (folder / "vectors.npy").exists():
        return np.load(folder / "vectors.npy")
    table = pd.read_parquet(folder / VECTORS_TABLE).sort_values("row", kind="stable")
    values = table["vector"].tolist()
    dim = len(values[0]) // 4 if values else 0
    return (np.frombuffer(b"".join(values), dtype="<f4").reshape(len(values), dim).astype(np.float32)
            if dim else np.zeros((len(values), 0), dtype=np.float32))
