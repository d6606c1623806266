"""The dedupe records and their vectors kept as Spark tables from prepare to clusters (issue 16).

The Spark `Steps` return pandas frames and numpy arrays (the `Steps` interface), so a run through them brings the
prepared records (about 50 GB at 100M records) and the record vectors (100M x 384 float32: 150 GB) to the driver.
The table run (`dedupe_tables.run`) hands these handles from stage to stage instead:

- `RecordsTable`: the prepared records as a Spark table, one row per record, `__row` = 0..n-1 in the input's order
  (`numbered`), the prepared columns of `prepare.prepare_records` (sets as sorted `array<string>`, as
  `dedupe_records.prepare_records` ships them). `frame(rows)` collects some rows as the pandas prepared frame.
- `VectorsTable`: the record vectors as the `vectors_table` layout (row long, vector binary: float32 bytes).

What the driver holds of them: n, the column names, and what a stage asks for by row (a sample, the labelled
records): never the whole.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd


class _TableHandle:
    """What both handles share: `len()` is the number of records; a deep copy is the handle itself."""

    n: int

    def __len__(self) -> int:
        return self.n

    def __deepcopy__(self, memo: dict) -> Any:
        """The handle itself: its Spark table is immutable (a Kedro `MemoryDataset` deep-copies what it does not
        know, and assigns Spark DataFrames for this reason)."""
        return self


@dataclass
class RecordsTable(_TableHandle):
    """Prepared records on Spark (`dedupe_records.prepare_table`).

    `table`: `__row` long (0..n-1, the input order) and `columns` (strings; the `sets` columns as sorted
    array<string>). `len()` is the number of records, `columns` the pandas prepared frame's columns, so the code
    that reads only those (`pairs.blocking_rules`) takes either."""

    table: Any
    columns: list[str]
    sets: list[str]
    n: int

    @cached_property
    def record_ids(self) -> np.ndarray:
        """The records' ids in row order (N values, collected once: the clusters frame, the labels and the state
        name records by id)."""
        found = self.table.select("__row", "record_id").toPandas().sort_values("__row", kind="stable")
        return found["record_id"].to_numpy(dtype=object)

    @cached_property
    def present_shares(self) -> dict[str, float]:
        """Each column's share of records holding a value (one aggregate, counted once)."""
        from pyspark.sql import functions as F

        if not self.n or not self.columns:
            return {c: 0.0 for c in self.columns}
        row = self.table.agg(*[F.count(F.col(f"`{c}`")) for c in self.columns]).first()
        return {c: int(row[k]) / self.n for k, c in enumerate(self.columns)}

    def frame(self, rows: np.ndarray | list[int] | None = None) -> pd.DataFrame:
        """Rows of the prepared frame (all when `rows` is None; else those rows, in the order given) as
        `prepare.prepare_records` returns them: Python values, None for missing, sets as frozensets."""
        from pyspark.sql import functions as F

        from aietl_pipelines.dedupe.prepare import python_values

        table = self.table
        if rows is not None:
            wanted = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1).tolist()]
            if not wanted:
                table = table.limit(0)
            else:
                table = table.where(F.col("__row").isin(sorted(set(wanted))))
        found = table.select("__row", *self.columns).toPandas()
        found = found.sort_values("__row", kind="stable")
        if rows is not None:
            found = found.set_index("__row").reindex(wanted).reset_index()
        for col in self.sets:
            found[col] = pd.Series([frozenset(v) if v is not None else None for v in found[col].tolist()],
                                   dtype=object)
        return python_values(found[self.columns].reset_index(drop=True))

    def write_parquet(self, path: str) -> list[str]:
        """Write the table (`__row` and the columns; sets as sorted lists) as a parquet directory from the
        executors (`dedupe.state.save_state`); returns the set columns (`state.load_state` makes them sets)."""
        self.table.select("__row", *[f"`{c}`" for c in self.columns]).write.mode("overwrite").parquet(str(path))
        return list(self.sets)

    def head(self, k: int) -> pd.DataFrame:
        """The first k records (by `__row`) as the pandas prepared frame."""
        return self.frame(np.arange(min(k, self.n)))


