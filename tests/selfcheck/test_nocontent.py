"""The leak finder itself must be able to fail: it finds planted fragments and only those."""

import random

from tests.nocontent import WINDOW, WindowFinder


def test_finds_a_window_anywhere_and_nothing_shorter() -> None:
    rng = random.Random(4)
    needles = [rng.randbytes(5000) for _ in range(3)]
    finder = WindowFinder(needles)
    for trial in range(20):
        needle = rng.randrange(3)
        start = rng.randrange(5000 - WINDOW)
        prefix, suffix = rng.randbytes(rng.randrange(300)), rng.randbytes(rng.randrange(300))
        haystack = prefix + needles[needle][start : start + WINDOW] + suffix
        leak = finder.find(haystack, f"trial {trial}")
        assert leak is not None
        assert (leak.needle, leak.needle_offset, leak.offset) == (needle, start, len(prefix))
        shorter = prefix + needles[needle][start : start + WINDOW - 1] + b"\0" + suffix
        assert finder.find(shorter, "shorter") is None


def test_unrelated_data_is_clean() -> None:
    rng = random.Random(5)
    finder = WindowFinder([rng.randbytes(10_000)])
    assert finder.find(rng.randbytes(100_000), "noise") is None
    assert finder.find(b"", "empty") is None


def test_windows_of_one_repeated_byte_are_not_needles() -> None:
    rng = random.Random(6)
    textured = rng.randbytes(200)
    needle = textured + bytes(100) + textured[:10]
    finder = WindowFinder([needle])
    assert finder.find(b"x" + bytes(80) + b"y", "padding") is None
    # Windows that are partly zeros and partly content are still found.
    leak = finder.find(textured[170:] + bytes(34), "content then zeros")
    assert leak is not None and leak.needle_offset == 170
    leak = finder.find(bytes(54) + textured[:10], "zeros then content")
    assert leak is not None and leak.needle_offset == 246
