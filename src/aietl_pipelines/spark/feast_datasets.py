"""The Feast datasets of `kedro run --env spark` (conf/spark/catalog.yml): the conf/base ones with the feature
store on Feast's Spark offline store (`offline_store: spark`, spark/feast_store.py)."""

from __future__ import annotations

from typing import Any

from aietl_pipelines.datasets import FeastFeatureViewDataset


class SparkFeastFeatureViewDataset(FeastFeatureViewDataset):
    """`FeastFeatureViewDataset` whose service uses the offline store `offline_store` ("spark" by default): the
    batch source is written with microsecond timestamps and registered as a SparkSource, and `save` materializes
    through Feast's `spark.engine`."""

    def __init__(self, features_path: str, offline_store: str = "spark", **options: Any) -> None:
        super().__init__(features_path, **options)
        self._offline_store = offline_store

    def _service(self) -> Any:
        from aietl_pipelines.features.store import FeatureStoreService

        return FeatureStoreService(**self._options, offline_store=self._offline_store)

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "offline_store": self._offline_store}