@dataclass
class VectorsTable(_TableHandle):
    """Record vectors on Spark (row long, vector binary: the row's float32 values, little-endian bytes)."""

    table: Any
    n: int
    dim: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.dim)

    def write_parquet(self, path: str) -> None:
        """Write the vectors (row long, vector binary: float32 bytes) as a parquet directory from the executors
        (`dedupe.state.save_state`; `state.load_state` reads it back as the array)."""
        self.table.select("row", "vector").write.mode("overwrite").parquet(str(path))

    def array(self) -> np.ndarray:
        """All the vectors as the n x dim float32 array the in-process `embed` returns (collected: the
        incremental state and labelled mode keep them on the driver)."""
        from aietl_pipelines.spark.dedupe import as_matrix

        if not self.dim or self.table is None:
            return np.zeros((self.n, 0), dtype=np.float32)
        found = self.table.select("row", "vector").toPandas().sort_values("row", kind="stable")
        if len(found) != self.n:
            raise RuntimeError(f"the vectors table holds {len(found)} rows for {self.n} records")
        return as_matrix(found["vector"], self.dim)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the given rows, in that order (a sample: k-means centroids, a few pairs)."""
        from pyspark.sql import functions as F

        from aietl_pipelines.spark.dedupe import as_matrix

        wanted = np.asarray(rows, dtype=np.int64).reshape(-1)
        if not len(wanted):
            return np.zeros((0, self.dim), dtype=np.float32)
        found = (self.table.where(F.col("row").isin(sorted(set(wanted.tolist())))).select("row", "vector")
                 .toPandas())
        matrix = as_matrix(found["vector"], self.dim)
        position = pd.Series(np.arange(len(found)), index=found["row"].to_numpy(np.int64))
        return matrix[position.reindex(wanted).to_numpy()]


def numbered(frame: Any, column: str = "__row") -> Any:
    """`frame` with `column` = 0..n-1 in the order of its partitions and rows, consecutive: each row's position in
    its partition (`monotonically_increasing_id` keeps it in the low 33 bits) plus the rows of the partitions
    before it (one row per partition reaches the driver). Works on Spark Connect (no RDD) and does not move the
    rows to one partition as a window over the whole frame would.

    The order is the order Spark reads the frame in: a single parquet file keeps its rows' order, but Spark reads
    the splits of several files largest first, so a folder of files is not numbered in `pd.read_parquet`'s order
    (the same files are always numbered the same way). What the input order decides, it decides here as in
    pandas: sorted-neighbourhood windows of oversized blocks, kNN ties, survivorship's ties."""
    from pyspark.sql import functions as F

    tagged = frame.select("*", F.spark_partition_id().alias("__pid"), F.monotonically_increasing_id().alias("__mid"))
    tagged = tagged.localCheckpoint()  # one read: the ids and the counts below see the same rows
    counts = tagged.groupBy("__pid").agg(F.count(F.lit(1)).alias("n")).toPandas().sort_values("__pid")
    starts = np.r_[0, np.cumsum(counts["n"].to_numpy(np.int64))[:-1]]
    offsets = pd.DataFrame({"__pid": counts["__pid"].to_numpy(np.int32), "__start": starts.astype(np.int64)})
    spark = frame.sparkSession
    low = F.col("__mid").bitwiseAND(F.lit((1 << 33) - 1))
    return (tagged.join(F.broadcast(spark.createDataFrame(offsets, "__pid int, __start long")), "__pid")
            .select((F.col("__start") + low).cast("long").alias(column), *[F.col(f"`{c}`") for c in frame.columns]))


def comparison_kinds(config: Any, prepared: RecordsTable) -> dict[str, str]:
    """`scoring.comparison_kinds` of a prepared table (the shares of records holding each independent part,
    counted on Spark: `RecordsTable.present_shares`)."""
    from aietl_pipelines.dedupe import scoring

    if config.mode == "structured":
        return scoring.kinds_for_shares(config, {})
    return scoring.kinds_for_shares(config, {c: prepared.present_shares[c] for c in scoring.INDEPENDENT_PARTS
                                             if c in prepared.columns})


_FRAMES: list[tuple[Any, int, RecordsTable]] = []  # the last frame shipped: (weakref to it, id(spark), its table)


def records_table(spark: Any, prepared: pd.DataFrame | RecordsTable) -> RecordsTable:
    """The prepared records as a `RecordsTable`: the prepare stage's table as it is, or a pandas prepared frame (the
    `Steps` adapters', an incremental run's concatenation) shipped once with `createDataFrame` in the same layout
    (strings; sets as sorted `array<string>`; `__row` its row order), kept for the last frame asked for, so that
    the stages of one call read one table. Every table function calls this first: one code path per stage."""
    if isinstance(prepared, RecordsTable):
        return prepared
    if _FRAMES and _FRAMES[0][0]() is prepared and _FRAMES[0][1] == id(spark) and _FRAMES[0][2].n == len(prepared):
        return _FRAMES[0][2]
    columns = list(prepared.columns)
    sets = [c for c in columns if any(isinstance(v, frozenset) for v in prepared[c].tolist())]
    frame = pd.DataFrame({"__row": np.arange(len(prepared), dtype=np.int64)})
    for c in columns:
        values = prepared[c].tolist()
        if c in sets:  # Arrow has no sets: sorted lists, as `prepare_table` writes them
            frame[c] = pd.Series([sorted(v) if v is not None else None for v in values], dtype=object)
        else:  # strings; None, or NaN after a pandas concat (`__original`), as null
            frame[c] = pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                                  for v in values], dtype=object)
    schema = ", ".join(["`__row` long", *[f"`{c}` {'array<string>' if c in sets else 'string'}" for c in columns]])
    table = RecordsTable(spark.createDataFrame(frame, schema), columns, sets, len(prepared))
    _FRAMES[:] = [(weakref.ref(prepared), id(spark), table)]
    return table


def vectors_of(spark: Any, vectors: np.ndarray | VectorsTable) -> VectorsTable:
    """The record vectors as a `VectorsTable`: the embed stage's table as it is, or an array's table
    (`spark.dedupe.vectors_table`: built once per array)."""
    from aietl_pipelines.spark.dedupe import vectors_table

    if isinstance(vectors, VectorsTable):
        return vectors
    n, dim = vectors.shape
    return VectorsTable(vectors_table(spark, vectors), n, dim) if dim else no_vectors(spark, n)


def no_vectors(spark: Any, n: int) -> VectorsTable:
    """The vectors of n records without embeddings (`use_embeddings: false`): dim 0, each row an empty vector."""
    return VectorsTable(spark.range(n).selectExpr("id AS row", "CAST('' AS BINARY) AS vector"), n, 0)


def on_driver(prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable
              ) -> tuple[pd.DataFrame, np.ndarray]:
    """The prepared frame and vectors array of either kind (tables collected: `frame()`, `array()`)."""
    frame = prepared.frame() if isinstance(prepared, RecordsTable) else prepared
    array = vectors.array() if isinstance(vectors, VectorsTable) else vectors
    return frame, array
