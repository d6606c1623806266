"""The prior is counted, not sampled: a fixed random sample of pairs sees no agreement on a rule whose share of
all pairs shrinks like 1/N, and the prior fell back to 1e-4, collapsing the F1 of 1M records to 0.26."""

import itertools

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.evaluate import pairwise_scores
from aietl_pipelines.dedupe.scoring import rule_agreement_rates
from aietl_pipelines.paths import project_root


def _sample_params() -> dict:
    import yaml

    return yaml.safe_load((project_root() / "conf/base/parameters_dedupe.yml").read_text())["dedupe"]


def test_rule_rates_are_exact_pair_counts():
    prepared = pd.DataFrame({"record_id": [str(i) for i in range(7)],
                             "first_name": ["ann", "ann", "ann", "bob", "bob", None, ""],
                             "last_name": ["lee", "lee", "kim", "lee", "lee", "lee", "lee"]})
    config = DedupeConfig(id_column="record_id", fields={"first_name": "name", "last_name": "name"},
                          blocking=[["first_name", "last_name"]], use_embeddings=False)
    rates = rule_agreement_rates(prepared, config)
    rows = prepared.to_dict("records")
    for rule in (["first_name", "last_name"], ["first_name"], ["last_name"]):
        present = [r for r in rows if all(r[c] not in (None, "") for c in rule)]
        pairs = list(itertools.combinations(present, 2))
        agree = sum(all(a[c] == b[c] for c in rule) for a, b in pairs)
        assert rates[tuple(sorted(rule))] == pytest.approx(agree / len(pairs))


@pytest.mark.slow
def test_prior_is_right_when_the_random_sample_sees_no_agreement():
    """20,000 records scored with 2,000 random pairs: the random sample holds about as few agreeing pairs per
    rule as 50,000 pairs of 1M records do. Counted rates keep the prior (and F1) right; sampled ones did not."""
    from aietl_pipelines.datagen.customers import generate_customers

    records = generate_customers(n_entities=10_500, seed=3).head(20_000)
    truth = pd.factorize(records["true_cluster_id"])[0]
    config = DedupeConfig.from_params({**_sample_params(), "use_embeddings": False, "u_sample_pairs": 2_000, "cache_dir": None})
    result = engine.run(records, config)
    counted = pairwise_scores(result.clusters["cluster_id"].to_numpy(), truth)
    n_true = sum(len(g) * (len(g) - 1) / 2 for g in pd.Series(truth).groupby(truth).groups.values())
    true_prior = n_true / (len(records) * (len(records) - 1) / 2)
    assert counted["f1"] > 0.98, counted
    assert 0.3 < result.model.prior / true_prior < 3, (result.model.prior, true_prior)

    from aietl_pipelines.dedupe.steps import steps_for
    steps = steps_for(config)
    prepared = steps.prepare(records, config)
    pairs, _ = steps.candidates(prepared, np.zeros((len(prepared), 0), np.float32), config)
    levels, random_levels, names, sizes = steps.compare(prepared, pairs, np.zeros((len(prepared), 0)), config)
    _, sampled = steps.score(levels, random_levels, names, sizes, config)  # no counted rates: the old way
    assert sampled.prior == 1e-4  # the sample held too few agreeing pairs: the fallback that broke 1M records


@pytest.mark.parametrize(("a", "b"), [("12738800436", "2738800436"), ("+44 20 7946 0958", "020 7946 0958"),
                                      ("+33 1 23 45 67 89", "01 23 45 67 89"), ("310/246-1501", "(310) 246 1501")])
def test_a_phone_with_and_without_its_country_code_is_one_block(a, b):
    """Missed pairs at 100K records were mostly one phone written with and without its country code: the block
    key is the phone's trailing digits (the comparison still reads all of them)."""
    from aietl_pipelines.dedupe.steps import steps_for

    records = pd.DataFrame({"id": ["1", "2", "3"], "name": ["ann lee", "ann lee", "bob kim"],
                            "phone": [a, b, "555 0100"]})
    config = DedupeConfig(id_column="id", fields={"name": "name", "phone": "phone"}, blocking=[["phone"]],
                          use_embeddings=False, cache_dir=None)
    steps = steps_for(config)
    prepared = steps.prepare(records, config)
    pairs, _ = steps.candidates(prepared, np.zeros((3, 0), np.float32), config)
    assert {(0, 1)} == set(zip(pairs["left"].tolist(), pairs["right"].tolist(), strict=True))
    assert prepared["phone"].tolist()[:2] != [None, None]  # the compared values keep every digit
    assert rule_agreement_rates(prepared, config)[("phone",)] == pytest.approx(1 / 3)
