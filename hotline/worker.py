"""``hotline worker``: crawl distributed runs together with any number of other workers.

A worker waits for a distributed run (``hotline crawl --distributed``, or a schedule added
with ``--distributed``), joins it and crawls from its shared frontier (:mod:`crawler.frontier`)
until the run is drained, then waits for the next. Workers on any machine that reaches the
Redis URL share the work; one that dies loses nothing (its in-flight requests are crawled
again by the others once its lease expires). All runs of one worker share one Twisted
reactor, one after the other.

A worker applies its own network policy (``--allow-private-networks``, ``--allow-network``,
``HOTLINE_ALLOW_PRIVATE_NETWORKS``) to every run it crawls: what may be reached is a
property of the machine it runs on, and a run cannot widen it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis
from rich.console import Console
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.reactor import install_reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from crawler.extensions import RUN_NOT_STARTABLE
from crawler.frontier import default_worker_id
from crawler.runsettings import build_settings, crawl_settings
from crawler.settings import FRONTIER_LEASE, WORKER_STOP_TIMEOUT
from crawler.spiders.hotline import HotlineSpider
from hotline.crawlrun import log_to
from hotline.errors import HotlineError
from hotline.services import Session
from store.errors import RunStateError, StoreError
from store.frontier import Frontier, end_abandoned_cancel, recorded_lease
from store.runs import RunRecord, RunStore

logger = logging.getLogger(__name__)

#: Seconds between looks for a distributed run while there is none.
POLL_INTERVAL = 1.0


@dataclass
class WorkerOptions:
    allow_private_networks: bool = False
    allowed_networks: list[str] = field(default_factory=list)
    once: bool = False  # crawl one run, then exit
    poll_interval: float = POLL_INTERVAL
    stop_timeout: float = WORKER_STOP_TIMEOUT
    log_level: str = "WARNING"
    worker_id: str = ""
    log_format: str = "text"


@dataclass
class WorkerResult:
    """One run this worker took part in, and how its share of it ended."""

    run_id: str
    reason: str
    stats: dict[str, Any]

    @property
    def ok(self) -> bool:
        """The worker did its share: the run was drained or cancelled, the worker was
        stopped, or the run had ended before it could join."""
        return self.reason in ("finished", "cancelled", "shutdown", RUN_NOT_STARTABLE)

    def as_json(self) -> dict[str, Any]:
        def n(key: str) -> int:
            value = self.stats.get(key, 0)
            return int(value) if isinstance(value, int | float) else 0

        return {
            "run": self.run_id,
            "reason": self.reason,
            "pages": n("crawl/pages"),
            "images": n("crawl/images"),
            "requests_done": n("frontier/done"),
            "reclaimed": n("frontier/reclaimed"),
            "confirmed_new": n("hits/new"),
        }


#: The counts of a crawl that :meth:`Worker.crawled` adds up over its runs.
CRAWLED = ("crawl/pages", "crawl/images")


def _stat(crawler: Crawler | None, key: str) -> int:
    """A numeric Scrapy stat of ``crawler``'s crawl; 0 without a crawl, or before it has
    stats (a crawler made, not started yet)."""
    try:
        stats = crawler.stats if crawler is not None else None
    except RuntimeError:
        return 0
    value = stats.get_value(key, 0) if stats is not None else 0
    return int(value) if isinstance(value, int | float) else 0


def next_run(store: RunStore) -> RunRecord | None:
    """The oldest distributed run a worker can join (queued or running, no cancel). A run
    cancelled while every worker in it died is ended here, as no one else would."""
    for run_id in store.distributed():
        record = store.get(run_id)
        if record.status in ("queued", "running") and record.cancel_requested is None:
            return record
        if end_abandoned_cancel(store, record.id, recorded_lease(record, FRONTIER_LEASE)):
            logger.warning("run %s: cancelled, its workers gone: ended", record.id)
    return None


class Worker:
    def __init__(
        self,
        session: Session,
        options: WorkerOptions,
        console: Console,
        *,
        on_result: Callable[[WorkerResult], None] | None = None,
    ) -> None:
        self.session = session
        self.options = options
        self.console = console
        self.on_result = on_result
        self.id = options.worker_id or default_worker_id()
        self.store = RunStore(session.client, session.keys)
        self.results: list[WorkerResult] = []
        self._current: RunRecord | None = None  # the run being crawled
        self._crawler: Crawler | None = None  # and its crawl
        self._stopping = False
        # Pages and images of the shares that ended; with the current crawl's, under the
        # lock, so a reader never sees a share twice or not at all as one ends.
        self._counts_lock = threading.Lock()
        self._ended = dict.fromkeys(CRAWLED, 0)

    def _process_settings(self) -> Settings:
        """Settings of the whole process: the reactor's DNS resolver applies the worker's
        network policy to every run."""
        return build_settings(
            {
                "SAFETY_ALLOW_PRIVATE_NETWORKS": self.options.allow_private_networks,
                "SAFETY_ALLOWED_NETWORKS": self.options.allowed_networks,
                "LOG_LEVEL": self.options.log_level,
                "LOG_INSTALL_ROOT_HANDLER": False,
            }
        )

    def crawl_settings(self, record: RunRecord) -> Settings:
        """The Scrapy settings of this worker's share of the run: the run's recorded options
        under this worker's network policy."""
        try:
            recorded = record.crawl_options()
        except ValueError as exc:
            raise HotlineError(f"run {record.id}: run options: {exc}") from None
        options = dataclasses.replace(
            recorded,
            allow_private_networks=self.options.allow_private_networks,
            allowed_networks=tuple(self.options.allowed_networks),
        )
        settings = crawl_settings(
            options,
            record.id,
            redis_url=self.session.url,
            key_prefix=self.session.keys.prefix,
            log_level=self.options.log_level,
            origin=record.origin,
            worker=self.id,
        )
        settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
        return settings

    def index_bytes(self) -> int:
        """Memory the hash lists and their indexes hold in the current crawl (0 between
        runs): for the ``hotline_index_bytes`` metric, read from any thread."""
        return _stat(self._crawler, "matcher/index_bytes")

    def crawled(self) -> tuple[int, int]:
        """Pages and images this worker crawled since it started, the current run's so far
        included: they only grow. For the ``hotline_worker_pages_total`` and
        ``hotline_worker_images_total`` metrics, read from any thread."""
        with self._counts_lock:
            pages, images = (n + _stat(self._crawler, key) for key, n in self._ended.items())
        return pages, images

    def run(self) -> list[WorkerResult]:
        """Work until stopped (SIGINT/SIGTERM: the current run's requests in flight go back
        to its frontier), or after one run with ``once``."""
        handler = log_to(self.console, self.options.log_level, self.options.log_format)
        settings = self._process_settings()
        # The crawls are created by hand (one per run), so the reactor is installed here,
        # before anything imports it, as CrawlerProcess does for its first crawler.
        install_reactor(settings["TWISTED_REACTOR"], settings["ASYNCIO_EVENT_LOOP"])
        process = CrawlerProcess(settings)
        failures: list[str] = []

        from twisted.internet import reactor  # noqa: PLC0415 - installed just above

        def stop(result: object) -> None:
            if reactor.running:
                reactor.stop()  # type: ignore[misc]

        def begin() -> None:
            done = deferred_from_coro(self._loop(process))
            done.addErrback(lambda failure: failures.append(failure.getErrorMessage()))
            done.addBoth(stop)

        reactor.callWhenRunning(begin)
        # Scrapy installs its signal handlers once the reactor started: wrap them after that.
        reactor.callWhenRunning(reactor.callLater, 0, self._bound_the_stop)
        try:
            process.start(stop_after_crawl=False)
        finally:
            logging.getLogger().removeHandler(handler)
        if failures:
            raise HotlineError(f"worker failed: {failures[0]}")
        return self.results

    def _bound_the_stop(self) -> None:
        """Scrapy stops on the first SIGINT/SIGTERM once the requests in flight are done; wrap
        its handlers so that the stop takes ``stop_timeout`` at most."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def handler(
                number: int, frame: FrameType | None, previous: Callable[..., Any] = previous
            ) -> None:
                self._arm_stop_timeout()
                previous(number, frame)

            signal.signal(signum, handler)

    def _arm_stop_timeout(self) -> None:
        from twisted.internet import reactor  # noqa: PLC0415 - installed by run()

        if not self._stopping:
            self._stopping = True
            reactor.callFromThread(reactor.callLater, self.options.stop_timeout, self._stop_now)

    def _stop_now(self) -> None:
        """The graceful stop took too long: the run's requests this worker holds go back to
        its frontier now (not after the lease), and the reactor stops."""
        from twisted.internet import reactor  # noqa: PLC0415 - installed by run()

        run = self._current
        if run is not None:
            try:
                moved = Frontier(self.session.client, self.session.keys, run.id).release(self.id)
            except (redis.RedisError, StoreError) as exc:
                logger.error("worker %s: requests not handed back: %s", self.id, exc)
            else:
                logger.warning(
                    "worker %s: not stopped within %gs; %d requests back to run %s's frontier",
                    self.id,
                    self.options.stop_timeout,
                    moved,
                    run.id,
                )
        if reactor.running:
            reactor.stop()  # type: ignore[misc]

    async def _loop(self, process: CrawlerProcess) -> None:
        from twisted.internet import reactor  # noqa: PLC0415 - installed by run()

        while True:  # until once, a shutdown, or the reactor stops (a signal)
            record = await maybe_deferred_to_future(deferToThread(next_run, self.store))
            if record is None:
                await maybe_deferred_to_future(
                    deferLater(reactor, self.options.poll_interval, lambda: None)
                )
                continue
            try:
                result = await self._crawl(process, record)
            except HotlineError as exc:  # the run's record cannot be crawled: it fails
                logger.error("%s", exc)
                with contextlib.suppress(RunStateError):
                    self.store.finish(record.id, "failed", "bad_run_options", record.stats)
                result = WorkerResult(record.id, "bad_run_options", {})
            self.results.append(result)
            if self.on_result is not None:
                self.on_result(result)
            if self.options.once or result.reason == "shutdown":
                return

    async def _crawl(self, process: CrawlerProcess, record: RunRecord) -> WorkerResult:
        crawler = Crawler(HotlineSpider, self.crawl_settings(record))
        self._current, self._crawler = record, crawler
        try:
            await maybe_deferred_to_future(
                process.crawl(crawler, urls=list(record.seeds), crawl_id=record.id)
            )
        finally:
            with self._counts_lock:
                for key in CRAWLED:
                    self._ended[key] += _stat(crawler, key)
                self._current, self._crawler = None, None
        stats = crawler.stats.get_stats() if crawler.stats is not None else {}
        return WorkerResult(record.id, str(stats.get("finish_reason", "failed")), dict(stats))
