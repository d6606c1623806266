"""Feast definitions for the `feast` CLI: entity `pipeline`, feature views, push source, feature service.

The objects come from `aietl_pipelines.features.definitions` so the CLI and the Kedro pipeline register
exactly the same definitions. Source paths are relative to this folder.
"""

from aietl_pipelines.features.definitions import build_definitions

_objects = build_definitions("../data/04_feature/pipeline_features.parquet", "data/pipeline_realtime.parquet")

pipeline = _objects["entity"]
pipeline_features_source = _objects["batch_source"]
pipeline_realtime_push_source = _objects["push_source"]
pipeline_features = _objects["feature_view"]
pipeline_realtime_features = _objects["realtime_view"]
pipeline_failure_service = _objects["feature_service"]
