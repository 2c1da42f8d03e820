"""A running crawl picks up new list versions, new lists and removals (MatchPipeline)."""

from __future__ import annotations

import threading

import redis
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.pipelines import MatchPipeline
from crawler.signals import lists_changed
from hotline.imagegen import encode, textured_image
from matchers.digest import digest_bytes
from matchers.lists import ALLOW, HashList, ListEntry
from store.keys import Keys
from store.lists import ListStore


def _pipeline(redis_url: str, prefix: str, names: list[str] | None = None) -> MatchPipeline:
    stats = MemoryStatsCollector(get_crawler())
    return MatchPipeline(stats, redis_url, Keys(prefix), names, reload_interval=0)


def test_new_versions_lists_and_removals_are_picked_up(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    a, b = (digest_bytes(encode(textured_image(s), "PNG")) for s in (5501, 5502))
    store = ListStore(redis_client, Keys(redis_prefix))
    store.save(HashList(name="k", entries=[ListEntry("sha256", a.sha256, "a")]))
    pipeline = _pipeline(redis_url, redis_prefix)
    pipeline.open_spider()
    assert [m.entry for m in pipeline.matcher.match(a)] == ["a"]
    assert pipeline.matcher.match(b) == []
    assert pipeline.reload_lists() == 0  # nothing changed: nothing loaded

    store.save(HashList(name="k", entries=[ListEntry("sha256", b.sha256, "b")]))
    store.save(HashList(name="more", entries=[ListEntry("sha256", a.sha256, "a2")]))
    assert pipeline.reload_lists() == 2
    assert [(m.list, m.entry) for m in pipeline.matcher.match(b)] == [("k", "b")]
    assert [(m.list, m.entry) for m in pipeline.matcher.match(a)] == [("more", "a2")]
    assert pipeline.stats.get_value("matcher/lists") == 2

    store.save(HashList(name="fps", entries=[ListEntry("sha256", a.sha256, "fp")], kind=ALLOW))
    store.remove("k")
    assert pipeline.reload_lists() == 2
    assert pipeline.matcher.match(a) == []  # the new allow-list wins
    assert pipeline.matcher.match(b) == []  # list k is gone
    assert [hl.name for hl in pipeline.matcher.lists] == ["more"]


def test_unselected_known_lists_are_never_loaded(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    a = digest_bytes(encode(textured_image(5503), "PNG"))
    store = ListStore(redis_client, Keys(redis_prefix))
    store.save(HashList(name="chosen", entries=[ListEntry("sha256", a.sha256, "a")]))
    pipeline = _pipeline(redis_url, redis_prefix, names=["chosen"])
    pipeline.open_spider()
    store.save(HashList(name="other", entries=[ListEntry("sha256", a.sha256, "x")]))
    assert pipeline.reload_lists() == 0
    assert [hl.name for hl in pipeline.matcher.lists] == ["chosen"]


def test_the_spider_hears_which_perceptual_hashes_the_lists_hold(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    a = digest_bytes(encode(textured_image(5504), "PNG"))
    assert a.pdq is not None and a.phash is not None
    store = ListStore(redis_client, Keys(redis_prefix))
    store.save(HashList(name="exact", entries=[ListEntry("md5", a.md5, "a")]))
    crawler = get_crawler()
    heard: list[frozenset[str]] = []

    def hear(algorithms: frozenset[str]) -> None:
        heard.append(algorithms)

    crawler.signals.connect(hear, signal=lists_changed, weak=False)
    pipeline = _pipeline(redis_url, redis_prefix)
    pipeline.signals = crawler.signals
    pipeline.open_spider()
    assert heard == [frozenset()]  # exact hashes only: nothing to decode

    def reload_elsewhere() -> None:  # as a crawl does, on a worker thread
        reloader = threading.Thread(target=pipeline.reload_lists)
        reloader.start()
        reloader.join()

    store.save(HashList(name="pdq", entries=[ListEntry("pdq", a.pdq, "a")]))
    reload_elsewhere()
    assert heard[-1] == frozenset({"pdq"})
    store.save(HashList(name="fps", entries=[ListEntry("phash", a.phash, "fp")], kind=ALLOW))
    reload_elsewhere()
    assert heard[-1] == frozenset({"pdq", "phash"})  # an allow-list needs its hashes too
    store.remove("pdq")
    store.remove("fps")
    reload_elsewhere()
    assert heard[-1] == frozenset()
