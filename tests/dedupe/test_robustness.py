"""Issue 13 robustness: free-text state, other scripts, weak-link splits, dropped blocks, ids, bad text."""

import logging

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.datasets import DedupeStateDataset, TableDataset
from aietl_pipelines.dedupe import engine, normalize
from aietl_pipelines.dedupe.cluster import cluster_records, cluster_with_components
from aietl_pipelines.dedupe.config import DedupeConfig, project_root
from aietl_pipelines.dedupe.scoring import pair_levels
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.pipelines.dedupe import create_pipeline
from aietl_pipelines.pipelines.dedupe_incremental import create_pipeline as create_incremental

BASE = yaml.safe_load((project_root() / "conf/base/parameters_dedupe.yml").read_text())["dedupe"]
SAMPLE_FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "phone": "phone"}


def _run_pipeline(pipeline, datasets):
    return SequentialRunner().run(pipeline, DataCatalog(datasets))


def test_free_text_run_saves_and_reuses_its_state_on_a_users_csv(tmp_path):
    records = generate_customers(n_entities=80, seed=4)
    user = pd.DataFrame({"id": np.arange(len(records)), "full_text": records["full_text"]})  # int ids, as a CSV reads
    user.iloc[:-10].to_csv(tmp_path / "mine.csv", index=False)
    user.iloc[-10:].to_csv(tmp_path / "new.csv", index=False)
    params = {**BASE, "id_column": "id", "text_column": "full_text", "use_embeddings": False,
              "cache_dir": str(tmp_path / "cache")}
    state = DedupeStateDataset(path=str(tmp_path / "state"))
    out = _run_pipeline(create_pipeline(), {"customers_raw": TableDataset(str(tmp_path / "mine.csv")),
                                            "params:dedupe": MemoryDataset(params), "dedupe_state": state})
    golden = out["golden_records"].load()
    assert sorted(int(m) for ids in golden["member_ids"] for m in ids) == list(range(len(user) - 10))
    assert golden["cluster_size"].max() > 1
    loaded = state.load()  # the frozenset column survives the parquet round trip
    assert isinstance(loaded.prepared["numbers"].iloc[0], frozenset)
    later = _run_pipeline(create_incremental(), {
        "customers_new": TableDataset(str(tmp_path / "new.csv")), "dedupe_state": state,
        "dedupe_state_updated": DedupeStateDataset(path=str(tmp_path / "state")), "params:dedupe": MemoryDataset(params)})
    clusters = later["dedupe_clusters_updated"].load()
    assert sorted(clusters["record_id"].astype(int)) == list(range(len(user)))


def test_other_scripts_are_transliterated_not_erased():
    assert normalize.name("Иван Петров") == normalize.name("Ivan Petrov") == "ivan petrov"
    assert normalize.name("王伟") == "wang wei" and normalize.name("محمد علي")
    assert normalize.street("Hauptstraße 5") == "hauptstrasse 5"
    assert normalize.name("Γιώργος") == "giorgos"


def _with_people(extra: list[dict]) -> pd.DataFrame:
    base = generate_customers(n_entities=150, seed=8)[["record_id", *SAMPLE_FIELDS, "true_cluster_id"]]
    rows = pd.DataFrame(extra)
    rows["true_cluster_id"] = rows["true_cluster_id"] + 10_000
    return pd.concat([base, rows], ignore_index=True)


def test_non_latin_records_match_across_scripts_and_different_people_stay_apart():
    people = [  # (id, first, last, street, city, phone, true person)
        ("ru-1", "Иван", "Петров", "ул. Ленина 5", "Москва", "+7 495 123 4567", 1),
        ("ru-2", "Иван", "Петров", "ул. Ленина 5", "Москва", "+7 495 123 4567", 1),   # identical
        ("ru-3", "Ivan", "Petrov", "ul. Lenina 5", "Moskva", "+7 495 123 4567", 1),   # Latin form
        ("zh-1", "伟", "王", "建国路88号", "北京", "010 6500 1111", 2),
        ("zh-2", "伟", "王", "建国路88号", "北京", "010 6500 1111", 2),
        ("zh-3", "娜", "李", "建国路88号", "北京", "010 6500 2222", 3),                  # other person, one address
        ("zh-4", "伟", "汪", "建国路88号", "北京", "010 6500 3333", 4),                  # same pinyin, other name
        ("ar-1", "محمد", "علي", "شارع النيل 12", "القاهرة", "02 2345 6789", 5),
        ("ar-2", "محمد", "علي", "شارع النيل 12", "القاهرة", "02 2345 6789", 5),
        ("ar-3", "أحمد", "حسن", "شارع النيل 12", "القاهرة", "02 2345 9876", 6),
    ]
    extra = [dict(zip(["record_id", *SAMPLE_FIELDS, "true_cluster_id"], p, strict=True)) for p in people]
    records = _with_people(extra)
    config = DedupeConfig(fields=SAMPLE_FIELDS, use_embeddings=False,
                          blocking=[["phone"], ["first_name", "last_name"], ["street"]])
    prepared = engine.prepare_records(records, config)
    assert prepared["first_name"].notna().all() and prepared["last_name"].notna().all()
    result = engine.run(records, config)
    cluster = dict(zip(result.clusters["record_id"], result.clusters["cluster_id"], strict=True))
    assert cluster["ru-1"] == cluster["ru-2"] == cluster["ru-3"]
    assert cluster["zh-1"] == cluster["zh-2"] and cluster["ar-1"] == cluster["ar-2"]
    assert cluster["zh-1"] != cluster["zh-3"]
    # different names at one address disagree on their names (they were both empty before); 王 and 汪 are both
    # "wang": within one script the original decides (a disagreement, not an exact match)
    pos = {r: i for i, r in enumerate(result.prepared["record_id"])}
    pair = pd.DataFrame({"left": [pos["zh-1"], pos["ar-1"], pos["zh-1"]], "right": [pos["zh-3"], pos["ar-3"], pos["zh-4"]],
                         "cosine": np.nan})
    levels, names, _ = pair_levels(result.prepared, pair, np.zeros((len(records), 0)), config)
    first, last, street = (names.index(c) for c in ("first_name", "last_name", "street"))
    assert levels[:, street].tolist() == [1, 1, 1] and levels[:2, last].tolist() == [4, 4]
    assert levels[0, first] == 4 and levels[1, first] > 1
    assert levels[2, first] == 1 and levels[2, last] == 4


