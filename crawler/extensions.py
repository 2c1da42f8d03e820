"""Crawl bookkeeping in Redis: each crawl writes its run record (:mod:`store.runs`).

``CrawlRecord`` starts the run when the spider opens — creating the record first when the
crawl was not queued beforehand (``scrapy crawl``, ``hotline crawl`` without ``--run``) —
pushes live counts and health flags every ``CRAWLRECORD_INTERVAL`` seconds, stops the crawl
when someone asked the run to cancel, and finishes the run when the spider closes: status,
reason, final counts, health and Scrapy's stats. The record holds URLs, settings and counts,
never content. It reaches Redis through :mod:`crawler.redis` (``STORE_*`` settings).

Crawl health works like Spidermon's monitors: a declarative set of :class:`HealthCheck`
classes, each a name, its thresholds as class attributes (overridable by ``HEALTH_*``
settings) and one test of the run's counts; the names of the checks that fail are the run's
health flags (``runs list`` shows them).

Settings:

* ``CRAWLRECORD_ENABLED``   write the run record (default on)
* ``CRAWLRECORD_INTERVAL``  seconds between live updates and cancel checks (0: none)
* ``CRAWLRECORD_ORIGIN``    who started a run created on the fly (``cli``; default ``scrapy``)
* ``CRAWLRECORD_OPTIONS``   the crawl options recorded with a run created on the fly (default:
                            a summary of the crawl settings)
* ``HEALTH_MAX_ERROR_RATE``, ``HEALTH_MIN_REQUESTS``, ``HEALTH_NO_IMAGES_MIN_PAGES``

Their defaults are in :mod:`crawler.settings`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import redis
from scrapy import Spider, signals
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from crawler.frontier import worker_id
from crawler.redis import connect, keys_from, redis_url_from
from crawler.settings import (
    CRAWLRECORD_ENABLED,
    CRAWLRECORD_INTERVAL,
    HEALTH_MAX_ERROR_RATE,
    HEALTH_MIN_REQUESTS,
    HEALTH_NO_IMAGES_MIN_PAGES,
)
from store.errors import RunExists, RunStateError, StoreError
from store.frontier import Frontier
from store.keys import Keys
from store.runs import (
    ENDED,
    ORIGIN_SCRAPY,
    REASON_CANCELLED,
    REASON_FINISHED,
    RunStats,
    RunStore,
    status_for_reason,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

#: Finish reason of a crawl whose run was not startable (running elsewhere, ended).
RUN_NOT_STARTABLE = "run_not_startable"
#: Health flag of a distributed run that gave requests up (its frontier's dead letters).
DEAD_LETTERS = "dead_letters"


# -- crawl health ------------------------------------------------------------------------------


class HealthCheck:
    """One check of a run's counts. Subclasses set ``name`` and implement :meth:`problem`;
    ``live`` checks also run on the counts of a crawl in progress (a check that can only be
    judged at the end, like "no page at all", is not live)."""

    name: ClassVar[str]
    live: ClassVar[bool] = False

    def problem(self, stats: RunStats) -> str | None:
        """Why the run is unhealthy by this check, or None."""
        raise NotImplementedError


class NoPages(HealthCheck):
    """The run fetched no page (and no image): every seed failed, or was refused."""

    name = "no_pages"

    def problem(self, stats: RunStats) -> str | None:
        if stats.pages or stats.images:
            return None
        return f"fetched no page ({stats.distinct_requests} requests, {stats.error_count} failed)"


class ErrorRate(HealthCheck):
    """Too many requests failed (after retries), once there are enough requests to judge."""

    name = "error_rate"
    live = True
    max_rate = HEALTH_MAX_ERROR_RATE
    min_requests = HEALTH_MIN_REQUESTS

    def __init__(
        self, max_rate: float = HEALTH_MAX_ERROR_RATE, min_requests: int = HEALTH_MIN_REQUESTS
    ) -> None:
        self.max_rate = max_rate
        self.min_requests = min_requests

    def problem(self, stats: RunStats) -> str | None:
        if stats.distinct_requests < self.min_requests or stats.error_rate <= self.max_rate:
            return None
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(stats.errors.items()))
        return (
            f"{stats.error_count} of {stats.distinct_requests} requests failed "
            f"({stats.error_rate:.0%} > {self.max_rate:.0%}): {kinds}"
        )


class NoImages(HealthCheck):
    """Pages were crawled but not one image was seen: discovery may be broken for the site."""

    name = "no_images"
    min_pages = HEALTH_NO_IMAGES_MIN_PAGES

    def __init__(self, min_pages: int = HEALTH_NO_IMAGES_MIN_PAGES) -> None:
        self.min_pages = min_pages

    def problem(self, stats: RunStats) -> str | None:
        if stats.pages < self.min_pages or stats.images:
            return None
        return f"{stats.pages} pages, no image"


class PageCaps(HealthCheck):
    """Pages had more references than the per-page caps follow: content may have been left
    out (or a page was built to flood the crawl)."""

    name = "page_caps"
    live = True

    def problem(self, stats: RunStats) -> str | None:
        if not stats.pages_capped:
            return None
        return (
            f"{stats.pages_capped} pages had more images, links, stylesheets or frames than "
            "CRAWL_MAX_*_PER_PAGE follow (crawl/page_cap/*)"
        )


class ParseTimeouts(HealthCheck):
    """Pages took more than their CPU budget to read and were dropped: their images were not
    looked at (or pages were built to stall a crawler)."""

    name = "parse_timeouts"
    live = True

    def problem(self, stats: RunStats) -> str | None:
        if not stats.parse_timeouts:
            return None
        return (
            f"{stats.parse_timeouts} pages took more than CRAWL_PARSE_TIMEOUT CPU seconds to read "
            "and were dropped (crawl/parse_timeout)"
        )


class CrawlHealth:
    """The checks a run is judged by."""

    def __init__(self, checks: Iterable[HealthCheck]) -> None:
        self.checks = list(checks)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> CrawlHealth:
        return cls(
            [
                NoPages(),
                ErrorRate(
                    settings.getfloat("HEALTH_MAX_ERROR_RATE", HEALTH_MAX_ERROR_RATE),
                    settings.getint("HEALTH_MIN_REQUESTS", HEALTH_MIN_REQUESTS),
                ),
                NoImages(settings.getint("HEALTH_NO_IMAGES_MIN_PAGES", HEALTH_NO_IMAGES_MIN_PAGES)),
                PageCaps(),
                ParseTimeouts(),
            ]
        )

    def evaluate(self, stats: RunStats, *, final: bool) -> dict[str, str]:
        """Flag name -> why, for every failing check (only the live ones unless ``final``)."""
        flags: dict[str, str] = {}
        for check in self.checks:
            if not (final or check.live):
                continue
            problem = check.problem(stats)
            if problem is not None:
                flags[check.name] = problem
        return flags


# -- the run record ----------------------------------------------------------------------------


def options_from_settings(settings: BaseSettings) -> dict[str, Any]:
    """The crawl options of a run created on the fly (the keys of ``hotline crawl``'s)."""
    return {
        "depth": settings.getint("CRAWL_DEPTH"),
        "max_pages": settings.getint("CRAWL_MAX_PAGES_PER_SEED"),
        "allow_private_networks": settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS"),
        "allowed_networks": settings.getlist("SAFETY_ALLOWED_NETWORKS"),
        "obey_robots": settings.getbool("ROBOTSTXT_OBEY"),
        "lists": settings.getlist("MATCHER_LISTS"),
    }


def spider_seeds(spider: Spider) -> list[str]:
    """The seeds a spider was given: its URLs, and ``file:<path>`` for a seed file."""
    seeds = [str(u) for u in getattr(spider, "_urls_arg", None) or []]
    seed_file = getattr(spider, "_seed_file", None)
    if seed_file:
        seeds.append(f"file:{seed_file}")
    return seeds


class CrawlRecord:
    def __init__(
        self,
        crawler: Crawler,
        redis_url: str,
        keys: Keys,
        *,
        interval: float = CRAWLRECORD_INTERVAL,
        health: CrawlHealth | None = None,
        origin: str = ORIGIN_SCRAPY,
        options: Mapping[str, Any] | None = None,
        worker: str | None = None,
    ) -> None:
        self.crawler = crawler
        self.worker = worker  # set for a worker of a distributed run: it joins the run
        self.redis_url = redis_url
        self.keys = keys
        self.interval = interval
        self.health = health or CrawlHealth([])
        self.origin = origin
        self.options = dict(options or {})
        self.client: redis.Redis | None = None
        self.store: RunStore | None = None
        self.run_id = ""  # set once this crawl started the run: then it owns the record
        self._ticker: LoopingCall | None = None
        self._pending: Deferred[Any] | None = None
        self._cancelling = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlRecord:
        settings = crawler.settings
        if not settings.getbool("CRAWLRECORD_ENABLED", CRAWLRECORD_ENABLED):
            raise NotConfigured("CRAWLRECORD_ENABLED is off")
        interval = settings.getfloat("CRAWLRECORD_INTERVAL", CRAWLRECORD_INTERVAL)
        if interval < 0:
            raise NotConfigured(f"CRAWLRECORD_INTERVAL must be >= 0, not {interval}")
        ext = cls(
            crawler,
            redis_url_from(settings),
            keys_from(settings),
            interval=interval,
            health=CrawlHealth.from_settings(settings),
            origin=settings.get("CRAWLRECORD_ORIGIN") or ORIGIN_SCRAPY,
            options=settings.getdict("CRAWLRECORD_OPTIONS") or options_from_settings(settings),
            worker=worker_id(crawler) if settings.getbool("FRONTIER_ENABLED") else None,
        )
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def _crawl_stats(self) -> dict[str, Any]:
        return dict(self.crawler.stats.get_stats()) if self.crawler.stats is not None else {}

    def spider_opened(self, spider: Spider) -> None:
        run_id = str(getattr(spider, "crawl_id", ""))
        try:
            self.client = connect(self.redis_url)
        except StoreError as exc:
            logger.error("run record not written: %s", exc)
            return
        store = RunStore(self.client, self.keys)
        try:
            if self.worker is not None:
                store.join(run_id)  # every worker joins; the first starts the run
            else:
                self._create_and_start(store, spider, run_id)
        except RunStateError as exc:
            logger.error("%s; not crawling", exc)
            raise CloseSpider(
                REASON_CANCELLED if exc.status == "cancelled" else RUN_NOT_STARTABLE
            ) from None
        except (redis.RedisError, StoreError) as exc:
            logger.error("run record not written: %s", exc)
            return
        self.store = store
        self.run_id = run_id
        if self.interval > 0:
            self._ticker = LoopingCall(self._tick)
            self._ticker.start(self.interval, now=False)

    def _create_and_start(self, store: RunStore, spider: Spider, run_id: str) -> None:
        # A run queued beforehand (`hotline crawl --run`, a schedule) exists already.
        with contextlib.suppress(RunExists):
            store.create(
                seeds=spider_seeds(spider),
                options=self.options,
                origin=self.origin,
                run_id=run_id,
            )
        store.start(run_id)

    # -- while running -----------------------------------------------------------------------

    def _tick(self) -> None:
        if self._pending is not None:
            return  # the previous update is still on its way
        stats = RunStats.from_crawl_stats(self._crawl_stats())
        d = deferToThread(self._sync, stats)
        d.addCallback(self._after_sync)
        d.addErrback(lambda failure: logger.warning("run update failed: %s", failure.value))
        d.addBoth(self._sync_done)
        self._pending = d

    def _sync(self, stats: RunStats) -> bool:
        """In a worker thread: push the live counts and health; True if the run should stop."""
        if self.store is None:  # never: the ticker starts once the run started
            return False
        if self.worker is not None:  # the run's counts are the sum over its workers
            total = self.store.update_part(self.run_id, self.worker, stats)
            if total is not None:
                self.store.update_health(self.run_id, self.health.evaluate(total, final=False))
        else:
            flags = self.health.evaluate(stats, final=False)
            self.store.update_stats(self.run_id, stats, health=flags)
        if self._cancelling or not self.store.cancel_requested(self.run_id):
            return False
        self.store.stopping(self.run_id, REASON_CANCELLED)
        return True

    def _after_sync(self, cancel: bool) -> None:
        if not cancel or self._cancelling:
            return
        self._cancelling = True
        logger.warning("run %s: cancel requested, stopping the crawl", self.run_id)
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason=REASON_CANCELLED))

    def _sync_done(self, result: object) -> None:
        self._pending = None

    # -- at the end --------------------------------------------------------------------------

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        crawl_stats = self._crawl_stats()
        crawl_stats.setdefault("finish_reason", reason)
        if self._pending is not None:  # let the last live update land first
            await maybe_deferred_to_future(self._pending)
        try:
            await maybe_deferred_to_future(deferToThread(self._finish, reason, crawl_stats))
        except (redis.RedisError, StoreError) as exc:
            logger.error("run %s not finished in Redis: %s", self.run_id, exc)

    def _finish(self, reason: str, crawl_stats: dict[str, Any]) -> None:
        """In a worker thread: write the run's end, then close the client."""
        try:
            if self.store is None:
                return
            stats = RunStats.from_crawl_stats(crawl_stats)
            if self.worker is not None:
                self._leave(reason, stats)
                return
            flags = self.health.evaluate(stats, final=True)
            for name, why in flags.items():
                logger.warning("run %s health: %s: %s", self.run_id, name, why)
            try:
                self.store.finish(
                    self.run_id,
                    status_for_reason(reason),
                    reason,
                    stats,
                    flags,
                    crawl_stats=crawl_stats,
                )
            except RunStateError as exc:
                logger.warning("%s", exc)
        finally:
            if self.client is not None:
                self.client.close()

    def _leave(self, reason: str, stats: RunStats) -> None:
        """A worker's crawl of a distributed run ended: its final counts join the run's; the
        run ends with it only when it was drained or cancelled. Any other end (a worker
        stopped, Redis failed) leaves the run to the other workers, or to the next one."""
        if self.store is None or self.worker is None:
            return
        total = self.store.update_part(self.run_id, self.worker, stats, final=True) or stats
        frontier = Frontier(self.store.client, self.keys, self.run_id)
        if reason in (REASON_FINISHED, REASON_CANCELLED):
            flags = self.health.evaluate(total, final=True)
            dead = frontier.dead_count()
            if dead:
                flags[DEAD_LETTERS] = (
                    f"{dead} requests given up: their lease expired FRONTIER_MAX_ATTEMPTS "
                    "times (hotline runs show lists them)"
                )
            try:
                self.store.finish(self.run_id, status_for_reason(reason), reason, total, flags)
            except RunStateError:
                pass  # another worker ended it first
            else:
                for name, why in flags.items():
                    logger.warning("run %s health: %s: %s", self.run_id, name, why)
        else:
            logger.warning(
                "worker %s leaves run %s (%s); the run goes on without it",
                self.worker,
                self.run_id,
                reason,
            )
        if self.store.status(self.run_id) in ENDED:
            frontier.clear()
