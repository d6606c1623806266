"""`dedupe.engine: spark` record-wise steps (prepare, embed, golden records) equal the pandas steps (-m spark)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.steps import PANDAS, steps_for
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.pipelines.dedupe import nodes

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}


@pytest.fixture(scope="module")
def records():
    return generate_customers(n_entities=60, seed=11)


def _configs(tmp_path, **extra) -> tuple[DedupeConfig, DedupeConfig]:
    base = DedupeConfig(fields=FIELDS, truth_column="true_cluster_id", **extra)
    return base, dataclasses.replace(base, engine="spark")


def test_prepare_on_spark_equals_pandas(spark, records, tmp_path, monkeypatch):
    from aietl_pipelines.spark import dedupe_records

    monkeypatch.setattr(dedupe_records, "RECORDS_PER_TASK", 40)  # several slices
    config, on_spark = _configs(tmp_path)
    expected = PANDAS.prepare(records, config)
    got = steps_for(on_spark).prepare(records, on_spark)
    assert len(expected) > 2 * 40
    pd.testing.assert_frame_equal(got, expected)
    doubled = pd.concat([records, records.iloc[[5]]], ignore_index=True)  # a duplicate id in another slice
    with pytest.raises(AietlInputError, match="Duplicate record ids"):
        steps_for(on_spark).prepare(doubled, on_spark)


def test_embed_on_spark_embeds_only_new_texts(spark, records, tmp_path):
    from aietl_pipelines.spark.dedupe_records import (
        EMBEDDING_TABLE,
        embed_new_texts,
        texts_to_embed,
    )

    config, on_spark = _configs(tmp_path, cache_dir=str(tmp_path / "pandas_cache"))
    on_spark = dataclasses.replace(on_spark, cache_dir=str(tmp_path / "spark_cache"))
    prepared = PANDAS.prepare(records, config)
    expected = PANDAS.embed(prepared, config)
    got = steps_for(on_spark).embed(prepared, on_spark)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, atol=1e-5)  # encoder batches differ: float noise only
    table = str(tmp_path / "spark_cache" / EMBEDDING_TABLE)
    texts = texts_to_embed(prepared, on_spark)
    assert spark.read.parquet(table).count() == len(texts)
    assert embed_new_texts(spark, texts, table, "cpu") == 0  # all cached
    assert embed_new_texts(spark, [*texts[:5], "zebra crossing lane", "quokka street"], table, "cpu") == 2
    assert spark.read.parquet(table).count() == len(texts) + 2


def test_golden_records_on_spark_equal_pandas(spark, records, tmp_path):
    """The `golden` step (pandas in and out) and the Kedro node on Spark (a Spark DataFrame, the records joined
    with the clusters by id) give the pandas node's golden records."""
    config, on_spark = _configs(tmp_path)
    clusters = pd.DataFrame({"record_id": records["record_id"].astype(str),
                             "cluster_id": pd.factorize(records["true_cluster_id"])[0]})
    expected = nodes.build_golden_records(records, clusters, config)
    assert (expected["cluster_size"] > 1).any()  # clusters of several records: survivorship chose
    fields, keep = nodes.golden_inputs(list(records.columns), config)
    frame = records[keep].astype({"record_id": str})
    got = steps_for(on_spark).golden(frame, clusters["cluster_id"], fields, "record_id", config.survivorship)
    pd.testing.assert_frame_equal(got, expected)
    table = nodes.build_golden_records(records, clusters, on_spark).toPandas()
    table = table.sort_values("cluster_id", ignore_index=True).assign(member_ids=lambda t: t["member_ids"].map(list))
    pd.testing.assert_frame_equal(table, expected)
