"""The guide's feature store API: ``feast_service = get_feature_store_service()``.

Methods named as in the guide are awaitable (``await feast_service.get_pipeline_features(...)``,
``get_historical_features``, ``push_features``, ``materialize``); each has a ``_sync`` twin for scripts and
notebooks. The work is done by `aietl_pipelines.features.store.FeatureStoreService` (the sync core the Kedro
pipelines use); this wrapper adds what a caller of the guide expects:

- naive timestamps (entity rows, pushed rows, materialize bounds) are taken as UTC, as Feast itself does;
- `materialize` reports what it wrote (offline rows in the window, entities written, the window);
- Feast's own "not found" errors become the project's `AietlInputError` with the fix;
- default paths are resolved against the project root (`aietl_pipelines.paths`), not the working directory.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features import definitions as defs
from aietl_pipelines.features.store import FeatureStoreService
from aietl_pipelines.paths import project_path


def as_utc(values: pd.Series, name: str) -> pd.Series:
    """Timestamps as UTC-aware values; naive ones are taken as UTC (ISO 8601 strings are parsed)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        try:
            values = pd.to_datetime(values, format="ISO8601", utc=False)
        except (ValueError, TypeError, OverflowError) as exc:
            raise AietlInputError(f"{name} holds values that are not ISO 8601 timestamps "
                                  f"(e.g. 2025-01-01T00:00:00): {exc}") from None
        if values.dtype == object:  # a mix of naive and aware values
            try:
                values = pd.to_datetime(values.map(lambda v: pd.Timestamp(v).tz_localize("UTC")
                                                   if pd.Timestamp(v).tzinfo is None else v), utc=True)
            except (ValueError, TypeError, OverflowError) as exc:
                raise AietlInputError(f"{name} holds values that are not timestamps: {exc}") from None
    if values.isna().any():
        raise AietlInputError(f"{name} has {int(values.isna().sum())} missing timestamps: every row needs one.")
    return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")


def _utc_frame(df: Any, name: str) -> pd.DataFrame:
    frame = pd.DataFrame(df) if isinstance(df, Mapping) else df
    if not isinstance(frame, pd.DataFrame):
        raise AietlInputError(f"{name} must be a pandas DataFrame (or a dict of columns), got {type(df).__name__}.")
    if "event_timestamp" in frame.columns:
        frame = frame.copy()
        frame["event_timestamp"] = as_utc(frame["event_timestamp"], f"{name}.event_timestamp")
    return frame


def _feast_errors(exc: Exception) -> AietlInputError:
    return AietlInputError(f"{type(exc).__name__}: {exc}. Register the definitions first "
                           "(`kedro run --pipeline feature_engineering`, or `cd feast_repo && feast apply`).")


