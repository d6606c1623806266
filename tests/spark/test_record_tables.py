"""`dedupe_records.prepare_table` and `embed_table` (issue 16): the prepared records and the record vectors kept as
Spark tables equal the pandas steps' frame and array (-m spark)."""

from __future__ import annotations

import dataclasses
from functools import reduce

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import prepare
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.errors import AietlInputError

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}
STRUCTURED = DedupeConfig(fields=FIELDS, truth_column="true_cluster_id", device="cpu")
TEXT = DedupeConfig(id_column="record_id", text_column="full_text", device="cpu")
CONFIGS = {"structured": STRUCTURED, "text-pieces": dataclasses.replace(TEXT, text_embedding="pieces"),
           "text-whole": dataclasses.replace(TEXT, text_embedding="text")}


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return generate_customers(n_entities=150, seed=5)


@pytest.fixture(scope="module")
def few() -> pd.DataFrame:
    """Fewer records for the embedding tests (the model runs on the executors)."""
    return generate_customers(n_entities=50, seed=5)


@pytest.fixture
def small_batches(spark):
    """Arrow batches of 50 records: several batches per partition, so the `__row` offsets are exercised."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, "50")
    yield
    spark.conf.set(key, before)


def _on_spark(spark, records: pd.DataFrame, parts: int = 3):
    """`records` as a Spark DataFrame of `parts` partitions in the records' order (a union of slices: a
    repartition would shuffle them)."""
    schema = spark.createDataFrame(records).schema
    slices = [spark.createDataFrame(part, schema) for part in np.array_split(records, parts)]
    return reduce(lambda a, b: a.union(b), slices)


@pytest.mark.parametrize("name", ["structured", "text-pieces"])
def test_prepare_table_equals_pandas(spark, records, name, small_batches, monkeypatch, count_collects):
    """A Spark DataFrame of 3 partitions, Arrow batches of 50 records: the pandas step's frame (a pandas input is
    `prepare_records`' path, `test_dedupe_records.py` and `test_text_prepare_spark.py`)."""
    from aietl_pipelines.spark import dedupe_records

    config = CONFIGS[name]
    expected = prepare.prepare_records(records, config)
    frame = _on_spark(spark, records)
    collected = count_collects(monkeypatch)
    table = dedupe_records.prepare_table(frame, config)
    assert max(rows for _, rows in collected) < len(records) / 4  # counts, words and one probe row: no records
    assert (table.n, table.columns) == (len(records), list(expected.columns))
    assert table.table.columns == ["__row", *expected.columns]
    assert table.table.rdd.getNumPartitions() > 1
    pd.testing.assert_frame_equal(table.frame(), expected)


