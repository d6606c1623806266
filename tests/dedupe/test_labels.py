"""Labelled mode: active learning with a labeler, labels saved and reused by the service, the pipeline and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from aietl_pipelines.dedupe.config import project_root
from aietl_pipelines.dedupe.evaluate import pairwise_scores
from aietl_pipelines.dedupe.febrl import load_febrl
from aietl_pipelines.dedupe.label_cli import dedupe_label
from aietl_pipelines.dedupe.labels import (
    PairsInMemory,
    choose_next,
    fit_labelled,
    load_labels,
    save_labels,
    threshold_from_labels,
    uncertainty,
)
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.pipelines.dedupe import create_pipeline
from aietl_pipelines.services import deduplicate_customers, train_dedupe_with_labels

# fewer fields than FEBRL offers: the unsupervised model is unsure about many pairs, so labels have work to do
FIELDS = {"given_name": "name", "surname": "name", "suburb": "text", "state": "state"}
BLOCKING = [["surname"], ["given_name", "state"]]


@pytest.fixture(scope="module")
def febrl():
    return load_febrl(1).head(600).reset_index(drop=True)


def _f1(golden: pd.DataFrame, records: pd.DataFrame) -> float:
    cluster = {m: c for c, ids in zip(golden["cluster_id"], golden["member_ids"], strict=True) for m in ids}
    predicted = pd.factorize(records["rec_id"].astype(str).map(cluster))[0]
    return pairwise_scores(predicted, records["true_cluster_id"].to_numpy())["f1"]


@pytest.fixture(scope="module")
def labelled(febrl):
    truth = dict(zip(febrl["rec_id"].astype(str), febrl["true_cluster_id"], strict=True))
    shown = []

    def oracle(left, right):
        shown.append((left, right))
        if len(shown) == 3:
            return None  # unsure: recorded, not counted
        return truth[str(left["rec_id"])] == truth[str(right["rec_id"])]

    labels = train_dedupe_with_labels(febrl, oracle, id_column="rec_id", fields=FIELDS, blocking=BLOCKING,
                                      use_embeddings=False, max_labels=12)
    return labels, shown


def test_labels_are_chosen_answered_and_returned(labelled):
    labels, shown = labelled
    assert len(labels) == len(shown) == 13 and sum(x["match"] is None for x in labels) == 1
    assert {True, False} <= {x["match"] for x in labels}  # uncertainty sampling finds both answers
    assert set(shown[0][0]) == {"rec_id", *FIELDS}
    pairs = {(x["left_id"], x["right_id"]) for x in labels}
    assert len(pairs) == len(labels)  # never asked twice


def test_labels_improve_the_model_and_are_reused_from_a_file(febrl, labelled, tmp_path):
    labels, _ = labelled
    base = deduplicate_customers(febrl, id_column="rec_id", fields=FIELDS, blocking=BLOCKING, use_embeddings=False)
    with_labels = deduplicate_customers(febrl, id_column="rec_id", fields=FIELDS, blocking=BLOCKING,
                                        use_embeddings=False, labels=labels)
    assert _f1(with_labels, febrl) >= _f1(base, febrl)
    save_labels(labels, tmp_path / "labels.json")
    assert load_labels(tmp_path / "labels.json") == json.loads(json.dumps(labels, default=str))
    from_file = deduplicate_customers(febrl, id_column="rec_id", fields=FIELDS, blocking=BLOCKING,
                                      use_embeddings=False, labels=tmp_path / "labels.json")
    assert sorted(map(sorted, from_file["member_ids"])) == sorted(map(sorted, with_labels["member_ids"]))
    # the pipeline reads the same labels through dedupe.labels_path
    params = yaml.safe_load((project_root() / "conf/base/parameters_dedupe.yml").read_text())["dedupe"]
    params.update(id_column="rec_id", fields=FIELDS, blocking=BLOCKING, use_embeddings=False, truth_column=None,
                  labels_path=str(tmp_path / "labels.json"))
    out = SequentialRunner().run(create_pipeline(), DataCatalog(
        {"customers_raw": MemoryDataset(febrl), "params:dedupe": MemoryDataset(params)}))
    piped = out["golden_records"].load()
    assert sorted(map(sorted, piped["member_ids"])) == sorted(map(sorted, with_labels["member_ids"]))


def test_a_labelled_pair_is_certain(febrl, labelled):
    labels, _ = labelled
    no = next(x for x in labels if x["match"] is False)
    forced = [{"left_id": no["left_id"], "right_id": no["right_id"], "match": True}]
    golden = deduplicate_customers(febrl, id_column="rec_id", fields=FIELDS, blocking=BLOCKING,
                                   use_embeddings=False, labels=forced)
    together = [ids for ids in golden["member_ids"] if no["left_id"] in ids]
    assert no["right_id"] in together[0]


def test_threshold_and_model_from_labels():
    answers = np.array([False, False, True, True])
    assert 0.2 < threshold_from_labels(np.array([0.1, 0.2, 0.7, 0.9]), answers) < 0.7
    assert threshold_from_labels(np.array([0.6, 0.65, 0.8, 0.9]), answers) == pytest.approx(0.725)
    levels = np.array([[1], [1], [1], [2], [3], [3], [3], [2]])
    truth = np.array([True, True, True, True, False, False, False, False])
    assert fit_labelled(levels[:3], [4], np.zeros(3), truth[:3]) is None  # one answer only: nothing to learn
    model = fit_labelled(levels, [4], np.array([9.0, 9, 9, 1, -9, -9, -9, 1]), truth)
    p = model.probability(np.array([[1], [3]]), np.array([9.0, -9.0]))
    assert p[0] > model.threshold > p[1]


def test_bad_labels_are_clear(tmp_path):
    (tmp_path / "bad.json").write_text('[{"left_id": 1}]')
    with pytest.raises(AietlInputError, match="needs left_id, right_id and match"):
        load_labels(tmp_path / "bad.json")
    with pytest.raises(AietlInputError, match="does not exist"):
        load_labels(tmp_path / "missing.json")


def test_cli_asks_in_the_terminal_and_writes_the_labels_file(febrl, tmp_path):
    febrl[["rec_id", *FIELDS, "true_cluster_id"]].head(300).to_csv(tmp_path / "people.csv", index=False)
    out = tmp_path / "labels.json"
    result = CliRunner().invoke(dedupe_label, ["--input", str(tmp_path / "people.csv"), "--id-column", "rec_id",
                                               "--fields", ",".join(f"{c}:{k}" for c, k in FIELDS.items()),
                                               "--out", str(out), "--max-labels", "3"], input="y\nu\nn\ny\n")
    assert result.exit_code == 0, result.output
    assert "Same entity?" in result.output and "labels in all" in result.output
    saved = load_labels(out)
    assert [x["match"] for x in saved] == [True, None, False, True]
    again = CliRunner().invoke(dedupe_label, ["--input", str(tmp_path / "people.csv"), "--id-column", "rec_id",
                                              "--fields", ",".join(f"{c}:{k}" for c, k in FIELDS.items()),
                                              "--out", str(out), "--max-labels", "2"], input="n\nq\n")
    assert again.exit_code == 0, again.output
    assert len(load_labels(out)) == 5  # earlier answers kept, the new one added, `q` stops and saves


def test_the_next_pair_by_pattern_is_the_next_pair_by_pair():
    """`PairsInMemory.next_pair` (scores per comparison pattern, what an engine's `Steps.label_pairs` implements
    too) asks the pair `choose_next` picks from every pair's probability: least sure first, records not shown
    first, ties by the pairs' (left, right) order, asked pairs skipped, a shown record's pair as the fallback."""
    rng = np.random.default_rng(3)
    patterns = np.array([[0, 1], [1, 1], [2, 0], [2, 2]], dtype=np.int8)
    probability = np.array([0.5, 0.9, 0.5, 0.01])  # two patterns tie exactly
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, 30, (200, 2)) if a < b})
    left, right = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
    pattern = rng.integers(0, len(patterns), len(pairs))
    found = PairsInMemory(pd.DataFrame({"record_id": [str(k) for k in range(30)]}), patterns, [3, 3],
                          np.zeros(len(patterns)), probability, left, right, pattern)
    asked: set[tuple[int, int]] = set()
    seen: set[int] = set()
    for _ in range(25):  # past the point where every record was shown: the fallback too
        chosen = found.next_pair(uncertainty(probability), asked, seen)
        e = choose_next(probability[pattern], left, right, {pairs.index(p) for p in asked}, seen)
        assert chosen == (int(left[e]), int(right[e]), int(pattern[e]))
        asked.add(chosen[:2])
        seen.update(chosen[:2])
    assert found.patterns_of([pairs[5], (0, 29) if (0, 29) not in pairs else (29, 30)]) == {pairs[5]: pattern[5]}
