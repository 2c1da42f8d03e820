"""Reply text and one-line errors."""

from __future__ import annotations

import pytest

from store.text import one_line, text


def test_text_decodes_bytes_and_keeps_str() -> None:
    assert text(b"caf\xc3\xa9") == "café"
    assert text("plain") == "plain"


def test_one_line_folds_white_space() -> None:
    assert one_line("  a\n\tb   c \r\n") == "a b c"


def test_one_line_of_an_exception_is_its_message_or_its_type() -> None:
    assert one_line(ValueError("bad\nvalue")) == "bad value"
    assert one_line(TimeoutError()) == "TimeoutError"


@pytest.mark.parametrize(("limit", "expected"), [(5, "abcd…"), (6, "abcdef"), (10, "abcdef")])
def test_one_line_cuts_at_the_limit(limit: int, expected: str) -> None:
    result = one_line("abc def".replace(" ", ""), limit)
    assert result == expected
    assert len(result) <= limit