def _bad_inputs(records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    no_id = records.copy()
    no_id.loc[[7, 90], "record_id"] = None
    numbered = records.assign(record_id=np.arange(len(records)))
    return {"duplicate id": pd.concat([records, records.iloc[[5, 3]]], ignore_index=True),
            "duplicate number id": pd.concat([numbered, numbered.iloc[[200]]], ignore_index=True),
            "missing id": no_id, "missing column": records.drop(columns=["city"]), "empty": records.iloc[:0]}


@pytest.mark.parametrize("case", ["duplicate id", "duplicate number id", "missing id", "missing column", "empty"])
def test_prepare_table_bad_input_is_the_pandas_error(spark, records, case):
    from aietl_pipelines.spark.dedupe_records import prepare_table

    bad = _bad_inputs(records)[case]
    with pytest.raises(AietlInputError) as pandas_error:
        prepare.prepare_records(bad, STRUCTURED)
    frame = _on_spark(spark, bad) if len(bad) else spark.createDataFrame(records).limit(0)
    with pytest.raises(AietlInputError) as spark_error:
        prepare_table(frame, STRUCTURED)
    assert str(spark_error.value) == str(pandas_error.value)


def test_embed_table_equals_pandas_embed(spark, few, tmp_path, monkeypatch, count_collects):
    """For each config (structured, free text by pieces, whole texts), the vectors assembled on the executors
    equal `prepare.embed`'s bit for bit given the same value vectors: the driver's cache is filled from the Spark
    embedding table (the encoder's float noise between batches of texts is `test_dedupe_records.py`'s) and the
    driver then embeds nothing, so the table holds every value. A second call embeds nothing. One test, one
    embedding table: the model is loaded once per Python worker."""
    from aietl_pipelines import embeddings
    from aietl_pipelines.spark import dedupe_records
    from aietl_pipelines.spark.dedupe import as_matrix

    embedded: list[int] = []
    real = dedupe_records.embed_new_texts

    def counted(*args, **kwargs) -> int:
        embedded.append(real(*args, **kwargs))
        return embedded[-1]

    monkeypatch.setattr(dedupe_records, "embed_new_texts", counted)
    store = tmp_path / "spark_cache" / dedupe_records.EMBEDDING_TABLE
    got = {}
    prepared = {"structured": dedupe_records.prepare_table(few, STRUCTURED),  # a pandas input: fewer Spark jobs
                "text": dedupe_records.prepare_table(few, TEXT)}  # both text embeddings read one prepared table
    for name, base in CONFIGS.items():
        config = dataclasses.replace(base, cache_dir=str(tmp_path / "spark_cache"))
        records = prepared[config.mode]
        before = spark.read.parquet(str(store)).count() if store.exists() else 0
        with monkeypatch.context() as patch:
            collected = count_collects(patch)
            vectors = dedupe_records.embed_table(records, config)
            assert max(rows for _, rows in collected) <= 1  # the first vector's length: no vectors on the driver
        assert embedded[-1] == spark.read.parquet(str(store)).count() - before > 0
        found = vectors.table.toPandas()
        assert sorted(found["row"]) == list(range(len(few)))
        got[name] = as_matrix(found.sort_values("row")["vector"], vectors.dim)
        assert vectors.shape == got[name].shape == (len(few), embeddings.EMBEDDING_DIM)
    again = dedupe_records.embed_table(records, config)  # every value is in the table now
    assert embedded[-1] == 0
    assert np.array_equal(again.rows(np.arange(len(few))), got[name])

    stored = spark.read.parquet(str(store)).toPandas()
    cache = embeddings.EmbeddingCache(tmp_path / "driver_cache", bf16=embeddings.uses_bf16("cpu", STRUCTURED.embed_precision))
    cache.put_many(stored["key"].tolist(), np.stack(stored["vector"].to_numpy()))

    def no_model(*args, **kwargs):
        raise AssertionError("the driver embedded a value the Spark table lacks")

    monkeypatch.setattr(embeddings, "_encode", no_model)
    for name, base in CONFIGS.items():
        config = dataclasses.replace(base, cache_dir=str(tmp_path / "driver_cache"))
        expected = prepare.embed(prepare.prepare_records(few, config), config)
        assert got[name].dtype == expected.dtype == np.float32
        assert np.array_equal(got[name], expected), name  # bit for bit


def test_embed_table_without_embeddings(spark, records):
    from aietl_pipelines.spark.dedupe_records import embed_table, prepare_table

    config = dataclasses.replace(STRUCTURED, use_embeddings=False)
    vectors = embed_table(prepare_table(records.iloc[:20], config), config)
    assert vectors.shape == (20, 0)
    assert vectors.rows(np.array([3, 1])).shape == (2, 0)


def test_numbered_rows_are_consecutive_in_partition_order(spark):
    """`record_tables.numbered`: 0..n-1 without gaps, in the order of the partitions and of the rows inside each,
    whatever the columns are called (a dot in a name)."""
    from aietl_pipelines.spark.record_tables import numbered

    frame = pd.DataFrame({"a.b": np.arange(50), "c": [f"r{i}" for i in range(50)]})
    parts = [spark.createDataFrame(frame.iloc[s:s + n], "`a.b` long, c string") for s, n in ((0, 7), (7, 0), (7, 30), (37, 13))]
    found = numbered(reduce(lambda a, b: a.union(b), parts).coalesce(4)).toPandas().sort_values("__row")
    assert found["__row"].tolist() == list(range(50))
    assert found["a.b"].tolist() == list(range(50)) and list(found.columns) == ["__row", "a.b", "c"]


def test_state_of_tables_is_written_by_spark_and_read_back_as_pandas(spark, tmp_path):
    """`state.save_state` of a state holding a `RecordsTable` and a `VectorsTable` (the Spark pipeline's
    `build_dedupe_state`): both written as parquet directories by Spark; `load_state` gives the frame of
    `prepare.prepare_records` (sets again frozensets) and the array, bit for bit."""
    from aietl_pipelines.dedupe.score import FellegiSunterModel
    from aietl_pipelines.dedupe.state import DedupeState, load_state, save_state
    from aietl_pipelines.spark.dedupe import vectors_table
    from aietl_pipelines.spark.dedupe_records import prepare_table
    from aietl_pipelines.spark.record_tables import VectorsTable

    people = generate_customers(n_entities=30, seed=2)
    text = pd.DataFrame({"record_id": people["record_id"],
                         "full_text": people["first_name"].fillna("") + " " + people["street"].fillna("")})
    model = FellegiSunterModel(names=["a"], sizes=[2], m=[np.array([0.1, 0.9])], u=[np.array([0.9, 0.1])], prior=0.01)
    for records, config in ((people, STRUCTURED), (text, TEXT)):
        table = prepare_table(spark.createDataFrame(records).coalesce(2), config)
        array = np.random.default_rng(0).standard_normal((len(records), 8)).astype(np.float32)
        vectors = VectorsTable(vectors_table(spark, array), len(records), 8)
        matches = pd.DataFrame({"left_id": pd.Series([], dtype=object), "right_id": pd.Series([], dtype=object),
                                "match_probability": np.zeros(0)})
        save_state(DedupeState(table, vectors, np.arange(len(records), dtype=np.float64), matches, model), tmp_path / "s")
        assert (tmp_path / "s" / "prepared.parquet").is_dir() and (tmp_path / "s" / "vectors.parquet").is_dir()
        state = load_state(tmp_path / "s")
        pd.testing.assert_frame_equal(state.prepared, prepare.prepare_records(records, config))
        assert np.array_equal(state.vectors, array) and state.vectors.dtype == np.float32


def test_bad_knn_method_on_tables_gives_the_pandas_error(spark):
    """Above `knn_exact_max`, a `knn_method` that is none of auto/exact/partitioned gets the pandas path's one line,
    also when the vectors are a `VectorsTable` (it has no rows to slice on the driver)."""
    from aietl_pipelines.spark.dedupe_tables import candidate_table
    from aietl_pipelines.spark.record_tables import records_table, vectors_of

    people = generate_customers(n_entities=10, seed=1)
    config = dataclasses.replace(STRUCTURED, knn_method="bogus", knn_exact_max=2, use_embeddings=True)
    prepared = records_table(spark, prepare.prepare_records(people, config))
    vectors = vectors_of(spark, np.eye(len(people), 8, dtype=np.float32))
    with pytest.raises(AietlInputError, match="knn_method must be auto, exact or partitioned"):
        candidate_table(spark, prepared, vectors, config)
