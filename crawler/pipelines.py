"""Item pipelines: match each image's hashes against the known lists, queue what matched.

``MatchPipeline`` loads every known list from Redis when the spider opens (so all crawl
processes match against the same lists) and attaches the matches to the item.
``QueuePipeline`` writes confirmed matches to ``<prefix>hits`` and near misses to
``<prefix>review``, once per (image URL, list entry). Both reach Redis through
:mod:`crawler.redis` (``STORE_*`` settings); their own settings are ``MATCHER_LISTS``,
``MATCHER_RELOAD_INTERVAL`` and ``MATCHER_FLOOD_LIMIT`` (:mod:`crawler.settings`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread

from crawler import signals as crawler_signals
from crawler.items import ImageItem
from crawler.redis import connect, keys_from, redis_url_from
from crawler.settings import MATCHER_RELOAD_INTERVAL
from matchers.algorithms import PDQ_MIN_QUALITY
from matchers.guards import FLOOD_LIMIT, STAT_FLOOD_DEMOTED, FloodGuard, match_stat_keys
from matchers.index import Matcher
from matchers.lists import ALLOW, KNOWN
from store.errors import ListNotFound, QueueError
from store.lists import ListStore
from store.queue import HitQueue, HitRecord

if TYPE_CHECKING:
    import redis
    from scrapy.crawler import Crawler
    from scrapy.signalmanager import SignalManager
    from scrapy.statscollectors import StatsCollector

    from store.keys import Keys

logger = logging.getLogger(__name__)

QUEUE_FAILED = "queue_failed"  # finish reason of a crawl stopped because a hit was not queued


def _stats(crawler: Crawler) -> StatsCollector:
    if crawler.stats is None:
        raise NotConfigured("needs a stats collector")
    return crawler.stats


class MatchPipeline:
    """Matches each image against the known lists; allow-lists (known false positives) always
    win; the flood guard demotes an entry that confirms too many distinct images in one crawl
    to review (``MATCHER_FLOOD_LIMIT``; unset: the matcher's own
    :data:`matchers.guards.FLOOD_LIMIT`; 0 turns it off).

    Every ``MATCHER_RELOAD_INTERVAL`` seconds (0: never) it asks Redis for the lists' versions
    (one command, no list data) and loads what changed in a worker thread, one list at a time:
    the new matcher shares every unchanged list's index, so a new version of a list replaces
    the old one without holding two copies of all lists, and a running crawl picks up new
    versions, new lists and removals without a restart.
    """

    def __init__(
        self,
        stats: StatsCollector,
        redis_url: str,
        keys: Keys,
        list_names: list[str] | None,
        *,
        flood_limit: int = FLOOD_LIMIT,
        reload_interval: float = MATCHER_RELOAD_INTERVAL,
    ) -> None:
        self.stats = stats
        self.redis_url = redis_url
        self.keys = keys
        self.list_names = list_names
        self.flood_limit = flood_limit
        self.reload_interval = reload_interval
        self.matcher = Matcher([])
        self.flood_guard: FloodGuard | None = None
        self.min_quality = PDQ_MIN_QUALITY
        self._reloader: LoopingCall | None = None
        self._reloading = False
        self.signals: SignalManager | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MatchPipeline:
        settings = crawler.settings
        pipeline = cls(
            _stats(crawler),
            redis_url_from(settings),
            keys_from(settings),
            settings.getlist("MATCHER_LISTS") or None,
            flood_limit=settings.getint("MATCHER_FLOOD_LIMIT", FLOOD_LIMIT),
            reload_interval=settings.getfloat("MATCHER_RELOAD_INTERVAL", MATCHER_RELOAD_INTERVAL),
        )
        pipeline.signals = crawler.signals
        return pipeline

    def open_spider(self) -> None:
        client = connect(self.redis_url)
        try:
            known, allow = ListStore(client, self.keys).load_for_matching(self.list_names)
        finally:
            client.close()
        self._use(Matcher(known, allow))
        self.flood_guard = FloodGuard(self.flood_limit) if self.flood_limit > 0 else None
        if not known:
            logger.warning(
                "no known-hash list is loaded: nothing can match "
                "(import one with `hotline hashes import`)"
            )
        if self.reload_interval > 0:
            self._reloader = LoopingCall(self._schedule_reload)
            self._reloader.start(self.reload_interval, now=False)

    def close_spider(self) -> None:
        if self._reloader is not None and self._reloader.running:
            self._reloader.stop()

    def _use(self, matcher: Matcher) -> None:
        """Switch to ``matcher`` (one attribute assignment: items see old or new)."""
        self.matcher = matcher
        known = matcher.lists
        self.min_quality = min(
            (hl.thresholds.pdq_min_quality for hl in known), default=PDQ_MIN_QUALITY
        )
        self.stats.set_value("matcher/lists", len(known))
        self.stats.set_value("matcher/allow_lists", len(matcher.allow_lists))
        self.stats.set_value("matcher/entries", sum(hl.total for hl in known))
        self.stats.set_value("matcher/index_bytes", matcher.nbytes)
        self._announce(matcher.perceptual_algorithms)

    def _announce(self, algorithms: frozenset[str]) -> None:
        """Tell the spider which perceptual hashes the lists can use (``lists_changed``), from
        this thread: a reload's worker thread too (the receiver only swaps a tuple)."""
        if self.signals is not None:
            self.signals.send_catch_log(crawler_signals.lists_changed, algorithms=algorithms)

    def _schedule_reload(self) -> None:
        if self._reloading:
            return
        self._reloading = True
        d = deferToThread(self.reload_lists)
        d.addErrback(lambda failure: logger.error("list reload failed: %s", failure.value))
        d.addBoth(self._reload_done)

    def _reload_done(self, result: object) -> object:
        self._reloading = False
        return None

    def _wanted(self, name: str, kind: str) -> bool:
        return kind == ALLOW or self.list_names is None or name in self.list_names

    def reload_lists(self) -> int:
        """Load the lists whose stored version differs from the loaded one, drop removed
        lists; switch matchers after each list. Returns how many lists changed. Runs in a
        worker thread during a crawl (any thread may call it)."""
        self.stats.inc_value("matcher/list_checks")
        client = connect(self.redis_url)
        try:
            store = ListStore(client, self.keys)
            stored = store.versions()
            matcher = self.matcher
            loaded = {hl.name: hl.version for hl in (*matcher.lists, *matcher.allow_lists)}
            changed = 0
            for name in sorted(set(loaded) - set(stored)):
                matcher = matcher.without_list(name)
                self._use(matcher)
                changed += 1
                logger.info("list %s was removed: no longer matched", name)
            fresh = {name for name, version in stored.items() if loaded.get(name) != version}
            # Kinds of lists new to this crawl come from their metadata, not their data, so
            # a list this crawl does not match is never loaded.
            kinds = {i.name: i.kind for i in store.info()} if fresh - set(loaded) else {}
            for name in sorted(fresh):
                if name not in loaded and not self._wanted(name, kinds.get(name, KNOWN)):
                    continue
                try:
                    hash_list = store.load(name)
                except ListNotFound:
                    continue  # removed since versions() was read
                matcher = matcher.with_list(hash_list)
                self._use(matcher)
                changed += 1
                self.stats.inc_value("matcher/list_reloads")
                logger.info("list %s version %d loaded", name, hash_list.version)
        finally:
            client.close()
        return changed

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ImageItem):
            return item
        if item.frames:
            matches, allowed = self.matcher.match_video(item.digest, item.frames)
        else:
            matches, allowed = self.matcher.match_or_allowed(item.digest)
        if self.flood_guard is not None:
            guarded = self.flood_guard.apply(item.url, matches)
            matches = guarded.matches
            if guarded.demoted:
                self.stats.inc_value(STAT_FLOOD_DEMOTED, guarded.demoted)
            for list_name, entry in guarded.tripped:
                logger.warning(
                    "flood guard: %s/%s confirmed more than %d distinct images in this crawl; "
                    "its further matches go to review",
                    list_name,
                    entry,
                    self.flood_guard.limit,
                )
        item.matches = matches
        for key in match_stat_keys(
            item.digest, matches, allowed=allowed, min_quality=self.min_quality
        ):
            self.stats.inc_value(key)
        return item


