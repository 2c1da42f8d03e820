"""Hashing image bodies off the reactor thread, on every core, with bounded memory.

:class:`ImageHasher` hashes with :func:`matchers.digest.digest_bytes` in one of three pools
(``MATCHER_POOL``):

``process``  ``MATCHER_WORKERS`` worker processes (:mod:`crawler.workerpool`), fed through
             pipes by as many driver threads: the reactor thread never waits and no hashing
             holds this process's GIL. The default: it is the fastest on a two-core machine
             (``bench/crawl.py``).
``thread``   ``MATCHER_WORKERS`` threads of this process: Pillow's decoding and numpy release
             the GIL, the rest of the digest does not.
``inline``   on the reactor thread itself (for measurements and debugging).

At most ``MATCHER_MAX_IN_FLIGHT`` bodies (default: two per worker, so a worker always has the
next one waiting) are handed to the pool at once; the others wait in their callback, which
holds their response in Scrapy's scraper. No download starts while the crawl holds
``CRAWL_MAX_HELD_RESPONSES`` responses (:mod:`crawler.backpressure`), nor once they pass
``SCRAPER_SLOT_MAX_ACTIVE_SIZE`` bytes: memory stays bounded and the crawl slows to the pace
of the hashing. Stats: ``matcher/pool/workers``, ``matcher/pool/in_flight_max``,
``matcher/pool/waited`` (bodies that waited for a place), ``matcher/pool/worker_crashed``,
``matcher/pool/worker_timeout``, ``matcher/pool/worker_restarts``, ``matcher/pool/worker_cpu_s``
(CPU seconds of the worker processes).

Only what the loaded lists can query is computed: :meth:`ImageHasher.use_algorithms` (called
by the match pipeline whenever its lists change) names the perceptual algorithms they hold,
and a body is hashed with those in force when it enters the pool (no pHash when no list holds
pHash, no decode at all when the lists are exact hashes only). A body already in the pool when
a list with a new algorithm loads is matched on what it was hashed with.

The body is passed by reference (through a pipe to a worker process), hashed and dropped:
nothing here copies it anywhere else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.settings import (
    CRAWL_MEDIA_MAXSIZE,
    MATCHER_ARCHIVE_TIMEOUT,
    MATCHER_HASH_TIMEOUT,
    MATCHER_POOL,
)
from crawler.workerpool import ProcessHashPool
from matchers.algorithms import (
    ALGORITHMS,
    EXACT_ALGORITHMS,
    MAX_IMAGE_PIXELS,
    PERCEPTUAL_ALGORITHMS,
)
from matchers.archives import ArchiveLimits, ArchiveReport, digest_archive
from matchers.digest import ImageDigest, digest_bytes
from matchers.video import VideoDigest, VideoLimits, digest_video

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.defer import Deferred

__all__ = [
    "IN_FLIGHT_PER_WORKER",
    "POOL_INLINE",
    "POOL_KINDS",
    "POOL_PROCESS",
    "POOL_THREAD",
    "ImageHasher",
    "cpu_count",
]

T = TypeVar("T")

POOL_INLINE: Final = "inline"
POOL_THREAD: Final = "thread"
POOL_PROCESS: Final = "process"
POOL_KINDS: Final = (POOL_INLINE, POOL_THREAD, POOL_PROCESS)
#: Bodies handed to the pool per worker when MATCHER_MAX_IN_FLIGHT is 0: one being hashed,
#: one waiting, so a worker never idles while the reactor thread hands it the next.
IN_FLIGHT_PER_WORKER: Final = 2
#: Threads for blocking work besides hashing (a recheck's judgement of a body).
SIDE_THREADS: Final = 1
STAT_PREFIX: Final = "matcher/pool/"


def _reactor() -> Any:
    """The running reactor, looked up on use: importing it earlier would install Twisted's
    default reactor before Scrapy installs the one its settings ask for. Typed ``Any``: mypy
    reads zope Interface methods as unbound functions."""
    from twisted.internet import reactor  # noqa: PLC0415 (see above)

    return reactor


#: The share of ``MATCHER_ARCHIVE_TIMEOUT`` an archive may take before it stops by itself.
ARCHIVE_DEADLINE_SHARE: Final = 0.8


def archive_limits_from(settings: Any) -> ArchiveLimits:
    """The ``MATCHER_ARCHIVE_*`` settings (unset: the matcher's own limits); a member may be
    as large as a file may be (``CRAWL_MEDIA_MAXSIZE``), and an archive stops reading at
    :data:`ARCHIVE_DEADLINE_SHARE` of ``MATCHER_ARCHIVE_TIMEOUT``.

    Raises:
        NotConfigured: a limit that is not positive.
    """
    given = {
        "max_members": settings.get("MATCHER_ARCHIVE_MAX_MEMBERS"),
        "max_total_bytes": settings.get("MATCHER_ARCHIVE_MAX_BYTES"),
        "max_ratio": settings.get("MATCHER_ARCHIVE_MAX_RATIO"),
        "max_depth": settings.get("MATCHER_ARCHIVE_MAX_DEPTH"),
    }
    values = {name: int(value) for name, value in given.items() if value not in (None, "")}
    values["max_member_bytes"] = settings.getint("CRAWL_MEDIA_MAXSIZE", CRAWL_MEDIA_MAXSIZE)
    # The archive stops itself before the pool kills its worker, and reports what it read.
    timeout = settings.getfloat("MATCHER_ARCHIVE_TIMEOUT", MATCHER_ARCHIVE_TIMEOUT)
    values["max_seconds"] = ARCHIVE_DEADLINE_SHARE * timeout
    try:
        return ArchiveLimits(**values)
    except ValueError as exc:
        raise NotConfigured(f"archive limits: {exc}") from None


def video_limits_from(settings: Any) -> VideoLimits:
    """The ``MATCHER_VIDEO_*`` settings (unset: the matcher's own limits).

    Raises:
        NotConfigured: a limit that is not a positive number.
    """
    given = {
        "sample_fps": settings.get("MATCHER_VIDEO_SAMPLE_FPS"),
        "max_frames": settings.get("MATCHER_VIDEO_MAX_FRAMES"),
        "max_frame_pixels": settings.get("MATCHER_VIDEO_MAX_FRAME_PIXELS"),
        "max_decoded_pixels": settings.get("MATCHER_VIDEO_MAX_DECODED_PIXELS"),
        "max_seconds": settings.get("MATCHER_VIDEO_MAX_SECONDS"),
    }
    values: dict[str, Any] = {}
    try:
        for name, value in given.items():
            if value in (None, ""):
                continue
            values[name] = float(value) if name in ("sample_fps", "max_seconds") else int(value)
        return VideoLimits(**values)
    except ValueError as exc:
        raise NotConfigured(f"video limits: {exc}") from None


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ImageHasher:
    """Hashes image bodies in the pool ``pool`` of ``workers`` (0: one per core).

    ``max_in_flight`` bounds the bodies handed to the pool at once (0: two per worker);
    ``timeout`` is how long a worker process may take on one body, ``archive_timeout`` on one
    archive (:meth:`open_archive`, within ``archive_limits``); ``worker_command`` replaces
    the worker's command line (tests); ``stats`` receives the ``matcher/pool/*`` counts.
    """

    def __init__(
        self,
        *,
        pool: str = MATCHER_POOL,
        workers: int = 0,
        max_pixels: int = MAX_IMAGE_PIXELS,
        max_in_flight: int = 0,
        timeout: float = MATCHER_HASH_TIMEOUT,
        archive_timeout: float = MATCHER_ARCHIVE_TIMEOUT,
        archive_limits: ArchiveLimits | None = None,
        video_limits: VideoLimits | None = None,
        stats: StatsCollector | None = None,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        if pool not in POOL_KINDS:
            raise NotConfigured(f"MATCHER_POOL must be one of {', '.join(POOL_KINDS)}: {pool!r}")
        if workers < 0 or max_in_flight < 0:
            raise NotConfigured("MATCHER_WORKERS and MATCHER_MAX_IN_FLIGHT cannot be negative")
        if not timeout > 0:
            raise NotConfigured(
                f"MATCHER_HASH_TIMEOUT must be a positive number of seconds: {timeout}"
            )
        if not archive_timeout > 0:
            raise NotConfigured(
                f"MATCHER_ARCHIVE_TIMEOUT must be a positive number of seconds: {archive_timeout}"
            )
        self.archive_timeout = archive_timeout
        self.archive_limits = archive_limits or ArchiveLimits()
        self.video_limits = video_limits or VideoLimits()
        self.kind = pool
        self.workers = 1 if pool == POOL_INLINE else workers or cpu_count()
        self.max_pixels = max_pixels
        self.max_in_flight = max_in_flight or IN_FLIGHT_PER_WORKER * self.workers
        self.timeout = timeout
        self.stats = stats
        self.worker_command = worker_command
        self.algorithms: tuple[str, ...] = ALGORITHMS
        self._slots = DeferredSemaphore(self.max_in_flight)
        self._in_flight = 0
        self._threads: ThreadPool | None = None  # hashing threads, or the process drivers
        self._side: ThreadPool | None = None
        self.processes: ProcessHashPool | None = None
        self._shutdown_trigger: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ImageHasher:
        s = crawler.settings
        hasher = cls(
            pool=str(s.get("MATCHER_POOL") or MATCHER_POOL).strip().lower(),
            workers=s.getint("MATCHER_WORKERS", 0),
            max_pixels=s.getint("MATCHER_MAX_PIXELS", MAX_IMAGE_PIXELS),
            max_in_flight=s.getint("MATCHER_MAX_IN_FLIGHT", 0),
            timeout=s.getfloat("MATCHER_HASH_TIMEOUT", MATCHER_HASH_TIMEOUT),
            archive_timeout=s.getfloat("MATCHER_ARCHIVE_TIMEOUT", MATCHER_ARCHIVE_TIMEOUT),
            archive_limits=archive_limits_from(s),
            video_limits=video_limits_from(s),
        )

        def bind_stats() -> None:  # the crawler has its stats once the crawl starts
            hasher.stats = crawler.stats

        crawler.signals.connect(bind_stats, signal=signals.spider_opened, weak=False)
        return hasher

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pool (worker processes import their libraries meanwhile). Idempotent;
        :meth:`digest` starts it when needed."""
        if self.kind == POOL_INLINE or self._threads is not None:
            return
        self._threads = ThreadPool(
            minthreads=self.workers, maxthreads=self.workers, name=f"hotline-{self.kind}"
        )
        if self.kind == POOL_PROCESS:
            self.processes = ProcessHashPool(
                self.workers,
                max_pixels=self.max_pixels,
                timeout=self.timeout,
                archive_timeout=self.archive_timeout,
                archive_limits=self.archive_limits,
                video_limits=self.video_limits,
                command=self.worker_command,
                on_event=self._event_from_thread,
            )
            self.processes.start()
        self._threads.start()
        self._set_stat("workers", self.workers)
        self._when_reactor_stops()

    def _when_reactor_stops(self) -> None:
        """Stop with the reactor too, for a crawl that ends without closing its spider."""
        if self._shutdown_trigger is None:
            self._shutdown_trigger = _reactor().addSystemEventTrigger(
                "during", "shutdown", self.stop
            )

    def stop(self) -> None:
        """Stop the pool: worker processes end, threads are joined. Idempotent."""
        if self.processes is not None:
            self._set_stat("worker_cpu_s", round(self.processes.close(), 2))
            self.processes = None
        for pool in (self._threads, self._side):
            if pool is not None:
                pool.stop()
        self._threads = self._side = None
        if self._shutdown_trigger is not None:
            trigger, self._shutdown_trigger = self._shutdown_trigger, None
            with contextlib.suppress(ValueError, KeyError):  # running now: this call is it
                _reactor().removeSystemEventTrigger(trigger)

    # -- hashing ----------------------------------------------------------------------------

    def use_algorithms(self, perceptual: Collection[str]) -> None:
        """Compute only the perceptual hashes in ``perceptual`` for bodies submitted from now
        on (exact hashes are always computed). Any thread may call it.

        Raises:
            ValueError: an unknown perceptual algorithm.
        """
        unknown = set(perceptual) - set(PERCEPTUAL_ALGORITHMS)
        if unknown:
            raise ValueError(f"unknown perceptual algorithm(s): {', '.join(sorted(unknown))}")
        wanted = tuple(a for a in PERCEPTUAL_ALGORITHMS if a in perceptual)
        self.algorithms = (*EXACT_ALGORITHMS, *wanted)  # one assignment: old or new

    async def digest(self, body: bytes) -> ImageDigest:
        """Hash ``body`` in the pool, once one of ``max_in_flight`` places is free.

        Raises what :meth:`crawler.workerpool.ProcessHashPool.hash` raises (in every pool:
        ``MatcherError`` when the bytes are not an image)."""
        if self._slots.tokens == 0:
            self._inc("waited")
        await maybe_deferred_to_future(self._slots.acquire())
        self._in_flight += 1
        self._max_stat("in_flight_max", self._in_flight)
        try:
            return await maybe_deferred_to_future(self._submit(body))
        finally:
            self._in_flight -= 1
            self._slots.release()

    async def open_archive(self, body: bytes) -> ArchiveReport:
        """Digest the members of the archive ``body`` in the pool (see
        :func:`matchers.archives.digest_archive`), once a place is free; raises what
        :meth:`digest` raises."""
        await maybe_deferred_to_future(self._slots.acquire())
        self._in_flight += 1
        try:
            return await maybe_deferred_to_future(self._submit_archive(body))
        finally:
            self._in_flight -= 1
            self._slots.release()

    def _submit_archive(self, body: bytes) -> Deferred[ArchiveReport]:
        from twisted.internet import defer, reactor  # noqa: PLC0415 (Scrapy installs it first)

        algorithms = self.algorithms

        def open_here() -> ArchiveReport:
            return digest_archive(
                body,
                algorithms=algorithms,
                max_pixels=self.max_pixels,
                limits=self.archive_limits,
                video_limits=self.video_limits,
            )

        if self.kind == POOL_INLINE:
            return defer.maybeDeferred(open_here)
        self.start()
        if self._threads is None:
            raise RuntimeError("the hash pool was stopped")
        if self.processes is not None:
            return deferToThreadPool(
                reactor, self._threads, self.processes.open_archive, body, algorithms
            )
        return deferToThreadPool(reactor, self._threads, open_here)

    async def open_video(self, body: bytes, format: str | None = None) -> VideoDigest:
        """Sample and hash the frames of the video ``body`` in the pool (see
        :func:`matchers.video.digest_video`), once a place is free; raises what
        :meth:`digest` raises."""
        from twisted.internet import defer, reactor  # noqa: PLC0415 (Scrapy installs it first)

        algorithms = self.algorithms

        def open_here() -> VideoDigest:
            return digest_video(
                body, format=format, algorithms=algorithms, limits=self.video_limits
            )

        await maybe_deferred_to_future(self._slots.acquire())
        self._in_flight += 1
        try:
            if self.kind == POOL_INLINE:
                submitted: Deferred[VideoDigest] = defer.maybeDeferred(open_here)
            else:
                self.start()
                if self._threads is None:
                    raise RuntimeError("the hash pool was stopped")
                if self.processes is not None:
                    submitted = deferToThreadPool(
                        reactor, self._threads, self.processes.open_video, body, algorithms
                    )
                else:
                    submitted = deferToThreadPool(reactor, self._threads, open_here)
            return await maybe_deferred_to_future(submitted)
        finally:
            self._in_flight -= 1
            self._slots.release()

    def _submit(self, body: bytes) -> Deferred[ImageDigest]:
        from twisted.internet import defer, reactor  # noqa: PLC0415 (Scrapy installs it first)

        algorithms = self.algorithms
        if self.kind == POOL_INLINE:
            return defer.maybeDeferred(
                digest_bytes, body, max_pixels=self.max_pixels, algorithms=algorithms
            )
        self.start()
        if self._threads is None:
            raise RuntimeError("the hash pool was stopped")
        if self.processes is not None:
            return deferToThreadPool(reactor, self._threads, self.processes.hash, body, algorithms)
        return deferToThreadPool(
            reactor,
            self._threads,
            digest_bytes,
            body,
            max_pixels=self.max_pixels,
            algorithms=algorithms,
        )

    def defer_to_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Run other blocking work on a thread of its own (a recheck's judgement)."""
        from twisted.internet import reactor  # noqa: PLC0415 (Scrapy installs it first)

        if self._side is None:
            self._side = ThreadPool(minthreads=1, maxthreads=SIDE_THREADS, name="hotline-side")
            self._side.start()
            self._when_reactor_stops()
        return deferToThreadPool(reactor, self._side, fn, *args, **kwargs)

    # -- stats ------------------------------------------------------------------------------

    def _event_from_thread(self, name: str) -> None:
        _reactor().callFromThread(self._inc, name)

    def _inc(self, name: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(STAT_PREFIX + name)

    def _set_stat(self, name: str, value: float) -> None:
        if self.stats is not None:
            self.stats.set_value(STAT_PREFIX + name, value)

    def _max_stat(self, name: str, value: int) -> None:
        if self.stats is not None:
            self.stats.max_value(STAT_PREFIX + name, value)
