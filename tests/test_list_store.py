"""Hash lists in Redis: versions, atomic replacement, kinds, allow-lists, removal."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from matchers.lists import ALLOW, KNOWN, HashList, ListEntry, Thresholds
from takedown.connection import redis_from_url
from takedown.keys import Keys
from takedown.lists import ListNotFound, ListStore


def entries(n: int, *, tag: str = "k") -> list[ListEntry]:
    """``n`` distinct sha256 entries."""
    return [ListEntry("sha256", f"{i:064x}", f"{tag}{i}", "test") for i in range(n)]


def test_list_store_versions_and_removal(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = ListStore(redis_client, Keys(redis_prefix))
    two = [
        ListEntry("sha256", "a" * 64, "k01", "test"),
        ListEntry("phash", "0f" * 8, "k01", "test"),
    ]
    first = store.save(HashList(name="known", entries=two))
    second = store.save(HashList(name="known", entries=two[:1]))
    assert (first.version, second.version) == (1, 2)
    assert store.names() == ["known"]
    loaded = store.load("known")
    assert loaded.entries == two[:1]
    assert loaded.version == 2
    (info,) = store.info()
    assert info.counts["sha256"] == 1 and info.counts["phash"] == 0 and info.total == 1
    store.remove("known")
    assert store.names() == []
    with pytest.raises(ListNotFound):
        store.load("known")
    with pytest.raises(ListNotFound):
        store.remove("known")


def test_info_carries_kind_and_thresholds(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = ListStore(redis_client, Keys(redis_prefix))
    strict = Thresholds(pdq_confirm=20, pdq_review=40, phash_review=10, pdq_min_quality=70)
    saved = store.save(HashList(name="fp", entries=entries(2), thresholds=strict, kind=ALLOW))
    store.save(HashList(name="known", entries=entries(3)))
    assert (saved.kind, saved.thresholds) == (ALLOW, strict)
    infos = {i.name: i for i in store.info()}
    assert (infos["fp"].kind, infos["fp"].thresholds, infos["fp"].total) == (ALLOW, strict, 2)
    assert (infos["known"].kind, infos["known"].thresholds) == (KNOWN, Thresholds())
    loaded = store.load("fp")
    assert (loaded.kind, loaded.thresholds) == (ALLOW, strict)


def test_info_of_a_list_stored_without_kind_fields(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    store = ListStore(redis_client, keys)
    strict = Thresholds(phash_confirm=4)
    store.save(HashList(name="old", entries=entries(1), thresholds=strict, kind=ALLOW))
    redis_client.hdel(keys.list("old"), "kind", "thresholds")  # as an older version wrote it
    (info,) = store.info()
    assert (info.kind, info.thresholds) == (ALLOW, strict)


def test_versions_in_one_snapshot(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = ListStore(redis_client, Keys(redis_prefix))
    assert store.versions() == {}
    for n in (1, 2, 3):
        store.save(HashList(name="a", entries=entries(n)))
    store.save(HashList(name="b", entries=entries(1), kind=ALLOW))
    assert store.versions() == {"a": 3, "b": 1}
    store.remove("a")
    assert store.versions() == {"b": 1}
    other = ListStore(redis_client, Keys(f"{redis_prefix}other:"))
    assert other.versions() == {}


def test_load_for_matching_always_loads_allow_lists(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = ListStore(redis_client, Keys(redis_prefix))
    store.save(HashList(name="a", entries=entries(1)))
    store.save(HashList(name="b", entries=entries(2)))
    store.save(HashList(name="fp", entries=entries(3, tag="fp"), kind=ALLOW))

    def names(pair: tuple[list[HashList], list[HashList]]) -> tuple[list[str], list[str]]:
        return [h.name for h in pair[0]], [h.name for h in pair[1]]

    assert names(store.load_for_matching()) == (["a", "b"], ["fp"])
    assert names(store.load_for_matching(["b"])) == (["b"], ["fp"])
    assert names(store.load_for_matching([])) == ([], ["fp"])
    assert names(store.load_for_matching(iter(["fp"]))) == ([], ["fp"])
    with pytest.raises(ListNotFound, match="'nope'"):
        store.load_for_matching(["a", "nope"])


def test_readers_see_the_old_or_the_new_version_never_a_mix(
    redis_url: str, redis_prefix: str
) -> None:
    """Version v of the list has v entries, so any mix of two versions shows."""
    keys = Keys(redis_prefix)
    writer_client = redis_from_url(redis_url)
    writer = ListStore(writer_client, keys)
    writer.save(HashList(name="known", entries=entries(1)))
    done = threading.Event()
    last_version = 40

    def write() -> None:
        try:
            for version in range(2, last_version + 1):
                assert writer.save(HashList(name="known", entries=entries(version))).version == (
                    version
                )
        finally:
            done.set()

    def read() -> tuple[int, set[int]]:
        client = redis_from_url(redis_url)
        store = ListStore(client, keys)
        seen: set[int] = set()
        reads = 0
        try:
            while not done.is_set() or reads == 0:
                loaded = store.load("known")
                assert sum(loaded.counts().values()) == loaded.version
                (info,) = store.info()
                assert info.total == info.version
                assert info.kind == KNOWN
                assert store.versions()["known"] >= loaded.version
                seen.add(loaded.version)
                reads += 1
        finally:
            client.close()
        return reads, seen

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            readers = [pool.submit(read) for _ in range(3)]
            pool.submit(write).result()
            results = [r.result() for r in readers]
    finally:
        writer_client.close()
    assert all(reads > 0 for reads, _ in results)
    final = ListStore(redis_from_url(redis_url), keys)
    try:
        assert final.versions() == {"known": last_version}
        assert sum(final.load("known").counts().values()) == last_version
    finally:
        final.client.close()
