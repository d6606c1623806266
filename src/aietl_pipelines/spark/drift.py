"""Evidently's default drift tests, computed exactly on Spark.

The pandas path (`aietl_pipelines.drift.statistics`) sorts every column in memory. Here each column is first
reduced, in Spark, to its distinct values with a count per side (`v, r, k`): every test Evidently picks by
default is a function of those counts, so the result is the same as the pandas path's (same verdicts, scores
equal to rounding). Small count tables (categories, or numeric columns with up to `collect_limit` distinct
values) are computed on the driver from the counts; larger numeric columns get the Wasserstein distance and the
PSI histogram from two `mapInPandas` passes over the range-partitioned counts (per-partition totals, then
per-partition sums with the offsets of the partitions before them), so no full column reaches the driver.

Why not Evidently's own Spark engine: `evidently.legacy.spark` is unmaintained, has no KS test and approximates
Wasserstein with histograms (docs/scale.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from aietl_pipelines.drift.statistics import (
    CATEGORICAL,
    DATETIME,
    DEFAULT_THRESHOLDS,
    INTEGER_CARDINALITY_LIMIT,
    MIN_ROWS_PER_SIDE,
    NUMERICAL,
    P_VALUE_TESTS,
    TEXT,
    UNKNOWN,
    ColumnDrift,
    drift_table,
    psi_band,
)
from aietl_pipelines.errors import AietlInputError

COLLECT_LIMIT = 2_000_000  # distinct values per column computed on the driver; above: two distributed passes


def _types():
    from pyspark.sql import types as T

    return T


def _is_numeric(dtype: Any) -> bool:
    T = _types()
    return isinstance(dtype, T.NumericType) and not isinstance(dtype, T.DecimalType)


def as_spark(frame: Any) -> Any:
    """A Spark DataFrame as it is; a pandas frame handed to the Spark engine (e.g. from a pandas catalog entry)
    converted on the process's session, timestamps at microseconds as Spark stores them."""
    if not isinstance(frame, pd.DataFrame):
        return frame
    from aietl_pipelines.spark.session import get_spark

    frame = frame.copy()
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].astype(frame[col].dtype.name.replace("[ns", "[us"))
    return get_spark().createDataFrame(frame)


def split_windows(frame: Any, time_column: str, reference_days: tuple[float, float],
                  current_last_days: float) -> tuple[Any, Any]:
    """Spark twin of `drift.windows.split_windows`: reference = days [start, end) from the first timestamp,
    current = the last N days."""
    from pyspark.sql import functions as F

    frame = as_spark(frame)

    if time_column not in frame.columns:
        raise AietlInputError(
            f"Time column '{time_column}' not found (columns: {list(frame.columns)}). "
            "Set `drift_monitoring.time_column` to the column holding the event time."
        )
    ts = F.col(time_column).cast("timestamp")
    bounds = frame.agg(F.min(ts).alias("first"), F.max(ts).alias("last")).first()
    if bounds["first"] is None:
        raise AietlInputError(
            f"Time column '{time_column}' has no timestamps: no window can be cut. "
            "Fill the column or point `drift_monitoring.time_column` at another one."
        )
    start = F.lit(bounds["first"])
    ref = frame.where((ts >= start + F.make_dt_interval(F.lit(0), F.lit(0), F.lit(0), F.lit(reference_days[0] * 86400.0)))
                      & (ts < start + F.make_dt_interval(F.lit(0), F.lit(0), F.lit(0), F.lit(reference_days[1] * 86400.0))))
    cur = frame.where(ts > F.lit(bounds["last"]) - F.make_dt_interval(F.lit(0), F.lit(0), F.lit(0),
                                                                     F.lit(current_last_days * 86400.0)))
    return ref, cur


