"""Crawl bookkeeping in Redis: one ``<prefix>crawl:<id>`` hash per crawl.

Written when the spider opens (seeds, start time) and closes (finish reason and the crawl's
stats), so ``hotline`` commands and dashboards can show past crawls after the process is gone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrapy import Spider, signals
from scrapy.exceptions import NotConfigured

from crawler.pipelines import keys_from, redis_url_from
from takedown.connection import redis_from_url
from takedown.errors import TakedownError
from takedown.keys import Keys

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class CrawlRecord:
    def __init__(self, crawler: Crawler, redis_url: str, keys: Keys) -> None:
        self.crawler = crawler
        self.redis_url = redis_url
        self.keys = keys
        self.started = datetime.now(UTC)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRecord:
        if not crawler.settings.getbool("CRAWLRECORD_ENABLED", True):
            raise NotConfigured("CRAWLRECORD_ENABLED is off")
        ext = cls(crawler, redis_url_from(crawler.settings), keys_from(crawler.settings))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def _write(self, crawl_id: str, mapping: Mapping[Any, Any], *, started: bool) -> None:
        try:
            client = redis_from_url(self.redis_url)
        except TakedownError as exc:
            logger.error("crawl record not written: %s", exc)
            return
        try:
            key = self.keys.crawl(crawl_id)
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=mapping)
                if started:
                    pipe.zadd(self.keys.crawls, {crawl_id: self.started.timestamp()})
                pipe.execute()
        finally:
            client.close()

    def spider_opened(self, spider: Spider) -> None:
        self.started = datetime.now(UTC)
        self._write(
            str(getattr(spider, "crawl_id", "")),
            {"started": self.started.isoformat(timespec="seconds"), "spider": spider.name},
            started=True,
        )

    def spider_closed(self, spider: Spider, reason: str) -> None:
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        self._write(
            str(getattr(spider, "crawl_id", "")),
            {
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "reason": reason,
                "stats": json.dumps(stats, default=str, sort_keys=True),
            },
            started=False,
        )
