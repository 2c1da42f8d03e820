"""Known-hash lists and allow-lists, kept in Redis so every crawl process (on any machine) loads
the same ones.

A list is stored as one hash key ``<prefix>list:<name>`` holding the serialized entries and
their metadata (``version``, ``updated``, ``counts``, ``kind``, ``thresholds``), and its name
in the set ``<prefix>lists``. Saving a new version replaces the whole key in one ``MULTI``
transaction, so a reader sees either the old list or the new one, never a mix, and the old
version serves until the new one is complete. :meth:`ListStore.versions` lets a running crawl
notice a new version in one cheap round trip, without loading any data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

import redis

from matchers.lists import ALLOW, KNOWN, HashList, Thresholds, validate_list_name
from takedown.errors import TakedownError
from takedown.keys import Keys

__all__ = ["ListInfo", "ListNotFound", "ListStore"]

_META_FIELDS: Final = ("version", "updated", "counts", "kind", "thresholds")


class ListNotFound(TakedownError):
    """No list of that name is stored."""


@dataclass(frozen=True, slots=True)
class ListInfo:
    """A stored list's metadata; ``kind`` is ``known`` or ``allow`` (known false positives)."""

    name: str
    version: int
    updated: str
    counts: dict[str, int]
    kind: str = KNOWN
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class ListStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def save(self, hash_list: HashList) -> ListInfo:
        """Store ``hash_list`` as the next version of its name, atomically.

        The list is serialized before the transaction starts; readers keep getting the
        previous version until ``EXEC`` replaces every field at once.
        """
        name = validate_list_name(hash_list.name)
        key = self.keys.list(name)
        updated = datetime.now(UTC).replace(microsecond=0).isoformat()
        counts = hash_list.counts()
        thresholds = hash_list.thresholds
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current = pipe.hget(key, "version")
                    version = int(current) + 1 if current else 1
                    hash_list.version = version
                    hash_list.created = updated
                    data = hash_list.to_bytes()
                    pipe.multi()
                    pipe.delete(key)
                    pipe.hset(
                        key,
                        mapping={
                            "data": data,
                            "version": version,
                            "updated": updated,
                            "counts": json.dumps(counts, sort_keys=True),
                            "kind": hash_list.kind,
                            "thresholds": json.dumps(thresholds.as_dict(), sort_keys=True),
                        },
                    )
                    pipe.sadd(self.keys.lists, name)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        return ListInfo(name, version, updated, counts, hash_list.kind, thresholds)

    def load(self, name: str) -> HashList:
        data = self.client.hget(self.keys.list(name), "data")
        if data is None:
            raise ListNotFound(f"no hash list named {name!r}")
        return HashList.from_bytes(cast("bytes", data))

    def load_all(self, names: Iterable[str] | None = None) -> list[HashList]:
        wanted = sorted(self.names() if names is None else set(names))
        return [self.load(n) for n in wanted]

    def load_for_matching(
        self, names: Iterable[str] | None = None
    ) -> tuple[list[HashList], list[HashList]]:
        """``(known, allow)`` lists for a crawl, each sorted by name.

        ``names`` selects the known lists (``None``: all of them). Allow-lists always load,
        whatever was selected: a known false positive must win in every crawl. A selected
        name that is an allow-list loads as one.

        Raises:
            ListNotFound: a selected name is not stored.
        """
        selected = None if names is None else set(names)
        infos = {info.name: info for info in self.info()}
        allow = {name for name, info in infos.items() if info.kind == ALLOW}
        if selected is None:
            wanted = set(infos)
        else:
            wanted = selected | allow
            for name in sorted(wanted - set(infos)):
                raise ListNotFound(f"no hash list named {name!r}")
        known_lists: list[HashList] = []
        allow_lists: list[HashList] = []
        for name in sorted(wanted):
            try:
                hash_list = self.load(name)
            except ListNotFound:
                if selected is not None and name in selected:
                    raise
                continue  # removed since info() was read and not asked for by name
            (allow_lists if hash_list.kind == ALLOW else known_lists).append(hash_list)
        return known_lists, allow_lists

    def names(self) -> list[str]:
        return sorted(m.decode() for m in cast("set[bytes]", self.client.smembers(self.keys.lists)))

    def versions(self) -> dict[str, int]:
        """Name -> current version of every stored list, in one round trip.

        One ``SORT <lists> BY nosort GET # GET <list:*>->version``: Redis reads the set and
        each list's version field in a single atomic command, so the answer is a consistent
        snapshot and costs no list data. (Standalone Redis; SORT with GET patterns is not
        available in Redis Cluster.)
        """
        raw = cast(
            "list[tuple[bytes, bytes | None]]",
            self.client.sort(
                self.keys.lists,
                by="nosort",
                get=["#", f"{self.keys.list('*')}->version"],
                groups=True,
            ),
        )
        return {name.decode(): int(version) for name, version in raw if version is not None}

    def info(self) -> list[ListInfo]:
        names = self.names()
        with self.client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self.keys.list(name), _META_FIELDS)
            rows = cast("list[list[Any]]", pipe.execute())
        out = []
        for name, raw in zip(names, rows, strict=True):
            if raw[0] is None:
                continue  # removed since names() was read
            if raw[3] is None or raw[4] is None:
                # Stored before kind and thresholds were kept beside the data.
                try:
                    stored = self.load(name)
                except ListNotFound:
                    continue
                kind, thresholds = stored.kind, stored.thresholds
            else:
                kind = raw[3].decode()
                thresholds = Thresholds(**json.loads(raw[4].decode()))
            out.append(
                ListInfo(
                    name,
                    int(raw[0]),
                    raw[1].decode(),
                    json.loads(raw[2].decode()),
                    kind,
                    thresholds,
                )
            )
        return out

    def remove(self, name: str) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.list(name))
            pipe.srem(self.keys.lists, name)
            deleted, _ = pipe.execute()
        if not deleted:
            raise ListNotFound(f"no hash list named {name!r}")
