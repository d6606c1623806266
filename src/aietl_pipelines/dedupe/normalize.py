"""Canonical forms of fields: unicode folding, case, punctuation, abbreviations, phones, e-mails, dates."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import transliterate

STREET_TYPES = {
    "st": "street", "str": "street", "ave": "avenue", "av": "avenue", "rd": "road", "blvd": "boulevard",
    "dr": "drive", "ln": "lane", "ct": "court", "crt": "court", "pl": "place", "ter": "terrace", "tce": "terrace",
    "hwy": "highway", "pde": "parade", "cres": "crescent", "cl": "close", "sq": "square", "mt": "mount",
    "apt": "apartment", "vlge": "village", "retrmnt": "retirement", "n": "north", "s": "south", "e": "east",
    "w": "west",
}
STATES = {
    "illinois": "il", "oregon": "or", "texas": "tx", "colorado": "co", "wisconsin": "wi", "ohio": "oh",
    "north carolina": "nc", "idaho": "id", "virginia": "va", "new york": "ny", "arizona": "az", "tennessee": "tn",
    "massachusetts": "ma", "florida": "fl", "california": "ca", "nebraska": "ne", "oklahoma": "ok", "nevada": "nv",
    "new south wales": "nsw", "victoria": "vic", "queensland": "qld", "western australia": "wa",
    "south australia": "sa", "tasmania": "tas",
}
NICKNAMES = {
    "bob": "robert", "rob": "robert", "bobby": "robert", "bill": "william", "will": "william", "billy": "william",
    "liz": "elizabeth", "beth": "elizabeth", "eliza": "elizabeth", "kate": "katherine", "kathy": "katherine",
    "katie": "katherine", "mike": "michael", "mick": "michael", "jen": "jennifer", "jenny": "jennifer",
    "jim": "james", "jimmy": "james", "maggie": "margaret", "peggy": "margaret", "meg": "margaret",
    "rick": "richard", "dick": "richard", "rich": "richard", "pat": "patricia", "patty": "patricia",
    "trish": "patricia", "tom": "thomas", "tommy": "thomas", "sue": "susan", "suzy": "susan",
    "charlie": "charles", "chuck": "charles", "jess": "jessica", "jessie": "jessica", "chris": "christopher",
    "topher": "christopher", "deb": "deborah", "debbie": "deborah", "dan": "daniel", "danny": "daniel",
    "nan": "nancy", "matt": "matthew", "becky": "rebecca", "becca": "rebecca", "tony": "anthony",
    "sam": "samantha", "sammy": "samantha", "joe": "joseph", "joey": "joseph", "vicky": "victoria",
    "tori": "victoria", "andy": "andrew", "drew": "andrew", "alex": "alexandra", "sasha": "alexandra",
    "steve": "steven", "dot": "dorothy", "dottie": "dorothy", "ed": "edward", "eddie": "edward", "ted": "edward",
    "abby": "abigail", "jon": "john", "johnny": "john", "jack": "john",
}
_PUNCT = re.compile(r"[^\w\s@.+-]")
_SPACES = re.compile(r"\s+")
_MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def fold(value: object) -> str | None:
    """Unicode-fold, lowercase, strip punctuation and spaces; None for missing/empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = transliterate.to_ascii(str(value)).lower()  # other scripts transliterated, not erased
    text = _SPACES.sub(" ", _PUNCT.sub(" ", text)).strip()
    return text or None


def _map_words(value: object, separators: str, table: dict[str, str]) -> str | None:
    """Fold, split on spaces and `separators`, replace each word found in `table`."""
    text = fold(value)
    if text is None:
        return None
    for sep in separators:
        text = text.replace(sep, " ")
    return " ".join(table.get(t, t) for t in text.split())


def name(value: object) -> str | None:
    """Folded name with nicknames mapped to the formal name."""
    return _map_words(value, ".-", NICKNAMES)


def street(value: object) -> str | None:
    """Folded address with street-type and direction abbreviations expanded."""
    return _map_words(value, ".#", STREET_TYPES)


def state(value: object) -> str | None:
    text = fold(value)
    return STATES.get(text, text) if text else None


def email(value: object) -> str | None:
    text = fold(value)
    return text.replace(" ", "") if text else None