def _column_types(frame: Any, columns: list[str]) -> dict[str, str]:
    """Evidently's type inference (see `drift.statistics.infer_column_type`) from the Spark schema and
    distinct counts."""
    from pyspark.sql import functions as F

    T = _types()
    dtypes = {f.name: f.dataType for f in frame.schema.fields}
    out: dict[str, str] = {}
    need_counts = []
    for col in columns:
        dtype = dtypes[col]
        if isinstance(dtype, (T.FloatType, T.DoubleType)):
            out[col] = NUMERICAL
        elif isinstance(dtype, T.BooleanType):
            out[col] = CATEGORICAL
        elif isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            out[col] = DATETIME
        elif isinstance(dtype, (T.IntegralType, T.StringType)):
            need_counts.append(col)
        else:
            out[col] = UNKNOWN
    if need_counts:
        row = frame.agg(*[F.countDistinct(c).alias(f"u{i}") for i, c in enumerate(need_counts)],
                        *[F.count(c).alias(f"n{i}") for i, c in enumerate(need_counts)]).first()
        for i, col in enumerate(need_counts):
            unique, count = row[f"u{i}"], row[f"n{i}"]
            if isinstance(dtypes[col], T.IntegralType):
                out[col] = CATEGORICAL if unique <= INTEGER_CARDINALITY_LIMIT else NUMERICAL
            elif count == 0:
                out[col] = UNKNOWN
            else:
                out[col] = TEXT if unique > count * 0.5 else CATEGORICAL
    return out


def _clean_value(frame: Any, col: str, numeric: bool) -> Any:
    from pyspark.sql import functions as F

    if numeric:
        x = F.col(col).cast("double")
        return frame.select(x.alias("v")).where(x.isNotNull() & ~F.isnan(x) & (F.abs(x) != float("inf")))
    return frame.select(F.col(col).alias("v")).where(F.col(col).isNotNull())


def _counts(reference: Any, current: Any, col: str, numeric: bool) -> Any:
    """Distinct values of one cleaned column with their count on each side: columns v, r, k."""
    from pyspark.sql import functions as F

    both = _clean_value(reference, col, numeric).withColumn("s", F.lit(0)).unionByName(
        _clean_value(current, col, numeric).withColumn("s", F.lit(1)))
    return both.groupBy("v").agg(F.sum(1 - F.col("s")).cast("long").alias("r"), F.sum("s").cast("long").alias("k"))


class _Counts:
    """Distinct values (sorted) and their counts on each side, on the driver."""

    def __init__(self, table: pd.DataFrame, numeric: bool) -> None:
        table = table.sort_values("v", kind="stable").reset_index(drop=True)
        self.values = table["v"].to_numpy(dtype="float64") if numeric else table["v"].to_numpy()
        self.ref = table["r"].to_numpy(dtype="int64")
        self.cur = table["k"].to_numpy(dtype="int64")
        self.numeric = numeric
        self.n_ref, self.n_cur = int(self.ref.sum()), int(self.cur.sum())
        self.ref_nunique = int(np.count_nonzero(self.ref))
        self.cur_nunique = int(np.count_nonzero(self.cur))


def _n_values(ref_nunique: int, cur_nunique: int, n_union: int, numeric: bool) -> int:
    # the pandas path counts the union only when both sides have <= 25 values (only <= 2 / 5 / 20 matter)
    if numeric and not (ref_nunique <= 25 and cur_nunique <= 25):
        return max(ref_nunique, cur_nunique)
    return n_union


