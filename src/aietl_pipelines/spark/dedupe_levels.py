"""Comparison levels from a prepared-records TABLE joined to the pairs (issue 16): no record is broadcast.

`scoring.pair_levels` reads, besides the two records of each pair, a context computed from ALL the records
(`compare.column_context`): the term-frequency bands of name-like fields, the word weights of free text
(`token_index`) and the value information of free text's segments and numbers (`information_index`). All of it is
counted: how many records hold each word or value, and how many hold any. So:

- `prepared_table`: the prepared records as a Spark table (`__row`, the compared columns, sets as sorted
  `array<string>` as `dedupe_records.prepare_records` writes them, `__original`), built with `createDataFrame`
  from the driver's frame (the Spark `prepare` collects its table: see docs/spark.md), and the statistics counted
  on Spark: each record's words / values are exploded in `mapInPandas` by the pandas code's own splitting
  (`_units`), counted by `groupBy(field, word)`, and the counts joined back to the records (three aligned arrays
  per record: field `__cf`, word or value `__cw`, its count over all records `__cn`; no map of all words is
  built anywhere). Only per-field numbers reach the driver: the records holding any word (`n_records`) and, for
  the term-frequency fields, how many values occur each number of times (`compare.tf_count_bands`: a value's band
  depends only on its count), a few thousand rows at most.
- `levels_on_table`: the pairs are cut into buckets (by a hash of `left`); each bucket's referenced records (left
  and right, distinct) are joined from the table and `cogroup`ed with the bucket's pairs. Per bucket
  (`applyInPandas`) the records form a local prepared frame, the pairs are renumbered into it, the context is
  `column_context(local, kinds, stats=<the whole column's counts, from the records' arrays>)` and
  `scoring.pair_levels` compares them: the levels of the pandas path, bit for bit
  (`tests/spark/test_levels_table.py`, `tests/dedupe/test_context_counts.py`).

`scoring.pair_levels` reads the comparison kinds of free text from the records it is given (the share of records
holding an e-mail, phone or date, `scoring.comparison_kinds`); a bucket's records would decide for themselves, so
each bucket is compared with the structured twin of the configuration whose fields are the kinds decided over all
the records (`twin_config`).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import compare, scoring
from aietl_pipelines.dedupe.config import DedupeConfig

#: Kinds whose context is counted per word / value (`compare.column_context`'s stats).
INDEX_KINDS = ("tokens", *compare.INFORMATION_KINDS)


def twin_config(config: DedupeConfig, kinds: dict[str, str]) -> DedupeConfig:
    """`config` with `kinds` as its declared fields (structured): `scoring.comparison_kinds` of it is `kinds`
    whatever records it is given; nothing else `scoring.pair_levels` reads differs."""
    return dataclasses.replace(config, text_column=None, fields=dict(kinds))


@dataclass
class PreparedTable:
    """The prepared records as a Spark table and the statistics their comparisons read (`prepared_table`)."""

    records: Any  # __row long, the compared columns, __original, and __cf, __cw, __cn: the record's words /
    # values (__cw) of each counted field (__cf) with their counts over all the records (__cn), aligned arrays
    kinds: dict[str, str]
    sets: list[str]  # the columns holding sets (array<string> in the table, frozensets in pandas)
    stats: dict[str, dict[str, Any]]  # per field: n_records (INDEX_KINDS), count_bands (TF_KINDS)
    n: int


def _units(kind: str, value: Any) -> Any:
    """The words / values of one record that `compare.column_context` counts for this kind: free-text words as
    `token_index` splits them, the elements of a set as `information_index` reads them, the value itself for the
    term-frequency bands."""
    if kind == "tokens":
        return frozenset(str(value).split()) if value else ()
    if kind in compare.INFORMATION_KINDS:
        return frozenset(value) if value is not None and len(value) else ()
    return (value,) if value is not None else ()


_CACHE: list[tuple[Any, tuple, PreparedTable]] = []  # the last table built: (weakref to the frame, key, table)


def prepared_table(spark: Any, prepared: Any, config: DedupeConfig) -> PreparedTable:
    """The prepared records (`record_tables.records_table` of a frame or table) with their words' and values'
    counts (module docstring), kept for the last records table asked for (the candidate and the random pairs of a
    run read the same table)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.record_tables import comparison_kinds, records_table

    prepared = records_table(spark, prepared)
    kinds = comparison_kinds(config, prepared)
    key = (id(spark), tuple(kinds.items()), tuple(prepared.columns), len(prepared))
    if _CACHE and _CACHE[0][0]() is prepared and _CACHE[0][1] == key:
        return _CACHE[0][2]
    columns = [*kinds, *(["__original"] if "__original" in prepared.columns else [])]
    sets = [c for c in kinds if c in prepared.sets]
    records = prepared.table.select("__row", *[F.col(f"`{c}`") for c in columns])
    counted = {f: k for f, k in kinds.items() if k in INDEX_KINDS or k in compare.TF_KINDS}

    def explode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            rows = b["__row"].tolist()
            for f, kind in counted.items():
                found = [(r, w) for r, v in zip(rows, b[f].tolist(), strict=True) for w in _units(kind, v)]
                yield pd.DataFrame({"__row": np.array([r for r, _ in found], dtype=np.int64), "f": f,
                                    "w": pd.Series([w for _, w in found], dtype=object)})

    units = records.select("__row", *counted).mapInPandas(explode, "__row long, f string, w string").localCheckpoint()
    units = units.join(units.groupBy("f", "w").agg(F.count(F.lit(1)).alias("n")), ["f", "w"])
    # each record with its words / values and their counts over all records, as three aligned arrays
    attached = units.groupBy("__row").agg(F.collect_list(F.struct("f", "w", "n")).alias("__c"))
    records = (records.join(attached, "__row", "left")
               .select(*records.columns, *[F.col(f"__c.{x}").alias(f"__c{x}") for x in ("f", "w", "n")])
               .localCheckpoint())
    index = [f for f, k in counted.items() if k in INDEX_KINDS]
    tf = [f for f, k in counted.items() if k in compare.TF_KINDS]
    stats: dict[str, dict[str, Any]] = {f: {"n_records": 0} for f in index}
    stats.update({f: {"count_bands": {}} for f in tf})
    if counted:  # one small collect from the records' arrays: per field the records holding a word or value
        # (n 0, k records), and for the term-frequency fields the values occurring n >= 2 times (k records / n)
        holding = (records.select(F.explode(F.array_distinct("__cf")).alias("f")).where(F.col("f").isin(index))
                   .groupBy("f").agg(F.lit(0).cast("long").alias("n"), F.count(F.lit(1)).alias("k")))
        spread = (records.select(F.explode(F.arrays_zip("__cf", "__cn")).alias("z"))
                  .select(F.col("z.__cf").alias("f"), F.col("z.__cn").alias("n"))
                  .where(F.col("f").isin(tf) & (F.col("n") >= 2)).groupBy("f", "n").agg(F.count(F.lit(1)).alias("k")))
        small = holding.unionByName(spread).toPandas()  # fields x (1 + distinct counts) rows
        for f, part in small.groupby("f"):
            if f in index:
                stats[f]["n_records"] = int(part["k"].iloc[0])
            else:  # each record holds one value of the field: the values of count n are k / n
                stats[f]["count_bands"] = compare.tf_count_bands(
                    {int(n): int(k) // int(n) for n, k in zip(part["n"].tolist(), part["k"].tolist(), strict=True)})
    table = PreparedTable(records, kinds, sets, stats, len(prepared))
    _CACHE[:] = [(weakref.ref(prepared), key, table)]
    return table


def level_names(prepared: Any, vectors: Any, kinds: dict[str, str], config: DedupeConfig
                ) -> tuple[list[str], list[int], np.dtype]:
    """The comparison names, level counts and level dtype of `scoring.pair_levels` for these kinds (one pair of
    the first two records of the `RecordsTable` compared on the driver)."""
    columns = [c for c in [*kinds, "__original"] if c in prepared.columns]
    few = prepared.head(2)[columns].reset_index(drop=True)
    one = pd.DataFrame({"left": [0], "right": [min(1, len(few) - 1)], "cosine": [0.0]})
    probe, names, sizes = scoring.pair_levels(few, one, np.zeros((0, vectors.shape[1]), np.float32),
                                              twin_config(config, kinds))
    return names, sizes, probe.dtype


def levels_on_table(spark: Any, table: PreparedTable, pairs: Any, dim: int, config: DedupeConfig,
                    cols: list[str], buckets: int) -> Any:
    """The pairs table (left, right, cosine, any other columns) with the level columns `cols` added, the pairs
    compared in `buckets` groups, each over the records it references (module docstring); materialised."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kinds, sets, stats, twin = table.kinds, table.sets, table.stats, twin_config(config, table.kinds)
    pair_columns = list(pairs.columns)
    no_vectors = np.zeros((0, dim), dtype=np.float32)  # pair_levels reads only their width

    def bucket() -> Any:  # a new column each call: the two sides of the cogroup must not share one (self-join)
        return F.pmod(F.xxhash64(F.col("left").cast("long")), F.lit(buckets)).alias("__b")

    keyed = pairs.select("*", bucket())
    refs = (pairs.select(bucket(), F.col("left").cast("long").alias("__row"))
            .union(pairs.select(bucket(), F.col("right").cast("long").alias("__row"))).distinct())
    needed = refs.join(table.records, "__row")
    counted = [f for f in kinds if f in stats]

    def compare_bucket(found: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
        if not len(found):
            return pd.DataFrame({c: [] for c in [*pair_columns, *cols]})
        records = records.sort_values("__row", kind="stable")
        rows = records["__row"].to_numpy(np.int64)
        local = pd.DataFrame({c: (pd.Series([frozenset(v) if v is not None else None for v in records[c].tolist()],
                                            dtype=object) if c in sets else
                                  pd.Series(records[c].tolist(), dtype=object))
                              for c in records.columns if c in kinds or c == "__original"})
        given: dict[str, dict[str, Any]] = {f: {"counts": {}, **stats[f]} for f in counted}
        held = [k for k, a in enumerate(records["__cf"].tolist()) if a is not None and len(a)]
        if held:
            fields, words, counts = (np.concatenate(records[c].to_numpy()[held]) for c in ("__cf", "__cw", "__cn"))
            for f in counted:
                mine = fields == f
                given[f]["counts"] = dict(zip(words[mine].tolist(), counts[mine].astype(np.int64).tolist(),
                                              strict=True))
        context = compare.column_context({c: local[c].tolist() for c in kinds}, kinds, stats=given)
        chunk = pd.DataFrame({"left": np.searchsorted(rows, found["left"].to_numpy(np.int64)),
                              "right": np.searchsorted(rows, found["right"].to_numpy(np.int64)),
                              "cosine": found["cosine"].to_numpy(np.float64) if "cosine" in found else np.nan})
        levels, _, _ = scoring.pair_levels(local, chunk, no_vectors, twin, context)
        out = found[pair_columns].reset_index(drop=True)
        return out.assign(**{c: levels[:, j].astype(np.int32) for j, c in enumerate(cols)})

    # the pair columns nullable: a NaN cosine (no embeddings) comes back from pandas through Arrow as a null
    schema = T.StructType([*[T.StructField(f.name, f.dataType, True) for f in pairs.schema.fields],
                           *[T.StructField(c, T.IntegerType(), False) for c in cols]])
    return (keyed.groupBy("__b").cogroup(needed.groupBy("__b"))
            .applyInPandas(compare_bucket, schema).localCheckpoint())
