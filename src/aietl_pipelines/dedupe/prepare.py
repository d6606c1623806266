"""Stage 1 of dedupe: validate and normalise the records, build the text each is embedded as, embed it."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import normalize, transliterate
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.textparse import SEPARATOR, TEXT_KINDS, identifiers, parse_text
from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)
#: Field kinds whose values may be written in another script (their original form is kept beside).
SCRIPT_KINDS = {"name", "street", "text", "state", "organisation", "organization", "city", "address"}
#: Share of the records above which a word is a label (`label_words`), never one entity's.
LABEL_SHARE = 0.3
#: Share of the records above which a word is common (`common_words`): a label or a generic word.
COMMON_SHARE = 0.05
#: Share of a frequent word's records that one value of two or more words must hold for the word to stay.
ONE_VALUE_COVER = 0.5


class TextWords(NamedTuple):
    """The words free-text prepare takes out, read over ALL records: `common` from each record's words
    (`common_words`), `labels` from its segments and repeated values (`label_words`)."""

    common: frozenset[str]
    labels: frozenset[str]


# The corpus statistics are counts that add up over slices of the records (Spark's prepare counts them per slice
# and sums them), decided on once the totals are known; `common_words` and `label_words` do both on one list.

def share_limit(n_records: int, share: float) -> int:
    """The count a word must exceed to be in more than `share` of `n_records` records (at least 2)."""
    return max(2, int(share * n_records))


def word_record_counts(parsed: Iterable[dict[str, object]]) -> Counter[str]:
    """How many of the records hold each word among their words."""
    return Counter(w for p in parsed if p["words"] for w in set(str(p["words"]).split()))


def segment_word_counts(parsed: Iterable[dict[str, object]]) -> Counter[str]:
    """How many of the records hold each word in their segments."""
    return Counter(w for p in parsed for w in {w for seg in p["segments"] for w in str(seg).split()})


def holder_words(word_counts: Mapping[str, int], n_records: int, max_share: float = COMMON_SHARE) -> frozenset[str]:
    """The frequent words that stay when one value holds them (`common_words`): in more than `max_share` of the
    records, not in more than LABEL_SHARE (those are common whatever holds them)."""
    limit, label_limit = share_limit(n_records, max_share), share_limit(n_records, LABEL_SHARE)
    return frozenset(w for w, c in word_counts.items() if limit < c <= label_limit)


def holder_counts(pieces: Iterable[Sequence[str]], words: frozenset[str]) -> Counter[tuple[str, str]]:
    """(word, piece) -> how many of the records hold one of `words` in that piece (`textparse.text_pieces`, a
    record's field values as written)."""
    counts: Counter[tuple[str, str]] = Counter()
    if words:
        for record in pieces:
            for piece in set(record):
                for w in words.intersection(piece.split()):
                    counts[(w, piece)] += 1
    return counts


def top_holders(rows: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, bool]]:
    """From (word, piece, records) rows (`holder_counts`): each word's most common piece as (its records, whether
    it is a value of two or more words); of pieces held equally often, one of two or more words, so that the
    choice depends on the counts only, not on the records' order."""
    top: dict[str, tuple[int, bool]] = {}
    for word, piece, n in rows:
        top[word] = max(top.get(word, (0, False)), (int(n), " " in piece))
    return top


def decide_common_words(word_counts: Mapping[str, int], n_records: int, top: Mapping[str, tuple[int, bool]],
                        max_share: float = COMMON_SHARE, min_cover: float = ONE_VALUE_COVER) -> frozenset[str]:
    """`common_words` from the counts over all records: `word_counts` (`word_record_counts`; words at or under
    the `max_share` limit may be left out) and the `top_holders` of the `holder_words`."""
    limit, label_limit = share_limit(n_records, max_share), share_limit(n_records, LABEL_SHARE)
    return frozenset(w for w, c in word_counts.items()
                     if c > limit and (c > label_limit or not _one_value_word(top.get(w), c, min_cover)))


def decide_label_words(segment_counts: Mapping[str, int], n_records: int, max_share: float = LABEL_SHARE
                       ) -> frozenset[str]:
    """`label_words` from `segment_word_counts` over all records (words at or under the limit may be left out)."""
    limit = share_limit(n_records, max_share)
    return frozenset(w for w, c in segment_counts.items() if c > limit)


