"""`kedro run --env spark --pipeline dedupe` with `customers_raw` a Spark table (conf/spark/catalog.yml): the Kedro
dedupe pipeline on a Spark DataFrame read from parquet gives the pandas pipeline's clusters, golden records and
metrics (-m spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}
BLOCKING = [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"],
            ["first_name", "last_name"]]


def _golden(frame: pd.DataFrame) -> pd.DataFrame:
    """Golden records as a frame sorted by cluster id, member ids as lists."""
    frame = frame.sort_values("cluster_id", ignore_index=True)
    return frame.assign(member_ids=frame["member_ids"].map(list), cluster_id=frame["cluster_id"].astype(np.int64),
                        cluster_size=frame["cluster_size"].astype(np.int64))


def test_pipeline_reads_the_records_as_a_spark_table(spark, tmp_path, run_dedupe_pipeline):
    """The records read by Spark from a parquet file pandas wrote (one file: Spark numbers its rows in the pandas
    order): the golden records come back as a Spark DataFrame written and read by SparkDatasetV2 as the env's
    catalog does, and equal the pandas pipeline's; the truth labels map by record id, so the metrics are equal."""
    from kedro_datasets.spark import SparkDatasetV2

    records = generate_customers(n_entities=50, seed=3)
    # microsecond timestamps: Spark does not read parquet's nanosecond ones (data_generation's Spark table has them)
    records.to_parquet(tmp_path / "customers.parquet", index=False, coerce_timestamps="us")
    params = {"fields": FIELDS, "blocking": BLOCKING, "truth_column": "true_cluster_id", "use_embeddings": False,
              "u_sample_pairs": 400, "cache_dir": str(tmp_path / "cache")}
    kept = ("dedupe_clusters", "dedupe_metrics", "golden_records")
    pandas_out = run_dedupe_pipeline(records, params, None, kept)
    table = spark.read.parquet(str(tmp_path / "customers.parquet"))
    golden = SparkDatasetV2(filepath=str(tmp_path / "golden"), file_format="parquet", save_args={"mode": "overwrite"})
    spark_out = run_dedupe_pipeline(table, {**params, "engine": "spark"}, None, kept)
    frame_class = type(spark.range(1))
    assert isinstance(spark_out["golden_records"], frame_class)  # not collected by the node
    golden.save(spark_out["golden_records"])  # as conf/spark/catalog.yml's golden_records writes it
    written = golden.load()
    assert isinstance(written, frame_class)

    pd.testing.assert_frame_equal(spark_out["dedupe_clusters"], pandas_out["dedupe_clusters"])
    expected = _golden(pandas_out["golden_records"])
    assert (expected["cluster_size"] > 1).any() and len(expected) < len(records)  # duplicates merged: not vacuous
    got = _golden(written.toPandas())
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert spark_out["dedupe_metrics"].keys() == pandas_out["dedupe_metrics"].keys()
    assert "f1" in pandas_out["dedupe_metrics"]
    for key, value in pandas_out["dedupe_metrics"].items():
        assert spark_out["dedupe_metrics"][key] == pytest.approx(value, rel=1e-9), key
