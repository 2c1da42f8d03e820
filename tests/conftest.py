"""Shared fixtures: one real redis-server per test session, isolated per test by key prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline.redisserver import EmbeddedRedis, EmbeddedRedisError
from store.connection import redis_from_url

pytest_plugins = [
    "tests.site.fixtures",
    "tests.servers.rdap",
    "tests.servers.smtp",
    "tests.servers.webhook",
]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (unix socket only, port 0, AOF on) for the session; yields its URL.

    It is the project's own embedded server, so the tests exercise the same configuration
    the CLI uses. A missing redis-server fails the tests that need it, with the reason.
    """
    data_dir: Path = tmp_path_factory.mktemp("redis-session")
    server = EmbeddedRedis(data_dir)
    try:
        server.start()
    except EmbeddedRedisError as exc:
        pytest.fail(f"cannot start the test redis-server: {exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """URL of the session's redis-server."""
    return redis_server


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test (tests isolate by prefix; nothing runs FLUSHALL)."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's redis-server (bytes responses), closed after the test."""
    client = redis_from_url(redis_url)
    try:
        yield client
    finally:
        client.close()
