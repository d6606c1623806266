"""Kedro dataset that publishes features to Feast: offline source + apply + materialize."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from aietl_pipelines.features.store import FeatureStoreService


class FeastFeatureViewDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """`save(features)` writes the batch source, applies the definitions and materializes the saved range
    into the online store; `load()` reads the batch source back.
    """

    def __init__(
        self,
        features_path: str,
        repo_path: str = "feast_repo",
        config: str = "embedded",
        redis_url: str | None = None,
        registry_url: str | None = None,
        materialize: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._options = {"features_path": features_path, "repo_path": repo_path, "config": config,
                         "redis_url": redis_url, "registry_url": registry_url}
        self._materialize = materialize
        self.metadata = metadata

    def _service(self) -> FeatureStoreService:
        return FeatureStoreService(**self._options)

    def _load(self) -> pd.DataFrame:
        return pd.read_parquet(self._options["features_path"])

    def _save(self, data: pd.DataFrame) -> None:
        service = self._service()
        service.write_offline_source(data)
        service.apply()
        if self._materialize and len(data):
            start = pd.Timestamp(data["event_timestamp"].min()).to_pydatetime()
            # the bounds are inclusive; + 1 s so that the microsecond datetime still covers a nanosecond max
            end = (pd.Timestamp(data["event_timestamp"].max()) + pd.Timedelta(seconds=1)).to_pydatetime()
            service.materialize(start, end)

    def _exists(self) -> bool:
        from pathlib import Path

        return Path(self._options["features_path"]).exists()

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in self._options.items() if k != "registry_url"}


class FailurePredictionsDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Writes failure_probability predictions back: into the online store of the `pipeline_features` view
    (so online serving returns them at once) and to a parquet file (the offline record of predictions)."""

    def __init__(self, filepath: str, repo_path: str = "feast_repo", features_path: str | None = None,
                 config: str = "embedded", redis_url: str | None = None, registry_url: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self._options = {"features_path": features_path, "repo_path": repo_path, "config": config,
                         "redis_url": redis_url, "registry_url": registry_url}
        self.metadata = metadata

    def _save(self, data: pd.DataFrame) -> None:
        from pathlib import Path

        Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        data.to_parquet(self._filepath, index=False)
        if data.empty:
            return
        FeatureStoreService(**self._options).write_failure_probabilities(data)

    def _load(self) -> pd.DataFrame:
        return pd.read_parquet(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "repo_path": self._options["repo_path"]}
