"""The hasher the spider uses, offline: settings, defaults, and what the spider makes of a
pool's failures (no reactor: the inline pool and stand-ins answer at once)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.hashing import (
    IN_FLIGHT_PER_WORKER,
    POOL_INLINE,
    POOL_PROCESS,
    POOL_THREAD,
    ImageHasher,
    cpu_count,
)
from crawler.spiders.hotline import HASH_POOL_FAILED, WORKER_FAILED_ERROR, HotlineSpider
from crawler.workerpool import HashPoolError, WorkerCrashed, WorkerFailure
from hotline.imagegen import encode, textured_image
from matchers.digest import ImageDigest, digest_bytes
from matchers.errors import NotAnImage

BODY = encode(textured_image(4242, 160, 120), "PNG")


def test_defaults_one_worker_per_core_two_bodies_in_flight_each() -> None:
    hasher = ImageHasher(pool=POOL_THREAD)
    assert hasher.workers == cpu_count() >= 1
    assert hasher.max_in_flight == IN_FLIGHT_PER_WORKER * hasher.workers
    assert ImageHasher(pool=POOL_INLINE, workers=4).workers == 1


def test_settings_choose_the_pool() -> None:
    crawler = get_crawler(
        settings_dict={
            "MATCHER_POOL": " Thread ",
            "MATCHER_WORKERS": 3,
            "MATCHER_MAX_IN_FLIGHT": 5,
            "MATCHER_HASH_TIMEOUT": 7.5,
            "MATCHER_MAX_PIXELS": 1000,
        }
    )
    hasher = ImageHasher.from_crawler(crawler)
    assert (hasher.kind, hasher.workers, hasher.max_in_flight) == (POOL_THREAD, 3, 5)
    assert (hasher.timeout, hasher.max_pixels) == (7.5, 1000)
    assert ImageHasher.from_crawler(get_crawler()).kind == POOL_PROCESS  # the default


@pytest.mark.parametrize(
    "settings",
    [{"pool": "fork"}, {"workers": -1}, {"max_in_flight": -2}, {"timeout": 0}],
    ids=str,
)
def test_a_wrong_setting_is_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(NotConfigured, match="MATCHER_"):
        ImageHasher(**settings)


def test_the_inline_pool_hashes_on_the_calling_thread() -> None:
    hasher = ImageHasher(pool=POOL_INLINE)
    assert asyncio.run(hasher.digest(BODY)) == digest_bytes(BODY)
    with pytest.raises(NotAnImage):
        asyncio.run(hasher.digest(b"<html></html>"))
    assert hasher._slots.tokens == hasher.max_in_flight  # every place given back


def test_the_hasher_computes_only_what_the_lists_can_query() -> None:
    # The inline pool here (no reactor); the others in tests/crawler/test_pools.py, through
    # crawls, and the worker processes' side in tests/crawler/test_workerpool.py.
    hasher = ImageHasher(pool=POOL_INLINE)
    try:
        everything = asyncio.run(hasher.digest(BODY))
        assert everything == digest_bytes(BODY)
        hasher.use_algorithms(frozenset({"pdq"}))
        pdq_only = asyncio.run(hasher.digest(BODY))
        assert pdq_only == digest_bytes(BODY, algorithms=("sha256", "pdq"))
        assert pdq_only.pdq == everything.pdq and pdq_only.phash is None
        hasher.use_algorithms(frozenset())
        exact_only = asyncio.run(hasher.digest(BODY))
        assert (exact_only.pdq, exact_only.phash) == (None, None)
        assert exact_only.sha256 == everything.sha256
        with pytest.raises(ValueError, match="md5"):  # exact ones are not perceptual
            hasher.use_algorithms({"md5"})
        assert hasher.algorithms == ("md5", "sha1", "sha256")  # unchanged by the refusal
    finally:
        hasher.stop()


class _FailingHasher:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def digest(self, body: bytes) -> ImageDigest:
        raise self.error


def _spider_with(error: Exception) -> HotlineSpider:
    crawler = get_crawler(HotlineSpider)
    crawler.spider = spider = HotlineSpider.from_crawler(crawler, urls="http://example.org/")
    crawler.stats.open_spider()
    spider.hasher = _FailingHasher(error)  # type: ignore[assignment]
    return spider


@pytest.mark.parametrize("reason", ["crashed", "timeout"])
def test_an_image_no_worker_could_hash_keeps_its_exact_hashes(reason: str) -> None:
    spider = _spider_with(WorkerCrashed(reason, "workers died"))
    digest = asyncio.run(spider._digest(BODY, "http://example.org/a.png"))
    expected = digest_bytes(BODY)
    assert digest is not None
    exact = (expected.md5, expected.sha1, expected.sha256)
    assert (digest.md5, digest.sha1, digest.sha256) == exact
    assert (digest.pdq, digest.phash, digest.error) == (None, None, WORKER_FAILED_ERROR)
    assert digest.format == "png"
    assert spider.crawler.stats.get_value(f"matcher/bytes_only/{reason}") == 1


def test_an_image_whose_worker_raised_keeps_its_exact_hashes() -> None:
    spider = _spider_with(WorkerFailure("MemoryError"))
    digest = asyncio.run(spider._digest(BODY, "http://example.org/a.png"))
    assert digest is not None
    assert digest.sha256 == digest_bytes(BODY).sha256
    assert (digest.pdq, digest.error) == (None, WORKER_FAILED_ERROR)
    assert spider.crawler.stats.get_value("matcher/bytes_only/failure") == 1


class _Engine:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def close_spider_async(self, *, reason: str) -> None:
        self.reasons.append(reason)


def test_a_pool_that_cannot_start_stops_the_crawl_once() -> None:
    spider = _spider_with(HashPoolError("a hash worker did not start"))
    spider.crawler.engine = engine = _Engine()  # type: ignore[assignment]
    for _ in range(2):
        assert asyncio.run(spider._digest(BODY, "http://example.org/a.png")) is None
    assert engine.reasons == [HASH_POOL_FAILED]
    assert spider.crawler.stats.get_value("matcher/pool/failed") == 2
    assert spider.crawler.stats.get_value("matcher/hashed") is None
