"""`dedupe.engine: spark`: the record-wise dedupe steps on Spark (prepare, embed, golden records).

- `prepare_table`: the records (pandas, or a Spark DataFrame such as a parquet read) prepared by
  `prepare.prepare_records_with_codes` itself in `mapInPandas` and kept as a Spark table (`RecordsTable`): every
  structured step is row-local once the ids are checked unique, which is done first over all records. Free text
  drops words by counts over ALL records (`prepare.text_words`): two passes over the records count them first
  (`_text_words`: the words' record counts summed by Spark, then the pieces holding the frequent words), the
  driver decides the common and label words from the totals, and each batch is prepared with those words.
  `prepare` (`prepare_records`) is that table collected as the pandas frame.
- `embed_table`: the content-hash cache is a parquet table (`<cache_dir>/spark_embeddings`, key = sha1 of the
  text as `embeddings.text_key`, vector); the values each record is embedded from are listed on the executors,
  those whose key is not in the table (a left anti join) are embedded in `mapInPandas` (`embed_new_texts`: the
  model loaded once per Python worker, `embeddings.get_model` is cached in the process and Spark reuses its
  workers) and appended to the table, and the record vectors are assembled on the executors from it
  (`_assembled`): a `VectorsTable`, the `spark.dedupe.vectors_table` layout.
- `embed` (the `Steps` step: the prepared frame in, the array out): the same new-text embedding, then the driver's
  content-hash cache is filled from the table and the pandas step assembles the vectors without embedding
  anything; the same vectors are assembled on the executors (`record_vectors_table`) and registered as the
  array's vectors table (`spark.dedupe.register_vectors_table`), which the candidate stages read.
- `golden_table`: `survivorship.build_golden_records` per group of whole clusters (`groupBy(bucket of cluster)
  .applyInPandas`): one pandas call per bucket of many clusters, not per cluster; the golden records stay a Spark
  DataFrame (the Kedro node `SparkPairNodes.golden` hands it to the catalog). `golden_records` (the `golden`
  step) is it on a pandas frame, collected.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import prepare as preparing
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.survivorship import build_golden_records
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.spark.record_tables import RecordsTable, VectorsTable, no_vectors, numbered
from aietl_pipelines.spark.session import parallelism, share

#: Records prepared per Spark task (one slice, one pandas call).
RECORDS_PER_TASK = 50_000
#: Records per golden-record group (whole clusters, at least one per core).
RECORDS_PER_GOLDEN_GROUP = 200_000
#: New texts embedded per Spark task (few texts: one task, so one worker loads the model).
TEXTS_PER_TASK = 20_000
#: Folder of the embedding table inside `dedupe.cache_dir`.
EMBEDDING_TABLE = "spark_embeddings"
#: Records per group when the record vectors are assembled on the executors (`record_vectors_table`).
RECORDS_PER_VECTOR_GROUP = 65_536


def _session() -> Any:
    from aietl_pipelines.spark.session import get_spark

    return get_spark()


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Spark twin of `prepare.prepare_records`: the same frame (columns, values, types, row order)."""
    if not isinstance(records, pd.DataFrame) or len(records) < 2:
        return preparing.prepare_records(records, config)
    return prepare_table(records, config).frame()


def prepare_table(records: pd.DataFrame | Any, config: DedupeConfig) -> RecordsTable:
    """The records (a pandas frame, or a Spark DataFrame read as it is) prepared on the executors and kept there.

    The table: `__row` long (row i = the input's i-th record: a pandas frame's row order, a Spark frame's
    `record_tables.numbered` order) and the columns of `prepare.prepare_records` (strings; free text's sets as
    sorted array<string>), materialised (local checkpoint). The ids are checked over all records first (the errors
    of `prepare.validate_ids`; a Spark column has one type, so only missing and duplicate ids there), then free
    text's common and label words are counted over all records (`_text_words`). What reaches the driver: counts,
    the frequent words, a probe row, at most 10 duplicate ids; a pandas input is broadcast (`share`)."""
    if isinstance(records, pd.DataFrame):
        return _prepare_frame(records, config)
    return _prepare_spark(records, config)


def _inputs(config: DedupeConfig) -> list[str]:
    """The columns of the records that preparing reads."""
    return [config.id_column, *([config.text_column] if config.mode == "text" else config.fields)]


