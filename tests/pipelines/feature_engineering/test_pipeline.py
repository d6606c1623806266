from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.datasets import FeastFeatureViewDataset
from aietl_pipelines.features.store import FeatureStoreService
from aietl_pipelines.pipelines.feature_engineering import create_pipeline


def test_pipeline_publishes_features_online_and_offline(tmp_path):
    runs = generate_etl_runs(n_pipelines=4, days=5, runs_per_day=8)
    path = tmp_path / "features.parquet"
    catalog = DataCatalog({
        "etl_runs": MemoryDataset(runs),
        "params:feature_engineering": MemoryDataset({"short_window": "24h", "long_window": "7d"}),
        "pipeline_features": FeastFeatureViewDataset(features_path=str(path), repo_path=str(tmp_path / "repo")),
    })
    result = SequentialRunner().run(create_pipeline(), catalog)
    metrics = result["feature_engineering_metrics"].load()
    assert metrics["rows"] == len(runs) and metrics["entities"] == 4
    service = FeatureStoreService(repo_path=tmp_path / "repo", features_path=path)
    online = service.get_pipeline_features(["pipeline_001", "pipeline_004"], ["success_rate", "run_count"])
    assert online["run_count"].notna().all() and online["success_rate"].between(0, 1).all()
