# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Drift: what moved, since when, and can the detector be trusted
#
# Reads the ETL run telemetry and the per-column results of `kedro run --pipeline drift_monitoring` through the
# catalog, with the pipeline's own window parameters.

# %%
# %load_ext kedro.ipython
# %matplotlib inline
from aietl_pipelines.notebook_utils import require_outputs

require_outputs(catalog, pipelines, ["etl_runs", "drift_column_results", "drift_summary"])

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from aietl_pipelines.drift.statistics import compute_drift
from aietl_pipelines.drift.windows import split_windows
from aietl_pipelines.pipelines.drift_monitoring.nodes import select_drift_windows

params = catalog.load("params:drift_monitoring")
runs = catalog.load("etl_runs")
results = catalog.load("drift_column_results")
summary = catalog.load("drift_summary")
reference, current = select_drift_windows(runs, params)
print(f"reference {len(reference)} runs, current {len(current)} runs; drift share {summary['drift_share']:.2f} "
      f"(alert above {params['alert_threshold']}): drifted {summary['drifted_columns']}")
results[["column", "column_type", "test", "score", "threshold", "drifted", "psi", "psi_band"]]

# %% [markdown]
# ## Distribution overlays of the drifted columns
# Reference against current, density-normalised (numeric) or as shares (categorical).

# %%
drifted = results.loc[results["drifted"], "column"].tolist() or results.nlargest(3, "psi")["column"].tolist()
fig, axes = plt.subplots(1, len(drifted), figsize=(4 * len(drifted), 3.2), squeeze=False)
for ax, column in zip(axes[0], drifted, strict=True):
    kind = results.set_index("column").loc[column, "column_type"]
    if kind == "num":
        low, high = np.nanpercentile(pd.concat([reference[column], current[column]]).astype(float), [0.5, 99.5])
        edges = np.linspace(low, high, 40)
        ax.hist(reference[column].astype(float), bins=edges, density=True, alpha=0.5, label="reference")
        ax.hist(current[column].astype(float), bins=edges, density=True, alpha=0.5, label="current")
    else:
        shares = pd.DataFrame({"reference": reference[column].astype(str).value_counts(normalize=True),
                               "current": current[column].astype(str).value_counts(normalize=True)}).fillna(0)
        shares.plot.bar(ax=ax, alpha=0.7, legend=False)
    ax.set_title(f"{column} ({results.set_index('column').loc[column, 'test']})")
axes[0][0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Drift share over windows
# The reference window stays where the pipeline puts it; the current window (same length as the pipeline's)
# slides one day at a time. The alert line is the pipeline's threshold.

# %%
times = pd.to_datetime(runs[params["time_column"]], utc=True)
first, last = times.min(), times.max()
start = first + pd.Timedelta(days=params["reference_days"][1] + params["current_last_days"])
columns = params.get("columns")
rows = []
for end in pd.date_range(start.ceil("D"), last.ceil("D"), freq="D"):
    window = runs[times <= end]
    ref, cur = split_windows(window, params["time_column"], tuple(params["reference_days"]), params["current_last_days"])
    table, _ = compute_drift(ref[columns], cur[columns])
    rows.append({"window_end": end, "drift_share": table["drifted"].mean(),
                 "drifted": ", ".join(table.loc[table["drifted"], "column"])})
shares = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.plot(shares["window_end"], shares["drift_share"], marker="o")
ax.axhline(params["alert_threshold"], color="red", linestyle="--", label="alert threshold")
ax.set(ylabel="share of drifted columns", ylim=(0, 1.02), title="Drift share as the current window slides")
ax.legend()
fig.autofmt_xdate()
plt.show()
shares

# %% [markdown]
# ## The detector's false-positive check
# With no shift at all, a test at alpha = 0.05 should flag about 5% of repetitions (here KS, which the default
# rules pick for a numeric column of n = 500 per side). The observed rate must fall in the binomial 99% interval;
# then the power against growing mean shifts.

# %%
from scipy import stats

rng = np.random.default_rng(0)
small = context.env == "test"  # the test suite runs this notebook on its small environment
reps = 200 if small else 1000


def flagged(shift: float) -> bool:
    ref = pd.DataFrame({"x": rng.normal(0, 1, 500)})
    cur = pd.DataFrame({"x": rng.normal(shift, 1, 500)})
    return bool(compute_drift(ref, cur)[0]["drifted"].iloc[0])


alarms = sum(flagged(0.0) for _ in range(reps))
low, high = stats.binom.ppf([0.005, 0.995], reps, 0.05)
print(f"false alarms with no shift: {alarms}/{reps} = {alarms / reps:.3f}; 99% binomial interval [{low:.0f}, {high:.0f}]")
assert low <= alarms <= high, "the detector's false-alarm rate is off its nominal 5%"
shifts = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4]
power = [np.mean([flagged(s) for _ in range(40 if small else 200)]) for s in shifts]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(shifts, power, marker="o")
ax.axhline(0.05, color="grey", linestyle=":", label="alpha")
ax.set(xlabel="mean shift (standard deviations)", ylabel="share flagged", title="KS, n = 500: false alarms and power")
ax.legend()
plt.show()
