# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dedupe: how good, at which threshold, against whom
#
# Reads the outputs of `kedro run --pipeline dedupe` through the catalog: the scored candidate pairs, the
# clusters and the input records (with their ground-truth `true_cluster_id` on the sample data). Open with
# `kedro jupyter lab` (or any kernel of the project's .venv).

# %%
# %load_ext kedro.ipython
# %matplotlib inline
from aietl_pipelines.notebook_utils import require_outputs

require_outputs(catalog, pipelines, ["customers_raw", "dedupe_scored_pairs", "dedupe_clusters", "dedupe_metrics"])

# %%
import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.cluster import cluster_records
from aietl_pipelines.dedupe.evaluate import pairwise_scores

params = catalog.load("params:dedupe")
records = catalog.load("customers_raw")
pairs = catalog.load("dedupe_scored_pairs")
clusters = catalog.load("dedupe_clusters")
metrics = catalog.load("dedupe_metrics")
print(f"{len(records)} records, {len(pairs)} scored candidate pairs, {clusters['cluster_id'].nunique()} clusters; "
      f"run F1 {metrics.get('f1', float('nan')):.3f} at match_threshold {params['match_threshold']}")

# %% [markdown]
# ## Precision and recall against the match threshold
# The same scored pairs, clustered again at each threshold (the pipeline's clustering, chaining guard included),
# scored pairwise against the ground truth.

# %%
position = pd.Series(np.arange(len(records)), index=records[params["id_column"]].astype(str))
left = position[pairs["left_id"].astype(str)].to_numpy()
right = position[pairs["right_id"].astype(str)].to_numpy()
probability = pairs["match_probability"].to_numpy()
truth = pd.factorize(records[params["truth_column"]])[0]
rows = []
guard = logging.getLogger("aietl_pipelines.dedupe.cluster")
level, _ = guard.level, guard.setLevel(logging.ERROR)  # the chaining guard logs every split: noise in a sweep
for threshold in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]:
    labels = cluster_records(len(records), left, right, probability, threshold, params.get("max_cluster_size"))
    rows.append({"threshold": threshold, **pairwise_scores(labels, truth)})
guard.setLevel(level)
curve = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(curve["threshold"].astype(str), curve["precision"], marker="o", label="precision")
ax.plot(curve["threshold"].astype(str), curve["recall"], marker="o", label="recall")
ax.plot(curve["threshold"].astype(str), curve["f1"], marker="s", linestyle="--", label="F1")
ax.axvline(str(params["match_threshold"]), color="grey", linewidth=0.8)
ax.set(xlabel="match probability threshold", ylim=(0, 1.05), title="Pairwise precision / recall against the threshold")
ax.legend()
plt.show()
curve[["threshold", "precision", "recall", "f1"]]

# %% [markdown]
# ## Cluster sizes
# Most entities should be singletons or small groups; a long tail would mean chaining.

# %%
sizes = clusters["cluster_id"].value_counts()
true_sizes = records[params["truth_column"]].value_counts()
bins = np.arange(1, max(sizes.max(), true_sizes.max()) + 2) - 0.5
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist([sizes, true_sizes], bins=bins, label=["found clusters", "true entities"])
ax.set(xlabel="records per cluster", ylabel="clusters", title="Cluster-size distribution")
ax.legend()
plt.show()
biggest = sizes.index[:2]
clusters[clusters["cluster_id"].isin(biggest)].merge(records, on=params["id_column"]).sort_values("cluster_id").head(10)

# %% [markdown]
# ## This project beside Splink and the guide's recipe
# The benchmark reports in `docs/benchmarks/` (written by `make bench-dedupe` and the other dedupe benchmarks,
# FEBRL and the real-data sets alike) are read through the catalog (`benchmark_reports`). Where there are none, a
# small version runs here: FEBRL 1 (a sample of its records), this project against Splink 5 and the guide's
# MiniLM-cosine >= 0.90 recipe.

# %%
import io

from aietl_pipelines.benchmarks import dedupe as bench


def markdown_table(text: str) -> pd.DataFrame | None:
    """The first pipe table of a benchmark report that lists methods and F1 per data set."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    if len(lines) < 3:
        return None
    table = pd.read_csv(io.StringIO("\n".join([lines[0], *lines[2:]])), sep="|", skipinitialspace=True).iloc[:, 1:-1]
    table.columns = [c.strip() for c in table.columns]
    table = table.apply(lambda s: s.str.strip() if s.dtype == object else s)
    return table if {"dataset", "method", "f1"} <= set(table.columns) else None


reports = catalog.load("benchmark_reports") if catalog.exists("benchmark_reports") else {}
tables = [t.assign(report=name) for name, load in sorted(reports.items()) if name.startswith("dedupe")
          for t in [markdown_table(load())] if t is not None]
if tables:
    results = pd.concat(tables, ignore_index=True)
    source = "benchmark reports: " + ", ".join(sorted(results["report"].unique()))
else:
    sample = bench.load_febrl(1)
    sample = sample[sample["true_cluster_id"].isin(sample["true_cluster_id"].drop_duplicates().sample(frac=0.3, random_state=0))]
    sample = sample.reset_index(drop=True)
    sample["record_text"] = sample[list(bench.FEBRL_FIELDS)].fillna("").astype(str).agg(" ".join, axis=1)
    truth_small = sample["true_cluster_id"].to_numpy()
    name = f"FEBRL1 sample ({len(sample)} records)"
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        results = pd.DataFrame([bench.run_ours(sample, truth_small, name, cache, text=False),
                                bench.run_guide_recipe(sample, truth_small, name, "record_text", cache + "/recipe"),
                                bench.run_splink(sample, truth_small, name)])
    source = "a small run in this notebook (no benchmark report found)"
results["f1"] = pd.to_numeric(results["f1"])
wide = results.pivot_table(index="dataset", columns="method", values="f1")
ax = wide.plot.barh(figsize=(9, 0.6 * len(wide) + 2.5), xlim=(0, 1.05), title=f"Pairwise F1 ({source})")
ax.set_xlabel("pairwise F1")
ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8)
plt.show()
wide.round(3)