def _default_test(n_ref: int, column_type: str, n_values: int) -> str:
    if n_ref <= 1000:
        if column_type == NUMERICAL and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if column_type == NUMERICAL and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def sturges_edges(minimum: float, maximum: float, size: int) -> np.ndarray:
    """`np.histogram_bin_edges(a, bins="sturges")` from a's min, max and size (numpy's own arithmetic)."""
    first, last = float(minimum), float(maximum)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (maximum - minimum) / (np.log2(size) + 1.0)
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def _weighted_histogram(values: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin, numpy's rule: [e_i, e_i+1), the last bin closed."""
    idx = np.searchsorted(edges, values, "right") - 1
    idx[values == edges[-1]] = len(edges) - 2
    return np.bincount(idx, weights=weights, minlength=len(edges) - 1)[: len(edges) - 1]


def _fill_zeroes(pct: np.ndarray) -> np.ndarray:
    smallest = pct[pct != 0].min()
    pct[pct == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return pct


def _w1_from_counts(values: np.ndarray, ref: np.ndarray, cur: np.ndarray, n_ref: int, n_cur: int,
                    ref_before: int = 0, cur_before: int = 0, next_value: float | None = None) -> float:
    """Sum of |F_ref - F_cur| * (gap to the next distinct value) over these sorted distinct values."""
    f_ref = (ref_before + np.cumsum(ref)) / n_ref
    f_cur = (cur_before + np.cumsum(cur)) / n_cur
    following = values[1:] if next_value is None else np.append(values[1:], next_value)
    gaps = following - values[: following.size]
    return float(np.sum(np.abs(f_ref[: gaps.size] - f_cur[: gaps.size]) * gaps))


class _DriverStats:
    """Every default test from the counts of one column on the driver (same formulas as the pandas path)."""

    def __init__(self, counts: _Counts, column_type: str, ref_std: float | None) -> None:
        self.c, self.column_type, self.ref_std = counts, column_type, ref_std

    def frequencies(self) -> tuple[np.ndarray, np.ndarray]:
        return self.c.ref.astype("float64"), self.c.cur.astype("float64")

    def binned(self, fill_zeroes: bool) -> tuple[np.ndarray, np.ndarray]:
        c = self.c
        if self.column_type == NUMERICAL and c.ref_nunique > 20 and c.numeric:
            edges = sturges_edges(c.values[0], c.values[-1], c.n_ref + c.n_cur)
            ref_pct = _weighted_histogram(c.values, c.ref, edges) / c.n_ref
            cur_pct = _weighted_histogram(c.values, c.cur, edges) / c.n_cur
        else:
            ref_pct, cur_pct = c.ref / c.n_ref, c.cur / c.n_cur
        if fill_zeroes:
            ref_pct, cur_pct = _fill_zeroes(ref_pct.astype("float64")), _fill_zeroes(cur_pct.astype("float64"))
        return ref_pct, cur_pct

    def run(self, name: str) -> float:
        c = self.c
        if name == "ks":
            return float(stats.ks_2samp(np.repeat(c.values, c.ref), np.repeat(c.values, c.cur))[1])
        if name == "chisquare":
            ref_counts, cur_counts = self.frequencies()
            return float(stats.chisquare(cur_counts, ref_counts * (c.n_cur / c.n_ref))[1])
        if name == "z":
            if c.ref_nunique == 1 and c.cur_nunique == 1 and np.argmax(c.ref > 0) == np.argmax(c.cur > 0):
                return 1.0
            p1, p2 = (c.n_ref - c.ref[0]) / c.n_ref, (c.n_cur - c.cur[0]) / c.n_cur  # values[0]: the smallest key
            pooled = (p1 * c.n_ref + p2 * c.n_cur) / (c.n_ref + c.n_cur)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / c.n_ref + 1.0 / c.n_cur))
            return float(2 * (1 - stats.norm.cdf(np.abs(z))))
        if name == "wasserstein":
            if not c.numeric:
                raise AietlInputError("The wasserstein test needs a numeric column.")
            return _w1_from_counts(c.values, c.ref, c.cur, c.n_ref, c.n_cur) / max(float(self.ref_std), 0.001)
        if name == "jensenshannon":
            return float(distance.jensenshannon(*self.binned(False)))
        if name == "psi":
            ref_pct, cur_pct = self.binned(True)
            return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))
        raise AietlInputError(
            f"Drift test '{name}' is not available on the spark engine. Use one of: ks, chisquare, z, "
            "wasserstein, jensenshannon, psi (or the pandas engine for psi_quantile)."
        )


