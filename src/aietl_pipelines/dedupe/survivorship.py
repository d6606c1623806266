"""Golden records: one surviving value per field and cluster, by configurable rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def build_golden_records(records: pd.DataFrame, clusters: pd.Series, fields: Sequence[str], id_column: str,
                         rules: Mapping[str, Any]) -> pd.DataFrame:
    """One row per cluster.

    Records are ranked by `rules["order"]`, a list of: ``completeness`` (most non-null fields first),
    ``recency`` (latest `rules["recency_column"]` first), ``source_priority`` (order of
    `rules["source_priority"]` in `rules["source_column"]`). Each field takes the first non-null value in that
    ranking. The golden record keeps the cluster id, its size and the member ids.
    """
    frame = records.copy()
    frame["__cluster"] = clusters.to_numpy()
    sort_cols, ascending = ["__cluster"], [True]
    for rule in rules.get("order", ["completeness", "recency"]):
        if rule == "completeness":
            frame["__complete"] = frame[list(fields)].notna().sum(axis=1)
            sort_cols.append("__complete")
            ascending.append(False)
        elif rule == "recency" and rules.get("recency_column") in frame.columns:
            sort_cols.append(rules["recency_column"])
            ascending.append(False)
        elif rule == "source_priority" and rules.get("source_column") in frame.columns:
            priority = {s: i for i, s in enumerate(rules.get("source_priority", []))}
            frame["__prio"] = frame[rules["source_column"]].map(priority).fillna(len(priority))
            sort_cols.append("__prio")
            ascending.append(True)
    ranked = frame.sort_values(sort_cols, ascending=ascending, kind="stable", na_position="last")
    grouped = ranked.groupby("__cluster", sort=True)
    golden = grouped[list(fields)].first()
    golden.insert(0, "cluster_size", grouped.size())
    golden.insert(1, "member_ids", grouped[id_column].agg(list))
    golden.insert(0, "golden_id", grouped[id_column].first())
    return golden.reset_index(names="cluster_id")
