"""Distributed crawling: the Scrapy side of a run's shared frontier (:mod:`store.frontier`).

``hotline worker`` processes crawl a distributed run together. Each one runs the ordinary
hotline spider with :class:`FrontierScheduler` as Scrapy's ``SCHEDULER``: a thin wrapper of
scrapy-redis (pinned) — its priority queue encodes and decodes requests and its dupefilter
fingerprints them — over Redis keys of the run, with one change that matters here:
requests are leased, not popped. A request stays in this worker's in-flight hash until
everything it led to is done: the requests its page yielded are in the frontier, its items
went through the pipelines (the hits are queued), or its errback ran. A worker killed at any
moment therefore loses nothing but time: when its heartbeat stops, another worker puts its
in-flight requests back and they are crawled again; hits stay exactly-once because the hit
queue is idempotent per (image URL, list entry).

What finishes a request is tracked by :class:`Leases`, fed by three hooks: the spider
middleware :class:`FrontierMiddleware` (what the callback yielded, and when it was done), the
item signals (each item through the pipelines) and the spider's ``request_failed`` signal
(errbacks). A retried or redirected request is done once its successor is in the frontier.

Settings (``FRONTIER_*``; :func:`crawler.runsettings.crawl_settings` sets them for workers):

* ``FRONTIER_ENABLED``        the spider middleware is on (the scheduler is ``SCHEDULER``)
* ``FRONTIER_WORKER``         this worker's id (default ``<host>:<pid>``)
* ``FRONTIER_LEASE``          seconds without a heartbeat after which a worker is dead
* ``FRONTIER_POLL_INTERVAL``  seconds between looks at the frontier while this worker is idle
* ``FRONTIER_MAX_ATTEMPTS``   expired leases after which a request is given up (a dead letter)

Their defaults are in :mod:`crawler.settings`; the run's Redis is the crawl's
(:mod:`crawler.redis`, ``STORE_*`` settings).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from scrapy import Request, signals
from scrapy.core.scheduler import BaseScheduler
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from twisted.internet.task import LoopingCall

from crawler import signals as crawler_signals
from crawler.redis import client_from, keys_from
from crawler.settings import (
    CRAWL_MAX_PAGES_PER_SEED,
    FRONTIER_LEASE,
    FRONTIER_MAX_ATTEMPTS,
    FRONTIER_POLL_INTERVAL,
)
from store.frontier import ADDED, CAPPED, DUPLICATE, Frontier
from store.text import text

if TYPE_CHECKING:
    import redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: Heartbeats per lease: a worker is declared dead only after missing this many in a row.
HEARTBEATS_PER_LEASE: Final = 3
#: Requests leased per round trip to the frontier (the engine takes them one by one).
TAKE_BATCH: Final = 4
#: Acknowledgements sent per round trip (and at every poll).
ACK_BATCH: Final = 16
#: Consecutive idle polls with leases still open before they count as leaked.
LEAK_POLLS: Final = 2
#: Request meta keys: the frontier member a request was leased as, and the lease of the
#: response that yielded it. Neither is ever stored in Redis.
LEASE_META: Final = "hotline_lease"
PARENT_META: Final = "hotline_parent"
#: Meta that only means something in the process that set it.
VOLATILE_META: Final = (
    "hotline_body",
    "hotline_received",
    "hotline_too_large",
    "download_latency",
)
#: Finish reason of a worker's crawl whose run ended elsewhere (failed, or gone).
RUN_ENDED: Final = "run_ended"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_id(crawler: Crawler) -> str:
    return crawler.settings.get("FRONTIER_WORKER") or default_worker_id()


# -- request serialization -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _plain(v) for k, v in value.items()}
        return {"$d": [[_plain(k), _plain(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _restore(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$b"}:
        return base64.b64decode(obj["$b"])
    if set(obj) == {"$d"}:
        return {_freeze(k): v for k, v in obj["$d"]}
    return obj


def _freeze(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


class JsonSerializer:
    """scrapy-redis request serializer in JSON (its default is pickle, which would let
    anyone who can write to Redis run code in every worker). Deterministic, so one request
    is one frontier member."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data, object_hook=_restore)


