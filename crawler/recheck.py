"""Re-fetching noticed image URLs to learn whether the content is gone.

After a takedown notice, the hotline fetches the image URL again on a schedule (the schedule
and the state are :mod:`takedown`'s; this module only fetches and judges). A recheck goes
through exactly the crawl's safety rules, because it is a crawl: the settings module
:mod:`crawler.settings` (size cap, timeout, at most ``REDIRECT_MAX_TIMES`` redirects, one
retry), :class:`~crawler.safety.SafeResolver` and
:class:`~crawler.safety.PrivateNetworkMiddleware` (``SAFETY_*``), and the crawl's hashing
thread pool (:class:`~crawler.hashing.ImageHasher`). What a recheck does not need is off: the
match and queue pipelines, the crawl record, ``<meta http-equiv=refresh>`` (see below).

Run it with :func:`run_rechecks`, which runs one Scrapy crawl in this process (Twisted's reactor
cannot be restarted: one call per process). ``poll()`` is asked for due targets at the start
and whenever the spider goes idle; each target gives one request; each outcome goes to
``report()``. Both run in a worker thread of the reactor (they may block on Redis), never
concurrently: reports are serialised and a poll only happens when nothing is in flight.

How a fetch is judged (the final response, after redirects):

=================================================  ===========  ===============================
outcome                                            state        reason
=================================================  ===========  ===============================
404, 410, 451                                      removed      ``http 404`` ...
2xx, the bytes' SHA-256 equals the original's      online       ``same bytes``
2xx image, PDQ within the list's confirm           online       ``pdq distance 4``
threshold (fetched PDQ quality >= 50), or pHash                 ``phash distance 2``
within its threshold (dihedral variants count)
2xx image that matches neither                     removed      ``content changed``
2xx body that is not an image                      removed      ``not an image (text/html)``
2xx image that cannot be decoded (truncated,       unreachable  ``image not decodable
corrupt, too large) and is not the same bytes                   (truncated)``
any other status (3xx without Location, 401,       unreachable  ``http 403`` ...
403, 429, 5xx after the retry ...)
DNS failure, refused connection, timeout, lost     unreachable  ``dns lookup failed``,
connection, too many redirects, a body over                     ``connection refused``,
``DOWNLOAD_MAXSIZE``                                            ``timeout``, ``too large`` ...
refused by the address policy                      unreachable  ``blocked: private network``
=================================================  ===========  ===============================

An undecodable image is *unreachable*, not removed: it is neither the notified picture for
certain nor certainly something else (a browser shows a truncated JPEG), so the scheduler tries
again. "Blocked" covers an IP-literal URL or redirect target outside the address policy and a
response served from a refused peer; a *hostname* that resolves only to refused addresses is
dropped by :class:`~crawler.safety.SafeResolver` before any connection and so reads as
``dns lookup failed`` (the resolver logs which addresses it refused). A page that answers with
HTML, even one with a meta refresh to the picture elsewhere, no longer serves the image at the
noticed URL: ``METAREFRESH_ENABLED`` is off for rechecks.

Image bytes stay in memory: the response body is hashed in the hasher's thread and dropped with
the response; a :class:`RecheckResult` carries the SHA-256 of what was fetched, never bytes.

From a shell (one JSON line per result on stdout, a summary line on stderr)::

    python -m crawler.recheck --targets targets.json [--watch --interval 5] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import (
    CannotResolveHostError,
    CloseSpider,
    DontCloseSpider,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotSupported,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.web.client import ResponseFailed

from crawler.hashing import ImageHasher
from crawler.safety import AddressPolicy, literal_ip
from crawler.scope import HTTP_SCHEMES
from matchers.algorithms import (
    MAX_IMAGE_PIXELS,
    PDQ_CONFIRM_THRESHOLD,
    PDQ_MIN_QUALITY,
    PHASH_CONFIRM_THRESHOLD,
    hamming,
    normalize_hash,
)
from matchers.digest import ImageDigest, digest_bytes
from matchers.errors import MatcherError
from matchers.sniff import sniff_image
from store.clock import now_iso

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "RECHECK_SETTINGS",
    "RecheckError",
    "RecheckResult",
    "RecheckSpider",
    "RecheckState",
    "RecheckTarget",
    "Verdict",
    "build_settings",
    "judge_body",
    "judge_failure",
    "judge_status",
    "main",
    "run_rechecks",
]

logger = logging.getLogger(__name__)

RecheckState = Literal["online", "removed", "unreachable"]

DEFAULT_POLL_INTERVAL: Final = 5.0
#: Statuses that say the content was taken down.
REMOVED_STATUSES: Final = frozenset({404, 410, 451})
#: Finish reasons of a run that ended as asked (``shutdown``: SIGINT/SIGTERM).
CLEAN_FINISH: Final = frozenset({"finished", "shutdown"})
POLL_FAILED: Final = "poll_failed"
#: A Content-Type shown in a reason must look like one (it comes from an untrusted server).
_MEDIA_TYPE: Final = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,40}/[a-z0-9][a-z0-9.+-]{0,60}$")
_REDIRECT_LIMIT_MESSAGE: Final = "max redirections reached"
_REFUSED_PEER_MESSAGE: Final = "non-public address"

#: What a recheck changes in the crawl's settings (the caller's overrides still win).
RECHECK_SETTINGS: Final[Mapping[str, Any]] = {
    "ITEM_PIPELINES": {},  # nothing is matched against lists or queued as a hit
    "EXTENSIONS": {},  # no CrawlRecord: a recheck run is not a crawl of reported pages
    "HTTPERROR_ALLOW_ALL": True,  # every status reaches the callback (redirects still followed)
    "METAREFRESH_ENABLED": False,  # the noticed URL itself must serve the image
    "ROBOTSTXT_OBEY": False,
    "RETRY_GIVE_UP_LOG_LEVEL": "INFO",  # a host that stays down is an outcome, not an error
}


class RecheckError(Exception):
    """The recheck run could not run at all (bad settings, the crawl failed to start)."""


# -- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecheckTarget:
    """One noticed image URL to fetch again, with the hashes of what was noticed.

    Hashes are normalised to lowercase hex (uppercase accepted); a malformed hash or a URL
    that is not http(s) raises ``ValueError`` here, at the edge.
    """

    notice_id: str
    url: str
    sha256: str
    pdq: str | None = None
    phash: str | None = None
    pdq_threshold: int = PDQ_CONFIRM_THRESHOLD
    phash_threshold: int = PHASH_CONFIRM_THRESHOLD

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme.lower() not in HTTP_SCHEMES:
            raise ValueError(f"notice {self.notice_id}: not an http(s) URL: {self.url[:80]!r}")
        for name in ("sha256", "pdq", "phash"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                object.__setattr__(self, name, normalize_hash(name, value, lenient=True))
            except MatcherError as exc:
                raise ValueError(f"notice {self.notice_id}: {exc}") from None
        if self.pdq_threshold < 0 or self.phash_threshold < 0:
            raise ValueError(f"notice {self.notice_id}: thresholds must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecheckTarget:
        """Build from a plain mapping; missing thresholds take the matchers' defaults."""
        try:
            return cls(
                notice_id=str(data["notice_id"]),
                url=str(data["url"]),
                sha256=str(data["sha256"]),
                pdq=None if data.get("pdq") is None else str(data["pdq"]),
                phash=None if data.get("phash") is None else str(data["phash"]),
                pdq_threshold=int(data.get("pdq_threshold", PDQ_CONFIRM_THRESHOLD)),
                phash_threshold=int(data.get("phash_threshold", PHASH_CONFIRM_THRESHOLD)),
            )
        except KeyError as exc:
            raise ValueError(f"recheck target lacks the field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"bad recheck target: {exc}") from None


@dataclass(frozen=True, slots=True)
class RecheckResult:
    """What one recheck found. ``sha256`` is that of the fetched image, when one was fetched."""

    notice_id: str
    url: str
    state: RecheckState
    reason: str
    http_status: int | None
    checked_at: str
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judgement without the bookkeeping (which target, when)."""

    state: RecheckState
    reason: str
    sha256: str | None = None


# -- judging --------------------------------------------------------------------------------


def judge_status(status: int) -> Verdict | None:
    """The verdict a status alone gives, or ``None`` when the body must be looked at (2xx)."""
    if status in REMOVED_STATUSES:
        return Verdict("removed", f"http {status}")
    if 200 <= status < 300:
        return None
    return Verdict("unreachable", f"http {status}")


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    return media if _MEDIA_TYPE.match(media) else None


def judge_body(
    target: RecheckTarget,
    body: bytes,
    content_type: str | None = None,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_quality: int = PDQ_MIN_QUALITY,
) -> Verdict:
    """Judge a 2xx body against the noticed image (blocking: run it off the reactor)."""
    sha256 = hashlib.sha256(body).hexdigest()
    if sha256 == target.sha256:
        return Verdict("online", "same bytes", sha256)
    if sniff_image(body) is None:
        media = _media_type(content_type)
        what = "empty body" if not body else media
        return Verdict("removed", f"not an image ({what})" if what else "not an image")
    try:
        digest = digest_bytes(body, max_pixels=max_pixels)
    except MatcherError:  # sniffed as an image above; kept for a decoder that disagrees
        return Verdict("removed", "not an image")
    return compare_digest(target, digest, min_quality=min_quality)


def compare_digest(
    target: RecheckTarget, digest: ImageDigest, *, min_quality: int = PDQ_MIN_QUALITY
) -> Verdict:
    """Perceptual comparison of a fetched image (not byte-identical) with the noticed one."""
    if digest.error is not None:
        return Verdict("unreachable", f"image not decodable ({digest.error})", digest.sha256)
    quality = digest.pdq_quality if digest.pdq_quality is not None else -1
    if target.pdq is not None and digest.pdq is not None and quality >= min_quality:
        distance = min(hamming(target.pdq, v) for v in digest.pdq_variants or (digest.pdq,))
        if distance <= target.pdq_threshold:
            return Verdict("online", f"pdq distance {distance}", digest.sha256)
    if target.phash is not None and digest.phash is not None:
        distance = min(hamming(target.phash, v) for v in digest.phash_variants or (digest.phash,))
        if distance <= target.phash_threshold:
            return Verdict("online", f"phash distance {distance}", digest.sha256)
    return Verdict("removed", "content changed", digest.sha256)


_DNS_ERRORS: Final = (net_error.DNSLookupError, CannotResolveHostError)
_REFUSED_ERRORS: Final = (net_error.ConnectionRefusedError, DownloadConnectionRefusedError)
_TIMEOUT_ERRORS: Final = (
    DownloadTimeoutError,
    net_error.TimeoutError,
    net_error.TCPTimedOutError,
    defer.TimeoutError,
    TimeoutError,
)
_LOST_ERRORS: Final = (
    ResponseDataLossError,
    ResponseFailed,
    net_error.ConnectionLost,
    net_error.ConnectionDone,
)


def judge_failure(exc: BaseException, url: str, policy: AddressPolicy) -> Verdict:
    """Judge a request that got no response; ``url`` is the last URL requested (after
    redirects), checked against ``policy`` to tell a refused address from other refusals."""
    if isinstance(exc, IgnoreRequest):
        message = str(exc)
        ip = literal_ip(url)
        if (ip is not None and not policy.allows(ip)) or _REFUSED_PEER_MESSAGE in message:
            return Verdict("unreachable", "blocked: private network")
        if _REDIRECT_LIMIT_MESSAGE in message:
            return Verdict("unreachable", "too many redirects")
        return Verdict("unreachable", "request ignored")
    if isinstance(exc, _DNS_ERRORS):
        return Verdict("unreachable", "dns lookup failed")
    if isinstance(exc, _REFUSED_ERRORS):
        return Verdict("unreachable", "connection refused")
    if isinstance(exc, _TIMEOUT_ERRORS):
        return Verdict("unreachable", "timeout")
    if isinstance(exc, DownloadCancelledError):  # over DOWNLOAD_MAXSIZE
        return Verdict("unreachable", "too large")
    if isinstance(exc, defer.CancelledError):
        return Verdict("unreachable", "cancelled")
    if isinstance(exc, _LOST_ERRORS):
        return Verdict("unreachable", "connection lost")
    if isinstance(exc, net_error.ConnectError | DownloadFailedError):
        return Verdict("unreachable", "connection failed")
    if isinstance(exc, UnsupportedURLSchemeError | NotSupported):
        return Verdict("unreachable", "unsupported url")
    return Verdict("unreachable", f"error: {type(exc).__name__}")


def _result(target: RecheckTarget, verdict: Verdict, status: int | None) -> RecheckResult:
    return RecheckResult(
        notice_id=target.notice_id,
        url=target.url,
        state=verdict.state,
        reason=verdict.reason,
        http_status=status,
        checked_at=now_iso(),
        sha256=verdict.sha256,
    )


# -- the spider -----------------------------------------------------------------------------

Poll = Callable[[], Sequence[RecheckTarget]]
Report = Callable[[RecheckResult], None]


class RecheckSpider(Spider):
    """Fetches what ``poll()`` hands it and reports each outcome; thin by design (judging is
    :func:`judge_status` / :func:`judge_body` / :func:`judge_failure`)."""

    name = "recheck"

    def __init__(
        self,
        poll: Poll,
        report: Report,
        once: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self.policy = AddressPolicy.from_settings(crawler.settings)
        crawler.signals.connect(self._on_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._on_closed, signal=signals.spider_closed)

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
            meta={"recheck": target},
        )
        engine = self.crawler.engine
        if engine is None:
            raise RecheckError("the crawl engine is not running")
        engine.crawl(request)

    # -- outcomes ---------------------------------------------------------------------------

    async def parse(self, response: Response, **kwargs: Any) -> None:
        target: RecheckTarget = response.meta["recheck"]
        verdict = judge_status(response.status)
        if verdict is None:
            content_type = response.headers.get(b"Content-Type")
            self.hasher.start()
            from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs it first)

            verdict = await maybe_deferred_to_future(
                deferToThreadPool(
                    reactor,
                    self.hasher.pool,
                    judge_body,
                    target,
                    response.body,
                    None if content_type is None else content_type.decode("latin-1"),
                    max_pixels=self.hasher.max_pixels,
                )
            )
        await self._report(_result(target, verdict, response.status))

    async def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        target: RecheckTarget | None = None if request is None else request.meta.get("recheck")
        if request is None or target is None or failure.value is None:
            logger.error("recheck failure without its target: %s", failure.getErrorMessage())
            return
        verdict = judge_failure(failure.value, request.url, self.policy)
        self._inc(f"recheck/errors/{type(failure.value).__name__}")
        await self._report(_result(target, verdict, None))

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


def build_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The crawl's settings module, :data:`RECHECK_SETTINGS`, then ``overrides`` on top."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    for key, value in RECHECK_SETTINGS.items():
        settings.set(key, value, priority="project")
    for key, value in (overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    return settings


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
    process = CrawlerProcess(build_settings(settings))
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


# -- command line ---------------------------------------------------------------------------


def _load_targets(path: str) -> list[RecheckTarget]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of targets")
    return [RecheckTarget.from_dict(item) for item in data]


def _parse_set(values: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {value!r}")
        overrides[key.strip()] = setting
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crawler.recheck``: recheck the targets of a JSON file, print results."""
    parser = argparse.ArgumentParser(
        prog="python -m crawler.recheck",
        description="Re-fetch noticed image URLs; print one JSON result per line.",
    )
    parser.add_argument("--targets", required=True, help="JSON array of targets ('-': stdin)")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep polling (an empty poll after the file) until SIGINT/SIGTERM",
    )
    parser.add_argument("--interval", type=float, default=DEFAULT_POLL_INTERVAL)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    try:
        targets = _load_targets(args.targets)
        overrides: dict[str, Any] = {"LOG_LEVEL": args.log_level, **_parse_set(args.set)}
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pending = [targets]
    lock = threading.Lock()

    def poll() -> list[RecheckTarget]:
        with lock:
            return pending.pop() if pending else []

    def report(result: RecheckResult) -> None:
        print(json.dumps(result.to_dict(), sort_keys=True), flush=True)

    try:
        stats = run_rechecks(
            poll,
            report,
            once=not args.watch,
            poll_interval=args.interval,
            settings=overrides,
        )
    except RecheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    reason = str(stats.get("finish_reason", "failed"))
    summary = {"finish_reason": reason, "stats": stats}
    print(json.dumps(summary, sort_keys=True), file=sys.stderr, flush=True)
    return 0 if reason in CLEAN_FINISH else 1


if __name__ == "__main__":
    sys.exit(main())