def _layout(probe: pd.DataFrame) -> tuple[list[str], list[str], str]:
    """The prepared columns, those held as sets (free text's parts), and the table's Spark schema."""
    columns = list(probe.columns)
    sets = [c for c in columns if isinstance(probe[c].iloc[0], frozenset)]
    schema = ", ".join(["`__row` long", *[f"`{c}` {'array<string>' if c in sets else 'string'}" for c in columns]])
    return columns, sets, schema


def _prepared_parts(parts: Iterator[tuple[np.ndarray, pd.DataFrame]], config: DedupeConfig,
                    words: preparing.TextWords | None, sets: list[str]) -> Iterator[pd.DataFrame]:
    """Each (rows, records) part prepared by `prepare.prepare_records_with_codes` with `__row` = `rows`."""
    for rows, part in parts:
        if not len(part):
            continue
        out = preparing.prepare_records_with_codes(part, config, words=words)[0]
        for col in sets:  # Arrow has no sets: sorted lists (`RecordsTable.frame` makes them sets again)
            out[col] = [sorted(v) for v in out[col].tolist()]
        out.insert(0, "__row", np.asarray(rows, dtype=np.int64))
        yield out


def _records_table(table: Any, columns: list[str], sets: list[str], n: int) -> RecordsTable:
    """`table` materialised as a `RecordsTable` of `n` records."""
    table = table.localCheckpoint()
    found = table.count()
    if found != n:
        raise RuntimeError(f"spark prepare returned {found} rows for {n} records")
    return RecordsTable(table, columns, sets, n)