def _distributed_w1_psi(counts: Any, n_ref: int, n_cur: int, minimum: float, maximum: float,
                        ref_std: float, partitions: int) -> tuple[float, float]:
    """Wasserstein distance (normed) and sturges-binned PSI of a numeric column with many distinct values,
    from two passes over the range-partitioned counts."""
    from pyspark import TaskContext

    ranged = counts.repartitionByRange(partitions, "v").sortWithinPartitions("v").persist()
    try:
        def totals(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frames = [b for b in batches if len(b)]
            if frames:
                part = pd.concat(frames)
                yield pd.DataFrame({"pid": [TaskContext.get().partitionId()], "first": [part["v"].iloc[0]],
                                    "r": [int(part["r"].sum())], "k": [int(part["k"].sum())]})

        parts = ranged.mapInPandas(totals, "pid int, first double, r long, k long").toPandas()
        parts = parts.sort_values("first").reset_index(drop=True)
        parts["r_before"] = parts["r"].cumsum() - parts["r"]
        parts["k_before"] = parts["k"].cumsum() - parts["k"]
        parts["next"] = parts["first"].shift(-1)
        info = {int(p.pid): (int(p.r_before), int(p.k_before), None if pd.isna(p.next) else float(p.next))
                for p in parts.itertuples()}
        edges = sturges_edges(minimum, maximum, n_ref + n_cur)

        def sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            frames = [b for b in batches if len(b)]
            if not frames:
                return
            part = pd.concat(frames)
            r_before, k_before, nxt = info[TaskContext.get().partitionId()]
            values = part["v"].to_numpy(dtype="float64")
            ref, cur = part["r"].to_numpy(dtype="int64"), part["k"].to_numpy(dtype="int64")
            yield pd.DataFrame({
                "w": [_w1_from_counts(values, ref, cur, n_ref, n_cur, r_before, k_before, nxt)],
                "hr": [_weighted_histogram(values, ref, edges).tolist()],
                "hk": [_weighted_histogram(values, cur, edges).tolist()],
            })

        out = ranged.mapInPandas(sums, "w double, hr array<double>, hk array<double>").toPandas()
    finally:
        ranged.unpersist()
    w1 = float(np.sum(out["w"].to_numpy())) / max(float(ref_std), 0.001)
    ref_pct = _fill_zeroes(np.sum(np.stack(out["hr"].to_numpy()), axis=0) / n_ref)
    cur_pct = _fill_zeroes(np.sum(np.stack(out["hk"].to_numpy()), axis=0) / n_cur)
    return w1, float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))


def _column(name: str, reference: Any, current: Any, column_type: str, numeric: bool, test: str | None,
            threshold: float | None, collect_limit: int, partitions: int) -> ColumnDrift:
    from pyspark.sql import functions as F

    counts = _counts(reference, current, name, numeric).persist()
    try:
        agg = counts.agg(F.count("v").alias("d"), F.sum((F.col("r") > 0).cast("long")).alias("ru"),
                         F.sum((F.col("k") > 0).cast("long")).alias("ku"), F.sum("r").alias("n"),
                         F.sum("k").alias("m"), F.min("v").alias("lo"), F.max("v").alias("hi")).first()
        n_ref, n_cur = int(agg["n"] or 0), int(agg["m"] or 0)
        if not n_ref or not n_cur:
            raise AietlInputError(
                f"Column '{name}' has no finite values in the {'reference' if not n_ref else 'current'} data. "
                "Drop the column from `drift_monitoring.columns` or fill it before monitoring."
            )
        n_values = _n_values(int(agg["ru"]), int(agg["ku"]), int(agg["d"]), numeric)
        chosen = test or _default_test(n_ref, column_type, n_values)
        if chosen not in DEFAULT_THRESHOLDS:
            raise AietlInputError(
                f"Drift test '{chosen}' for column '{name}' is not available on the spark engine. Use one of: "
                f"{', '.join(DEFAULT_THRESHOLDS)}."
            )
        limit = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)
        ref_std = None
        if numeric:
            ref_std = _clean_value(reference, name, True).agg(F.stddev_pop("v")).first()[0]
        large = (numeric and int(agg["d"]) > collect_limit and int(agg["ru"]) > 20
                 and column_type == NUMERICAL and chosen in ("wasserstein", "psi"))
        if large:
            w1, psi_value = _distributed_w1_psi(counts, n_ref, n_cur, agg["lo"], agg["hi"], ref_std, partitions)
            score = w1 if chosen == "wasserstein" else psi_value
        else:
            driver = _DriverStats(_Counts(counts.toPandas(), numeric), column_type, ref_std)
            score, psi_value = driver.run(chosen), driver.run("psi")
    finally:
        counts.unpersist()
    drifted = score <= limit if chosen == "ks" else score < limit if chosen in P_VALUE_TESTS else score >= limit
    return ColumnDrift(name, column_type, chosen, float(score), limit, bool(drifted), float(psi_value),
                       psi_band(psi_value), n_ref, n_cur)


