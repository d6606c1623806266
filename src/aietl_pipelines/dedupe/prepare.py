"""Stage 1 of dedupe: validate and normalise the records, build the text each is embedded as, embed it."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import normalize
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.textparse import TEXT_KINDS, parse_text
from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)


def _drop_boilerplate_words(parsed: list[dict[str, object]], max_share: float = 0.05) -> None:
    """Remove words that appear in more than `max_share` of the records (labels such as "born", "street"):
    they say nothing about identity and make every pair look alike."""
    counts = Counter(w for p in parsed if p["words"] for w in set(str(p["words"]).split()))
    limit = max(2, int(max_share * len(parsed)))
    common = {w for w, c in counts.items() if c > limit}
    for p in parsed:
        if p["words"]:
            kept = [w for w in str(p["words"]).split() if w not in common]
            p["words"] = " ".join(kept) or None


def validate_ids(records: pd.DataFrame, config: DedupeConfig) -> pd.Series:
    """The id column, checked: present, no missing id, unique."""
    ids = records[config.id_column]
    if ids.isna().any():
        raise AietlInputError(f"{int(ids.isna().sum())} record(s) have no id in '{config.id_column}'.")
    dupes = ids[ids.duplicated()].astype(str).unique().tolist()
    if dupes:
        raise AietlInputError(f"Duplicate record ids in '{config.id_column}': {dupes[:10]}"
                              f"{' ...' if len(dupes) > 10 else ''}. Ids must be unique.")
    return ids


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Validate and normalise: one row per input record, same order, plus `__text` (what is embedded)."""
    if not isinstance(records, pd.DataFrame) or records.empty:
        raise AietlInputError("The records to deduplicate are empty: nothing to do. Check the input file.")
    needed = [config.id_column, *([config.text_column] if config.mode == "text" else config.fields)]
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise AietlInputError(f"Declared column(s) {missing} are not in the records (columns: {list(records.columns)}). "
                              "Fix `dedupe.fields` / `dedupe.text_column` / `dedupe.id_column`.")
    ids = validate_ids(records, config)
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
