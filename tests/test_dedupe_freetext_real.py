"""Free text with entities of many records (issue 13): a prolific inventor's name is frequent, yet it is the
identity his records share, so it must stay among the words compared; labels and generic words still go."""

from aietl_pipelines.dedupe.prepare import common_words, label_words
from aietl_pipelines.dedupe.textparse import parse_text, text_pieces


def _records() -> list[str]:
    # one inventor with 30 of 100 records (his name in each, written either way round), 70 others living on
    # different streets; every record carries "born" beside a date and a street type
    texts = [f"Hiroyuki Mizuno | Tokyo | {n} Sakura Street | born 1970-01-{1 + n % 28:02d}" if n % 3 else
             f"Mizuno, Hiroyuki; Tokyo; {n} Sakura Street; born 1970-01-{1 + n % 28:02d}" for n in range(30)]
    texts += [f"Person{chr(97 + n % 26)}{n} Other{n} | City{n} | {n} Elm{n} Street | born 1980-02-{1 + n % 28:02d}"
              for n in range(70)]
    return texts


def test_pieces_keep_the_values_as_written():
    assert text_pieces("Mizuno, Hiroyuki | born 1970-01-02") == ("mizuno", "hiroyuki", "01 02 1970 born")
    assert parse_text("")["pieces"] == ()


def test_words_of_one_repeated_value_are_not_common():
    parsed = [parse_text(t) for t in _records()]
    common = common_words(parsed)
    assert {"mizuno", "hiroyuki"}.isdisjoint(common)  # the inventor's own name: one value, 30% of the records
    assert {"street", "born"} <= common  # beside a different value in every record
    assert "tokyo" in common  # a one-word value: as before, frequent single words are dropped


def test_a_value_in_most_records_stays_common():
    parsed = [parse_text(f"Shop {n}, New York, {n} Elm{n} Street") for n in range(40)]
    parsed += [parse_text(f"Shop b{n}, Boston, {n} Oak{n} Street") for n in range(10)]
    assert {"new", "york"} <= common_words(parsed)  # in 80% of the records: a label-like value, as label_words says
    assert {"new", "york"} <= label_words(parsed)
