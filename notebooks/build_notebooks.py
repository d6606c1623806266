"""Writes the project's notebooks (run `python notebooks/build_notebooks.py` after editing the cells here)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SETUP = """import os
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from aietl_pipelines.notebook_utils import load_catalog
catalog = load_catalog()  # the project's catalog; environment from $KEDRO_ENV (default: local)
SMALL = os.environ.get("KEDRO_ENV") == "test"  # the test suite runs this notebook on small data"""

NOTEBOOKS = {
    "01-dedupe-exploration.ipynb": [
        new_markdown_cell("# Dedupe exploration\nThe sample customers through the dedupe engine: threshold vs "
                          "precision/recall, and what the clusters look like."),
        new_code_cell(SETUP),
        new_code_cell("""from aietl_pipelines.datagen.customers import generate_customers
records = catalog.load("customers_raw") if catalog.exists("customers_raw") else generate_customers(n_entities=300)
if SMALL:
    records = records.head(400)
records.head()"""),
        new_code_cell("""from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.cluster import cluster_records
from aietl_pipelines.dedupe.evaluate import pairwise_scores
params = catalog.load("params:dedupe")
config = engine.DedupeConfig.from_params({**params, "use_embeddings": not SMALL, "cache_dir": None})
result = engine.run(records, config)
truth = pd.factorize(records["true_cluster_id"])[0]
pairs = result.pairs
rows = []
for threshold in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]:
    labels = cluster_records(len(records), pairs["left"].to_numpy(), pairs["right"].to_numpy(),
                             pairs["match_probability"].to_numpy(), threshold, config.max_cluster_size)
    rows.append({"threshold": threshold, **pairwise_scores(labels, truth)})
curve = pd.DataFrame(rows)
curve[["threshold", "precision", "recall", "f1"]]"""),
        new_code_cell("""fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(curve["threshold"].astype(str), curve["precision"], marker="o", label="precision")
ax.plot(curve["threshold"].astype(str), curve["recall"], marker="o", label="recall")
ax.set_xlabel("match probability threshold"); ax.set_ylim(0, 1.05); ax.legend(); ax.set_title("Threshold vs precision/recall")
assert curve["f1"].max() > 0.9"""),
        new_code_cell("""clusters = result.clusters.merge(records[["record_id", "source", "full_text"]], on="record_id")
biggest = clusters["cluster_id"].value_counts().index[:3]
clusters[clusters["cluster_id"].isin(biggest)].sort_values("cluster_id")"""),
    ],
    "02-drift-exploration.ipynb": [
        new_markdown_cell("# Drift exploration\nReference vs current telemetry, the per-column tests Evidently would pick, "
                          "and a validation of the detector: false alarms with no shift, power against mean shifts."),
        new_code_cell(SETUP),
        new_code_cell("""from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.pipelines.drift_monitoring.nodes import select_drift_windows
from aietl_pipelines.drift.statistics import compute_drift
runs = catalog.load("etl_runs") if catalog.exists("etl_runs") else generate_etl_runs(n_pipelines=8, days=21, runs_per_day=12, drift_start_day=14)
params = catalog.load("params:drift_monitoring")
reference, current = select_drift_windows(runs, params)
table, skipped = compute_drift(reference, current)
table"""),
        new_code_cell("""fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, col in zip(axes, ["duration_seconds", "cpu_usage", "memory_usage_mb"]):
    ax.hist(reference[col], bins=40, alpha=0.5, density=True, label="reference")
    ax.hist(current[col], bins=40, alpha=0.5, density=True, label="current")
    ax.set_title(col)
axes[0].legend()"""),
        new_markdown_cell("## Detector validation\nWith no shift the KS test (n = 500 per side) should flag about 5% of "
                          "repetitions at alpha 0.05: the observed rate must fall in the binomial 99% interval."),
        new_code_cell("""from scipy import stats
from aietl_pipelines.drift.statistics import column_drift
rng = np.random.default_rng(0)
reps = 300 if SMALL else 1000
alarms = sum(column_drift("x", pd.Series(rng.normal(0, 1, 500)), pd.Series(rng.normal(0, 1, 500))).drifted for _ in range(reps))
low, high = stats.binom.ppf([0.005, 0.995], reps, 0.05)
print(f"false alarms: {alarms}/{reps} = {alarms / reps:.3f}; 99% binomial interval [{low:.0f}, {high:.0f}]")
assert low <= alarms <= high"""),
        new_code_cell("""shifts = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
power = [np.mean([column_drift("x", pd.Series(rng.normal(0, 1, 500)), pd.Series(rng.normal(s, 1, 500))).drifted
                  for _ in range(50 if SMALL else 200)]) for s in shifts]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(shifts, power, marker="o"); ax.set_xlabel("mean shift (sigma)"); ax.set_ylabel("power"); ax.set_title("KS power, n = 500")
assert power[-1] > 0.9 and power[0] < power[-1]"""),
    ],
    "03-feature-exploration.ipynb": [
        new_markdown_cell("# Feature exploration\nPer-pipeline features from telemetry, and a point-in-time join through "
                          "the feature store service."),
        new_code_cell(SETUP),
        new_code_cell("""import tempfile
from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.features.store import FeatureStoreService
runs = catalog.load("etl_runs") if catalog.exists("etl_runs") else generate_etl_runs(n_pipelines=8, days=21, runs_per_day=12)
features = compute_pipeline_features(runs)
features.describe().T"""),
        new_code_cell("""one = features[features["pipeline_id"] == features["pipeline_id"].iloc[0]]
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(one["event_timestamp"], one["avg_execution_time"], label="avg_execution_time (24h)")
ax.plot(one["event_timestamp"], one["avg_execution_time_7d"], label="avg_execution_time_7d")
ax.legend(); ax.set_title("Rolling execution time of one pipeline")"""),
        new_code_cell("""repo = tempfile.mkdtemp()
service = FeatureStoreService(repo_path=repo)
service.write_offline_source(features)
service.apply()
entity_df = runs[["pipeline_id", "started_at"]].rename(columns={"started_at": "event_timestamp"}).sample(5, random_state=0)
service.get_historical_features(entity_df, ["pipeline_features:avg_execution_time", "pipeline_features:success_rate"])"""),
    ],
    "04-model-review.ipynb": [
        new_markdown_cell("# Model review\nRuns and registered versions of the pipeline-failure model, through MLflow "
                          "(tracking URI from $MLFLOW_TRACKING_URI, default the project's sqlite:///mlflow.db)."),
        new_code_cell(SETUP),
        new_code_cell("""import mlflow
mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
client = mlflow.MlflowClient()
model_name = catalog.load("params:retraining")["model_name"]
versions = client.search_model_versions(f"name='{model_name}'")
review = pd.DataFrame([{"version": v.version, "run_id": v.run_id, "aliases": list(v.aliases), **v.tags} for v in versions])
review"""),
        new_code_cell("""champion = client.get_model_version_by_alias(model_name, "champion") if len(review) else None
print("champion version:", champion and champion.version, "produced by run", champion and champion.run_id)
runs = mlflow.search_runs(search_all_experiments=True)
runs.filter(regex="^(run_id|tags.mlflow.runName|metrics.retraining_metrics.*)$").head()"""),
        new_code_cell("""if len(review) > 1:
    cols = [c for c in review.columns if c.startswith("holdout_")]
    comparison = review.set_index("version")[cols].astype(float)
    comparison.plot.bar(figsize=(7, 3), title="Holdout metrics per registered version")
    comparison"""),
    ],
}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", name)