class AsyncFeatureStoreService:
    """Awaitable guide API over one `FeatureStoreService` (``core``); other attributes pass through to it."""

    def __init__(self, core: FeatureStoreService) -> None:
        self.core = core

    def __getattr__(self, name: str) -> Any:  # apply, feature_references, write_offline_source, store, ...
        return getattr(self.core, name)

    # sync core -------------------------------------------------------------------------------------
    def get_pipeline_features_sync(self, pipeline_ids: str | Sequence[str],
                                   features: Sequence[str] | None = None) -> pd.DataFrame:
        """Latest online values for each pipeline id (one row per id, in order)."""
        from feast.errors import FeastObjectNotFoundException

        ids = [pipeline_ids] if isinstance(pipeline_ids, str | int) else list(pipeline_ids)
        if not ids:
            raise AietlInputError("pipeline_ids is empty: pass at least one pipeline id.")
        if any(i is None for i in ids):
            raise AietlInputError("pipeline_ids contains a null: every entity row needs a pipeline id.")
        try:
            return self.core.get_pipeline_features([str(i) for i in ids], features)
        except FeastObjectNotFoundException as exc:
            raise _feast_errors(exc) from None

    def online_records_sync(self, pipeline_ids: Sequence[str | int],
                            features: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """`get_pipeline_features_sync` as JSON-ready records (what the HTTP API serves: no DataFrame)."""
        from feast.errors import FeastObjectNotFoundException

        ids = list(pipeline_ids)
        if not ids:
            raise AietlInputError("pipeline_ids is empty: pass at least one pipeline id.")
        try:
            columns = self.core.online_feature_columns([str(i) for i in ids], features)
        except FeastObjectNotFoundException as exc:
            raise _feast_errors(exc) from None
        names = list(columns)
        rows = []
        for values in zip(*(columns[n] for n in names), strict=True):
            rows.append({n: (None if isinstance(v, float) and not math.isfinite(v) else v)
                         for n, v in zip(names, values, strict=True)})
        return rows

    def get_historical_features_sync(self, entity_df: pd.DataFrame | Mapping[str, Sequence[Any]],
                                     features: Sequence[str] | None = None) -> pd.DataFrame:
        """Point-in-time correct features for every entity row; naive event timestamps are UTC."""
        frame = _utc_frame(entity_df, "entity_df")
        if defs.JOIN_KEY in frame.columns and not frame[defs.JOIN_KEY].isna().any():
            frame[defs.JOIN_KEY] = frame[defs.JOIN_KEY].astype(str)
        return self.core.get_historical_features(frame, features)

    def push_features_sync(self, push_source_name: str, df: pd.DataFrame, to: str = "online") -> int:
        """Push rows through the push source (naive timestamps are UTC); returns the number of rows."""
        from feast.errors import FeastObjectNotFoundException

        try:
            return self.core.push_features(push_source_name, _utc_frame(df, "df"), to=to)
        except FeastObjectNotFoundException as exc:
            raise _feast_errors(exc) from None

    def materialize_sync(self, start_date: datetime | str, end_date: datetime | str,
                         feature_views: Sequence[str] = (defs.FEATURE_VIEW,)) -> dict[str, Any]:
        """Load the latest values in [start_date, end_date] into the online store; report what was written."""
        from feast.errors import FeastObjectNotFoundException

        start = as_utc(pd.Series([start_date]), "start_date").iloc[0]
        end = as_utc(pd.Series([end_date]), "end_date").iloc[0]
        views = [feature_views] if isinstance(feature_views, str) else list(feature_views)
        rows = 0
        for view in views:
            source = self.core._offline_source(view, [])
            stamps = pd.to_datetime(source["event_timestamp"], utc=True)
            rows += int(((stamps >= start) & (stamps <= end)).sum())
        try:
            entities = self.core.materialize(start.to_pydatetime(warn=False), end.to_pydatetime(warn=False), views)
        except FeastObjectNotFoundException as exc:
            raise _feast_errors(exc) from None
        return {"materialized": True, "feature_views": views, "rows": rows, "entities": int(entities),
                "start_date": start.isoformat(), "end_date": end.isoformat()}

    def refresh_registry(self) -> None:
        """Reload the registry in this process (what the guide's ``feast registry-refresh`` was meant to do;
        Feast 0.67 has no such command)."""
        self.core.store.refresh_registry()

    # async API of the guide ----------------------------------------------------------------------
    async def get_pipeline_features(self, pipeline_ids, features=None) -> pd.DataFrame:
        return await asyncio.to_thread(self.get_pipeline_features_sync, pipeline_ids, features)

    async def get_historical_features(self, entity_df, features=None) -> pd.DataFrame:
        return await asyncio.to_thread(self.get_historical_features_sync, entity_df, features)

    async def push_features(self, push_source_name, df, to="online") -> int:
        return await asyncio.to_thread(self.push_features_sync, push_source_name, df, to)

    async def materialize(self, start_date, end_date, feature_views=(defs.FEATURE_VIEW,)) -> dict[str, Any]:
        return await asyncio.to_thread(self.materialize_sync, start_date, end_date, feature_views)


def get_feature_store_service(**options: Any) -> AsyncFeatureStoreService:
    """The feature store service of the guide (awaitable methods, ``_sync`` twins).

    Defaults, resolved against the project root whatever the working directory: repo ``feast_repo``
    (``$AIETL_FEAST_REPO``), batch source ``data/04_feature/pipeline_features.parquet``
    (``$AIETL_FEATURES_PATH``), config ``$AIETL_FEATURE_STORE`` or ``embedded`` (``server`` = Redis online store
    + PostgreSQL SQL registry, URLs from FEAST_REDIS_CONNECTION and FEAST_REGISTRY_URL).
    """
    options.setdefault("repo_path", project_path(os.environ.get("AIETL_FEAST_REPO", "feast_repo")))
    options.setdefault("features_path", project_path(
        os.environ.get("AIETL_FEATURES_PATH", "data/04_feature/pipeline_features.parquet")))
    options.setdefault("config", os.environ.get("AIETL_FEATURE_STORE", "embedded"))
    return AsyncFeatureStoreService(FeatureStoreService(**options))


__all__ = ["AsyncFeatureStoreService", "FeatureStoreService", "as_utc", "get_feature_store_service"]
