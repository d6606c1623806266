"""`dedupe_tables.levels_table` / `random_levels` from a prepared-records table joined to the pairs (no record
broadcast; the context counted on Spark) equal `scoring.pair_levels` over all the records (-m spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe import scoring
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.steps import PANDAS

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "phone": "phone",
          "email": "email", "date_of_birth": "date"}
PEOPLE = [  # other scripts: compared in their own script where both records have one (`_keep_scripts_apart`)
    ("ru-1", "Иван", "Петров", "ул. Ленина 5", "Москва", "+7 495 123 4567", 1),
    ("ru-2", "Иван", "Петров", "ул. Ленина 5", "Москва", "+7 495 123 4567", 1),
    ("ru-3", "Ivan", "Petrov", "ul. Lenina 5", "Moskva", "+7 495 123 4567", 1),
    ("zh-1", "伟", "王", "建国路88号", "北京", "010 6500 1111", 2),
    ("zh-2", "伟", "王", "建国路88号", "北京", "010 6500 1111", 2),
    ("zh-3", "娜", "李", "建国路88号", "北京", "010 6500 2222", 3),
    ("zh-4", "伟", "汪", "建国路88号", "北京", "010 6500 3333", 4),
    ("ar-1", "محمد", "علي", "شارع النيل 12", "القاهرة", "02 2345 6789", 5),
    ("ar-2", "محمد", "علي", "شارع النيل 12", "القاهرة", "02 2345 6789", 5),
    ("ar-3", "أحمد", "حسن", "شارع النيل 12", "القاهرة", "02 2345 9876", 6),
]


def _pairs(prepared: pd.DataFrame, truth: np.ndarray, rng: np.random.Generator, ids: tuple = ()) -> pd.DataFrame:
    """Every pair inside a true cluster (exact agreements: term-frequency bands, other scripts), random ones and
    the pairs of records `ids`."""
    n = len(prepared)
    same = [(a, b) for c in np.unique(truth) for a in np.flatnonzero(truth == c) for b in np.flatnonzero(truth == c)
            if a < b]
    pos = {r: i for i, r in enumerate(prepared["record_id"])}
    same += [(min(pos[a], pos[b]), max(pos[a], pos[b])) for a, b in ids]
    some = rng.integers(0, n, (3 * n, 2))
    pairs = np.unique(np.r_[np.array(same, dtype=np.int64).reshape(-1, 2), np.sort(some, axis=1)], axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pd.DataFrame({"e": np.arange(len(pairs), dtype=np.int64), "left": pairs[:, 0], "right": pairs[:, 1],
                         "cosine": rng.uniform(0.5, 1.0, len(pairs))})


def _check(spark, prepared, pairs, vectors, config, monkeypatch):
    from pyspark import SparkContext

    from aietl_pipelines.spark import dedupe_tables

    broadcast = []
    original = SparkContext.broadcast

    def recording(self, value):
        broadcast.append(value)
        return original(self, value)

    expected, names, sizes = scoring.pair_levels(prepared, pairs, vectors, config)
    sample = pairing.pairs_frame(scoring.random_pairs(len(prepared), config), vectors)
    expected_random, _, _ = scoring.pair_levels(prepared, sample, vectors, config)
    with monkeypatch.context() as patch:
        patch.setattr(SparkContext, "broadcast", recording)
        table, s_names, s_sizes, dtype = dedupe_tables.levels_table(
            spark, prepared, spark.createDataFrame(pairs), vectors, config, pairs_per_task=150)
        cols = dedupe_tables.level_columns(len(names))
        found = table.select("e", "left", "right", *cols).toPandas().sort_values("e", ignore_index=True)
        random = dedupe_tables.random_levels(spark, prepared, vectors, config, len(names), dtype)
    assert not broadcast  # no record (nor anything else) broadcast
    assert (s_names, s_sizes, dtype) == (names, sizes, expected.dtype)
    np.testing.assert_array_equal(found[["left", "right"]].to_numpy(), pairs[["left", "right"]].to_numpy())
    np.testing.assert_array_equal(found[cols].to_numpy().astype(dtype), expected)
    np.testing.assert_array_equal(random, expected_random)
    return expected, names


def test_structured_levels_from_the_table_equal_pandas(spark, monkeypatch):
    base = generate_customers(n_entities=120, seed=21).head(190)
    extra = pd.DataFrame([dict(zip(["record_id", "first_name", "last_name", "street", "city", "phone",
                                    "true_cluster_id"], p, strict=True)) for p in PEOPLE])
    extra["true_cluster_id"] += 10_000
    records = pd.concat([base[["record_id", *FIELDS, "true_cluster_id"]], extra], ignore_index=True)
    config = DedupeConfig(fields=FIELDS, use_embeddings=False, cosine_in_score=True, u_sample_pairs=300, seed=4,
                          blocking=[["phone"], ["first_name", "last_name"]])
    prepared = PANDAS.prepare(records, config)
    assert prepared["__original"].notna().sum() >= 9
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(len(prepared), 4)).astype(np.float32)  # only their width is read: cosine levels
    pairs = _pairs(prepared, records["true_cluster_id"].to_numpy(), rng, ids=(("zh-1", "zh-4"), ("ru-1", "zh-1")))
    levels, names = _check(spark, prepared, pairs, vectors, config, monkeypatch)
    assert (levels[:, names.index("last_name~tf")] > 1).any()  # bands other than "rare": counts matter
    # 王 / 汪 (both "wang"): the original script decides, a disagreement
    pos = {r: i for i, r in enumerate(prepared["record_id"])}
    row = pairs.index[(pairs["left"] == min(pos["zh-1"], pos["zh-4"])) & (pairs["right"] == max(pos["zh-1"], pos["zh-4"]))]
    assert levels[row[0], names.index("last_name")] == 4 and levels[row[0], names.index("first_name")] == 1


def test_free_text_levels_from_the_table_equal_pandas(spark, monkeypatch):
    people = generate_customers(n_entities=120, seed=13).head(200)
    records = pd.DataFrame({"record_id": people["record_id"], "text": people["full_text"]})
    records.loc[len(records)] = ["zh-x", "王伟 建国路88号 北京 010 6500 1111"]
    records.loc[len(records)] = ["zh-y", "汪伟 建国路88号 北京 010 6500 1111"]
    config = DedupeConfig(text_column="text", use_embeddings=False, u_sample_pairs=300, seed=4)
    prepared = PANDAS.prepare(records, config)
    vectors = np.zeros((len(prepared), 0), np.float32)
    truth = np.r_[people["true_cluster_id"].to_numpy(), [10_000, 10_000]]
    pairs = _pairs(prepared, truth, np.random.default_rng(3))
    levels, names = _check(spark, prepared, pairs, vectors, config, monkeypatch)
    assert "words~bits" in names and (levels[:, names.index("words~bits")] > 0).any()
