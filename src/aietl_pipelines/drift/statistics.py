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

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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


def _count_unique_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0


class _Prepared:
    """One cleaned column, prepared once: sorted values (numeric) or value counts (categorical)."""

    def __init__(self, reference: pd.Series, current: pd.Series, column_type: str) -> None:
        self.reference, self.current, self.column_type = reference, current, column_type
        self.numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference) \
            and pd.api.types.is_numeric_dtype(current) and not pd.api.types.is_bool_dtype(current)
        if self.numeric:
            self.ref_sorted = np.sort(reference.to_numpy(dtype="float64"))
            self.cur_sorted = np.sort(current.to_numpy(dtype="float64"))
            self.ref_nunique = _count_unique_sorted(self.ref_sorted)
            cur_nunique = _count_unique_sorted(self.cur_sorted)
            # only "<= 2", "<= 5" and "<= 20" matter: skip the union of two large unique sets
            if self.ref_nunique <= 25 and cur_nunique <= 25:
                self.n_values = len(np.union1d(self.ref_sorted, self.cur_sorted))
            else:
                self.n_values = max(self.ref_nunique, cur_nunique)
        else:
            self.ref_counts = reference.value_counts(sort=False)
            self.ref_counts = self.ref_counts[self.ref_counts > 0]
            self.cur_counts = current.value_counts(sort=False)
            self.cur_counts = self.cur_counts[self.cur_counts > 0]
            self.ref_nunique = len(self.ref_counts)
            self.n_values = len(self.ref_counts.index.union(self.cur_counts.index))

    def frequencies(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts of every value seen on either side, aligned."""
        if self.numeric:
            keys = np.union1d(self.ref_sorted, self.cur_sorted)
            ref = np.searchsorted(self.ref_sorted, keys, "right") - np.searchsorted(self.ref_sorted, keys, "left")
            cur = np.searchsorted(self.cur_sorted, keys, "right") - np.searchsorted(self.cur_sorted, keys, "left")
            return ref.astype("float64"), cur.astype("float64")
        keys = self.ref_counts.index.union(self.cur_counts.index)
        return (self.ref_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64"),
                self.cur_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64"))


def default_test(reference: pd.Series, current: pd.Series, column_type: str, prepared: _Prepared | None = None) -> str:
    """Name of the test Evidently picks for these (cleaned) columns."""
    n_values = (prepared or _Prepared(reference, current, column_type)).n_values
    if len(reference) <= 1000:
        if column_type == NUMERICAL and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if column_type == NUMERICAL and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _binned(prep: _Prepared, fill_zeroes: bool, quantile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    n_ref, n_cur = len(prep.reference), len(prep.current)
    if prep.column_type == NUMERICAL and prep.ref_nunique > 20 and prep.numeric:
        ref, cur = prep.ref_sorted, prep.cur_sorted
        if quantile:
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
        else:
            edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        ref_pct = _histogram_sorted(ref, edges) / n_ref
        cur_pct = _histogram_sorted(cur, edges) / n_cur
    else:
        ref_counts, cur_counts = prep.frequencies()
        ref_pct, cur_pct = ref_counts / n_ref, cur_counts / n_cur
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


def _histogram_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram(values, edges)[0] for sorted values (numpy's own searchsorted rule, last bin closed)."""
    idx = np.concatenate((values.searchsorted(edges[:-1], "left"), values.searchsorted(edges[-1:], "right")))
    return np.diff(idx)


def _wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """scipy.stats.wasserstein_distance (its _cdf_distance with p=1) on sorted samples.

    Instead of scipy's sort + two searchsorted passes, merge the two sorted samples by rank (u before equal v
    values): at the end of every run of tied values the running counts equal scipy's searchsorted(..., 'right')
    and inside a run the distance between values is 0, so the sum is the same."""
    n, m = u.size, v.size
    ranks = np.arange(n) + np.searchsorted(v, u, "left")
    from_u = np.zeros(n + m, dtype=bool)
    from_u[ranks] = True
    all_values = np.empty(n + m, dtype=np.float64)
    all_values[ranks] = u
    all_values[~from_u] = v
    deltas = np.diff(all_values)
    u_cdf = np.cumsum(from_u)[:-1] / n
    v_cdf = np.cumsum(~from_u)[:-1] / m
    return float(np.sum(np.multiply(np.abs(u_cdf - v_cdf), deltas)))


def run_test(name: str, reference: pd.Series, current: pd.Series, column_type: str,
             prepared: _Prepared | None = None) -> float:
    """Score of one test: a p-value (ks, chisquare, z) or a distance (wasserstein, jensenshannon, psi)."""
    prep = prepared or _Prepared(reference, current, column_type)
    if name == "ks":
        return float(stats.ks_2samp(reference.to_numpy(), current.to_numpy())[1])
    if name == "chisquare":
        ref_counts, cur_counts = prep.frequencies()
        expected = ref_counts * (len(current) / len(reference))
        return float(stats.chisquare(cur_counts, expected)[1])
    if name == "z":
        return _z_test(reference, current)
    if name == "wasserstein":
        if not prep.numeric:
            raise AietlInputError("The wasserstein test needs a numeric column.")
        norm = max(float(np.std(reference.to_numpy(dtype="float64"))), 0.001)
        return _wasserstein_sorted(prep.ref_sorted, prep.cur_sorted) / norm
    if name == "jensenshannon":
        ref_pct, cur_pct = _binned(prep, fill_zeroes=False)
        return float(distance.jensenshannon(ref_pct, cur_pct))
    if name in ("psi", "psi_quantile"):
        ref_pct, cur_pct = _binned(prep, True, quantile=name == "psi_quantile")
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
    prep = _Prepared(ref, cur, column_type)
    chosen = test or default_test(ref, cur, column_type, prep)
    if chosen not in DEFAULT_THRESHOLDS and chosen != "psi_quantile":
        raise AietlInputError(
            f"Unknown drift test '{chosen}' for column '{name}'. Use one of: "
            f"{', '.join([*DEFAULT_THRESHOLDS, 'psi_quantile'])}."
        )
    base = "psi" if chosen == "psi_quantile" else chosen
    limit = DEFAULT_THRESHOLDS[base] if threshold is None else float(threshold)
    score = run_test(chosen, ref, cur, column_type, prep)
    drifted = score <= limit if chosen == "ks" else score < limit if chosen in P_VALUE_TESTS else score >= limit
    psi_value = run_test("psi", ref, cur, column_type, prep)
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
    for label, frame in (("reference", reference), ("current", current)):
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise AietlInputError(
                f"The {label} data has duplicate column name(s) {duplicated}. Rename or drop the duplicates "
                "(e.g. `df.loc[:, ~df.columns.duplicated()]`) so every column is monitored once."
            )
    wanted = list(columns) if columns else list(reference.columns)
    repeated = sorted({str(c) for c in wanted if wanted.count(c) > 1})
    if repeated:
        raise AietlInputError(f"columns= names {repeated} more than once; list each column once.")
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


MIN_ROWS_PER_SIDE = 30  # below this, the tests have little power (a rule of thumb, not tuned to a data set)


def input_warnings(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Iterable[str] | None = None
) -> list[str]:
    """Notes on inputs that drift can be computed on but that make the result unreliable.

    Extra columns in the current data that are not monitored, too few rows on a side, missing timestamps,
    and a current window whose rows all appear in the reference (a window selection error)."""
    notes: list[str] = []
    if columns is None:
        extra = [str(c) for c in current.columns if c not in reference.columns]
        if extra:
            notes.append(
                f"current data has column(s) {extra} that the reference lacks: not monitored. Add them to the "
                "reference, or pass columns= (drift_monitoring.columns) to choose the monitored columns."
            )
    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < MIN_ROWS_PER_SIDE:
        notes.append(
            f"only {n_cur:,} current row(s) against {n_ref:,} reference row(s): below {MIN_ROWS_PER_SIDE} rows "
            "on a side the tests can neither confirm nor rule out drift. Widen the window."
        )
    for label, frame in (("reference", reference), ("current", current)):
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]) and len(frame):
                missing = int(frame[col].isna().sum())
                if missing:
                    notes.append(
                        f"{label} column '{col}' has {missing:,} of {len(frame):,} timestamps missing (NaT): "
                        "rows without a time cannot be placed in a window. Fill or drop them upstream."
                    )
    common = [c for c in (list(columns) if columns else list(reference.columns)) if c in current.columns]
    if common and n_cur and n_ref:
        try:
            ref_rows = pd.util.hash_pandas_object(reference[common], index=False).to_numpy()
            cur_rows = pd.util.hash_pandas_object(current[common], index=False).to_numpy()
        except (TypeError, ValueError):  # unhashable cells (lists, dicts) or undecodable bytes: no subset check
            ref_rows = cur_rows = None
        # only meaningful when the reference rows are mostly distinct (not a few categorical combinations)
        if ref_rows is not None and len(np.unique(ref_rows)) > n_ref / 2 and np.isin(cur_rows, ref_rows).all():
            notes.append(
                f"every current row ({n_cur:,}) also appears in the reference: the current window looks like a "
                "subset of the reference, so drift will read low. Check how the two windows are selected."
            )
    return notes


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Iterable[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    correction: str | None = None,
    text_columns: Iterable[str] = (),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Drift of every monitorable column.

    Args:
        reference: Reference frame.
        current: Current frame.
        columns: Columns to monitor (default: all columns of the reference).
        tests: Per column or per column type ("num"/"cat") test override, e.g. {"num": "psi"}.
        thresholds: Per column or per test threshold override.
        correction: None or "bh" (Benjamini-Hochberg on the p-value tests).
        text_columns: Free-text columns tested by embedding drift (`drift.embedding.text_drift`).

    Returns:
        (table with one row per column, {skipped column: reason}).
    """
    ref, cur, skipped = align_frames(reference, current, columns)
    tests = dict(tests or {})
    thresholds = dict(thresholds or {})

    def one(col: str) -> dict:
        ctype = infer_column_type(ref[col])
        test = tests.get(col) or tests.get(ctype)
        result = column_drift(col, ref[col], cur[col], ctype, test)
        limit = thresholds.get(col, thresholds.get(result.test))
        if limit is not None:
            result = column_drift(col, ref[col], cur[col], ctype, result.test, limit)
        return result.__dict__

    # NumPy sorts release the GIL: columns run in parallel threads
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        text_columns = list(text_columns)
        rows = list(pool.map(one, [c for c in ref.columns if c not in text_columns]))
    for col in text_columns:
        from aietl_pipelines.drift.embedding import text_drift

        if col not in reference.columns or col not in current.columns:
            raise AietlInputError(f"Text column '{col}' (drift_monitoring.text_columns) is not in both frames.")
        rows.append(text_drift(reference[col], current[col]))
        skipped.pop(col, None)
    return drift_table(rows, skipped, correction, ["mmd"] if text_columns else []), skipped


def drift_table(rows: list[dict], skipped: Mapping[str, str], correction: str | None = None,
                extra_columns: Iterable[str] = ()) -> pd.DataFrame:
    """The per-column table of every engine: one row per tested column (ColumnDrift fields), with the
    Benjamini-Hochberg correction on the p-value tests when `correction == "bh"`."""
    if not rows:
        reasons = "; ".join(f"'{c}': {why}" for c, why in skipped.items()) or "no columns given"
        raise AietlInputError(
            f"No column could be tested for drift ({reasons}). A drift share over zero columns means nothing: "
            "monitor at least one numeric or categorical column (drift_monitoring.columns / columns=)."
        )
    table = pd.DataFrame(rows).reindex(columns=[*ColumnDrift.__dataclass_fields__, *extra_columns])
    if correction == "bh" and not table.empty:
        mask = table["test"].isin(P_VALUE_TESTS | {"embedding_mmd"})
        if mask.any():
            adjusted = stats.false_discovery_control(table.loc[mask, "score"].to_numpy(), method="bh")
            table.loc[mask, "score"] = adjusted
            table.loc[mask, "drifted"] = adjusted < table.loc[mask, "threshold"]
    return table