def _prepare_frame(records: pd.DataFrame, config: DedupeConfig) -> RecordsTable:
    """`prepare_table` of a pandas frame: slices of `RECORDS_PER_TASK` records of the broadcast frame."""
    columns, sets, schema = _layout(preparing.prepare_records(records.iloc[:1], config))  # the column checks
    preparing.validate_ids(records, config)  # over ALL records: each slice alone cannot see a duplicate id
    spark = _session()
    shared = share(spark, records[_inputs(config)])
    size, n, column = RECORDS_PER_TASK, len(records), config.text_column
    starts = spark.range(0, n, size, numPartitions=max(1, math.ceil(n / size)))

    def slices(batches: Iterator[pd.DataFrame]) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        every = shared.value
        for batch in batches:
            for start in batch["id"].tolist():
                part = every.iloc[start:start + size]
                yield np.arange(start, start + len(part), dtype=np.int64), part

    def texts(batches: Iterator[pd.DataFrame]) -> Iterator[list[str | None]]:
        return (preparing.text_values(part[column]) for _, part in slices(batches))

    try:
        words = _text_words(starts, texts, n) if config.mode == "text" else None

        def prepared(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            return _prepared_parts(slices(batches), config, words, sets)

        return _records_table(starts.mapInPandas(prepared, schema), columns, sets, n)
    finally:
        shared.unpersist()


def _prepare_spark(records: Any, config: DedupeConfig) -> RecordsTable:
    """`prepare_table` of a Spark DataFrame: its rows numbered (`numbered`), each Arrow batch prepared."""
    head = records.limit(1).toPandas()
    if len(head) and config.id_column in head.columns:  # the empty and column checks; the ids are checked below
        head = head.assign(**{config.id_column: ["probe"]})
    columns, sets, schema = _layout(preparing.prepare_records(head, config))
    table = numbered(records.select(*[f"`{c}`" for c in _inputs(config)]))
    n = _check_ids(table, config.id_column)
    column = config.text_column

    def texts(batches: Iterator[pd.DataFrame]) -> Iterator[list[str | None]]:
        return (preparing.text_values(batch[column]) for batch in batches)

    words = _text_words(table.select(f"`{column}`"), texts, n) if config.mode == "text" else None

    def prepared(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        parts = ((b["__row"].to_numpy(np.int64), b.drop(columns="__row").reset_index(drop=True)) for b in batches)
        return _prepared_parts(parts, config, words, sets)

    return _records_table(table.mapInPandas(prepared, schema), columns, sets, n)


def _check_ids(table: Any, column: str) -> int:
    """The records of `table` (`__row` and the id `column`), once its ids are checked as `prepare.validate_ids`
    checks them: none missing (null or NaN), unique once written as text (at most 10 duplicates collected, in
    the order of their second record)."""
    from pyspark.sql import functions as F

    ids = F.col(f"`{column}`")
    kind = dict(table.dtypes)[column]
    missing = ids.isNull() | F.isnan(ids) if kind in ("float", "double") else ids.isNull()
    row = table.agg(F.count(F.lit(1)).alias("n"), F.sum(missing.cast("long")).alias("missing")).first()
    n, absent = int(row["n"]), int(row["missing"] or 0)
    if absent:
        raise AietlInputError(f"{absent} record(s) have no id in '{column}'.")
    keyed = table.select("__row", ids.cast("string").alias("key"))
    repeated = keyed.groupBy("key").count().where(F.col("count") > 1).select("key").localCheckpoint()
    n_dupes = repeated.count()
    if n_dupes:
        second = (keyed.join(repeated, "key").groupBy("key")
                  .agg(F.sort_array(F.collect_list("__row"))[1].alias("second"))
                  .orderBy("second").limit(10).toPandas())
        raise AietlInputError(f"Duplicate record ids in '{column}': {second['key'].tolist()}"
                              f"{' ...' if n_dupes > 10 else ''}. Ids must be unique.")
    return n


def _text_words(source: Any, texts: Callable[[Iterator[pd.DataFrame]], Iterator[list[str | None]]],
                n: int) -> preparing.TextWords:
    """`prepare.text_words` of ALL the `n` records, read in `mapInPandas` over the Spark frame `source`, whose
    batches `texts` turns into lists of clean texts (`prepare.text_values`): pass 1 sums each word's records
    (words and segment words; only those over the limits come to the driver), pass 2 the records per (frequent
    word, piece) for the `holder_words`, reduced on Spark to the most common piece of each word with and without
    a space (all `top_holders` reads). The driver decides with `prepare.decide_common_words` /
    `decide_label_words`."""
    from pyspark.sql import functions as F

    from aietl_pipelines.dedupe.textparse import parse_text, text_pieces

    def word_counts(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for clean in texts(batches):
            parsed = [parse_text(t) for t in clean]
            for kind, counts in (("words", preparing.word_record_counts(parsed)),
                                 ("segments", preparing.segment_word_counts(parsed))):
                yield pd.DataFrame({"kind": kind, "word": list(counts),
                                    "records": np.fromiter(counts.values(), np.int64, len(counts))})

    limits = {"words": preparing.share_limit(n, preparing.COMMON_SHARE),
              "segments": preparing.share_limit(n, preparing.LABEL_SHARE)}
    over = F.lit(False)
    for kind, limit in limits.items():
        over = over | ((F.col("kind") == kind) & (F.col("records") > limit))
    totals = (source.mapInPandas(word_counts, "kind string, word string, records long")
              .groupBy("kind", "word").agg(F.sum("records").alias("records")).where(over).toPandas())
    found = {kind: dict(zip(part["word"], part["records"].astype(int), strict=True))
             for kind, part in totals.groupby("kind")}
    words, segments = found.get("words", {}), found.get("segments", {})
    candidates = preparing.holder_words(words, n)

    def holders(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for clean in texts(batches):
            # a record's pieces as `parse_text` reads them (`text_pieces` of the text; none without text)
            counts = preparing.holder_counts((text_pieces(t) if t else () for t in clean), candidates)
            yield pd.DataFrame({"word": [w for w, _ in counts], "piece": [p for _, p in counts],
                                "records": np.fromiter(counts.values(), np.int64, len(counts))})

    top: dict[str, tuple[int, bool]] = {}
    if candidates:
        rows = (source.mapInPandas(holders, "word string, piece string, records long")
                .groupBy("word", "piece").agg(F.sum("records").alias("records"))
                .groupBy("word", F.col("piece").contains(" ").alias("several"))
                .agg(F.max_by("piece", "records").alias("piece"), F.max("records").alias("records"))
                .toPandas())
        top = preparing.top_holders(zip(rows["word"], rows["piece"], rows["records"].astype(int), strict=True))
    return preparing.TextWords(preparing.decide_common_words(words, n, top),
                               preparing.decide_label_words(segments, n))


def texts_to_embed(prepared: pd.DataFrame, config: DedupeConfig) -> list[str]:
    """The distinct texts `prepare.embed` embeds (`prepare.embedded_values`)."""
    return list(dict.fromkeys(preparing.embedded_values(prepared, config)[1]))


def _read_table(spark: Any, table: str) -> Any:
    """The embedding table, or None before its first write."""
    from pyspark.errors import AnalysisException

    if "://" not in table and not Path(table).exists():
        return None
    try:
        return spark.read.parquet(table)
    except AnalysisException as exc:  # a remote path not written yet
        if "PATH_NOT_FOUND" in str(exc):
            return None
        raise


def embed_new_texts(spark: Any, texts: list[str] | Any, table: str, device: str, precision: str = "auto") -> int:
    """Embed on the executors the texts whose content hash is not in the parquet `table` (the model of `device`
    and `precision`, as `embeddings.embed_texts`), append them to it, and return how many were embedded.
    `texts`: a list, or a Spark DataFrame of (key = `embeddings.text_key(text)`, text), repeats allowed."""
    from pyspark import TaskContext

    from aietl_pipelines.embeddings import text_key

    if isinstance(texts, list):
        texts = spark.createDataFrame(pd.DataFrame({"key": [text_key(t) for t in texts], "text": texts}),
                                      "key string, text string")
    wanted = texts.select("key", "text").dropDuplicates(["key"])
    known = _read_table(spark, table)
    if known is not None:
        wanted = wanted.join(known.select("key"), "key", "left_anti")
    new = wanted.localCheckpoint()
    n_new = new.count()
    if not n_new:
        return 0

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import torch

        from aietl_pipelines.embeddings import embed_texts

        context = TaskContext.get()
        torch.set_num_threads(max(1, context.cpus() if context else 1))  # one task per core: no oversubscription
        for batch in batches:
            vectors = embed_texts(batch["text"].tolist(), cache_dir=None, device=device, precision=precision)
            yield pd.DataFrame({"key": batch["key"], "vector": list(vectors)})

    parts = math.ceil(n_new / TEXTS_PER_TASK)
    (new.repartition(parts).mapInPandas(encode, "key string, vector array<float>")
     .write.mode("append").parquet(table))
    return n_new


def _table_path(cache_dir: str) -> str:
    """The embedding table of `cache_dir` (a local folder or a URL)."""
    return str(Path(cache_dir) / EMBEDDING_TABLE) if "://" not in cache_dir else f"{cache_dir}/{EMBEDDING_TABLE}"


def embed(prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
    """Spark twin of `prepare.embed`: only texts missing from the parquet cache table are embedded, on Spark."""
    from aietl_pipelines.embeddings import EmbeddingCache, text_key, uses_bf16

    if not config.use_embeddings:
        return preparing.embed(prepared, config)
    spark = _session()
    with tempfile.TemporaryDirectory(prefix="aietl-embed-") as scratch:
        cache_dir = config.cache_dir or scratch  # no cache configured: one for this run only
        table = _table_path(cache_dir)
        texts = texts_to_embed(prepared, config)
        embed_new_texts(spark, texts, table, config.device, config.embed_precision)
        keys = spark.createDataFrame(pd.DataFrame({"key": [text_key(t) for t in texts]}), "key string")
        stored = _read_table(spark, table)
        found = (stored.join(keys, "key").dropDuplicates(["key"]).toPandas() if stored is not None
                 else pd.DataFrame({"key": [], "vector": []}))
        if len(found) != len(texts):
            raise AietlInputError(_lacking(table, len(texts) - len(found)))
        if len(found):
            # the cache file `embed_texts` reads for this model variant (bfloat16 or not): the driver then embeds
            # nothing and assembles the table's vectors
            cache = EmbeddingCache(cache_dir, bf16=uses_bf16(config.device, config.embed_precision))
            cache.put_many(found["key"].tolist(), np.stack(found["vector"].to_numpy()))
        vectors = preparing.embed(prepared, dataclasses.replace(config, cache_dir=cache_dir))
        table = record_vectors_table(spark, prepared, config, stored) if stored is not None else None
        if table is not None:  # the candidate stages read this table (`spark.dedupe.vectors_table`)
            from aietl_pipelines.spark.dedupe import register_vectors_table

            register_vectors_table(vectors, table.localCheckpoint())  # materialised before the folder goes
        return vectors


def _lacking(table: str, missing: int) -> str:
    """The error when texts just embedded are not in the embedding table."""
    return (f"The embedding table {table} lacks {missing} of the texts just embedded: another run may be rewriting "
            "it; run again.")


def embed_table(prepared: RecordsTable, config: DedupeConfig) -> VectorsTable:
    """The record vectors of `prepared` as a Spark table (row long = `__row`, vector binary: float32 little-endian
    bytes, the `spark.dedupe.vectors_table` layout), materialised (local checkpoint): `prepare.embed`'s vectors
    computed on the executors, never as an array on the driver.

    Each batch's embedded values (`prepare.embedded_values`) and their `text_key`s are listed on the executors,
    the distinct ones missing from the parquet embedding table (`<cache_dir>/spark_embeddings`; a scratch folder
    for this call without `cache_dir`) embedded by `embed_new_texts`, and each record's vector assembled from the
    table: the normalised sum of its values' vectors (`_assembled`), or with `text_embedding: text` its text's
    stored vector as it is. `dim`: the length of the first stored vector (`EMBEDDING_DIM` when none is stored).
    `use_embeddings: false`: dim 0, a table of the n rows with empty vectors. The driver receives counts and the
    first vector's length only; the executors hold every record's (row, value key, value) once (local checkpoint)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.embeddings import EMBEDDING_DIM

    spark = prepared.table.sparkSession
    if not config.use_embeddings:
        return no_vectors(spark, prepared.n)
    values = _values_table(prepared, config).localCheckpoint()  # row, pos, key, text
    distinct = values.select("key", "text").dropDuplicates(["key"]).localCheckpoint()  # each value once
    with tempfile.TemporaryDirectory(prefix="aietl-embed-") as scratch:
        table = _table_path(config.cache_dir or scratch)
        embed_new_texts(spark, distinct, table, config.device, config.embed_precision)
        stored = _read_table(spark, table)
        if stored is None:  # no value to embed in any record (nothing was written)
            stored = spark.createDataFrame([], "key string, vector array<float>")
        stored = stored.dropDuplicates(["key"])
        missing = distinct.join(stored.select("key"), "key", "left_anti").count()
        if missing:
            raise AietlInputError(_lacking(table, missing))
        first = stored.select(F.size("vector").alias("dim")).limit(1).collect()
        dim = int(first[0]["dim"]) if first else EMBEDDING_DIM
        whole = config.mode == "text" and config.text_embedding == "text"
        vectors = _assembled(values.select("row", "pos", "key"), prepared.n, stored, whole=whole)
        return VectorsTable(vectors.localCheckpoint(), prepared.n, dim)  # materialised before the folder goes


def _values_table(prepared: RecordsTable, config: DedupeConfig) -> Any:
    """What each record is embedded from (`prepare.embedded_values` of each batch of the table): row long (the
    record's `__row`), pos long (the value's place among the batch's values: a record's values in their order),
    key string (`text_key`), text string."""
    from aietl_pipelines.embeddings import text_key

    read = ["__text"] if config.mode == "text" else list(config.fields)

    def values(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows, texts = preparing.embedded_values(batch.reset_index(drop=True), config)  # positions in the batch
            yield pd.DataFrame({"row": batch["__row"].to_numpy(np.int64)[rows],
                                "pos": np.arange(len(texts), dtype=np.int64),
                                "key": [text_key(t) for t in texts], "text": pd.Series(texts, dtype=object)})

    return (prepared.table.select("__row", *[f"`{c}`" for c in read])
            .mapInPandas(values, "row long, pos long, key string, text string"))


def record_vectors_table(spark: Any, prepared: pd.DataFrame, config: DedupeConfig, stored: Any) -> Any:
    """The vectors of the pandas prepared frame's records as a Spark table (row long, vector binary), assembled
    on the executors from the embedding table `stored` (key, vector) by `_assembled`: the vectors `prepare.embed`
    assembles on the driver, bit for bit. None for whole-text embeddings (`text_embedding: text`: the table is
    then built from the array when asked)."""
    from aietl_pipelines.embeddings import text_key

    if config.mode == "text" and config.text_embedding == "text":
        return None
    rows, values = preparing.embedded_values(prepared, config)
    keyed = spark.createDataFrame(pd.DataFrame({"row": np.asarray(rows, dtype=np.int64),
                                                "pos": np.arange(len(rows), dtype=np.int64),
                                                "key": [text_key(v) for v in values]}),
                                  "row long, pos long, key string")
    return _assembled(keyed, len(prepared), stored.dropDuplicates(["key"]), whole=False)


def _assembled(keyed: Any, n: int, stored: Any, *, whole: bool) -> Any:
    """The vectors of records 0..n-1 (row long, vector binary: float32 bytes) from their values `keyed` (row, pos,
    key: a record's values in the order of pos) and the embedding table `stored` (key, vector; one row per key).
    `whole`: one value per record, whose stored vector is the record's. Else, per group of
    `RECORDS_PER_VECTOR_GROUP` records (`cogroup` with the records' rows, so a record without values gets its
    zero vector), the values' vectors summed and normalised by `embeddings.embed_record_values` itself: the
    vectors `prepare.embed` assembles on the driver, bit for bit."""
    from pyspark.sql import functions as F

    from aietl_pipelines.embeddings import embed_record_values

    found = keyed.join(stored, "key")
    if whole:
        def as_bytes(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield pd.DataFrame({"row": batch["row"].to_numpy(np.int64),
                                    "vector": [np.asarray(v, dtype="<f4").tobytes() for v in batch["vector"]]})

        return found.select("row", "vector").mapInPandas(as_bytes, "row long, vector binary")
    per = RECORDS_PER_VECTOR_GROUP
    found = found.withColumn("g", F.floor(F.col("row") / per).cast("long"))
    skeleton = keyed.sparkSession.range(n).select(F.col("id").alias("row"),
                                                  F.floor(F.col("id") / per).cast("long").alias("g"))

    def assemble(records: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
        every = np.sort(records["row"].to_numpy(np.int64))
        parts = parts.sort_values(["row", "pos"], kind="stable")  # each record's values in their order
        by_key = {k: np.asarray(v, dtype=np.float32) for k, v in zip(parts["key"], parts["vector"], strict=True)}
        out = embed_record_values(np.searchsorted(every, parts["row"].to_numpy(np.int64)), parts["key"].tolist(),
                                  len(every), embed_distinct=lambda keys: np.stack([by_key[k] for k in keys]))
        return pd.DataFrame({"row": every, "vector": [r.tobytes() for r in np.ascontiguousarray(out, dtype="<f4")]})

    return skeleton.groupBy("g").cogroup(found.groupBy("g")).applyInPandas(assemble, "row long, vector binary")


def golden_records(records: pd.DataFrame, clusters: pd.Series, fields: list[str], id_column: str,
                   rules: dict[str, Any]) -> pd.DataFrame:
    """Spark twin of `survivorship.build_golden_records` (the `golden` step, pandas in and out): `golden_table` of
    the shipped records, collected and ordered by cluster id."""
    frame = records.reset_index(drop=True)
    if len(frame) < 2:
        return build_golden_records(frame, clusters, fields, id_column, rules)
    probe = build_golden_records(frame.iloc[:1], clusters.iloc[:1], fields, id_column, rules)
    shipped = frame.assign(__cluster=clusters.to_numpy().astype(np.int64), __row=np.arange(len(frame)))
    found = golden_table(_session().createDataFrame(shipped), fields, id_column, rules, len(frame)).toPandas()
    found = found.sort_values("cluster_id", kind="stable").reset_index(drop=True)
    found["member_ids"] = found["member_ids"].map(list)
    return found.astype({c: probe[c].dtype for c in probe.columns if c != "member_ids"}, errors="ignore")


def golden_table(records: Any, fields: list[str], id_column: str, rules: dict[str, Any], n: int) -> Any:
    """`survivorship.build_golden_records` on Spark: `records` is a Spark DataFrame of `n` records with `__row`
    (long: the input order, which breaks survivorship's ties), `__cluster` (long: the record's cluster id), the id
    column and the columns survivorship reads (`fields`, recency, source). The records of whole clusters go to one
    group (`RECORDS_PER_GOLDEN_GROUP` records per group, at least one group per core), each group is sorted by
    `__row` and handed to `build_golden_records` itself in `applyInPandas`. Returns the golden records as a Spark
    DataFrame (cluster_id long, golden_id and member_ids of the id column's type, cluster_size long, the fields
    with their types), not collected and in no order."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = records.sparkSession
    types = {f.name: f.dataType for f in records.schema.fields}
    schema = T.StructType([T.StructField("cluster_id", T.LongType()), T.StructField("golden_id", types[id_column]),
                           T.StructField("cluster_size", T.LongType()),
                           T.StructField("member_ids", T.ArrayType(types[id_column])),
                           *[T.StructField(c, types[c]) for c in fields]])

    def per_group(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values("__row", kind="stable")  # ties keep the input order, as in one pandas call
        out = build_golden_records(group.drop(columns=["__cluster", "__row", "__group"]), group["__cluster"],
                                   fields, id_column, rules)
        return out.assign(cluster_id=out["cluster_id"].astype(np.int64))

    groups = max(parallelism(spark), math.ceil(n / RECORDS_PER_GOLDEN_GROUP))
    return (records.withColumn("__group", F.pmod(F.xxhash64("__cluster"), F.lit(groups)))
            .groupBy("__group").applyInPandas(per_group, schema))
