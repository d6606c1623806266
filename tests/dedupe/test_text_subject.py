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
    assert compare_column("repeated", [a, a, a, c], [a, b, c, c]).tolist() == [1, 2, 0, 0]


def test_the_subject_is_compared_in_free_text_and_told_from_a_co_author():
    """Two records of one inventor on different patents share the subject (level 1); the record of a co-inventor of
    the same patent holds that name only once, so the pair is level 2 although every name is shared."""
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
    assert levels[:, names.index("repeated")].tolist() == [1, 2]
