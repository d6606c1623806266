# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model review: champion against challenger
#
# The pipeline-failure model versions are read from the MLflow registry by alias (`champion`, `challenger`: the
# tracking store comes from conf/*/mlflow.yml, set by kedro-mlflow when the notebook loads the project), and
# scored on the same held-out window `kedro run --pipeline retraining` uses, rebuilt from the catalog.

# %%
# %load_ext kedro.ipython
# %matplotlib inline
from aietl_pipelines.notebook_utils import MissingPipelineOutput, require_outputs

require_outputs(catalog, pipelines, ["etl_runs", "pipeline_features", "retraining_evaluation"])

# %%
import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from sklearn.metrics import roc_auc_score, roc_curve

from aietl_pipelines.pipelines.retraining.nodes import build_training_data, split_train_holdout
from aietl_pipelines.retraining.evaluate import calibration_figure, score
from aietl_pipelines.retraining.model import predict_failure_probability

params = catalog.load("params:retraining")
client = mlflow.MlflowClient()
model_name = params["model_name"]
versions = client.search_model_versions(f"name='{model_name}'")
registry = pd.DataFrame([{"version": int(v.version), "aliases": ", ".join(v.aliases), "run_id": v.run_id,
                          **{k: v.tags[k] for k in sorted(v.tags) if k.startswith(("holdout_", "role"))}}
                         for v in versions]).sort_values("version")
print(f"tracking store: {mlflow.get_tracking_uri()}")
registry

# %%
models, shown = {}, set()
for alias in ("champion", "challenger"):
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        print(f"no '{alias}' alias yet")
        continue
    models[f"{alias} (v{version.version})"] = mlflow.sklearn.load_model(f"models:/{model_name}@{alias}")
    shown.add(int(version.version))
others = sorted(set(registry["version"]) - shown)
if len(models) == 1 and others:  # no challenger: the newest other version (e.g. the champion it replaced)
    models[f"previous (v{others[-1]})"] = mlflow.sklearn.load_model(f"models:/{model_name}/{others[-1]}")
if not models:
    raise MissingPipelineOutput(f"no version of '{model_name}' in {mlflow.get_tracking_uri()}: run "
                                "`kedro run --pipeline retraining` first, then rerun this notebook.")
print("champion version:", client.get_model_version_by_alias(model_name, "champion").version)
training = build_training_data(catalog.load("etl_runs"), catalog.load("pipeline_features"), params)
_, holdout = split_train_holdout(training, params)
print(f"held-out window: {len(holdout)} runs, failure rate {holdout['label'].mean():.3f}")
pd.DataFrame({name: score(holdout["label"].to_numpy(), predict_failure_probability(m, holdout))
              for name, m in models.items()}).T.round(4)

# %% [markdown]
# ## ROC on the held-out window

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
for name, model in models.items():
    probability = predict_failure_probability(model, holdout)
    fpr, tpr, _ = roc_curve(holdout["label"], probability)
    ax.plot(fpr, tpr, label=f"{name}: AUC {roc_auc_score(holdout['label'], probability):.3f}")
ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, champion against challenger")
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## Calibration
# The reliability diagram the retraining pipeline logs to MLflow (the same function), for both versions:
# a failure probability of 0.3 should mean three failures in ten such runs.

# %%
calibration_figure(holdout, models)
