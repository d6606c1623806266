import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.dedupe import engine, normalize
from aietl_pipelines.dedupe.cluster import cluster_records
from aietl_pipelines.dedupe.evaluate import bcubed, pairwise_scores
from aietl_pipelines.dedupe.matcher import DEFAULT_MATCH_THRESHOLD, score_text_matches
from aietl_pipelines.dedupe.survivorship import build_golden_records
from aietl_pipelines.errors import AietlInputError


def test_normalizers():
    assert normalize.name("Jön  O'Neil") == "john o neil"
    assert normalize.street("123 Main St.") == "123 main street"
    assert normalize.digits("+1 (850) 544-6173") == "8505446173"
    assert normalize.date("19 Sep 1997") == normalize.date("1997-09-19") == normalize.date("09/19/1997") == "1997-09-19"
    assert normalize.email(" John@Example.COM ") == "john@example.com"
    assert normalize.fold(b"caf\xe9") == "caf"  # broken encodings are replaced, not fatal
    assert normalize.fold(None) is None and normalize.fold(float("nan")) is None


def test_guide_pair_is_a_duplicate_and_jane_is_not():
    query = "John Doe, 123 Main St, john@example.com"
    same, other = score_text_matches(query, ["Jon Doe, 123 Main Street, john@example.com", "Jane Dow, 9 Oak Avenue"])
    assert same >= DEFAULT_MATCH_THRESHOLD > other
    assert score_text_matches("John Doe, 123 Main St", ["Jane Dow, 9 Oak Avenue"])[0] < DEFAULT_MATCH_THRESHOLD


def test_chaining_guard_keeps_clusters_small():
    n = 30
    left, right = np.arange(n - 1), np.arange(1, n)  # one long chain of links
    prob = np.linspace(0.999, 0.995, n - 1)
    labels = cluster_records(n, left, right, prob, 0.99, max_cluster_size=5)
    assert np.bincount(labels).max() <= 5 and len(labels) == n
    assert np.bincount(cluster_records(n, left, right, prob, 0.99, max_cluster_size=100)).max() == n


def test_metrics_and_golden_records():
    truth = np.array([0, 0, 1, 2])
    assert pairwise_scores(np.array([0, 0, 1, 2]), truth)["f1"] == 1.0
    half = pairwise_scores(np.array([0, 0, 0, 2]), truth)
    assert half["precision"] == pytest.approx(1 / 3) and half["recall"] == 1.0
    assert bcubed(truth, truth)["bcubed_f1"] == 1.0
    records = pd.DataFrame({"id": ["a", "b", "c"], "name": ["Ann", None, "Bob"], "phone": [None, "123", "9"],
                            "updated_at": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-01"])})
    golden = build_golden_records(records, pd.Series([0, 0, 1]), ["name", "phone"], "id",
                                  {"order": ["completeness", "recency"], "recency_column": "updated_at"})
    assert golden.loc[0, "name"] == "Ann" and golden.loc[0, "phone"] == "123"  # fields survive from either record
    assert golden.loc[0, "member_ids"] == ["b", "a"] and golden["cluster_size"].tolist() == [2, 1]


def test_bad_input_is_clear():
    config = engine.DedupeConfig(id_column="id", fields={"name": "name"})
    with pytest.raises(AietlInputError, match="empty"):
        engine.prepare_records(pd.DataFrame(), config)
    with pytest.raises(AietlInputError, match=r"Declared column\(s\) \['name'\]"):
        engine.prepare_records(pd.DataFrame({"id": ["1"]}), config)
    with pytest.raises(AietlInputError, match="Duplicate record ids"):
        engine.prepare_records(pd.DataFrame({"id": ["1", "1"], "name": ["a", "b"]}), config)
    text = engine.DedupeConfig(id_column="id", text_column="t", use_embeddings=False)
    prepared = engine.prepare_records(pd.DataFrame({"id": ["1", "2", "3"], "t": [None, b"J\xf6rg, 1 Main St", ""]}), text)
    assert prepared["record_id"].tolist() == ["1", "2", "3"]  # null/empty/broken text is kept, not dropped
    result = engine.run(pd.DataFrame({"id": ["1", "2", "3"], "t": [None, "a b", ""]}), text)
    assert sorted(result.clusters["record_id"]) == ["1", "2", "3"]


def test_free_text_mode_ignores_structured_blocking_rules():
    config = engine.DedupeConfig(id_column="id", text_column="t", use_embeddings=False,
                                 blocking=[["last_name", "postcode"]], fields={"last_name": "name"})
    records = pd.DataFrame({"id": ["1", "2", "3"], "t": ["John Doe, 123 Main St, john@example.com",
                                                        "Jon Doe, 123 Main Street, john@example.com",
                                                        "Jane Dow, 9 Oak Avenue"]})
    pairs = engine.candidate_pairs(engine.prepare_records(records, config), np.zeros((3, 0)), config)
    assert [(a, b) for a, b in zip(pairs["left"], pairs["right"], strict=True)] == [(0, 1)]  # shared e-mail
