"""The guide's "customer deduplication" use case as one call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.survivorship import build_golden_records


def deduplicate_customers(records: pd.DataFrame | Iterable[Mapping[str, Any]], id_column: str = "id",
                          fields: Mapping[str, str] | None = None, text_column: str | None = None,
                          **options: Any) -> pd.DataFrame:
    """Unique customers: one golden record per cluster of duplicates.

    Every option left out takes its value from conf/base/parameters_dedupe.yml, as `kedro run --pipeline dedupe`
    does, so both entry points give the same clusters for the same records, fields and blocking.

    Args:
        records: Customer records (frame or list of dicts).
        id_column: Unique id column.
        fields: Structured mode: column -> kind (name, street, email, phone, date, ...).
        text_column: Free-text mode: the column holding the whole record as text.
        **options: Any `DedupeConfig` field (match_threshold, blocking, survivorship, ...).

    Returns:
        Golden records with cluster_id, golden_id, cluster_size and member_ids.
    """
    unknown = sorted(set(options) - set(DedupeConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"deduplicate_customers() got unknown option(s) {unknown}; "
                        f"options are {sorted(DedupeConfig.__dataclass_fields__)}")
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if not fields and not text_column:
        text_column = "text" if "text" in frame.columns else None
    config = DedupeConfig.from_params({**options, "id_column": id_column, "fields": dict(fields or {}),
                                       "text_column": text_column})
    result = engine.run(frame, config)
    kept = config.structured_fields() or [text_column]
    base = frame.reset_index(drop=True).copy()
    base[id_column] = base[id_column].astype(str)
    return build_golden_records(base, result.clusters["cluster_id"], kept, id_column, config.survivorship)
