"""The free-text parser's patterns run in linear time: a long run without an '@' must not be tried from every
position (the API accepts texts of 10,000 characters and parses each query)."""

from __future__ import annotations

import time

from aietl_pipelines.dedupe.textparse import EMAIL, parse_text


def test_email_matches_as_before():
    text = "Ann Lee | ANN.LEE+x@Mail.Example.co.uk; bob @ post.net, a@b, @c.d"
    assert [m.group(0) for m in EMAIL.finditer(text.lower())] == ["ann.lee+x@mail.example.co.uk", "bob @ post.net"]


def test_a_long_word_parses_in_linear_time():
    # 100,000 characters: quadratic backtracking would take minutes (0.85 s at 10,000 before the bound)
    for text in ("a" * 100_000, "a." * 50_000, "1" * 100_000, "a-" * 50_000):
        start = time.perf_counter()
        parsed = parse_text(text)
        assert time.perf_counter() - start < 5.0, text[:6]
        assert parsed["email"] is None
