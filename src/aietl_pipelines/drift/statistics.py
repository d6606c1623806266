"""Per-column drift tests with Evidently 0.7.23's default selection, thresholds and scores.

Selection (evidently/legacy/calculations/stattests/registry.py::_get_default_stattest), after dropping NaN
and ±inf from both sides:

- reference has <= 1000 rows: numerical with > 5 unique values → two-sample KS (p-value, drift if
  p <= 0.05); otherwise chi-square (> 2 unique values) or the two-proportion Z test (p < 0.05);
- reference has > 1000 rows: numerical with > 5 unique values → Wasserstein distance normed by the reference
  std (drift if >= 0.1); otherwise Jensen-Shannon distance on category frequencies (>= 0.1).

Column types follow evidently.core.datasets.infer_column_type: float → numerical; int → categorical when it
has <= 10 unique values, else numerical; bool/category → categorical; strings → categorical unless more
than half the values are unique (text, not tested here); datetimes are skipped.
The formulas are the same as Evidently's; they are re-implemented on NumPy so that one pass over a frame
avoids Evidently's per-column pandas overhead (see docs/drift.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from aietl_pipelines.errors import AietlInputError

NUMERICAL, CATEGORICAL, TEXT, DATETIME, UNKNOWN = "num", "cat", "text", "datetime", "unknown"
INTEGER_CARDINALITY_LIMIT = 10
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
P_VALUE_TESTS = {"ks", "chisquare", "z"}
PSI_BANDS = (0.1, 0.25)


def infer_column_type(column: pd.Series) -> str:
    """Evidently's column type inference (num / cat / text / datetime / unknown)."""
    name = column.dtype.name
    if name.startswith("float"):
        return NUMERICAL
    if name.startswith(("int", "uint", "Int", "UInt")):
        return CATEGORICAL if column.nunique() <= INTEGER_CARDINALITY_LIMIT else NUMERICAL
    if name in ("bool", "boolean", "category"):
        return CATEGORICAL
    if name.startswith("datetime"):
        return DATETIME
    if name in ("string", "str", "object"):
        values = column.dropna()
        if values.empty:
            return UNKNOWN
        if name == "object" and not all(isinstance(v, str) for v in (values.iloc[0], values.iloc[-1])):
            return UNKNOWN
        return TEXT if column.nunique() > column.count() * 0.5 else CATEGORICAL
    return UNKNOWN


def _clean(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values[np.isfinite(values)])
    return column.dropna()


def default_test(reference: pd.Series, current: pd.Series, column_type: str) -> str:
    """Name of the test Evidently picks for these (cleaned) columns."""
    n_values = pd.concat([reference, current], ignore_index=True).nunique()
    if len(reference) <= 1000:
        if column_type == NUMERICAL and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if column_type == NUMERICAL and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _frequencies(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    keys = list(set(reference.unique()) | set(current.unique()))
    ref_counts = reference.value_counts().reindex(keys, fill_value=0).to_numpy(dtype="float64")
    cur_counts = current.value_counts().reindex(keys, fill_value=0).to_numpy(dtype="float64")
    return ref_counts, cur_counts


def _binned(reference: pd.Series, current: pd.Series, column_type: str, fill_zeroes: bool, quantile: bool = False):
    if column_type == NUMERICAL and reference.nunique() > 20:
        ref = reference.to_numpy(dtype="float64")
        cur = current.to_numpy(dtype="float64")
        if quantile:
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
        else:
            edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        ref_pct = np.histogram(ref, edges)[0] / len(ref)
        cur_pct = np.histogram(cur, edges)[0] / len(cur)
    else:
        ref_counts, cur_counts = _frequencies(reference, current)
        ref_pct, cur_pct = ref_counts / len(reference), cur_counts / len(current)
    if fill_zeroes:
        for pct in (ref_pct, cur_pct):
            smallest = pct[pct != 0].min()
            pct[pct == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return ref_pct, cur_pct


def _z_test(reference: pd.Series, current: pd.Series) -> float:
    if reference.nunique() == 1 and current.nunique() == 1 and reference.iloc[0] == current.iloc[0]:
        return 1.0
    key = sorted(set(reference.unique()) | set(current.unique()))[0]
    ref = (reference != key).to_numpy(dtype="float64")
    cur = (current != key).to_numpy(dtype="float64")
    n1, n2 = len(ref), len(cur)
    p1, p2 = ref.sum() / n1, cur.sum() / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def run_test(name: str, reference: pd.Series, current: pd.Series, column_type: str) -> float:
    """Score of one test: a p-value (ks, chisquare, z) or a distance (wasserstein, jensenshannon, psi)."""
    if name == "ks":
        return float(stats.ks_2samp(reference.to_numpy(), current.to_numpy())[1])
    if name == "chisquare":
        ref_counts, cur_counts = _frequencies(reference, current)
        expected = ref_counts * (len(current) / len(reference))
        return float(stats.chisquare(cur_counts, expected)[1])
    if name == "z":
        return _z_test(reference, current)
    if name == "wasserstein":
        ref = reference.to_numpy(dtype="float64")
        norm = max(float(np.std(ref)), 0.001)
        return float(stats.wasserstein_distance(ref, current.to_numpy(dtype="float64")) / norm)
    if name == "jensenshannon":
        ref_pct, cur_pct = _binned(reference, current, column_type, fill_zeroes=False)
        return float(distance.jensenshannon(ref_pct, cur_pct))
    if name in ("psi", "psi_quantile"):
        ref_pct, cur_pct = _binned(reference, current, column_type, True, quantile=name == "psi_quantile")
        return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))
    raise AietlInputError(
        f"Unknown drift test '{name}'. Use one of: ks, chisquare, z, wasserstein, jensenshannon, psi, psi_quantile."
    )


