"""The recheck spider: re-fetching noticed image URLs to learn whether the content is gone.

After a takedown notice, the hotline fetches the image URL again on a schedule (the schedule
and the state are :mod:`takedown`'s; this spider only fetches, and :mod:`crawler.judge`
judges). A recheck goes through exactly the crawl's safety rules, because it is a crawl: the
project settings (:mod:`crawler.settings`: size cap, timeout, at most ``REDIRECT_MAX_TIMES``
redirects, one retry), :class:`~crawler.safety.SafeResolver` and
:class:`~crawler.safety.PrivateNetworkMiddleware` (``SAFETY_*``), and a thread of the crawl's
hasher (:meth:`crawler.hashing.ImageHasher.defer_to_thread`) for judging a body. What a
recheck does not need is off (:data:`RECHECK_SETTINGS`): the match and queue pipelines, the
crawl record, ``<meta http-equiv=refresh>`` (the noticed URL itself must serve the image).

Run it with :func:`run_rechecks`, which runs one Scrapy crawl in this process (Twisted's reactor
cannot be restarted: one call per process); ``hotline recheck`` does, with takedown's
:class:`~takedown.recheck.RecheckBook` behind ``poll`` and ``report``. ``poll()`` is asked for
due targets (:class:`store.rechecks.RecheckTarget`) at the start and whenever the spider goes
idle; each target gives one request; each outcome (:class:`store.rechecks.RecheckResult`) goes
to ``report()``. Both run in a worker thread of the reactor (they may block on Redis), never
concurrently: reports are serialised and a poll only happens when nothing is in flight.

A verdict that would close a notice (removed, unreachable) is never taken from one look:
the URL is fetched once more with a second, browser-like profile (a browser's
``User-Agent`` and ``Accept`` headers and the page the image was found on as ``Referer``),
so a site that blocks or cloaks the recheck cannot close its own notice. What is reported
then: online if either look saw the image; else removed if the browser-like look says
removed; else unreachable. A fetch the recheck's own address policy refused is ``refused``
(a configuration error that leaves the notice as it is) and is not looked at again.

Image bytes stay in memory: the response body is hashed in the hasher's thread and dropped with
the response; a result carries the SHA-256 of what was fetched, never bytes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import CloseSpider, DontCloseSpider, UsageError
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from crawler.hashing import ImageHasher
from crawler.judge import Verdict, judge_body, judge_failure, judge_status, result_for
from crawler.runsettings import build_settings
from crawler.safety import SafeResolver, policy_from_settings
from crawler.settings import CRAWL_MEDIA_MAXSIZE, RECHECK_BROWSER_HEADERS
from store.rechecks import RecheckResult, RecheckTarget

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "POLL_FAILED",
    "RECHECK_SETTINGS",
    "Poll",
    "RecheckError",
    "RecheckSpider",
    "Report",
    "run_rechecks",
]

logger = logging.getLogger(__name__)

#: Seconds between polls while there is nothing to recheck (``once=False``).
DEFAULT_POLL_INTERVAL: Final = 5.0
#: Why ``scrapy crawl recheck`` cannot run the spider on its own.
NOT_STANDALONE: Final = (
    "the recheck spider fetches the notices takedown hands it: run `hotline recheck`"
)
#: The finish reason of a ``once`` run whose last poll failed.
POLL_FAILED: Final = "poll_failed"

#: What a recheck changes in the crawl's settings (the caller's overrides still win).
RECHECK_SETTINGS: Final[Mapping[str, Any]] = {
    "ITEM_PIPELINES": {},  # nothing is matched against lists or queued as a hit
    # No CrawlRecord (a recheck run is not a crawl of reported pages); no listening extension.
    "EXTENSIONS": {
        "scrapy.extensions.remote_control.RemoteControl": None,
        "scrapy.extensions.telnet.TelnetConsole": None,
    },
    "HTTPERROR_ALLOW_ALL": True,  # every status reaches the callback (redirects still followed)
    "METAREFRESH_ENABLED": False,  # the noticed URL itself must serve the image
    "ROBOTSTXT_OBEY": False,
    "RETRY_GIVE_UP_LOG_LEVEL": "INFO",  # a host that stays down is an outcome, not an error
}


class RecheckError(Exception):
    """The recheck run could not run at all (bad settings, the crawl failed to start)."""


Poll = Callable[[], Sequence[RecheckTarget]]
Report = Callable[[RecheckResult], None]


#: Response flags of a body that did not arrive whole.
_INCOMPLETE = frozenset({"partial", "dataloss", "download_stopped"})


class RecheckSpider(Spider):
    """Fetches what ``poll()`` hands it and reports each outcome; thin by design (judging is
    :mod:`crawler.judge`'s)."""

    name = "recheck"

    def __init__(
        self,
        poll: Poll | None = None,
        report: Report | None = None,
        once: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if poll is None or report is None:  # e.g. `scrapy crawl recheck`: nothing to fetch
            raise UsageError(NOT_STANDALONE)
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self.poll_targets = poll
        self.report_result = report
        self.once = once
        self.poll_interval = poll_interval
        self._polling = False
        self._drained_reason: str | None = None  # once=True: why to close when next idle
        # An IDelayedCall, typed as Any: mypy reads zope Interface methods as unbound functions.
        self._timer: Any = None
        self._closed = False
        self._report_lock = defer.DeferredLock()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> RecheckSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup(crawler)
        return spider

    def setup(self, crawler: Crawler) -> None:
        self.hasher = ImageHasher.from_crawler(crawler)
        self.policy = policy_from_settings(crawler.settings)
        # The second, browser-like look before a notice may close (empty: one look only).
        self.browser_user_agent = crawler.settings.get("RECHECK_BROWSER_USER_AGENT") or ""
        self.max_body = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        self.max_file = crawler.settings.getint("CRAWL_MEDIA_MAXSIZE", CRAWL_MEDIA_MAXSIZE)
        crawler.signals.connect(self._on_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._on_closed, signal=signals.spider_closed)

    def _meta(self, target: RecheckTarget) -> dict[str, Any]:
        """A noticed file (not an image) may be as large as a crawl lets a file be."""
        meta: dict[str, Any] = {"recheck": target}
        if target.media_type != "image" and self.max_body:
            meta["download_maxsize"] = max(self.max_body, self.max_file)
        return meta

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, count)

    # -- polling ----------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        # Requests go to the engine from the poll round, the same way as on every later poll.
        await self._poll_round()
        return
        yield  # an async generator without start requests of its own

    def _on_idle(self) -> None:
        if self._closed:
            return
        if self._drained_reason is not None:
            raise CloseSpider(self._drained_reason)
        if not self._polling and self._timer is None:
            deferred_from_coro(self._poll_round())
        raise DontCloseSpider

    def _on_closed(self) -> None:
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.hasher.stop()

    def _poll_later(self) -> None:
        from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs it first)

        clock: Any = reactor  # see self._timer

        def fire() -> None:
            self._timer = None
            if not self._closed:
                deferred_from_coro(self._poll_round())

        self._timer = clock.callLater(self.poll_interval, fire)

    async def _poll_round(self) -> None:
        """Ask for due targets once; schedule them, or decide what happens next."""
        self._polling = True
        self._inc("recheck/polls")
        try:
            targets: Sequence[RecheckTarget] | None = await maybe_deferred_to_future(
                deferToThread(self.poll_targets)
            )
        except Exception as exc:  # the poller's own failure (Redis down ...): never fatal here
            self._inc("recheck/poll_errors")
            logger.error("recheck poll failed: %s: %s", type(exc).__name__, exc)
            targets = None
        finally:
            self._polling = False
        if self._closed:
            return  # targets claimed by this poll come back when they are due again
        if targets:
            for target in targets:
                self._schedule(target)
            return
        if not self.once:
            self._poll_later()
            return
        self._drained_reason = "finished" if targets is not None else POLL_FAILED
        engine = self.crawler.engine
        if engine is not None and engine.spider_is_idle():
            deferred_from_coro(engine.close_spider_async(reason=self._drained_reason))

    def _schedule(self, target: RecheckTarget) -> None:
        self._inc("recheck/targets")
        request = Request(
            target.url,
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,  # the same URL is rechecked again on later rounds
            meta=self._meta(target),
        )
        engine = self.crawler.engine
        if engine is None:
            raise RecheckError("the crawl engine is not running")
        engine.crawl(request)

    # -- outcomes ---------------------------------------------------------------------------

    def _second_look(self, target: RecheckTarget, first: Verdict) -> bool:
        """Fetch ``target`` again with the browser-like profile, before a verdict that could
        close its notice is reported; False when there is no second look to take."""
        if not self.browser_user_agent:
            return False
        headers = {"User-Agent": self.browser_user_agent, **RECHECK_BROWSER_HEADERS}
        if target.referer:
            headers["Referer"] = target.referer
        self._inc("recheck/second_looks")
        request = Request(
            target.url,
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,
            headers=headers,
            meta={**self._meta(target), "first_look": first},
        )
        engine = self.crawler.engine
        if engine is None:
            raise RecheckError("the crawl engine is not running")
        engine.crawl(request)
        return True

    async def _conclude(
        self, target: RecheckTarget, meta: Mapping[str, Any], verdict: Verdict, status: int | None
    ) -> None:
        """Report ``verdict``, or take the second look first when it could close the notice."""
        first: Verdict | None = meta.get("first_look")
        if first is None:
            if verdict.state in ("removed", "unreachable") and self._second_look(target, verdict):
                return
            await self._report(result_for(target, verdict, status))
            return
        if verdict.state == "online":
            self._inc("recheck/cloaking")
            verdict = Verdict(
                "online",
                f"{verdict.reason}, for a browser-like fetch (the crawl's fetch: "
                f"{first.state}, {first.reason})",
                verdict.sha256,
            )
        elif verdict.state == "refused":
            verdict = first
        await self._report(result_for(target, verdict, status, profile="browser"))

    async def parse(self, response: Response, **kwargs: Any) -> None:
        target: RecheckTarget = response.meta["recheck"]
        verdict = judge_status(response.status)
        if verdict is None and target.media_type != "image" and _INCOMPLETE & set(response.flags):
            # A file is judged by its bytes: a cut-short body says nothing about them.
            verdict = Verdict("unreachable", "incomplete download")
        if verdict is None:
            content_type = response.headers.get(b"Content-Type")
            verdict = await maybe_deferred_to_future(
                self.hasher.defer_to_thread(
                    judge_body,
                    target,
                    response.body,
                    None if content_type is None else content_type.decode("latin-1"),
                    max_pixels=self.hasher.max_pixels,
                    archive_limits=self.hasher.archive_limits,
                    video_limits=self.hasher.video_limits,
                )
            )
        await self._conclude(target, response.meta, verdict, response.status)

    async def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        target: RecheckTarget | None = None if request is None else request.meta.get("recheck")
        if request is None or target is None or failure.value is None:
            logger.error("recheck failure without its target: %s", failure.getErrorMessage())
            return
        verdict = judge_failure(
            failure.value, request.url, self.policy, self._refused_addresses(request.url)
        )
        self._inc(f"recheck/errors/{type(failure.value).__name__}")
        await self._conclude(target, request.meta, verdict, None)

    @staticmethod
    def _refused_addresses(url: str) -> tuple[str, ...]:
        from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs it first)

        resolver = getattr(reactor, "nameResolver", None)
        host = urlsplit(url).hostname or ""
        if isinstance(resolver, SafeResolver) and host:
            return resolver.refused_addresses(host)
        return ()

    async def _report(self, result: RecheckResult) -> None:
        self._inc(f"recheck/{result.state}")
        logger.info(
            "recheck %s %s: %s (%s)", result.notice_id, result.url, result.state, result.reason
        )
        try:
            await maybe_deferred_to_future(
                self._report_lock.run(deferToThread, self.report_result, result)
            )
        except Exception as exc:  # the result is lost; the target stays due and comes again
            self._inc("recheck/report_errors")
            logger.error(
                "recheck result for notice %s not reported: %s: %s",
                result.notice_id,
                type(exc).__name__,
                exc,
            )