def _align(reference: Any, current: Any, columns: Iterable[str] | None) -> tuple[list[str], dict[str, str], dict[str, str], dict[str, bool]]:
    for label, frame in (("reference", reference), ("current", current)):
        duplicated = sorted({c for c in frame.columns if frame.columns.count(c) > 1})
        if duplicated:
            raise AietlInputError(
                f"The {label} data has duplicate column name(s) {duplicated}. Rename or drop the duplicates "
                "so every column is monitored once."
            )
    wanted = list(columns) if columns else list(reference.columns)
    missing = {label: [c for c in wanted if c not in frame.columns]
               for label, frame in (("reference", reference), ("current", current))}
    if any(missing.values()):
        detail = "; ".join(f"{k} lacks {v}" for k, v in missing.items() if v)
        raise AietlInputError(f"Reference and current data do not have the same columns: {detail}. "
                              "Select common columns with `columns=` or fix the schemas.")
    if reference.isEmpty() or current.isEmpty():
        side = "reference" if reference.isEmpty() else "current"
        raise AietlInputError(
            f"The {side} data has no rows. Widen the window or check the input; drift needs data on both sides."
        )
    ref_types, cur_types = _column_types(reference, wanted), _column_types(current, wanted)
    r_dtypes = {f.name: f.dataType for f in reference.schema.fields}
    c_dtypes = {f.name: f.dataType for f in current.schema.fields}
    skipped: dict[str, str] = {}
    keep, numeric = [], {}
    for col in wanted:
        r_num, c_num = _is_numeric(r_dtypes[col]), _is_numeric(c_dtypes[col])
        if r_num != c_num:
            raise AietlInputError(
                f"Column '{col}' is {r_dtypes[col].simpleString()} in the reference but "
                f"{c_dtypes[col].simpleString()} in the current data. Cast both to the same type."
            )
        r_type = ref_types[col]
        if r_type == DATETIME:
            skipped[col] = "datetime column: not tested (derive numeric features such as hour or age instead)"
        elif r_type == UNKNOWN or cur_types[col] == UNKNOWN:
            skipped[col] = "mixed or unknown value types: cast the column to one type to monitor it"
        elif r_type == TEXT:
            skipped[col] = "free-text column: use embedding drift (drift_monitoring.text_columns)"
        else:
            keep.append(col)
            numeric[col] = r_num
    return keep, skipped, ref_types, numeric