class QueuePipeline:
    def __init__(self, stats: StatsCollector, redis_url: str, keys: Keys) -> None:
        self.stats = stats
        self.redis_url = redis_url
        self.keys = keys
        self.client: redis.Redis | None = None
        self.queue: HitQueue | None = None
        self.crawl_id = ""
        self.crawler: Crawler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QueuePipeline:
        pipeline = cls(
            _stats(crawler), redis_url_from(crawler.settings), keys_from(crawler.settings)
        )
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self) -> None:
        self.client = connect(self.redis_url)
        self.queue = HitQueue(self.client, self.keys)
        spider = self.crawler.spider if self.crawler is not None else None
        self.crawl_id = str(getattr(spider, "crawl_id", ""))

    def close_spider(self) -> None:
        if self.client is not None:
            self.client.close()

    def _queue_failed(self, exc: QueueError) -> None:
        """A hit that cannot be queued must not be lost quietly: stop the crawl, whose
        finish reason then tells the analyst (and the exit code) that it did not complete."""
        self.stats.inc_value("hits/queue_error")
        logger.error("%s; stopping the crawl", exc)
        crawler = self.crawler
        if crawler is not None and crawler.engine is not None and crawler.spider is not None:
            deferred_from_coro(crawler.engine.close_spider_async(reason=QUEUE_FAILED))

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ImageItem) or not item.matches or self.queue is None:
            return item
        d = item.digest
        for match in item.matches:
            record = HitRecord(
                url=item.url,
                page=item.page,
                seed=item.seed,
                sha256=d.sha256,
                md5=d.md5,
                sha1=d.sha1,
                pdq=match.frame_pdq or d.pdq,
                pdq_quality=match.frame_pdq_quality if match.frame_pdq else d.pdq_quality,
                phash=d.phash,
                list=match.list,
                entry=match.entry,
                category=match.category,
                algorithm=match.algorithm,
                distance=match.distance,
                verdict=match.verdict,
                first_seen=item.fetched_at,
                ip=item.ip,
                status=item.status,
                content_type=item.content_type,
                content_length=item.content_length,
                server=item.server,
                crawl=self.crawl_id,
                media_type=item.media_type,
                file_type=d.format or "",
                member=item.member,
                container_sha256=item.container_sha256,
                frame_times=",".join(f"{t:g}" for t in match.times),
                frames_matched=match.frames or None,
                frame_share="" if match.share is None else f"{match.share:g}",
                corroborated_by=match.corroborated_by,
            )
            try:
                created = self.queue.enqueue(record)
            except QueueError as exc:
                self._queue_failed(exc)
                raise DropItem(f"hit not queued: {exc}") from None
            stream = "hits" if match.verdict == "confirmed" else "review"
            if stream == "hits" and self.crawler is not None:
                self.crawler.signals.send_catch_log(
                    crawler_signals.hit_found, page=item.page, seed=item.seed
                )
            if created is None:
                self.stats.inc_value(f"{stream}/duplicate")
            else:
                self.stats.inc_value(f"{stream}/new")
                logger.info(
                    "%s: %s matches %s/%s (%s, distance %d)",
                    stream,
                    item.url,
                    match.list,
                    match.entry,
                    match.algorithm,
                    match.distance,
                )
        return item