def digits(value: object) -> str | None:
    """Digits only (phones, postcodes, ids); phones keep their last 10 digits."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    only = re.sub(r"\D", "", str(value))
    return only[-10:] if len(only) > 10 else (only or None)


def date(value: object) -> str | None:
    """YYYY-MM-DD from common formats (2026-01-31, 01/31/2026, 31 Jan 2026, 20260131); else the folded text."""
    text = fold(str(value).replace("/", "-")) if value is not None and not (isinstance(value, float) and pd.isna(value)) else None
    if text is None:
        return None
    compact = text.replace(" ", "")
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", compact)
    if m:
        return f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}"
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", compact)
    if m:
        return f"{m[3]}-{int(m[1]):02d}-{int(m[2]):02d}"
    if re.fullmatch(r"\d{8}", compact):
        return f"{compact[:4]}-{compact[4:6]}-{compact[6:]}"
    m = re.fullmatch(r"(\d{1,2}) ?([a-z]{3})[a-z]* ?(\d{4})", text)
    if m and m[2] in _MONTHS:
        return f"{m[3]}-{_MONTHS[m[2]]:02d}-{int(m[1]):02d}"
    return text


def phone(value: object) -> str | None:
    """The digits of a phone number in any national or international format (`310/246-1501`, `(310) 246 1501`,
    `+44 20 7946 0958`, `0049 30 1234567`): an international `00` prefix dropped; other prefixes (country code,
    trunk 0) are kept and matched as a suffix by the phone comparison (compare.py)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    only = re.sub(r"\D", "", str(value))
    return (only[2:] if only.startswith("00") else only) or None


#: Trailing digits a phone is blocked on (`phone_key`).
PHONE_KEY_DIGITS = 9


def phone_key(digits: str | None) -> str | None:
    """The blocking key of a normalised phone: its last PHONE_KEY_DIGITS digits, so that one number written with
    and without its country code or trunk 0 falls in one block (`12738800436` / `2738800436`,
    `+44 20 7946 0958` / `020 7946 0958`, `+33 1 23 45 67 89` / `01 23 45 67 89`); shorter numbers are their own
    key. Only candidates come from it: the phone comparison still reads every digit (compare.py)."""
    if not digits:
        return None
    return digits[-PHONE_KEY_DIGITS:]


#: Legal forms (any of the spellings on the left, folded) → dropped from organisation names: they tell how a
#: company is registered, not which company it is ("Canon Kabushiki Kaisha" = "Canon K.K." = "CANON KK").
LEGAL_FORMS = [
    "limited liability company", "gesellschaft mit beschrankter haftung", "kabushiki kaisha", "aktiengesellschaft",
    "public limited company", "societe anonyme", "sociedad anonima", "co ltd", "pty ltd", "incorporated",
    "corporation", "limited", "company", "l l c", "llc", "llp", "lp", "ltd", "inc", "corp", "co", "plc", "gmbh",
    "g m b h", "ag", "a g", "kk", "k k", "sa", "s a", "srl", "spa", "bv", "b v", "nv", "n v", "ab", "oy", "as",
    "kg", "se", "pty", "the", "and co",
]
ORGANISATION_WORDS = {
    "intl": "international", "int": "international", "mfg": "manufacturing", "assn": "association",
    "assoc": "association", "univ": "university", "natl": "national", "tech": "technology",
    "technologies": "technology", "labs": "laboratories", "lab": "laboratory", "dept": "department",
    "ctr": "center", "centre": "center", "svcs": "services", "svc": "service", "grp": "group", "hldgs": "holdings",
    "bros": "brothers", "elec": "electric", "&": "and", "st": "saint", "mt": "mount",
}
_LEGAL = re.compile(r"\b(?:" + "|".join(re.escape(f) for f in LEGAL_FORMS) + r")\b")


