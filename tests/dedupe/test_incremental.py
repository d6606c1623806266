"""Incremental dedupe against a saved state, and the kNN search it relies on."""

import numpy as np
import pandas as pd
import pytest
import yaml

from aietl_pipelines import embeddings
from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.candidates import knn_search
from aietl_pipelines.dedupe.evaluate import pairwise_scores
from aietl_pipelines.dedupe.prepare import embedded_values
from aietl_pipelines.errors import AietlInputError


@pytest.fixture(scope="module")
def records():
    frame = generate_customers(n_entities=300, seed=11).sample(frac=1.0, random_state=3).reset_index(drop=True)
    return frame.iloc[:450].reset_index(drop=True), frame.iloc[450:520].reset_index(drop=True)


def _config(tmp_path):
    params = yaml.safe_load(open("conf/base/parameters_dedupe.yml"))["dedupe"]
    return engine.DedupeConfig.from_params({**params, "cache_dir": str(tmp_path / "cache")})


def test_incremental_embeds_only_new_records_and_matches_a_full_run(tmp_path, records, monkeypatch):
    base, new = records
    config = _config(tmp_path)
    first = engine.run(base, config, keep_state=True)
    engine.save_state(first.state, tmp_path / "state")

    seen = []
    original = embeddings._encode
    monkeypatch.setattr(embeddings, "_encode", lambda texts, *a, **k: (seen.extend(texts), original(texts, *a, **k))[1])
    result = engine.run_incremental(new, engine.load_state(tmp_path / "state"), config)

    def values(prepared):  # what records are embedded from: the words of their field values
        return set(embedded_values(prepared, config)[1])

    assert set(seen) == values(engine.prepare_records(new, config)) - values(first.prepared)  # only new values
    assert result.pairs[["left", "right"]].max(axis=1).min() >= len(base)  # only pairs with a new record
    ids = pd.concat([base["record_id"], new["record_id"]]).astype(str).tolist()
    assert result.clusters["record_id"].tolist() == ids  # every record, old and new, in one cluster
    truth = pd.factorize(pd.concat([base["true_cluster_id"], new["true_cluster_id"]]))[0]
    full = engine.run(pd.concat([base, new], ignore_index=True), config)
    incremental_f1 = pairwise_scores(result.clusters["cluster_id"].to_numpy(), truth)["f1"]
    full_f1 = pairwise_scores(full.clusters["cluster_id"].to_numpy(), truth)["f1"]
    assert incremental_f1 >= 0.97 and incremental_f1 >= full_f1 - 0.01
    # a new record that copies an old one joins the old record's cluster
    copy = base.iloc[[5]].assign(record_id="copy-of-5", source="web")
    again = engine.run_incremental(copy, result.state, config)
    labels = dict(zip(again.clusters["record_id"], again.clusters["cluster_id"], strict=True))
    assert labels["copy-of-5"] == labels[str(base["record_id"].iloc[5])]


def test_incremental_bad_input(tmp_path, records):
    base, new = records
    config = _config(tmp_path)
    state = engine.run(base.iloc[:100], config, keep_state=True).state
    with pytest.raises(AietlInputError, match="already in the earlier run"):
        engine.run_incremental(base.iloc[:3], state, config)
    with pytest.raises(AietlInputError, match="run the full dedupe pipeline first"):
        engine.load_state(tmp_path / "nothing-here")


def test_knn_search_bf16_finds_the_float32_neighbours():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1500, 384)).astype(np.float32)
    vectors = np.concatenate([base, base + 0.15 * rng.normal(size=base.shape).astype(np.float32)])  # twins
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    twin = np.r_[np.arange(1500, 3000), np.arange(1500)]
    top32, cos32, _ = knn_search(vectors, vectors, 5, block=512, precision="float32", self_offset=0)
    top16, cos16, _ = knn_search(vectors, vectors, 5, block=512, precision="bfloat16", self_offset=0)
    assert not (top16 == np.arange(3000)[:, None]).any()  # never its own neighbour
    assert (top32[:, 0] == twin).all() and (top16[:, 0] == twin).mean() > 0.999
    exact = np.einsum("id,ikd->ik", vectors, vectors[top16])
    np.testing.assert_allclose(cos16, exact, rtol=1e-5, atol=1e-6)  # returned scores are float32-exact
    assert abs(float(cos16.mean() - cos32.mean())) < 2e-3
