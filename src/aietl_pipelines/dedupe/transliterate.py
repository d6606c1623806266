"""Latin transliteration beside the original script, so that one name compares across scripts.

Normalisation (`normalize.fold`) compares the Latin form of every value, built with anyascii (ISC licence; chosen
over Unidecode, GPL, for the licence and its wider coverage): "Иван Петров" → "ivan petrov", "Hauptstraße" →
"hauptstrasse", "王伟" → "wang wei" (one word per Han character or Hangul syllable, as names are written in
Latin). Transliteration loses distinctions inside a script (王伟 and 汪伟 are both "wang wei"; Arabic drops its short
vowels), so values written in a non-Latin script also keep their original form (`original_form`): two values in
that script that differ there are never an exact agreement (`dedupe/scoring.py`), and the embedded text keeps
the original script.
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def _syllabic(ch: str) -> bool:
    """Han ideographs and Hangul syllables: one character is one syllable of a name."""
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x2FA1F or 0xAC00 <= code <= 0xD7AF)


def has_non_latin(text: str) -> bool:
    """True when a letter of `text` is written in a script other than Latin."""
    if text.isascii():
        return False
    return any(ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN") for ch in text)


def clean_text(text: str) -> str:
    """Text that every encoder accepts: lone surrogates (from broken decoding) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    return text


def to_ascii(text: str) -> str:
    """The Latin (ASCII) transliteration of `text`; ASCII text is returned unchanged."""
    if text.isascii():
        return text
    text = clean_text(text)
    if any(_syllabic(ch) for ch in text):
        text = "".join(f" {ch} " if _syllabic(ch) else ch for ch in text)
    return anyascii(unicodedata.normalize("NFC", text))


def original_form(value: object) -> str | None:
    """The value in its own script, case-folded, without punctuation; None when it has no non-Latin letter."""
    if value is None or not isinstance(value, str | bytes):
        return None
    text = clean_text(value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value)
    if not has_non_latin(text):
        return None
    folded = _SPACES.sub(" ", _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold())).strip()
    return folded or None