def common_words(parsed: list[dict[str, object]], max_share: float = COMMON_SHARE,
                 min_cover: float = ONE_VALUE_COVER) -> frozenset[str]:
    """Words that appear in more than `max_share` of the records (labels such as "born", "street"): they say
    nothing about identity and make every pair look alike.

    Except the words of one repeated value: a frequent word that, in at least `min_cover` of the records holding
    it, is written inside one and the same field value of two or more words (`textparse.text_pieces`: "hiroyuki
    mizuno" of an inventor with 230 of 4,000 records), unless it is in more than LABEL_SHARE of the records (the
    "new york" of most restaurants). It is frequent because its entity has many records, not because it stands
    beside every value as "born 1956 04 09", "main street" or "acme inc" do; its rarity is still weighed by the
    word comparison (`compare.idf_token_levels`). Dropped, the inventors' own names left their words and their
    free-text F1 was 0.48 (docs/benchmarks/dedupe_real.md)."""
    counts = word_record_counts(parsed)
    holders = holder_counts((p.get("pieces", ()) for p in parsed), holder_words(counts, len(parsed), max_share))
    top = top_holders((w, piece, n) for (w, piece), n in holders.items())
    return decide_common_words(counts, len(parsed), top, max_share, min_cover)


def _one_value_word(top: tuple[int, bool] | None, count: int, min_cover: float) -> bool:
    """Whether one field value of two or more words holds the word in `min_cover` of its `count` records
    (`top`: its most common piece, `top_holders`)."""
    if top is None:
        return False
    n, several_words = top
    return several_words and n >= min_cover * count


def label_words(parsed: list[dict[str, object]], max_share: float = LABEL_SHARE) -> frozenset[str]:
    """Words found in more than `max_share` of the records' segments (labels such as "born" or "ssn" left beside
    a value): taken out of the segments, so that a segment is the value alone."""
    return decide_label_words(segment_word_counts(parsed), len(parsed), max_share)


def text_words(parsed: list[dict[str, object]]) -> TextWords:
    """The common and label words of these records (all of them: the counts are over the corpus)."""
    return TextWords(common_words(parsed), label_words(parsed))


def drop_words(parsed: list[dict[str, object]], common: frozenset[str], labels: frozenset[str]) -> None:
    """Remove `common` words from each record's words and `labels` from its segments and repeated values (in
    place)."""
    for p in parsed:
        if p["words"] and common:
            p["words"] = " ".join(w for w in str(p["words"]).split() if w not in common) or None
        if labels:
            for key in ("segments", "repeated"):
                kept = (" ".join(w for w in str(seg).split() if w not in labels) for seg in p.get(key, ()))
                p[key] = frozenset(seg for seg in kept if seg)


def validate_ids(records: pd.DataFrame, config: DedupeConfig) -> pd.Series:
    """The id column, checked: no missing id, one type (not 1 and "1"), unique once written as text."""
    ids = records[config.id_column]
    if ids.isna().any():
        raise AietlInputError(f"{int(ids.isna().sum())} record(s) have no id in '{config.id_column}'.")
    textual = np.array([isinstance(v, str | bytes) for v in ids.tolist()])
    if textual.any() and not textual.all():
        number = ids[~textual].iloc[0]
        raise AietlInputError(f"Record ids in '{config.id_column}' mix text and numbers (e.g. {number!r} and "
                              f"{ids[textual].iloc[0]!r}); 1 and '1' would collide: give every id one type.")
    as_text = ids.astype(str)
    dupes = as_text[as_text.duplicated()].unique().tolist()
    if dupes:
        raise AietlInputError(f"Duplicate record ids in '{config.id_column}': {dupes[:10]}"
                              f"{' ...' if len(dupes) > 10 else ''}. Ids must be unique.")
    return as_text


def _objects(values: list) -> pd.Series:
    """A column of Python values with None for missing (never NaN, whatever pandas infers: pandas 3 strings)."""
    return pd.Series([None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values],
                     dtype=object)


