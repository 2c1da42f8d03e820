"""Known-hash lists, kept in Redis so every crawl process (on any machine) loads the same ones.

A list is stored as one hash key ``<prefix>list:<name>`` holding the serialized entries and
their metadata. Saving a new version replaces the whole key in one ``MULTI`` transaction, so a
reader sees either the old list or the new one, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from matchers.lists import HashList, validate_list_name
from takedown.errors import TakedownError
from takedown.keys import Keys


class ListNotFound(TakedownError):
    """No list of that name is stored."""


@dataclass(frozen=True, slots=True)
class ListInfo:
    name: str
    version: int
    updated: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class ListStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def save(self, hash_list: HashList) -> ListInfo:
        """Store ``hash_list`` as the next version of its name, atomically."""
        name = validate_list_name(hash_list.name)
        key = self.keys.list(name)
        updated = datetime.now(UTC).replace(microsecond=0).isoformat()
        counts = hash_list.counts()
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current = pipe.hget(key, "version")
                    version = int(current) + 1 if current else 1
                    hash_list.version = version
                    hash_list.created = updated
                    pipe.multi()
                    pipe.delete(key)
                    pipe.hset(
                        key,
                        mapping={
                            "data": hash_list.to_bytes(),
                            "version": version,
                            "updated": updated,
                            "counts": json.dumps(counts, sort_keys=True),
                        },
                    )
                    pipe.sadd(self.keys.lists, name)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        return ListInfo(name, version, updated, counts)

    def load(self, name: str) -> HashList:
        data = self.client.hget(self.keys.list(name), "data")
        if data is None:
            raise ListNotFound(f"no known list named {name!r}")
        return HashList.from_bytes(cast("bytes", data))

    def load_all(self, names: Iterable[str] | None = None) -> list[HashList]:
        wanted = sorted(self.names() if names is None else set(names))
        return [self.load(n) for n in wanted]

    def names(self) -> list[str]:
        return sorted(m.decode() for m in cast("set[bytes]", self.client.smembers(self.keys.lists)))

    def info(self) -> list[ListInfo]:
        out = []
        for name in self.names():
            raw = cast(
                "list[Any]",
                self.client.hmget(self.keys.list(name), ["version", "updated", "counts"]),
            )
            if raw[0] is None:
                continue
            out.append(ListInfo(name, int(raw[0]), raw[1].decode(), json.loads(raw[2].decode())))
        return out

    def remove(self, name: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.list(name))
            pipe.srem(self.keys.lists, name)
            deleted, _ = pipe.execute()
        if not deleted:
            raise ListNotFound(f"no known list named {name!r}")