def test_structured_embedding_text_keeps_the_original_script():
    config = DedupeConfig(id_column="id", fields={"name": "name"}, use_embeddings=False)
    prepared = engine.prepare_records(pd.DataFrame({"id": ["1"], "name": ["Иван Петров"]}), config)
    assert prepared["__text"].iloc[0] == "ivan petrov иван петров"


def test_a_real_entity_of_1000_records_stays_one_cluster_and_chains_are_cut(caplog):
    rng = np.random.default_rng(0)
    n = 1000  # one person: every record linked to 10 others (as kNN finds them), all sure matches
    left = np.repeat(np.arange(n), 10)
    right = rng.integers(0, n, n * 10)
    right[:10] = np.arange(1, 11)
    labels = cluster_records(n, left, right, np.full(len(left), 0.9999), 0.99)
    assert np.bincount(labels).max() == n
    # two people of 50 records each, joined by one weak link, with their cross pairs scored as non-matches
    a, b = np.arange(50), np.arange(50, 100)
    inside = [(i, j, 0.9999) for grp in (a, b) for i in grp for j in grp if i < j and (j - i) % 7 == 1]
    bridge = [(49, 50, 0.995)]
    against = [(int(i), int(j), 1e-4) for i, j in zip(rng.choice(a, 30), rng.choice(b, 30), strict=True)]
    edges = np.array(inside + bridge + against)
    with caplog.at_level(logging.WARNING):
        labels, components = cluster_with_components(100, edges[:, 0].astype(int), edges[:, 1].astype(int),
                                                     edges[:, 2], 0.99)
    assert len(set(components)) == 1 and len(set(labels[a])) == 1 and len(set(labels[b])) == 1
    assert labels[0] != labels[99]
    assert "Split 1 match component" in caplog.text


def test_oversized_blocks_and_splits_are_counted(caplog):
    records = pd.DataFrame({"id": [f"r{i}" for i in range(150)], "name": ["Ann Lee"] * 150})
    config = DedupeConfig(id_column="id", fields={"name": "name"}, use_embeddings=False, max_block_size=100)
    with caplog.at_level(logging.WARNING):
        result = engine.run(records, config)
    assert result.metrics["n_dropped_blocks"] == 1 and result.metrics["n_records_in_dropped_blocks"] == 150
    assert "max_block_size=100 (150 records)" in caplog.text  # logged, whatever is done with the block
    assert len(result.pairs) == 150 - 1 + 150 - 2 + 150 - 3 + 150 - 4  # windows of 5, not dropped (docs/scale.md)
    assert "n_split_components" in result.metrics
    assert sorted(result.clusters["record_id"]) == sorted(records["id"])


def test_mixed_id_types_are_rejected_in_one_line():
    config = DedupeConfig(id_column="id", fields={"name": "name"}, use_embeddings=False)
    with pytest.raises(AietlInputError, match="mix text and numbers") as err:
        engine.prepare_records(pd.DataFrame({"id": [1, "1"], "name": ["Ann", "Bob"]}, dtype=object), config)
    assert "\n" not in str(err.value)


def test_lone_surrogate_in_text_is_embedded(tmp_path):
    records = pd.DataFrame({"id": ["1", "2", "3"],
                            "t": ["John Doe\ud800, 1 Main St", "John Doe, 1 Main St", "Jane Roe, 9 Oak Ave"]})
    config = DedupeConfig(id_column="id", text_column="t", cache_dir=str(tmp_path))
    result = engine.run(records, config)
    assert sorted(result.clusters["record_id"]) == ["1", "2", "3"]
    structured = DedupeConfig(id_column="id", fields={"t": "name"}, cache_dir=str(tmp_path))
    assert len(engine.run(records, structured).clusters) == 3


def test_pandas_3_missing_values_are_none_for_the_comparisons():
    records = generate_customers(n_entities=40, seed=2)
    records.loc[::3, "street"] = None
    with pd.option_context("future.infer_string", True):
        frame = pd.DataFrame({c: records[c].tolist() for c in records.columns})
        assert str(frame["street"].dtype) == "str"
        result = engine.run(frame, DedupeConfig(fields=SAMPLE_FIELDS, use_embeddings=False))
        text = engine.run(frame, DedupeConfig(text_column="full_text", use_embeddings=False))
    assert len(result.clusters) == len(text.clusters) == len(records)
