"""Back-pressure by count: a crawl downloads no further while it holds enough responses.

Scrapy stops taking requests when the responses its scraper holds pass
``SCRAPER_SLOT_MAX_ACTIVE_SIZE`` bytes, each counted as at least 1 KiB. Images of a few KiB
download much faster than the hash pool digests them, so about 5 000 of them pile up within
that limit, each with its request, its callback's coroutines and Scrapy's deferreds: about
58 KiB apiece, some 280 MiB for bodies of 7 MiB (``bench/soak.py``). :class:`HeldResponses`
bounds their number instead: a request waits before it is downloaded while
``CRAWL_MAX_HELD_RESPONSES`` responses are being downloaded, waiting for the scraper or in it
(a page being parsed, an image waiting for the hash pool). The byte limit still applies.

The waiting request stays in the downloader's active set, so the engine, seeing the
downloader full, takes no more requests from the scheduler (in a distributed run: leases no
more from the frontier). It is checked again every :data:`POLL_INTERVAL` seconds. Nothing in
a callback waits for a download, so the responses held always finish and free their places.

Stats: ``crawl/held_responses/waited`` (requests that waited) and
``crawl/held_responses/max`` (the most held at once, as seen by a request passing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater

from crawler.settings import CRAWL_MAX_HELD_RESPONSES

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

__all__ = ["POLL_INTERVAL", "HeldResponses"]

#: Seconds between two looks at the count while a request waits.
POLL_INTERVAL: Final = 0.02


class HeldResponses:
    """Downloader middleware: no download starts while ``limit`` responses are held."""

    def __init__(self, crawler: Crawler, limit: int) -> None:
        self.crawler = crawler
        self.limit = limit
        self._waiting = 0  # requests in the downloader's active set that wait here

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HeldResponses:
        limit = crawler.settings.getint("CRAWL_MAX_HELD_RESPONSES", CRAWL_MAX_HELD_RESPONSES)
        if limit < 0:
            raise ValueError(f"CRAWL_MAX_HELD_RESPONSES cannot be negative: {limit}")
        if limit == 0:
            raise NotConfigured("CRAWL_MAX_HELD_RESPONSES is 0: Scrapy's byte limit only")
        return cls(crawler, limit)

    def held(self) -> int:
        """Responses being downloaded (past this middleware), waiting for the scraper or in
        it. The downloader's active set also has the requests waiting here (the one asking
        among them: it counts itself in before it asks)."""
        engine = self.crawler.engine
        if engine is None:
            return 0
        slot = engine.scraper.slot
        scraping = 0 if slot is None else len(slot.active) + len(slot.queue)
        return scraping + max(0, len(engine.downloader.active) - self._waiting)

    async def process_request(self, request: Request) -> None:
        self._waiting += 1
        try:
            held = self.held()
            self._max_stat(held)
            if held < self.limit:
                return
            self._inc("waited")
            from twisted.internet import reactor  # noqa: PLC0415 - Scrapy installs it first

            while self.held() >= self.limit:
                await maybe_deferred_to_future(deferLater(reactor, POLL_INTERVAL, lambda: None))
        finally:
            self._waiting -= 1

    def _inc(self, name: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"crawl/held_responses/{name}")

    def _max_stat(self, value: int) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.max_value("crawl/held_responses/max", value)
