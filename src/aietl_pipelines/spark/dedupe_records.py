"""`dedupe.engine: spark`: the record-wise dedupe steps on Spark (prepare, embed, golden records).

- `prepare`: the records prepared by `prepare.prepare_records_with_codes` itself in `mapInPandas`, over slices
  of the records (every structured step is row-local once the ids are checked unique, which is done first over
  all records). Free text drops words by counts over ALL records (`prepare.text_words`): two passes over the
  slices count them first (`_text_words`: the words' record counts summed by Spark, then the pieces holding the
  frequent words), the driver decides the common and label words from the totals, and the slices are prepared
  with those words.
- `embed`: the content-hash cache is a parquet table (`<cache_dir>/spark_embeddings`, key = sha1 of the text
  as `embeddings.text_key`, vector); the texts the pandas step would embed whose key is not in the table (a left
  anti join) are embedded in `mapInPandas` (the model loaded once per Python worker: `embeddings.get_model` is
  cached in the process and Spark reuses its workers) and appended to the table. The driver's content-hash
  cache is then filled from the table and the pandas step assembles the vectors (per-field sums in
  structured mode) without embedding anything: the same vectors as the in-process path. The same vectors are
  also assembled on the executors from the table (`record_vectors_table`) and registered as the array's vectors
  table (`spark.dedupe.register_vectors_table`), which the candidate stages read instead of shipping the array.
- `golden`: `survivorship.build_golden_records` per group of whole clusters (`groupBy(bucket of cluster)
  .applyInPandas`): one pandas call per bucket of many clusters, not per cluster.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import prepare as preparing
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.survivorship import build_golden_records
from aietl_pipelines.errors import AietlInputError
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
    probe = preparing.prepare_records(records.iloc[:1], config)  # column checks, and the output columns
    preparing.validate_ids(records, config)  # over ALL records: each slice alone cannot see a duplicate id
    spark = _session()
    inputs = [config.id_column, *([config.text_column] if config.mode == "text" else config.fields)]
    shared = share(spark, records[inputs])
    size = RECORDS_PER_TASK
    columns = list(probe.columns)
    sets = [c for c in columns if isinstance(probe[c].iloc[0], frozenset)]  # free text's parts held as sets
    n = len(records)
    starts = spark.range(0, n, size, numPartitions=max(1, math.ceil(n / size)))
    try:
        words = _text_words(starts, shared, config, n, size) if config.mode == "text" else None

        def prepared_slices(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            every = shared.value
            for batch in batches:
                for start in batch["id"].tolist():
                    out = preparing.prepare_records_with_codes(every.iloc[start:start + size], config, words=words)[0]
                    for col in sets:  # Arrow has no sets: sorted lists, sets again on the driver
                        out[col] = [sorted(v) for v in out[col].tolist()]
                    out.insert(0, "__row", np.arange(start, start + len(out), dtype=np.int64))
                    yield out

        schema = ", ".join(["`__row` long", *[f"`{c}` {'array<string>' if c in sets else 'string'}" for c in columns]])
        found = starts.mapInPandas(prepared_slices, schema).toPandas()
    finally:
        shared.unpersist()
    found = found.sort_values("__row", kind="stable").reset_index(drop=True)
    if len(found) != n:
        raise RuntimeError(f"spark prepare returned {len(found)} rows for {n} records")
    for col in sets:
        found[col] = pd.Series([frozenset(v) for v in found[col].tolist()], dtype=object)
    return preparing.python_values(found[columns])


def _slice_texts(every: pd.DataFrame, column: str, start: int, size: int) -> list[str | None]:
    """The clean texts of one slice of the records (`prepare.text_values`)."""
    return preparing.text_values(every[column].iloc[start:start + size])


def _text_words(starts: Any, shared: Any, config: DedupeConfig, n: int, size: int) -> preparing.TextWords:
    """`prepare.text_words` of ALL the records, counted over the slices starting at `starts` (the broadcast
    records `shared`, `size` per slice): pass 1 sums each word's records (words and segment words; only those
    over the limits come to the driver), pass 2 the records per (frequent word, piece) for the `holder_words`,
    reduced on Spark to the most common piece of each word with and without a space (all `top_holders`
    reads). The driver decides with `prepare.decide_common_words` / `decide_label_words`."""
    from pyspark.sql import functions as F

    from aietl_pipelines.dedupe.textparse import parse_text, text_pieces

    column = config.text_column

    def word_counts(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        every = shared.value
        for batch in batches:
            for start in batch["id"].tolist():
                parsed = [parse_text(t) for t in _slice_texts(every, column, start, size)]
                for kind, counts in (("words", preparing.word_record_counts(parsed)),
                                     ("segments", preparing.segment_word_counts(parsed))):
                    yield pd.DataFrame({"kind": kind, "word": list(counts),
                                        "records": np.fromiter(counts.values(), np.int64, len(counts))})

    limits = {"words": preparing.share_limit(n, preparing.COMMON_SHARE),
              "segments": preparing.share_limit(n, preparing.LABEL_SHARE)}
    over = F.lit(False)
    for kind, limit in limits.items():
        over = over | ((F.col("kind") == kind) & (F.col("records") > limit))
    totals = (starts.mapInPandas(word_counts, "kind string, word string, records long")
              .groupBy("kind", "word").agg(F.sum("records").alias("records")).where(over).toPandas())
    found = {kind: dict(zip(part["word"], part["records"].astype(int), strict=True))
             for kind, part in totals.groupby("kind")}
    words, segments = found.get("words", {}), found.get("segments", {})
    candidates = preparing.holder_words(words, n)

    def holders(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        every = shared.value
        for batch in batches:
            for start in batch["id"].tolist():
                # a record's pieces as `parse_text` reads them (`text_pieces` of the text; none without text)
                pieces = (text_pieces(t) if t else () for t in _slice_texts(every, column, start, size))
                counts = preparing.holder_counts(pieces, candidates)
                yield pd.DataFrame({"word": [w for w, _ in counts], "piece": [p for _, p in counts],
                                    "records": np.fromiter(counts.values(), np.int64, len(counts))})

    top: dict[str, tuple[int, bool]] = {}
    if candidates:
        rows = (starts.mapInPandas(holders, "word string, piece string, records long")
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


def embed_new_texts(spark: Any, texts: list[str], table: str, device: str, precision: str = "auto") -> int:
    """Embed on the executors the texts whose content hash is not in the parquet `table` (the model of `device`
    and `precision`, as `embeddings.embed_texts`), append them to it, and return how many were embedded."""
    from pyspark import TaskContext

    from aietl_pipelines.embeddings import text_key

    wanted = spark.createDataFrame(pd.DataFrame({"key": [text_key(t) for t in texts], "text": texts}),
                                   "key string, text string")
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


def embed(prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
    """Spark twin of `prepare.embed`: only texts missing from the parquet cache table are embedded, on Spark."""
    from aietl_pipelines.embeddings import EmbeddingCache, text_key, uses_bf16

    if not config.use_embeddings:
        return preparing.embed(prepared, config)
    spark = _session()
    with tempfile.TemporaryDirectory(prefix="aietl-embed-") as scratch:
        cache_dir = config.cache_dir or scratch  # no cache configured: one for this run only
        table = str(Path(cache_dir) / EMBEDDING_TABLE) if "://" not in cache_dir else f"{cache_dir}/{EMBEDDING_TABLE}"
        texts = texts_to_embed(prepared, config)
        embed_new_texts(spark, texts, table, config.device, config.embed_precision)
        keys = spark.createDataFrame(pd.DataFrame({"key": [text_key(t) for t in texts]}), "key string")
        stored = _read_table(spark, table)
        found = (stored.join(keys, "key").dropDuplicates(["key"]).toPandas() if stored is not None
                 else pd.DataFrame({"key": [], "vector": []}))
        if len(found) != len(texts):
            raise AietlInputError(f"The embedding table {table} lacks {len(texts) - len(found)} of the texts just "
                                  "embedded: another run may be rewriting it; run again.")
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


def record_vectors_table(spark: Any, prepared: pd.DataFrame, config: DedupeConfig, stored: Any) -> Any:
    """The records' vectors as a Spark table (row long, vector binary: float32 bytes), the `vectors_table` layout,
    assembled on the executors from the embedding table `stored` (key, vector): each record's (row, value key)
    rows joined with it and, per group of `RECORDS_PER_VECTOR_GROUP` records (`cogroup` with the records' rows,
    so a record without values gets its zero vector), summed and normalised by `embeddings.embed_record_values`
    itself, its values in their order: the vectors `prepare.embed` assembles on the driver, bit for bit. None for
    whole-text embeddings (`text_embedding: text`: the table is then built from the array when asked)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.embeddings import embed_record_values, text_key

    if config.mode == "text" and config.text_embedding == "text":
        return None
    rows, values = preparing.embedded_values(prepared, config)
    per = RECORDS_PER_VECTOR_GROUP
    keyed = spark.createDataFrame(pd.DataFrame({"row": np.asarray(rows, dtype=np.int64),
                                                "pos": np.arange(len(rows), dtype=np.int64),
                                                "key": [text_key(v) for v in values]}),
                                  "row long, pos long, key string")
    found = (keyed.join(stored.dropDuplicates(["key"]), "key")
             .withColumn("g", F.floor(F.col("row") / per).cast("long")))
    skeleton = spark.range(len(prepared)).select(F.col("id").alias("row"),
                                                 F.floor(F.col("id") / per).cast("long").alias("g"))

    def assemble(records: pd.DataFrame, parts: pd.DataFrame) -> pd.DataFrame:
        every = np.sort(records["row"].to_numpy(np.int64))
        parts = parts.sort_values("pos", kind="stable")  # each record's values in their order
        by_key = {k: np.asarray(v, dtype=np.float32) for k, v in zip(parts["key"], parts["vector"], strict=True)}
        out = embed_record_values(np.searchsorted(every, parts["row"].to_numpy(np.int64)), parts["key"].tolist(),
                                  len(every), embed_distinct=lambda keys: np.stack([by_key[k] for k in keys]))
        return pd.DataFrame({"row": every, "vector": [r.tobytes() for r in np.ascontiguousarray(out, dtype="<f4")]})

    return skeleton.groupBy("g").cogroup(found.groupBy("g")).applyInPandas(assemble, "row long, vector binary")


