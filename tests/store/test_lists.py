"""Hash lists in Redis: versions, atomic replacement, kinds, allow-lists, removal."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from matchers.lists import ALLOW, KNOWN, HashList, ListEntry, Thresholds
from store.connection import redis_from_url
from store.errors import ListNotFound
from store.keys import Keys
from store.lists import (
    CLASSIFICATIONS,
    ClassificationMap,
    ListStore,
    normalise_classification,
)


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
    strict = Thresholds(
        pdq_confirm=20, pdq_review=40, phash_review=10, pdq_min_quality=70, corroborate=True
    )
    saved = store.save(HashList(name="fp", entries=entries(2), thresholds=strict, kind=ALLOW))
    store.save(HashList(name="known", entries=entries(3)))
    assert (saved.kind, saved.thresholds) == (ALLOW, strict)
    infos = {i.name: i for i in store.info()}
    assert (infos["fp"].kind, infos["fp"].thresholds, infos["fp"].total) == (ALLOW, strict, 2)
    assert (infos["known"].kind, infos["known"].thresholds) == (KNOWN, Thresholds())
    loaded = store.load("fp")
    assert (loaded.kind, loaded.thresholds) == (ALLOW, strict)
    # A list stored before corroboration existed reads as without it.
    older = {k: v for k, v in strict.as_dict().items() if k != "corroborate"}
    redis_client.hset(Keys(redis_prefix).list("fp"), "thresholds", json.dumps(older))
    infos = {i.name: i for i in store.info()}
    assert infos["fp"].thresholds == Thresholds(**older)  # type: ignore[arg-type]
    assert infos["fp"].thresholds.corroborate is False


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


def test_large_lists_are_stored_in_chunks_and_old_versions_expire(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.lists as lists_module

    monkeypatch.setattr(lists_module, "CHUNK_BYTES", 1000)
    keys = Keys(redis_prefix)
    store = ListStore(redis_client, keys)
    entries = [ListEntry("sha256", f"{i:064x}", f"e{i}") for i in range(200)]
    store.save(HashList(name="big", entries=entries))
    data_key = keys.list_data("big", 1)
    assert redis_client.llen(data_key) > 3
    assert redis_client.ttl(data_key) == -1  # the current version never expires
    assert list(store.load("big").entries) == entries
    store.save(HashList(name="big", entries=entries[:10]))
    assert 0 < redis_client.ttl(data_key) <= lists_module.OLD_VERSION_GRACE
    assert redis_client.ttl(keys.list_data("big", 2)) == -1
    assert list(store.load("big").entries) == entries[:10]
    store.remove("big")
    assert 0 < redis_client.ttl(keys.list_data("big", 2)) <= lists_module.OLD_VERSION_GRACE
    assert not redis_client.exists(keys.list("big"))


def test_a_save_that_fails_half_way_leaves_the_old_version(
    redis_client: redis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keys(redis_prefix)
    store = ListStore(redis_client, keys)
    first = [ListEntry("md5", "a" * 32, "a")]
    store.save(HashList(name="k", entries=first))

    def broken(self: ListStore, data_key: str, data: bytes) -> int:
        redis_client.rpush(data_key, data[:10])
        raise redis.ConnectionError("connection lost while writing")

    monkeypatch.setattr(ListStore, "_write_chunks", broken)
    with pytest.raises(redis.ConnectionError):
        store.save(HashList(name="k", entries=[ListEntry("md5", "b" * 32, "b")]))
    assert not redis_client.exists(keys.list_data("k", 2))
    assert list(store.load("k").entries) == first
    assert store.versions() == {"k": 1}


# -- classification ----------------------------------------------------------------------------


def test_classification_is_kept_across_versions_until_replaced(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    store = ListStore(redis_client, Keys(redis_prefix))
    assert store.classification("known") is None  # no such list
    store.save(HashList(name="plain", entries=entries(1)))
    assert store.classification("plain") == ClassificationMap()  # stored, nothing mapped
    mapping = ClassificationMap.parse({"*": "baseline", "test": "a1"})
    first = store.save(HashList(name="known", entries=entries(2)), classification=mapping)
    assert first.classification.as_dict() == {"*": "baseline", "test": "A1"}
    second = store.save(HashList(name="known", entries=entries(3)))  # a new version, no mapping
    assert second.version == 2
    read_back = store.classification("known")
    assert read_back is not None and read_back.as_dict() == {"*": "baseline", "test": "A1"}
    infos = {i.name: i for i in store.info()}
    assert infos["known"].classification.lookup("test") == "A1"
    assert infos["known"].classification.lookup("other") == "baseline"
    assert infos["plain"].classification.lookup("test") is None
    store.save(
        HashList(name="known", entries=entries(3)),
        classification=ClassificationMap.parse({"test": "B2"}),
    )
    replaced = store.classification("known")
    assert replaced is not None and replaced.as_dict() == {"test": "B2"}
    assert replaced.lookup("other") is None
    store.remove("known")
    store.save(HashList(name="known", entries=entries(1)))
    assert store.classification("known") == ClassificationMap()  # a removed list starts over


@pytest.mark.parametrize("value", ["A3", "", "illegal", "national"])
def test_only_x_arf_classifications_are_accepted(value: str) -> None:
    with pytest.raises(ValueError, match="not an X-ARF classification"):
        normalise_classification(value)
    with pytest.raises(ValueError, match="category 'c'"):
        ClassificationMap.parse({"c": value})


def test_classification_values_are_spelt_as_x_arf_spells_them() -> None:
    spelt = [normalise_classification(v) for v in ("BASELINE", "a1", " A2 ", "b1", "B2")]
    assert tuple(spelt) == CLASSIFICATIONS
