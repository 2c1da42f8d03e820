"""Opening the Redis the CLI works against: the configured one, or the embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from hotline.config import Config
from hotline.paths import ensure_data_dir
from hotline.redisserver import EmbeddedRedis
from store.connection import redis_from_url
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue
from store.runs import RunStore
from store.schedules import ScheduleStore


@dataclass(frozen=True, slots=True)
class Session:
    client: redis.Redis
    url: str
    keys: Keys

    def hits(self) -> HitQueue:
        """The hit and review streams."""
        return HitQueue(self.client, self.keys)

    def lists(self) -> ListStore:
        """The stored hash lists."""
        return ListStore(self.client, self.keys)

    def runs(self) -> RunStore:
        """The crawl run records."""
        return RunStore(self.client, self.keys)

    def schedules(self) -> ScheduleStore:
        """The crawl schedules."""
        return ScheduleStore(self.client, self.keys)


@contextmanager
def redis_session(config: Config) -> Iterator[Session]:
    """A client for the configured Redis; with none configured, start the private server
    under the data directory for the duration of the block (its data stays for next time)."""
    keys = Keys(config.key_prefix)
    if config.redis_url:
        client = redis_from_url(config.redis_url)
        try:
            yield Session(client, config.redis_url, keys)
        finally:
            client.close()
        return
    ensure_data_dir(config.data_dir)
    with EmbeddedRedis(config.data_dir) as server:
        client = redis_from_url(server.url)
        try:
            yield Session(client, server.url, keys)
        finally:
            client.close()