def compute_drift(
    reference: Any,
    current: Any,
    columns: Iterable[str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    correction: str | None = None,
    text_columns: Iterable[str] = (),
    collect_limit: int = COLLECT_LIMIT,
    partitions: int | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Spark twin of `drift.statistics.compute_drift` (same arguments, same table)."""
    if list(text_columns):
        raise AietlInputError(
            "drift_monitoring.text_columns (embedding drift) is not available on the spark engine: run it on the "
            "pandas engine, or leave text_columns empty."
        )
    keep, skipped, types, numeric = _align(reference, current, columns)
    tests, thresholds = dict(tests or {}), dict(thresholds or {})
    from aietl_pipelines.spark.session import parallelism

    partitions = partitions or max(2, parallelism(reference.sparkSession))
    rows = []
    for col in keep:
        test = tests.get(col) or tests.get(types[col])
        try:
            result = _column(col, reference, current, types[col], numeric[col], test, None, collect_limit, partitions)
        except AietlInputError as exc:
            if "no finite values" not in str(exc):
                raise
            skipped[col] = "all values are null (or infinite) on one side"
            continue
        limit = thresholds.get(col, thresholds.get(result.test))
        if limit is not None:
            result = ColumnDrift(**{**result.__dict__, "threshold": float(limit),
                                    "drifted": bool(result.score <= limit if result.test == "ks" else
                                                    result.score < limit if result.test in P_VALUE_TESTS else
                                                    result.score >= limit)})
        rows.append(result.__dict__)
    return drift_table(rows, skipped, correction), skipped


def input_warnings(reference: Any, current: Any, columns: Iterable[str] | None = None) -> list[str]:
    """Spark twin of `drift.statistics.input_warnings` (extra columns, too few rows, missing timestamps,
    current window inside the reference)."""
    from pyspark.sql import functions as F

    T = _types()
    notes: list[str] = []
    if columns is None:
        extra = [c for c in current.columns if c not in reference.columns]
        if extra:
            notes.append(
                f"current data has column(s) {extra} that the reference lacks: not monitored. Add them to the "
                "reference, or pass columns= (drift_monitoring.columns) to choose the monitored columns."
            )
    n_ref, n_cur = reference.count(), current.count()
    if min(n_ref, n_cur) < MIN_ROWS_PER_SIDE:
        notes.append(
            f"only {n_cur:,} current row(s) against {n_ref:,} reference row(s): below {MIN_ROWS_PER_SIDE} rows "
            "on a side the tests can neither confirm nor rule out drift. Widen the window."
        )
    for label, frame in (("reference", reference), ("current", current)):
        for field in frame.schema.fields:
            if isinstance(field.dataType, (T.TimestampType, T.TimestampNTZType)):
                missing = frame.where(F.col(field.name).isNull()).count()
                if missing:
                    notes.append(
                        f"{label} column '{field.name}' has {missing:,} of {frame.count():,} timestamps missing "
                        "(NaT): rows without a time cannot be placed in a window. Fill or drop them upstream."
                    )
    common = [c for c in (list(columns) if columns else list(reference.columns)) if c in current.columns]
    if common and n_cur and n_ref:
        distinct_ref = reference.select(common).distinct().count()
        if distinct_ref > n_ref / 2 and current.select(common).subtract(reference.select(common)).isEmpty():
            notes.append(
                f"every current row ({n_cur:,}) also appears in the reference: the current window looks like a "
                "subset of the reference, so drift will read low. Check how the two windows are selected."
            )
    return notes


def data_fingerprint(*frames: Any) -> str:
    """Content hash of Spark frames (column names, row count and an order-independent sum of row hashes)."""
    from pyspark.sql import functions as F

    digest = hashlib.sha1()
    for frame in frames:
        digest.update(repr(list(frame.columns)).encode())
        row = frame.agg(F.count(F.lit(1)).alias("n"),
                        F.sum(F.xxhash64(*[F.col(c) for c in frame.columns]).cast("decimal(38,0)")).alias("h")).first()
        digest.update(f"{row['n']}:{row['h']}".encode())
    return digest.hexdigest()[:16]


def report_frames(reference: Any, current: Any, max_rows: int = 100_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bounded pandas samples of both windows for the HTML report's distribution plots."""
    def sample(frame: Any) -> pd.DataFrame:
        n = frame.count()
        picked = frame if n <= max_rows else frame.sample(fraction=max_rows / n, seed=0)
        return picked.limit(max_rows).toPandas()

    return sample(reference), sample(current)
