"""The environment CLI subprocesses run in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import hotline_env


@pytest.fixture
def env(redis_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    """The session's redis-server under this test's key prefix, a data directory of its own,
    and no other ``HOTLINE_*`` variable from the developer's shell."""
    return hotline_env(
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_KEY_PREFIX=redis_prefix,
        HOTLINE_DATA_DIR=str(tmp_path / "data"),
    )
