"""Times and durations: one text form each, and the formatter writes what the parser reads."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.clock import format_duration, iso, parse_duration, parse_iso


def test_iso_is_utc_to_the_second_with_z() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1_780_000_000.9) == "2026-05-28T20:26:40Z"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("1970-01-01T00:00:10", 10.0),  # naive means UTC
    ],
)
def test_parse_iso(text: str, seconds: float) -> None:
    assert parse_iso(text) == seconds


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_iso_round_trips(ts: int) -> None:
    assert parse_iso(iso(ts)) == ts


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (90, "90s"),
        (65.25, "65.2s"),
        (120, "2m"),
        (185, "3.1m"),
        (900, "15m"),
        (3600, "1h"),
        (5400, "90m"),
        (9000, "150m"),
        (9100, "2.5h"),
        (86400, "1d"),
        (7 * 86400, "1w"),
        (10 * 86400, "10d"),
        (3 * 86400 + 7, "3.0d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=10**8))
def test_whole_durations_round_trip_exactly(seconds: int) -> None:
    """A whole number of seconds comes back exact when it is a whole multiple of its unit,
    and within the rounding of one decimal of the unit otherwise."""
    text = format_duration(seconds)
    back = parse_duration(text)
    unit = parse_duration("1" + text[-1]) if text[-1] in "mhdw" else 1.0
    assert math.isclose(back, seconds, abs_tol=0.05 * unit + 1e-9)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_every_formatted_duration_parses(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) >= 0