def organisation(value: object) -> str | None:
    """Folded organisation name: legal forms (Ltd, GmbH, K.K., Inc., Corporation, ...) and "the" dropped, common
    abbreviations expanded, `&` read as "and"; word order is left to the comparison (token-set levels)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = fold(str(value).replace("&", " and ").replace(".", " "))
    if text is None:
        return None
    words = " ".join(ORGANISATION_WORDS.get(w, w) for w in text.replace("-", " ").split())
    kept = _SPACES.sub(" ", _LEGAL.sub(" ", words)).strip()
    return kept or words


def item_list(value: object) -> str | None:
    """A list-like field (co-authors, classes, tags: `a; b; c`, `a, b`, `a | b`, or a Python list): its folded
    items, unique and sorted, joined by "; " (compared as a set)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    items = value if isinstance(value, list | tuple | set | frozenset) else re.split(r"[;|,\n]", str(value))
    folded = sorted({f for f in (fold(str(v)) for v in items if v is not None) if f})
    return "; ".join(folded) or None


NORMALIZERS = {"name": name, "street": street, "text": fold, "state": state, "email": email, "phone": phone,
               "id": digits, "postcode": digits, "date": date, "number": digits, "organisation": organisation,
               "list": item_list}


def normalize_frame(df: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    """Apply the normalizer of each field's declared kind (name, street, text, state, email, phone, id,
    postcode, date, number, organisation, list)."""
    return normalize_frame_with_codes(df, fields)[0]


def normalize_frame_with_codes(df: pd.DataFrame, fields: dict[str, str]
                               ) -> tuple[pd.DataFrame, dict[str, ValueCodes]]:
    """`normalize_frame`, and the `ValueCodes` of each column whose raw values are all strings or missing."""
    out = pd.DataFrame(index=df.index)
    codes: dict[str, ValueCodes] = {}
    for column, kind in fields.items():
        out[column], found = normalize_values_with_codes(df[column], NORMALIZERS[kind])
        if found is not None:
            codes[column] = found
    return out, codes


class ValueCodes(NamedTuple):
    """Integer codes of one normalised column, read off the factorisation `normalize_values` already does: rows
    with equal values share a code, missing or empty values are -1; `values[k]` is the value of code k. Counting
    blocks from them (`candidates.agreement_rate`) hashes no string again: at 1M records, hashing the prepared
    strings of nine columns took 1.5 s and grew as N^1.36 (their objects outgrow the caches)."""

    codes: np.ndarray
    values: list[str]

    def mapped(self, func: Callable[[str], str | None]) -> ValueCodes:
        """The codes of `func` of the values (a phone's blocking key), computed once per distinct value."""
        return _value_codes(self.codes, [func(v) for v in self.values])


def _value_codes(row_codes: np.ndarray, values: list) -> ValueCodes:
    """Codes of `values[row_codes]` (-1: missing), merged where two entries of `values` are equal."""
    merged, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    distinct = distinct.tolist()
    if "" in distinct:  # empty is missing, as `candidates._string_codes` reads it
        empty = distinct.index("")
        merged = np.where(merged == empty, -1, merged - (merged > empty))
        distinct.pop(empty)
    lookup = np.r_[merged, -1].astype(np.int64)  # row code -1 (missing) reads the last entry
    return ValueCodes(lookup[row_codes], distinct)


def normalize_values(values: pd.Series, func: Callable[[object], str | None]) -> list[str | None]:
    """`func` of each value, computed once per distinct value: names, cities and states repeat, so at 1M records
    this is most of prepare's work saved and its time grows with the distinct values, not the records. Only when
    every value is a string or missing (1, 1.0 and True are one key to a hash table but not to `digits`)."""
    return normalize_values_with_codes(values, func)[0]


def normalize_values_with_codes(values: pd.Series, func: Callable[[object], str | None]
                                ) -> tuple[list[str | None], ValueCodes | None]:
    """`normalize_values`, and the `ValueCodes` of the result (None where the values are not all strings)."""
    items = values.tolist()
    if pd.api.types.infer_dtype(items, skipna=True) not in ("string", "empty"):
        return [func(v) for v in items], None
    codes, uniques = pd.factorize(pd.Series(items, dtype=object), use_na_sentinel=True)
    done = [func(v) for v in uniques.tolist()] + [func(None)]  # code -1 (missing) reads the last entry
    found = _value_codes(np.where(codes < 0, len(done) - 1, codes), [v if isinstance(v, str) else None for v in done])
    return [done[c] for c in codes.tolist()], found
