"""Known-hash lists and allow-lists, kept in Redis so every crawl process (on any machine) loads
the same ones.

A list is its metadata in the hash ``<prefix>list:<name>`` (``version``, ``updated``,
``counts``, ``kind``, ``thresholds``, ``classification``, ``chunks``, ``size``), its serialized
entries in the
Redis list ``<prefix>list:<name>:v<version>`` as chunks of at most :data:`CHUNK_BYTES` (a
10-million-entry PDQ list is about 510 MB, past Redis's 512 MB limit for one value), and its
name in the set ``<prefix>lists``.

Saving writes the new version's chunks under their own key first, then switches the metadata
to it in one ``MULTI`` transaction: a reader sees the old version or the new one, never a mix,
and the old version serves until the new one is complete. The old version's data is kept for
:data:`OLD_VERSION_GRACE` seconds, so a crawl that read the old metadata a moment before the
switch still loads it. :meth:`ListStore.versions` lets a running crawl notice a new version in
one cheap round trip, without loading any data.

A known list also carries its **classification**: which X-ARF ``content/csam``
``classification`` (:data:`CLASSIFICATIONS`) each of its categories stands for, as a
:class:`ClassificationMap`. It is set by whoever imports the list and kept across new
versions until replaced (``save(..., classification=None)`` keeps it). A category it does not
map has no classification: the project never assumes one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

import redis

from matchers.lists import ALLOW, KNOWN, HashList, Thresholds, validate_list_name
from store.errors import ListNotFound
from store.keys import Keys

__all__ = [
    "CLASSIFICATIONS",
    "EVERY_CATEGORY",
    "ClassificationMap",
    "ListInfo",
    "ListNotFound",
    "ListStore",
    "normalise_classification",
]

_META_FIELDS: Final = ("version", "updated", "counts", "kind", "thresholds", "classification")
#: Largest chunk of a serialized list in one Redis value (Redis refuses values over 512 MB).
CHUNK_BYTES: Final = 64 * 1024 * 1024
#: Seconds the previous version's data outlives a save, for readers that are mid-load.
OLD_VERSION_GRACE: Final = 600

#: The X-ARF v4 ``content/csam`` ``classification`` values (the schema's enum, in its order):
#: ``baseline`` (illegal under the internationally agreed baseline), ``A1``/``A2`` (a
#: prepubescent child: sex act / lascivious exhibition), ``B1``/``B2`` (a pubescent child: sex
#: act / lascivious exhibition).
CLASSIFICATIONS: Final[tuple[str, ...]] = ("baseline", "A1", "A2", "B1", "B2")
#: The key of a :class:`ClassificationMap` that stands for every category it does not name.
EVERY_CATEGORY: Final = "*"


def normalise_classification(value: str) -> str:
    """``value`` spelt as X-ARF spells it (``a1`` -> ``A1``, ``Baseline`` -> ``baseline``).

    Raises:
        ValueError: not one of :data:`CLASSIFICATIONS` (the message lists them).
    """
    wanted = value.strip().casefold() if isinstance(value, str) else ""
    for known in CLASSIFICATIONS:
        if known.casefold() == wanted:
            return known
    raise ValueError(
        f"{value!r} is not an X-ARF classification (one of {', '.join(CLASSIFICATIONS)})"
    )


@dataclass(frozen=True, slots=True)
class ClassificationMap:
    """A list's categories -> X-ARF classification; the key :data:`EVERY_CATEGORY` (``*``)
    covers every category not named. Values are always one of :data:`CLASSIFICATIONS`."""

    categories: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, mapping: Mapping[str, object]) -> ClassificationMap:
        """From category -> value text, normalising values.

        Raises:
            ValueError: a value is not an X-ARF classification (names the category).
        """
        clean: dict[str, str] = {}
        for category, value in mapping.items():
            try:
                clean[str(category).strip()] = normalise_classification(str(value))
            except ValueError as exc:
                raise ValueError(f"category {category!r}: {exc}") from None
        return cls(clean)

    def lookup(self, category: str) -> str | None:
        """The classification of ``category``: its own entry, else the ``*`` one, else None."""
        found = self.categories.get(category.strip())
        return found if found is not None else self.categories.get(EVERY_CATEGORY)

    def __bool__(self) -> bool:
        return bool(self.categories)

    def as_dict(self) -> dict[str, str]:
        return dict(sorted(self.categories.items()))

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> ClassificationMap:
        """The stored form; a missing field is the empty map (nothing classified)."""
        if not raw:
            return cls()
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"classification must be a JSON object, got {data!r}")
        return cls.parse(data)


@dataclass(frozen=True, slots=True)
class ListInfo:
    """A stored list's metadata; ``kind`` is ``known`` or ``allow`` (known false positives)."""

    name: str
    version: int
    updated: str
    counts: dict[str, int]
    kind: str = KNOWN
    thresholds: Thresholds = field(default_factory=Thresholds)
    classification: ClassificationMap = field(default_factory=ClassificationMap)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        """What ``hashes lists --json`` and the console show of a list."""
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "updated": self.updated,
            "thresholds": self.thresholds.as_dict(),
            "counts": self.counts,
            "total": self.total,
            "classification": None if self.kind == ALLOW else self.classification.as_dict(),
        }


class ListStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def save(
        self, hash_list: HashList, *, classification: ClassificationMap | None = None
    ) -> ListInfo:
        """Store ``hash_list`` as the next version of its name, atomically.

        The list is serialized before the transaction starts; readers keep getting the
        previous version until ``EXEC`` replaces every field at once. ``classification``
        replaces the list's stored classification; ``None`` keeps the one the previous version
        had (none for a new list).
        """
        name = validate_list_name(hash_list.name)
        key = self.keys.list(name)
        updated = datetime.now(UTC).replace(microsecond=0).isoformat()
        counts = hash_list.counts()
        thresholds = hash_list.thresholds
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                data_key = ""
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    current, stored_classification = cast(
                        "list[bytes | None]", pipe.hmget(key, ["version", "classification"])
                    )
                    previous = int(current) if current else 0
                    kept = (
                        classification
                        if classification is not None
                        else ClassificationMap.from_json(stored_classification)
                    )
                    version = previous + 1
                    hash_list.version = version
                    hash_list.created = updated
                    data = hash_list.to_bytes()
                    data_key = self.keys.list_data(name, version)
                    chunks = self._write_chunks(data_key, data)
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "version": version,
                            "updated": updated,
                            "counts": json.dumps(counts, sort_keys=True),
                            "kind": hash_list.kind,
                            "thresholds": json.dumps(thresholds.as_dict(), sort_keys=True),
                            "classification": kept.to_json(),
                            "chunks": chunks,
                            "size": len(data),
                        },
                    )
                    pipe.persist(data_key)
                    if previous:
                        pipe.expire(self.keys.list_data(name, previous), OLD_VERSION_GRACE)
                    pipe.sadd(self.keys.lists, name)
                    pipe.execute()
                    break
                except redis.WatchError:
                    self.client.delete(data_key)  # another save won: write again on top
                    continue
                except BaseException:
                    if data_key:
                        self.client.delete(data_key)
                    raise
        return ListInfo(name, version, updated, counts, hash_list.kind, thresholds, kept)

    def _write_chunks(self, data_key: str, data: bytes) -> int:
        """Write ``data`` under ``data_key`` in chunks; the key expires unless a save commits
        it (so a writer that dies half-way leaves nothing behind for long)."""
        view = memoryview(data)
        chunks = max(1, -(-len(data) // CHUNK_BYTES))
        with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(data_key)
            for i in range(chunks):
                pipe.rpush(data_key, bytes(view[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]))
            pipe.expire(data_key, OLD_VERSION_GRACE)
            pipe.execute()
        return chunks

    def load(self, name: str) -> HashList:
        """The current version of a list, read chunk by chunk into one buffer."""
        raw = cast(
            "list[bytes | None]",
            self.client.hmget(self.keys.list(name), ["version", "chunks", "size"]),
        )
        if raw[0] is None or raw[1] is None or raw[2] is None:
            raise ListNotFound(f"no hash list named {name!r}")
        version, chunks, size = int(raw[0]), int(raw[1]), int(raw[2])
        data_key = self.keys.list_data(name, version)
        buffer = bytearray(size)
        filled = 0
        for i in range(chunks):
            chunk = cast("bytes | None", self.client.lindex(data_key, i))
            if chunk is None or filled + len(chunk) > size:
                raise ListNotFound(
                    f"hash list {name!r} version {version} is gone or damaged "
                    "(replaced long ago while being read?)"
                )
            buffer[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        if filled != size:
            raise ListNotFound(f"hash list {name!r} version {version} is incomplete")
        return HashList.from_bytes(buffer)

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

    def classification(self, name: str) -> ClassificationMap | None:
        """The stored classification of list ``name``; ``None`` if no such list is stored."""
        key = self.keys.list(name)
        version, raw = cast(
            "list[bytes | None]", self.client.hmget(key, ["version", "classification"])
        )
        if version is None:
            return None
        return ClassificationMap.from_json(raw)

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
                    ClassificationMap.from_json(raw[5]),
                )
            )
        return out

    def remove(self, name: str) -> None:
        key = self.keys.list(name)
        version = self.client.hget(key, "version")
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.srem(self.keys.lists, name)
            if version is not None:
                # Readers mid-load finish with the data; then it goes.
                pipe.expire(self.keys.list_data(name, int(version)), OLD_VERSION_GRACE)
            deleted = pipe.execute()[0]
        if not deleted:
            raise ListNotFound(f"no hash list named {name!r}")