def golden_records(records: pd.DataFrame, clusters: pd.Series, fields: list[str], id_column: str,
                   rules: dict[str, Any]) -> pd.DataFrame:
    """Spark twin of `survivorship.build_golden_records`: the same function over groups of whole clusters."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    frame = records.reset_index(drop=True)
    if len(frame) < 2:
        return build_golden_records(frame, clusters, fields, id_column, rules)
    spark = _session()
    probe = build_golden_records(frame.iloc[:1], clusters.iloc[:1], fields, id_column, rules)
    shipped = frame.assign(__cluster=clusters.to_numpy().astype(np.int64), __row=np.arange(len(frame)))
    data = spark.createDataFrame(shipped)
    types = {f.name: f.dataType for f in data.schema.fields}
    schema = T.StructType([T.StructField("cluster_id", T.LongType()), T.StructField("golden_id", types[id_column]),
                           T.StructField("cluster_size", T.LongType()),
                           T.StructField("member_ids", T.ArrayType(types[id_column])),
                           *[T.StructField(c, types[c]) for c in probe.columns[4:]]])

    def per_group(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values("__row", kind="stable")  # ties keep the input order, as in one pandas call
        out = build_golden_records(group.drop(columns=["__cluster", "__row", "__group"]), group["__cluster"],
                                   fields, id_column, rules)
        return out.assign(cluster_id=out["cluster_id"].astype(np.int64))

    groups = max(parallelism(spark), math.ceil(len(frame) / RECORDS_PER_GOLDEN_GROUP))
    found = (data.withColumn("__group", F.pmod(F.xxhash64("__cluster"), F.lit(groups)))
             .groupBy("__group").applyInPandas(per_group, schema).toPandas())
    found = found.sort_values("cluster_id", kind="stable").reset_index(drop=True)
    found["member_ids"] = found["member_ids"].map(list)
    return found.astype({c: probe[c].dtype for c in probe.columns if c != "member_ids"}, errors="ignore")