class RequestCodec(PriorityQueue):  # type: ignore[misc]
    """scrapy-redis's priority queue, used for its request encoding; the queue operations
    themselves are :class:`store.frontier.Frontier`'s leased ones."""

    def __init__(self, server: redis.Redis, spider: Spider, key: str) -> None:
        super().__init__(server, spider, key, serializer=JsonSerializer)

    def encode(self, request: Request) -> bytes:
        return bytes(self._encode_request(request))

    def decode(self, member: bytes) -> Request:
        request: Request = self._decode_request(member)
        return request


# -- leases --------------------------------------------------------------------------------


@dataclass
class _Lease:
    unit_open: bool = True  # the request itself: callback or errback not finished
    items: int = 0  # items it yielded, still in the pipelines
    requests: int = 0  # requests it yielded, not yet in the frontier


class Leases:
    """The requests this worker leased and what each still waits for; ``on_done`` is
    called with a request's member once nothing is left (then it is acknowledged)."""

    def __init__(self) -> None:
        self._open: dict[bytes, _Lease] = {}
        self.on_done: Callable[[bytes], None] = lambda member: None

    def __len__(self) -> int:
        return len(self._open)

    def open(self, member: bytes) -> None:
        self._open[member] = _Lease()

    def hold_item(self, member: bytes) -> None:
        if (lease := self._open.get(member)) is not None:
            lease.items += 1

    def hold_request(self, member: bytes) -> None:
        if (lease := self._open.get(member)) is not None:
            lease.requests += 1

    def release_item(self, member: bytes) -> None:
        lease = self._open.get(member)
        if lease is not None and lease.items > 0:
            lease.items -= 1
            self._check(member, lease)

    def release_request(self, member: bytes) -> None:
        lease = self._open.get(member)
        if lease is not None and lease.requests > 0:
            lease.requests -= 1
            self._check(member, lease)

    def close_unit(self, member: bytes) -> None:
        lease = self._open.get(member)
        if lease is not None and lease.unit_open:
            lease.unit_open = False
            self._check(member, lease)

    def _check(self, member: bytes, lease: _Lease) -> None:
        if not lease.unit_open and lease.items == 0 and lease.requests == 0:
            del self._open[member]
            self.on_done(member)

    def drop_all(self) -> list[bytes]:
        """Forget every open lease (returns their members)."""
        members = list(self._open)
        self._open.clear()
        return members


_LEASES: weakref.WeakKeyDictionary[Crawler, Leases] = weakref.WeakKeyDictionary()


def leases_for(crawler: Crawler) -> Leases:
    """The one :class:`Leases` of a crawl, shared by its scheduler and spider middleware."""
    leases = _LEASES.get(crawler)
    if leases is None:
        leases = _LEASES[crawler] = Leases()
    return leases


def _lease_of(request: Request | None) -> bytes | None:
    if request is None:
        return None
    lease = request.meta.get(LEASE_META)
    return lease if isinstance(lease, bytes) else None


class FrontierMiddleware:
    """Spider middleware (outermost): notes what each leased response's callback yields and
    when the callback is done. Output is passed on unchanged."""

    def __init__(self, leases: Leases) -> None:
        self.leases = leases

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierMiddleware:
        if not crawler.settings.getbool("FRONTIER_ENABLED"):
            raise NotConfigured("FRONTIER_ENABLED is off")
        return cls(leases_for(crawler))

    def _note(self, lease: bytes, out: Any) -> None:
        if isinstance(out, Request):
            out.meta[PARENT_META] = lease
            self.leases.hold_request(lease)
        elif out is not None:
            self.leases.hold_item(lease)

    @contextmanager
    def _callback(self, lease: bytes | None) -> Iterator[None]:
        """Around the iteration of a callback's output: once it ran to its end, or raised
        (a failing callback is done with: it is not crawled again), the request's own part
        is done; not when the output was abandoned (the crawl is stopping)."""
        try:
            yield
        except Exception:
            if lease is not None:
                self.leases.close_unit(lease)
            raise
        if lease is not None:
            self.leases.close_unit(lease)

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        lease = _lease_of(response.request)
        with self._callback(lease):
            for out in result:
                if lease is not None:
                    self._note(lease, out)
                yield out

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        lease = _lease_of(response.request)
        with self._callback(lease):
            async for out in result:
                if lease is not None:
                    self._note(lease, out)
                yield out


