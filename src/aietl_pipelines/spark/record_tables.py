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

from dataclasses import dataclass
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
    (the same files are always numbered the same way). The clusters are keyed by record id, so only ties that
    the input order breaks (golden records' survivorship) read it."""
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


def comparison_kinds(config: Any, prepared: pd.DataFrame | RecordsTable) -> dict[str, str]:
    """`scoring.comparison_kinds` of a prepared frame or table: for a table, the shares of records holding each
    independent part are counted on Spark (one aggregate, kept on the handle)."""
    from aietl_pipelines.dedupe import scoring

    if not isinstance(prepared, RecordsTable):
        return scoring.comparison_kinds(config, prepared)
    if config.mode == "structured" or not prepared.n:
        return scoring.kinds_for_shares(config, {})
    shares = getattr(prepared, "_shares", None)
    if shares is None:
        from pyspark.sql import functions as F

        present = [c for c in scoring.INDEPENDENT_PARTS if c in prepared.columns]
        row = prepared.table.agg(*[F.count(c).alias(c) for c in present]).first() if present else None
        shares = {c: int(row[c]) / prepared.n for c in present}
        prepared._shares = shares
    return scoring.kinds_for_shares(config, shares)


def on_driver(prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable
              ) -> tuple[pd.DataFrame, np.ndarray]:
    """The prepared frame and vectors array of either kind (tables collected: `frame()`, `array()`)."""
    frame = prepared.frame() if isinstance(prepared, RecordsTable) else prepared
    array = vectors.array() if isinstance(vectors, VectorsTable) else vectors
    return frame, array
