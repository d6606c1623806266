# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Features: how fresh, and what a point-in-time lookup returns
#
# Reads the per-pipeline features that `kedro run --pipeline feature_engineering` published to Feast
# (`pipeline_features` in the catalog) and the run telemetry they come from, then opens the same Feast repo the
# catalog entry writes to.

# %%
# %load_ext kedro.ipython
# %matplotlib inline
from aietl_pipelines.notebook_utils import require_outputs

require_outputs(catalog, pipelines, ["etl_runs", "pipeline_features"])

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from aietl_pipelines.features.store import FeatureStoreService

runs = catalog.load("etl_runs")
features = catalog.load("pipeline_features")
entry = context.config_loader["catalog"]["pipeline_features"]  # the options of the catalog's Feast dataset
options = {k: entry[k] for k in ("features_path", "repo_path", "config", "redis_url", "registry_url") if k in entry}
for key in ("features_path", "repo_path"):
    options[key] = str(Path(context.project_path, options[key]))  # relative paths are the project's
service = FeatureStoreService(**options)
print(f"{len(features)} feature rows for {features['pipeline_id'].nunique()} pipelines, "
      f"{features['event_timestamp'].min()} .. {features['event_timestamp'].max()}")

# %% [markdown]
# ## Freshness per feature view
# For each view registered in Feast: the newest event in its offline source, the end of the last materialization
# into the online store, and how far each lags behind the newest ETL run. A view past its TTL serves nothing
# online.

# %%
newest_run = pd.to_datetime(runs["finished_at"], utc=True).max()
rows = []
for view in service.store.list_feature_views():
    intervals = view.materialization_intervals
    materialized = pd.Timestamp(max(end for _, end in intervals)).tz_convert("UTC") if intervals else pd.NaT
    source = Path(view.batch_source.path) if getattr(view.batch_source, "path", None) else None
    if source is None and getattr(view, "stream_source", None) is not None:
        source = Path(view.stream_source.batch_source.path)
    newest_event = (pd.to_datetime(pd.read_parquet(source, columns=["event_timestamp"])["event_timestamp"], utc=True).max()
                    if source is not None and source.exists() else pd.NaT)
    rows.append({"feature_view": view.name, "ttl_hours": view.ttl.total_seconds() / 3600,
                 "newest_offline_event": newest_event, "materialized_until": materialized,
                 "offline_lag_hours": (newest_run - newest_event).total_seconds() / 3600 if pd.notna(newest_event) else None,
                 "online_lag_hours": (newest_run - materialized).total_seconds() / 3600 if pd.notna(materialized) else None})
freshness = pd.DataFrame(rows).set_index("feature_view")
ax = freshness[["offline_lag_hours", "online_lag_hours", "ttl_hours"]].astype(float).plot.barh(
    figsize=(8, 3), title=f"Lag behind the newest ETL run ({newest_run:%Y-%m-%d %H:%M} UTC)")
ax.set_xlabel("hours (missing bar: nothing written yet)")
plt.show()
freshness

# %% [markdown]
# ## One point-in-time lookup, explained
# A training row asks for the features of one pipeline *as they were* at a given moment. Feast returns the newest
# feature row at or before that moment (never a later one: that would leak the future), and nothing when the
# newest one is older than the view's TTL.

# %%
pipeline_id = features["pipeline_id"].iloc[0]
history = features[features["pipeline_id"] == pipeline_id].sort_values("event_timestamp")
history_ts = pd.to_datetime(history["event_timestamp"], utc=True)
asked = history_ts.iloc[len(history) // 2] + (history_ts.iloc[len(history) // 2 + 1] - history_ts.iloc[len(history) // 2]) / 2
entity_df = pd.DataFrame({"pipeline_id": [pipeline_id], "event_timestamp": [asked]})
answer = service.get_historical_features(entity_df, ["pipeline_features:avg_execution_time", "pipeline_features:success_rate"])
chosen = history[history_ts <= asked].iloc[-1]
assert answer["avg_execution_time"].iloc[0] == chosen["avg_execution_time"], "the lookup did not return the row as of the time asked"
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(history_ts, history["avg_execution_time"], marker=".", label=f"feature rows of {pipeline_id}")
ax.axvline(asked, color="red", linestyle="--", label="time asked")
ax.scatter([pd.Timestamp(chosen["event_timestamp"])], [chosen["avg_execution_time"]], s=120, color="red", zorder=3,
           label="row returned (newest at or before)")
ax.set(ylabel="avg_execution_time (s)", title="Point-in-time lookup")
ax.legend()
fig.autofmt_xdate()
plt.show()
print(f"asked {asked}; returned the row of {chosen['event_timestamp']} "
      f"({(asked - pd.Timestamp(chosen['event_timestamp'])).total_seconds() / 60:.0f} min earlier); "
      f"the next row ({history_ts[history_ts > asked].min()}) is after the time asked and is not used")
answer
