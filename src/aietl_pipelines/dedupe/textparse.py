"""Comparable parts of a free-text record ("John Doe, 123 Main St, john@example.com")."""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

from aietl_pipelines.dedupe import normalize

#: Local part and labels bounded (RFC 5321: 64 / 63 characters) and the match anchored at the start of a run: the
#: unbounded form tried every position of a long run of letters or digits without '@' to its end, 0.85 s for a
#: 10,000-character word (the API's longest text). Same matches as the unbounded form on the 38,763 free texts of
#: benchmarks/duplicates_quality.py.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}\s*@\s*[\w-]{1,63}(?:\.[\w-]{1,63})+")
DATE = re.compile(r"\b(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{1,2} [A-Za-z]{3,9} \d{4})\b")
PHONE = re.compile(r"\+?\(?\d(?:(?:[ ./-]|\)\s?|\s?\()?\d){8,14}")
NUMBER = re.compile(r"\d+")
WORD = re.compile(r"[a-z]+")
#: Where one field of a record's text ends and the next begins: , ; | and a spaced dash or slash.
SEPARATOR = re.compile(r"\s*[,;|]\s*|\s+[-/]\s+")
SEGMENT_WORD = re.compile(r"[a-z0-9]+")
#: The parsed parts and the comparison kind each is compared with (compare.py).
TEXT_KINDS = {"words": "tokens", "segments": "segments", "email": "email", "phone": "phone", "date": "date",
              "numbers": "numbers", "repeated": "repeated"}
#: Parts read from the same characters of the text (segments hold the words and the digits): an EM session blocked
#: on one leaves the others out (score.py). A repeated value is one of the segments, so a pair sharing it shares a
#: segment by construction; the words' overlap is set by the whole text, of which the shared value is a part, so the
#: session on repeated values estimates the words and numbers (inventors free text 0.946; 0.939 with the words left
#: out of it too; the other sets unchanged: docs/dedupe.md).
TEXT_RELATED = {"words": ["segments"], "segments": ["words", "numbers", "repeated"], "numbers": ["segments"],
                "repeated": ["segments"]}
#: Free text that states its subject: the comparison of the values a text repeats (`repeated_values`), the share of
#: the random pairs in which both texts repeat one at or above which the text is taken to state its subject, and
#: the comparisons then fitted but not scored (`score.subject_unscored`): the subject is compared by `repeated`, the
#: rest of the text by its segments, and the word overlap, read from the same words as both, counted the text's
#: context twice (PatentsView inventors: two Samsung inventors of Suwon, +11.9 bits from the words and +8.5 from the
#: segments, against -6.6 for the two names).
TEXT_SUBJECT = "repeated"
SUBJECT_SHARE = 0.5
SUBJECT_UNSCORED = ("words",)


def text_segments(rest: str) -> frozenset[str]:
    """The field values of a record's text (what lies between separators), each as its sorted folded words
    (nicknames mapped: "Smith, Bob" and "robert smith" give the same), plus each two neighbouring values joined
    (a name written "Smith, John" is split by its comma; joined, it equals "John Smith")."""
    return _segments(_piece_words(rest))


def repeated_values(rest: str) -> frozenset[str]:
    """The field values a text states more than once (as `text_segments` writes them: a value and each two
    neighbouring values joined, so "Mizuno, Hiroyuki" and "Hiroyuki Mizuno" are one value): what the text is about.
    A record names its subject in more than one place (an inventor in the name and in the patent's inventor list, a
    company in its name and its e-mail's domain), a field it merely mentions (a co-inventor, a city) once: the
    term frequency of a value within its record, as TF-IDF weighs a word a document repeats."""
    return _repeated(_piece_words(rest))


def _joined(pieces: list[list[str]]) -> list[list[str]]:
    """The words of each two neighbouring values together."""
    return [sorted(set(a) | set(b)) for a, b in zip(pieces, pieces[1:], strict=False)]


def _segments(pieces: list[list[str]]) -> frozenset[str]:
    return frozenset(" ".join(w) for w in [*pieces, *_joined(pieces)])


def _repeated(pieces: list[list[str]]) -> frozenset[str]:
    # a joined value equal to one of its two values ("3200 las vegas blvd" + "las vegas") repeats nothing
    joined = [w for w, a, b in zip(_joined(pieces), pieces, pieces[1:], strict=False) if w != a and w != b]
    counts = Counter(" ".join(w) for w in [*pieces, *joined])
    return frozenset(v for v, n in counts.items() if n >= 2)


def _piece_words(text: str) -> list[list[str]]:
    """Each non-empty field value of `text` (between separators) as its sorted folded words, nicknames mapped."""
    pieces = []
    for piece in SEPARATOR.split(text):
        folded = normalize.street(piece) or ""
        words = sorted({normalize.NICKNAMES.get(w, w) for w in SEGMENT_WORD.findall(folded)})
        if words:
            pieces.append(words)
    return pieces


def text_pieces(text: str) -> tuple[str, ...]:
    """The field values of the whole text as written (e-mail, phone and date left in), each as its sorted folded
    words and digit groups: what `prepare.common_words` reads to tell a label ("born 1956 04 09", "main street")
    from a word of one repeated value ("hiroyuki mizuno")."""
    return tuple(" ".join(words) for words in _piece_words(text))


class Identifiers(NamedTuple):
    """What a text states that is compared exactly: e-mail, phone and date (normalised), its other digit groups,
    and the rest of the text with the e-mail, date and phone taken out."""

    email: str | None
    phone: str | None
    date: str | None
    numbers: frozenset[str]
    rest: str


def identifiers(text: str) -> Identifiers:
    """The e-mail, date and phone of `text`, each taken out before the next is looked for, then its numbers
    (the one reading of them shared by `parse_text`, `prepare.embedding_pieces` and the vector search service)."""
    email_match = EMAIL.search(text)
    email = normalize.email(email_match.group(0)) if email_match else None
    rest = EMAIL.sub(" ", text)
    date_match = DATE.search(rest)
    date = normalize.date(date_match.group(0)) if date_match else None
    rest = DATE.sub(" ", rest)
    phone_match = PHONE.search(rest)
    phone = normalize.phone(phone_match.group(0)) if phone_match else None
    rest = PHONE.sub(" ", rest)
    numbers = set(NUMBER.findall(rest))
    if date:  # compact dates (19560409) read as a number; count them as the date only
        numbers.discard(date.replace("-", ""))
    return Identifiers(email, phone, date, frozenset(numbers), rest)


def parse_text(text: str | None) -> dict[str, object]:
    """email, phone, date, numbers (set of digit groups), words (normalised name/address words), segments (the
    field values between separators, `text_segments`; e-mail, phone and date taken out), pieces (`text_pieces`)."""
    if not text:
        return {"email": None, "phone": None, "date": None, "numbers": frozenset(), "words": None,
                "segments": frozenset(), "pieces": (), "repeated": frozenset()}
    raw = str(text)
    found = identifiers(raw)
    folded = normalize.street(found.rest) or ""
    words = " ".join(normalize.NICKNAMES.get(w, w) for w in WORD.findall(folded))
    pieces = _piece_words(found.rest)
    return {"email": found.email, "phone": found.phone, "date": found.date, "numbers": found.numbers,
            "words": words or None, "segments": _segments(pieces), "pieces": text_pieces(raw),
            "repeated": _repeated(pieces)}