def psi_band(value: float) -> str:
    """PSI reading: < 0.1 stable, 0.1-0.25 moderate shift, >= 0.25 significant shift."""
    return "stable" if value < PSI_BANDS[0] else "moderate" if value < PSI_BANDS[1] else "significant"


@dataclass(frozen=True)
class ColumnDrift:
    """Result of one column."""

    column: str
    column_type: str
    test: str
    score: float
    threshold: float
    drifted: bool
    psi: float
    psi_band: str
    n_reference: int
    n_current: int


def column_drift(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    column_type: str | None = None,
    test: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of one column with Evidently's default test unless `test` names another."""
    column_type = column_type or infer_column_type(reference)
    ref, cur = _clean(reference), _clean(current)
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "current"
        raise AietlInputError(
            f"Column '{name}' has no finite values in the {side} data. Drop the column from "
            "`drift_monitoring.columns` or fill it before monitoring."
        )
    chosen = test or default_test(ref, cur, column_type)
    if chosen not in DEFAULT_THRESHOLDS and chosen != "psi_quantile":
        raise AietlInputError(
            f"Unknown drift test '{chosen}' for column '{name}'. Use one of: "
            f"{', '.join([*DEFAULT_THRESHOLDS, 'psi_quantile'])}."
        )
    base = "psi" if chosen == "psi_quantile" else chosen
    limit = DEFAULT_THRESHOLDS[base] if threshold is None else float(threshold)
    score = run_test(chosen, ref, cur, column_type)
    drifted = score <= limit if chosen == "ks" else score < limit if chosen in P_VALUE_TESTS else score >= limit
    psi_value = run_test("psi", ref, cur, column_type)
    return ColumnDrift(name, column_type, chosen, score, limit, bool(drifted), psi_value, psi_band(psi_value), len(ref), len(cur))


def align_frames(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Check both frames hold the same monitorable columns; return them and the skipped ones with reasons."""
    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise AietlInputError(f"The {label} data must be a pandas DataFrame, got {type(frame).__name__}.")
        if frame.empty:
            raise AietlInputError(
                f"The {label} data has no rows. Widen the window or check the input; drift needs data on both sides."
            )
    wanted = list(columns) if columns else list(reference.columns)
    missing = {
        label: [c for c in wanted if c not in frame.columns]
        for label, frame in (("reference", reference), ("current", current))
    }
    if any(missing.values()):
        detail = "; ".join(f"{k} lacks {v}" for k, v in missing.items() if v)
        raise AietlInputError(f"Reference and current data do not have the same columns: {detail}. "
                              "Select common columns with `columns=` or fix the schemas.")
    skipped: dict[str, str] = {}
    keep = []
    for col in wanted:
        r_type, c_type = infer_column_type(reference[col]), infer_column_type(current[col])
        r_num = pd.api.types.is_numeric_dtype(reference[col]) and not pd.api.types.is_bool_dtype(reference[col])
        c_num = pd.api.types.is_numeric_dtype(current[col]) and not pd.api.types.is_bool_dtype(current[col])
        if r_num != c_num:
            raise AietlInputError(
                f"Column '{col}' is {reference[col].dtype} in the reference but {current[col].dtype} in the current "
                "data. Cast both to the same dtype (e.g. `df[col] = pd.to_numeric(df[col])`)."
            )
        if r_type == DATETIME:
            skipped[col] = "datetime column: not tested (derive numeric features such as hour or age instead)"
        elif r_type in (UNKNOWN,) or c_type == UNKNOWN:
            skipped[col] = "mixed or unknown value types: cast the column to one type to monitor it"
        elif r_type == TEXT:
            skipped[col] = "free-text column: use embedding drift (drift_monitoring.text_columns)"
        elif _clean(reference[col]).empty or _clean(current[col]).empty:
            skipped[col] = "all values are null (or infinite) on one side"
        else:
            keep.append(col)
    return reference[keep], current[keep], skipped


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Iterable[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    correction: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Drift of every monitorable column.

    Args:
        reference: Reference frame.
        current: Current frame.
        columns: Columns to monitor (default: all columns of the reference).
        tests: Per column or per column type ("num"/"cat") test override, e.g. {"num": "psi"}.
        thresholds: Per column or per test threshold override.
        correction: None or "bh" (Benjamini-Hochberg on the p-value tests).

    Returns:
        (table with one row per column, {skipped column: reason}).
    """
    ref, cur, skipped = align_frames(reference, current, columns)
    tests = dict(tests or {})
    thresholds = dict(thresholds or {})
    rows = []
    for col in ref.columns:
        ctype = infer_column_type(ref[col])
        test = tests.get(col) or tests.get(ctype)
        result = column_drift(col, ref[col], cur[col], ctype, test)
        limit = thresholds.get(col, thresholds.get(result.test))
        if limit is not None:
            result = column_drift(col, ref[col], cur[col], ctype, result.test, limit)
        rows.append(result.__dict__)
    table = pd.DataFrame(rows, columns=list(ColumnDrift.__dataclass_fields__))
    if correction == "bh" and not table.empty:
        mask = table["test"].isin(P_VALUE_TESTS)
        if mask.any():
            adjusted = stats.false_discovery_control(table.loc[mask, "score"].to_numpy(), method="bh")
            table.loc[mask, "score"] = adjusted
            table.loc[mask, "drifted"] = adjusted < table.loc[mask, "threshold"]
    return table, skipped
