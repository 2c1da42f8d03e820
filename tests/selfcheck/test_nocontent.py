"""The leak finder itself must be able to fail: it finds planted fragments and only those."""

import os
import random
from pathlib import Path

from tests.nocontent import WINDOW, WindowFinder, files_changed_in_temp


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


def test_temp_scan_skips_pytest_sessions_but_not_stray_files(tmp_path: Path) -> None:
    rng = random.Random(7)
    image = rng.randbytes(1000)
    system_tmp, own = tmp_path / "tmp", tmp_path / "tmp" / "own-basetemp"
    other_session = system_tmp / "pytest-of-someone" / "pytest-12" / "redis-session0" / "redis"
    stray, old = system_tmp / "spool" / "part-1.bin", system_tmp / "old.bin"
    for path in (other_session / "appendonly.aof", own / "e2e0" / "a.jpg", stray, old):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"*3\r\n" + image[100:300])
    os.utime(old, (1_000_000, 1_000_000))
    found = list(files_changed_in_temp(system_tmp, 2_000_000, own))
    assert found == [stray]
    # The stray file, which no pytest session owns, is still scanned and its leak found.
    assert WindowFinder([image]).find(found[0].read_bytes(), str(found[0])) is not None