def python_values(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text column as Python objects and None for missing (e.g. after a parquet read)."""
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = _objects(out[col].tolist())
    return out


def _text_value(value: object) -> str | None:
    """A free-text cell as clean text (bytes decoded, lone surrogates replaced); None when missing."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str) and pd.isna(value)):
        return None
    return transliterate.clean_text(str(value))


def text_values(texts: pd.Series) -> list[str | None]:
    """A free-text column as clean texts (`_text_value`)."""
    return [_text_value(t) for t in texts.tolist()]


def text_columns(clean: list[str | None], parsed: list[dict[str, object]], words: TextWords
                 ) -> tuple[dict[str, pd.Series], list[dict[str, str]]]:
    """The prepared columns of free texts (`clean`, and `parsed` by `parse_text`, from which `words` are taken
    out in place) and each text's original script (for `__original`): row-local once `words` are known."""
    drop_words(parsed, words.common, words.labels)
    columns = {key: _objects([p[key] for p in parsed]) for key in TEXT_KINDS}
    columns["number_key"] = _objects([" ".join(sorted(p["numbers"])) if p["numbers"] else None for p in parsed])
    columns["first_word"] = _objects([p["words"].split()[0] if p["words"] else None for p in parsed])
    columns["__text"] = _objects([t or "" for t in clean])
    originals = [{"words": o} if (o := transliterate.original_form(t)) else {} for t in clean]
    return columns, originals


def blocking_key_column(column: str) -> str:
    """The prepared column blocking rules on `column` join on, where it differs from the compared values."""
    return f"__key_{column}"


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Validate and normalise: one row per input record, same order, plus `__text` (what is embedded)."""
    return prepare_records_with_codes(records, config)[0]


def prepare_records_with_codes(records: pd.DataFrame, config: DedupeConfig, *, words: TextWords | None = None
                               ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """`prepare_records`, and integer codes of the prepared columns its normalisation could read them off
    (`normalize.ValueCodes`: structured fields of string values and their blocking key columns; none in free
    text): equal codes where the prepared values are equal, -1 where missing. `words`: free text's common and
    label words when `records` are a slice of the corpus (read over all records: Spark's prepare); None: read
    from `records`."""
    if not isinstance(records, pd.DataFrame) or records.empty:
        raise AietlInputError("The records to deduplicate are empty: nothing to do. Check the input file.")
    needed = [config.id_column, *([config.text_column] if config.mode == "text" else config.fields)]
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise AietlInputError(f"Declared column(s) {missing} are not in the records (columns: {list(records.columns)}). "
                              "Fix `dedupe.fields` / `dedupe.text_column` / `dedupe.id_column`.")
    ids = validate_ids(records, config)
    out = pd.DataFrame({"record_id": pd.Series(ids.to_numpy(), dtype=object)})
    if config.mode == "structured":
        raw = records[list(config.fields)].reset_index(drop=True)
        norm, value_codes = normalize.normalize_frame_with_codes(raw, config.fields)
        for col in config.fields:
            out[col] = _objects(norm[col].tolist())
        script = {c: normalize.normalize_values(raw[c], transliterate.original_form)
                  for c in config.fields if config.fields[c] in SCRIPT_KINDS}
        originals = [{c: o for c, values in script.items() if (o := values[i]) is not None} for i in range(len(raw))]
        embedded = [c for c, kind in config.fields.items() if kind in config.embed_kinds] or list(config.fields)
        texts = [" ".join(v for v in row if v) for row in out[embedded].itertuples(index=False)]
        # the embedded text keeps the original script beside its transliteration
        out["__text"] = _objects([" ".join([t, *[o[c] for c in embedded if c in o]]).strip()
                                  for t, o in zip(texts, originals, strict=True)])
    else:
        clean = text_values(records[config.text_column])
        parsed = [parse_text(t) for t in clean]
        columns, originals = text_columns(clean, parsed, text_words(parsed) if words is None else words)
        for col, values in columns.items():
            out[col] = values
        value_codes = {}
    phones = [c for c, kind in config.fields.items() if kind == "phone"] if config.mode == "structured" else ["phone"]
    for col in phones:  # what the phone blocking rules join on (pairs.blocking_rules)
        out[blocking_key_column(col)] = _objects([normalize.phone_key(v) for v in out[col].tolist()])
        if col in value_codes:
            value_codes[blocking_key_column(col)] = value_codes[col].mapped(normalize.phone_key)
    out["__original"] = _objects([json.dumps(o, ensure_ascii=False) if o else None for o in originals])
    empty = (out["__text"].str.strip() == "").sum()
    if empty:
        logger.warning("%d record(s) have no text or field values: each stays a cluster of its own", empty)
    return out, {column: found.codes for column, found in value_codes.items()}


#: A letter of any script (a piece without one is a number or punctuation).
_LETTER = re.compile(r"[^\W\d_]")
#: A number standing alone (a house number, a postcode), not the digits inside a code such as "G11C".
_NUMBER = re.compile(r"(?<!\w)\d+(?!\w)")


def embedding_words(value: str) -> str | None:
    """The part of a value that is embedded: without its stand-alone numbers ("4146 oak street" -> "oak street"),
    which the field comparisons and blocking keys read exactly; None when no letter is left. Streets repeat once
    their house numbers are gone: 100K customer records hold 68K distinct embedded values with the numbers and
    12.7K without (docs/scale.md), and the embedding is most of a run's time."""
    words = " ".join(_NUMBER.sub(" ", value).split())
    return words if _LETTER.search(words) else None


def embedding_pieces(text: str | None) -> list[str]:
    """What a free text is embedded from with `text_embedding: pieces`: its field values (the pieces between
    separators, `textparse.SEPARATOR`) without e-mail, phone, date and stand-alone numbers (compared and blocked on
    exactly, `embedding_words`); the whole text when no piece with a letter is left. Names, streets and cities
    repeat across records, so each distinct piece is embedded once, as structured field values are."""
    if not text or not text.strip():
        return []
    return rest_pieces(identifiers(text).rest, text)


def rest_pieces(rest: str, text: str) -> list[str]:
    """`embedding_pieces` of `text` from its `textparse.identifiers(text).rest`, when that is read already."""
    pieces = [embedding_words(p.strip(" -/,;|.")) for p in SEPARATOR.split(rest)]  # a dash where a phone was
    return [p for p in pieces if p] or [text]


def embedded_values(prepared: pd.DataFrame, config: DedupeConfig) -> tuple[np.ndarray, list[str]]:
    """(record row, text) of everything the records are embedded from: the words of the `embed_kinds` field values
    (structured, `embedding_words`), the pieces of each text (`text_embedding: pieces`) or each whole text
    (`text`)."""
    from aietl_pipelines.embeddings import field_values

    if config.mode == "structured":
        embedded = [c for c, kind in config.fields.items() if kind in config.embed_kinds] or list(config.fields)
        rows, values = field_values({c: prepared[c].tolist() for c in embedded})
        words = [embedding_words(v) for v in values]
        keep = np.array([w is not None for w in words], dtype=bool)
        return rows[keep], [w for w in words if w is not None]
    texts = prepared["__text"].tolist()
    if config.text_embedding == "text":
        return np.arange(len(texts), dtype=np.int64), [str(t) for t in texts]
    pieces = [embedding_pieces(t) for t in texts]
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), [len(p) for p in pieces])
    return rows, [p for ps in pieces for p in ps]


def embed(prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
    """Embeddings of the records (content-hash cache in `cache_dir`): structured records and free text with
    `text_embedding: pieces` are the normalised sum of the vectors of their values (`embedded_values`), each
    distinct value embedded once; with `text_embedding: text` each record text is embedded whole."""
    if not config.use_embeddings:
        return np.zeros((len(prepared), 0), dtype=np.float32)
    from aietl_pipelines.embeddings import embed_record_values, embed_texts

    options = {"cache_dir": config.cache_dir, "show_progress": len(prepared) > 5000, "device": config.device,
               "precision": config.embed_precision}
    if config.mode == "text" and config.text_embedding == "text":
        return embed_texts(prepared["__text"].tolist(), **options)
    rows, values = embedded_values(prepared, config)
    return embed_record_values(rows, values, len(prepared), **options)
