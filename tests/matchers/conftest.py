"""Fixtures for matcher tests: generated benign images only, built in memory."""

from __future__ import annotations

import pytest

from tests.matchers.imagegen import make_bytes


@pytest.fixture(scope="session")
def large_jpeg() -> bytes:
    """A 3000x2000 generated JPEG (slow-ish to build, so built once)."""
    return make_bytes(21, "JPEG", 3000, 2000)
