"""Times and durations in their one text form each.

Every stored or printed time is ISO 8601 UTC to the second with a ``Z``
(``2026-12-04T15:18:30Z``); every configured duration is a number with an optional unit
(``90s``, ``15m``, ``24h``, ``7d``, ``2w``; a bare number is seconds), and
:func:`format_duration` writes durations back in a form :func:`parse_duration` reads.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

__all__ = ["format_duration", "iso", "now_iso", "parse_duration", "parse_iso"]

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
_UNITS = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, None: 1.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
#: Units :func:`format_duration` writes, largest first.
_FORMAT_UNITS = (("w", WEEK), ("d", DAY), ("h", HOUR), ("m", MINUTE))


def iso(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC with a ``Z``, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime(ISO_FORMAT)


def now_iso() -> str:
    """The current time as :func:`iso` writes it."""
    return iso(time.time())


def parse_iso(text: str) -> float:
    """Unix seconds of an ISO 8601 time (``Z`` or an offset; naive means UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_duration(value: object) -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"``, ``"500ms"`` or a bare
    number; raises ``ValueError`` (one line, naming the value) for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '24h', got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer past float range (TOML integers have no limit)
            raise ValueError(
                "a duration must be a finite number, got an integer too large"
            ) from None
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like '90s', '24h' or '7d', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds):  # TOML has nan and inf
        raise ValueError(f"a duration must be a finite number, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration in the largest unit that fits, in a form :func:`parse_duration` reads back.

    Whole multiples of a unit are exact (``7d``, ``15m``, ``90s``); others are rounded to
    one decimal in the largest unit of which they are at least two (``2.5h``, ``3.1m``;
    under two minutes, seconds: ``65.3s``).
    """
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds!r}")
    for unit, size in _FORMAT_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    for unit, size in _FORMAT_UNITS:
        if seconds >= 2 * size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:g}s" if seconds == int(seconds) else f"{seconds:.1f}s"
