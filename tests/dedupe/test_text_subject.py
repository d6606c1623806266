"""Free text's subject: a value the text states more than once (issue 13: free text on the patent inventors)."""

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.compare import compare_column, compare_pairs
from aietl_pipelines.dedupe.prepare import prepare_records
from aietl_pipelines.dedupe.scoring import comparison_kinds
from aietl_pipelines.dedupe.textparse import parse_text


def test_a_value_the_text_states_twice_is_its_subject():
    own = parse_text("Mizuno, Hiroyuki - Tokyo - JP - Renesas - Hiroyuki Mizuno, Kiyoo Itoh - G11C")
    assert own["repeated"] == frozenset({"hiroyuki mizuno"})  # "Mizuno, Hiroyuki" joined = "Hiroyuki Mizuno"
    coinventor = parse_text("Kiyoo Itoh, Tokyo, JP, Renesas, Hiroyuki Mizuno, Kiyoo Itoh, G11C")
    assert coinventor["repeated"] == frozenset({"itoh kiyoo"})
    # a value joined with a neighbour it contains repeats nothing ("3200 las vegas blvd" + "las vegas")
    assert parse_text("chins | 3200 las vegas blvd. s | las vegas | 702/733-8899 | asian")["repeated"] == frozenset()
    assert parse_text("John Smith, 12 Oak Street, Springfield")["repeated"] == frozenset()
    assert parse_text(None)["repeated"] == frozenset()


def test_repeated_levels_are_null_unless_both_texts_have_a_subject():
    a, b, c = frozenset({"hiroyuki mizuno"}), frozenset({"itoh kiyoo"}), frozenset()
    assert compare_column("repeated", [a, a, a, c], [a, b, c, c]).tolist() == [1, 4, 0, 0]


def test_a_variant_of_the_subject_s_name_is_told_from_another_subject():
    """One name with and without its middle initial agrees at level 2, a name a few letters apart at 3, two
    subjects disagree (4): one disagreement level made the variant cost as much as another person."""
    robert, kim = frozenset({"greenberg j robert"}), frozenset({"kim sic yu"})
    assert compare_column("repeated", [robert, kim, kim], [frozenset({"greenberg robert"}), frozenset({"kim yusic"}),
                                                         frozenset({"hoondong noh"})]).tolist() == [2, 3, 4]


def test_the_subject_is_compared_in_free_text_and_told_from_a_co_author():
    """Two records of one inventor on different patents share the subject (level 1); the record of a co-inventor of
    the same patent holds that name only once, so the pair disagrees (level 4) although every name is shared."""
    texts = ["Mizuno, Hiroyuki - Tokyo - Renesas - Hiroyuki Mizuno, Kiyoo Itoh - G11C",
             "Hiroyuki Mizuno | Kokubunji | Hitachi | Masaru Kokubo, Hiroyuki Mizuno | H04L",
             "Kiyoo Itoh; Tokyo; Renesas; Hiroyuki Mizuno, Kiyoo Itoh; G11C"]
    # other inventors, so that the names above are not in most records (words there are labels, `label_words`)
    texts += [f"{first} {last}, Osaka, {first} {last}, A61B" for first, last in
              [("Ann", "Lee"), ("Bo", "Li"), ("Carl", "Berg"), ("Dana", "Ruiz"), ("Eve", "Sato"), ("Finn", "Holm"),
               ("Gus", "Ito"), ("Hal", "Kim"), ("Ida", "Roth"), ("Jan", "Voss"), ("Kai", "Wu"), ("Lou", "Ng")]]
    config = engine.DedupeConfig(id_column="id", text_column="text", use_embeddings=False)
    prepared = prepare_records(pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}), config)
    assert "repeated" in comparison_kinds(config, prepared)
    levels, names, _ = compare_pairs({c: prepared[c].tolist() for c in ["repeated"]}, {"repeated": "repeated"},
                                     np.array([0, 0]), np.array([1, 2]))
    assert levels[:, names.index("repeated")].tolist() == [1, 4]


def test_texts_that_state_their_subject_score_their_context_once():
    """Where most texts state their subject, the word overlap is fitted but weighs nothing (`score.subject_unscored`):
    the subject is compared by `repeated`, the rest by the segments, which read the same words."""
    from aietl_pipelines.dedupe.score import fit_model, subject_unscored

    names = ["words", "words~bits", "segments", "repeated"]
    stated = np.array([[6, 0, 7, 4]] * 90 + [[6, 0, 7, 0]] * 10, dtype=np.int8)
    rarely = np.array([[6, 0, 7, 4]] * 10 + [[6, 0, 7, 0]] * 90, dtype=np.int8)
    assert subject_unscored(names, stated) == [0, 1]
    assert subject_unscored(names, rarely) == []
    assert subject_unscored(["words", "segments"], stated[:, :2]) == []
    rng = np.random.default_rng(0)
    match = np.array([[1, 5, 1, 1]] * 60 + [[2, 0, 2, 1]] * 40, dtype=np.int8)
    other = np.c_[rng.integers(5, 7, 300), np.zeros(300), rng.integers(5, 8, 300), np.full(300, 4)].astype(np.int8)
    model = fit_model(np.r_[match, other], stated, names, [7, 21, 8, 5])
    weights = model.weights()
    assert not weights[0].any() and not weights[1].any()
    assert weights[3][1] > 0 > weights[3][4]


def test_a_model_saved_with_fewer_repeated_levels_reads_the_new_ones_as_its_disagreement():
    from aietl_pipelines.dedupe.score import FellegiSunterModel

    old = FellegiSunterModel(["repeated"], [3], [np.array([1.0, 0.9, 0.1])], [np.array([1.0, 0.01, 0.99])], 0.1)
    weights = old.match_weight(np.array([[1], [2], [3], [4]], dtype=np.int8))
    assert weights[0] > weights[1] and weights[1] == weights[2] == weights[3]