# -- the scheduler -------------------------------------------------------------------------


class FrontierScheduler(BaseScheduler):
    """Scrapy scheduler over a distributed run's frontier (see the module docstring)."""

    def __init__(
        self,
        crawler: Crawler,
        client: redis.Redis,
        frontier: Frontier,
        worker: str,
        *,
        lease: float = FRONTIER_LEASE,
        poll_interval: float = FRONTIER_POLL_INTERVAL,
        page_cap: int = CRAWL_MAX_PAGES_PER_SEED,
        max_attempts: int = FRONTIER_MAX_ATTEMPTS,
    ) -> None:
        self.crawler = crawler
        self.client = client
        self.frontier = frontier
        self.worker = worker
        self.lease = lease
        self.poll_interval = poll_interval
        self.page_cap = page_cap
        self.max_attempts = max_attempts
        self.leases = leases_for(crawler)
        self.leases.on_done = self._ack
        self.codec: RequestCodec | None = None
        self.dupefilter = RFPDupeFilter(client, key=frontier.keys.frontier_seen(frontier.run_id))
        self._local: deque[Request] = deque()  # leased, not yet handed to the engine
        self._acks: list[bytes] = []  # done, not yet acknowledged
        self._waking: Request | None = None
        self._idle_seen = False  # the engine went idle once: this worker's seeds are pushed
        self._idle_polls = 0
        self._closing = False
        self._loops: list[LoopingCall] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        settings = crawler.settings
        run_id = settings.get("CRAWL_ID")
        if not run_id:
            raise ValueError("FrontierScheduler crawls one distributed run: set CRAWL_ID")
        lease = settings.getfloat("FRONTIER_LEASE", FRONTIER_LEASE)
        poll = settings.getfloat("FRONTIER_POLL_INTERVAL", FRONTIER_POLL_INTERVAL)
        attempts = settings.getint("FRONTIER_MAX_ATTEMPTS", FRONTIER_MAX_ATTEMPTS)
        if lease <= 0 or poll <= 0 or attempts < 1:
            raise ValueError(
                "FRONTIER_LEASE and FRONTIER_POLL_INTERVAL must be > 0, "
                "FRONTIER_MAX_ATTEMPTS at least 1"
            )
        client = client_from(settings)
        frontier = Frontier(client, keys_from(settings), run_id)
        scheduler = cls(
            crawler,
            client,
            frontier,
            worker_id(crawler),
            lease=lease,
            poll_interval=poll,
            page_cap=settings.getint("CRAWL_MAX_PAGES_PER_SEED", CRAWL_MAX_PAGES_PER_SEED),
            max_attempts=attempts,
        )
        crawler.signals.connect(scheduler._item_done, signal=signals.item_scraped)
        crawler.signals.connect(scheduler._item_done, signal=signals.item_dropped)
        crawler.signals.connect(scheduler._item_done, signal=signals.item_error)
        crawler.signals.connect(scheduler._callback_failed, signal=signals.spider_error)
        crawler.signals.connect(scheduler._request_failed, signal=crawler_signals.request_failed)
        crawler.signals.connect(scheduler._on_idle, signal=signals.spider_idle)
        return scheduler

    @property
    def stats(self) -> StatsCollector | None:
        return self.crawler.stats

    def _inc(self, key: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(key, count)

    # -- Scrapy's scheduler interface ----------------------------------------------------

    def open(self, spider: Spider) -> None:
        self.codec = RequestCodec(self.client, spider, self.frontier.key)
        self.frontier.heartbeat(self.worker)
        for function, interval in (
            (self._heartbeat, self.lease / HEARTBEATS_PER_LEASE),
            (self._poll, self.poll_interval),
        ):
            loop = LoopingCall(function)
            loop.start(interval, now=False)
            self._loops.append(loop)
        logger.info("worker %s joined run %s", self.worker, self.frontier.run_id)

    def close(self, reason: str) -> None:
        self._closing = True
        for loop in self._loops:
            if loop.running:
                loop.stop()
        # Requests this worker took and did not finish go back now (not after the lease);
        # once the run ended (finished, cancelled) this just leaves it.
        self._flush_acks()
        self.leases.drop_all()
        moved = self.frontier.release(self.worker)
        if moved:
            self._inc("frontier/released", moved)
            logger.warning(
                "worker %s stopped (%s): %d requests back to run %s's frontier",
                self.worker,
                reason,
                moved,
                self.frontier.run_id,
            )
        self.client.close()

    def has_pending_requests(self) -> bool:
        return bool(self._local) or len(self.frontier) > 0

    def enqueue_request(self, request: Request) -> bool:
        if request is self._waking:  # taken from the frontier by _poll: already leased
            self._local.append(request)
            return True
        if self.codec is None:
            raise RuntimeError("the scheduler is not open")
        meta = request.meta
        lease = meta.pop(LEASE_META, None)  # a retry or redirect of a leased request
        parent = meta.pop(PARENT_META, None)
        for key in VOLATILE_META:
            meta.pop(key, None)
        info = meta.get("hotline") or {}
        # A page counts towards its seed's cap once: not again as its retry or redirect.
        is_page = info.get("kind") == "page" and lease is None
        outcome = self.frontier.push(
            self.codec.encode(request),
            -request.priority,
            fingerprint="" if request.dont_filter else self.dupefilter.request_fingerprint(request),
            seed=str(info.get("seed", "")) if is_page else "",
            page_cap=self.page_cap,
        )
        if isinstance(lease, bytes):
            self.leases.close_unit(lease)
        if isinstance(parent, bytes):
            self.leases.release_request(parent)
        if outcome == ADDED:
            self._inc("frontier/pushed")
        elif outcome == DUPLICATE:
            self._inc("frontier/duplicate")
        elif outcome == CAPPED:
            self._inc("crawl/page_cap_reached")
        else:
            self._inc("frontier/refused_ended")
        return outcome == ADDED

    def next_request(self) -> Request | None:
        if self._local:
            return self._local.popleft()
        return self._take()

    # -- leasing -------------------------------------------------------------------------

    def _take(self) -> Request | None:
        """Lease up to TAKE_BATCH requests in one round trip: the first is returned, the
        others wait in ``_local`` for the engine's next calls."""
        if self._closing or self.codec is None:
            return None
        taken: list[Request] = []
        for member, _score in self.frontier.pop_many(self.worker, TAKE_BATCH):
            try:
                request = self.codec.decode(member)
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("dropped an unreadable frontier entry of run %s: %s", self.run_id, exc)
                self._inc("frontier/unreadable")
                self.frontier.ack(self.worker, member)
                continue
            request.meta[LEASE_META] = member
            self.leases.open(member)
            taken.append(request)
        if not taken:
            return None
        self._inc("frontier/leased", len(taken))
        self._local.extend(taken[1:])
        return taken[0]

    @property
    def run_id(self) -> str:
        return self.frontier.run_id

    def _ack(self, member: bytes) -> None:
        """A request is done. Acknowledgements go out ACK_BATCH at a time, and at every poll
        and before any look at the run's end: one that dies with this worker only means the
        request is crawled again."""
        self._acks.append(member)
        if len(self._acks) >= ACK_BATCH:
            self._flush_acks()

    def _flush_acks(self) -> None:
        if self._acks:
            self.frontier.ack(self.worker, *self._acks)
            self._inc("frontier/done", len(self._acks))
            self._acks.clear()

    def _item_done(self, response: Response | None = None, **kwargs: Any) -> None:
        lease = _lease_of(getattr(response, "request", None))
        if lease is not None:
            self.leases.release_item(lease)

    def _callback_failed(self, response: Response | None = None, **kwargs: Any) -> None:
        lease = _lease_of(getattr(response, "request", None))
        if lease is not None:
            self.leases.close_unit(lease)

    def _request_failed(self, request: Request, **kwargs: Any) -> None:
        lease = _lease_of(request)
        if lease is not None:
            self.leases.close_unit(lease)

    # -- idle: more work from other workers, the run's end -------------------------------

    def _heartbeat(self) -> None:
        if not self.frontier.heartbeat(self.worker):
            self._close_ended()

    def _engine_busy(self) -> bool:
        engine = self.crawler.engine
        if engine is None:
            return False
        slot = getattr(engine.scraper, "slot", None)
        return bool(engine.downloader.active) or (slot is not None and not slot.is_idle())

    def _poll(self) -> None:
        if self._closing:
            return
        self._flush_acks()
        if self._local or len(self.leases):
            # A lease nothing in this process works on any more would keep the run from
            # ever draining: after LEAK_POLLS idle polls it is given up (and logged).
            self._idle_polls = 0 if self._engine_busy() else self._idle_polls + 1
            if self._idle_polls >= LEAK_POLLS and not self._local:
                for member in self.leases.drop_all():
                    logger.warning("run %s: a request's lease leaked; released", self.run_id)
                    self._inc("frontier/leaked")
                    self._ack(member)
                self._flush_acks()
            return
        self._idle_polls = 0
        engine = self.crawler.engine
        request = self._take()
        if request is not None and engine is not None:
            self._waking = request  # wake the engine through its public crawl()
            try:
                engine.crawl(request)
            finally:
                self._waking = None
            return
        if self._idle_seen:
            state = self._drain()
            if state == "drained":
                self._close("finished")
            elif state == "ended":
                self._close_ended()

    def _drain(self) -> str:
        """Put back the requests of silent workers; the run's state (see ``Frontier.drain``)."""
        drain = self.frontier.drain(self.lease, self.max_attempts)
        if drain.dead:
            self._inc("frontier/dead_letters", drain.dead)
            logger.error(
                "run %s: %d requests given up: their lease expired %d times (dead letters, "
                "see hotline runs show)",
                self.run_id,
                drain.dead,
                self.max_attempts,
            )
        if drain.reclaimed:
            self._inc("frontier/reclaimed", drain.reclaimed)
            logger.warning(
                "run %s: %d requests of a silent worker back to the frontier",
                self.run_id,
                drain.reclaimed,
            )
        return drain.state

    def _on_idle(self) -> None:
        self._idle_seen = True
        if self._local or len(self.leases):
            raise DontCloseSpider
        self._flush_acks()
        state = self._drain()
        if state == "busy":
            raise DontCloseSpider
        if state == "ended":
            raise CloseSpider(self._ended_reason())
        # drained: the engine closes the crawl as "finished"

    def _ended_reason(self) -> str:
        status = self.client.hget(self.frontier.keys.crawl(self.run_id), "status")
        reason = "" if status is None else text(cast("bytes", status))
        return reason if reason in ("finished", "cancelled") else RUN_ENDED

    def _close_ended(self) -> None:
        self._close(self._ended_reason())

    def _close(self, reason: str) -> None:
        engine = self.crawler.engine
        if self._closing or engine is None or engine.spider is None:
            return
        self._closing = True
        deferred_from_coro(engine.close_spider_async(reason=reason))
