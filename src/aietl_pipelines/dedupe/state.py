"""Stage 5 of dedupe: the state a full run leaves for incremental runs, and its files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.scoring import matched_pairs
from aietl_pipelines.errors import AietlInputError

STATE_FILES = ("prepared.parquet", "vectors.npy", "kth_cosine.npy", "matches.parquet", "model.json")


@dataclass
class DedupeState:
    """What a run leaves for the next incremental run: the prepared records, their vectors, each record's
    k-th neighbour cosine, the matched pairs (by record id) and the fitted model. Saved with `save_state`."""

    prepared: pd.DataFrame
    vectors: np.ndarray
    kth_cosine: np.ndarray
    matches: pd.DataFrame            # left_id, right_id, match_probability (pairs at or above the threshold)
    model: FellegiSunterModel


def build_state(prepared: pd.DataFrame, vectors: np.ndarray, pairs: pd.DataFrame, probability: np.ndarray,
                model: FellegiSunterModel, config: DedupeConfig, kth: np.ndarray) -> DedupeState:
    """The state of a full run (`kth`: each record's k-th neighbour cosine, from `candidates_with_radius`)."""
    return DedupeState(prepared, vectors, kth, matched_pairs(prepared, pairs, probability, config.match_threshold),
                       model)


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
    missing = [f for f in STATE_FILES if not (folder / f).exists()]
    if missing:
        raise AietlInputError(f"No complete dedupe state in {folder} (missing {missing}): run the full dedupe "
                              "pipeline first (`kedro run --pipeline dedupe`).")
    return DedupeState(pd.read_parquet(folder / "prepared.parquet"), np.load(folder / "vectors.npy"),
                       np.load(folder / "kth_cosine.npy"), pd.read_parquet(folder / "matches.parquet"),
                       FellegiSunterModel.from_dict(json.loads((folder / "model.json").read_text())))