# -- running --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def run_rechecks(
    poll: Poll,
    report: Report,
    *,
    once: bool,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    settings: Mapping[str, Any] | None = None,
    install_signal_handlers: bool = True,
) -> dict[str, Any]:
    """Recheck whatever ``poll()`` returns until it returns nothing (``once``) or until
    SIGINT/SIGTERM (graceful: in-flight fetches finish or are dropped unreported; a second
    signal forces the stop). Returns the final Scrapy stats with JSON-friendly values
    (``finish_reason``: ``finished``, ``shutdown`` or ``poll_failed``).

    One call per process: Twisted's reactor cannot be restarted.

    Raises:
        RecheckError: the crawl could not be set up (e.g. a bad ``SAFETY_ALLOWED_NETWORKS``).
    """
    process = CrawlerProcess(build_settings(settings, base=RECHECK_SETTINGS))
    crawler = process.create_crawler(RecheckSpider)
    failures: list[str] = []
    deferred = process.crawl(
        crawler, poll=poll, report=report, once=once, poll_interval=poll_interval
    )
    deferred.addErrback(lambda failure: failures.append(failure.getErrorMessage()))
    process.start(install_signal_handlers=install_signal_handlers)
    if failures:
        raise RecheckError(f"recheck run failed: {failures[0]}")
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    return {key: _plain(value) for key, value in stats.items()}
