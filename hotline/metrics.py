"""Prometheus metrics of the daemons: ``--metrics-port PORT`` (off by default).

Each daemon (``scheduler``, ``worker``, ``notifier``, ``recheck``, ``serve``) started with
``--metrics-port`` serves ``/metrics`` on ``--metrics-host`` (default 127.0.0.1) with:

* **its own process**: ``process_*`` (resident memory, CPU seconds, open files),
  ``hotline_daemon_info{role,version}``, and what the daemon counts itself:
  ``hotline_notifier_notices_total{outcome}`` and ``hotline_delivery_failures_total{kind}``
  (notifier), ``hotline_recheck_outcomes_total{outcome}`` (recheck),
  ``hotline_scheduler_starts_total{result}`` (scheduler), ``hotline_worker_runs_total{reason}``,
  ``hotline_worker_pages_total``, ``hotline_worker_images_total`` and ``hotline_index_bytes``
  (worker: the memory its hash lists and their indexes hold);
* **the store**, read from Redis at scrape time (at most every :data:`STORE_REFRESH` seconds;
  every daemon reports the same values, so aggregate them with ``max``; the counts that walk
  every notice and review item are made inside Redis, by one daemon per refresh, and shared
  with the others through ``P metrics:walk``):
  ``hotline_queue_depth{queue}`` (``hits_pending``: hits the notifiers have not acknowledged;
  ``review``: near misses awaiting a decision; ``dead_letters``; ``frontier``: requests queued
  in distributed runs; ``recheck_due``), ``hotline_notices{status,channel}``,
  ``hotline_time_to_removal_seconds`` (a histogram over removed notices, from the notice to
  the first check that found the image gone), per recent run
  ``hotline_run_pages{run,status}``, ``hotline_run_images``, ``hotline_run_hits``,
  ``hotline_run_review``, ``hotline_run_errors{run,kind}`` (failed requests by exception)
  and ``hotline_run_decode_errors{run,code}`` (images that could not be decoded), per list
  ``hotline_list_entries{list,kind}`` and ``hotline_list_version``, and
  ``hotline_store_up`` (0 while Redis cannot be read; the other store metrics are then left
  out rather than reported stale).

Runs are the :data:`RECENT_RUNS` most recent, so the label sets stay bounded. Nothing here
reads content: the store holds none.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Final, cast

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hotline.services import Session
from store.frontier import Frontier
from store.keys import NOTIFIER_GROUP
from store.review import ReviewDesk
from store.runs import RunRecord
from store.text import one_line
from takedown.notices import STATUSES, NoticeStore
from takedown.notifier import NotifierStats

log = logging.getLogger(__name__)

__all__ = [
    "RECENT_RUNS",
    "ROLES",
    "STORE_REFRESH",
    "TIME_TO_REMOVAL_BUCKETS",
    "DaemonMetrics",
    "StoreCollector",
    "serve_metrics",
]

ROLES: Final = ("scheduler", "worker", "notifier", "recheck", "console")
#: Seconds the store metrics are reused before Redis is read again (a scrape every 15 s
#: reads it once; ten scrapers do not read it ten times).
STORE_REFRESH: Final = 15.0
#: Runs reported per scrape, most recent first.
RECENT_RUNS: Final = 20
HOUR: Final = 3600.0
DAY: Final = 24 * HOUR
#: Upper bounds of the time-to-removal histogram, in seconds: 1 h ... 30 days.
TIME_TO_REMOVAL_BUCKETS: Final = (
    HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
)


#: The notifier's running totals (NotifierStats fields), each counted under its own outcome.
NOTIFIER_OUTCOMES: Final = (
    "sent",
    "already_sent",
    "unroutable",
    "retrying",
    "dead_lettered",
    "unclassified",
    "resumed",
    "reappeared",
)


def _version() -> str:
    try:
        return metadata.version("hotline-crawler")
    except metadata.PackageNotFoundError:
        return "unknown"


class StoreCollector(Collector):
    """The store's state as gauges, read at scrape time (see the module docstring)."""

    def __init__(
        self,
        session: Session,
        *,
        refresh: float = STORE_REFRESH,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.session = session
        self.refresh = refresh
        self.clock = clock
        # The shared walk's age, measured across processes and hosts: by Redis's clock
        # unless a test gives one.
        self.wall = wall
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._families: list[Metric] = []
        self._walk_age = 0.0

    def describe(self) -> Iterable[Metric]:
        return []  # read lazily: registering must not touch Redis

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.refresh:
                self._walk_age = 0.0
                self._families = self._read()
                # Reused as long as the oldest figure in them is younger than a refresh.
                self._read_at = now - self._walk_age
            return list(self._families)

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("hotline_store_up", "1 if Redis could be read at the last scrape")
        started = time.monotonic()
        try:
            families = list(self._store_families())
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            return [up]
        except Exception as exc:  # a bad record must not take /metrics down with it
            log.warning("store metrics: cannot read the store: %s", one_line(repr(exc)))
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        took = GaugeMetricFamily(
            "hotline_store_read_seconds", "Seconds the last read of the store metrics took"
        )
        took.add_metric([], time.monotonic() - started)
        return [up, took, *families]

    def _store_families(self) -> Iterator[Metric]:
        session = self.session
        client, keys = session.client, session.keys
        runs = session.runs().list(limit=RECENT_RUNS)

        queues = GaugeMetricFamily(
            "hotline_queue_depth", "Items waiting in each queue", labels=["queue"]
        )
        walk = self._walk()
        queues.add_metric(["hits_pending"], _hits_pending(client, keys.hits))
        queues.add_metric(["review"], walk.review_pending)
        queues.add_metric(["dead_letters"], int(client.xlen(keys.dead_letters)))
        frontier = sum(
            len(Frontier(client, keys, run.id)) for run in runs if run.status == "running"
        )
        queues.add_metric(["frontier"], frontier)
        queues.add_metric(["recheck_due"], int(client.zcount(keys.recheck, "-inf", time.time())))
        yield queues

        yield from _notice_families(walk)
        yield from _run_families(runs)
        yield from self._list_families()

    def _walk(self) -> _Walk:
        """The counts that walk every notice and review item: another daemon's, when it
        made them less than ``refresh`` seconds ago, else made now and shared (so a
        deployment walks the store about once per refresh, not once per daemon)."""
        client, keys = self.session.client, self.session.keys
        now = self.wall() if self.wall is not None else _redis_time(client)
        shared = _Walk.from_json(cast("bytes | None", client.get(keys.metrics_walk)))
        if shared is not None and 0 <= now - shared.at < self.refresh:
            self._walk_age = now - shared.at
            return shared
        tally = NoticeStore(client, keys).tally()
        removal = _Histogram(TIME_TO_REMOVAL_BUCKETS)
        for seconds in tally.removal_seconds:
            removal.observe(seconds)
        walk = _Walk(
            at=now,
            review_pending=ReviewDesk(client, keys).pending(),
            notices=sorted((s, c, n) for (s, c), n in tally.by_state.items()),
            removal=removal,
        )
        client.set(keys.metrics_walk, walk.to_json(), ex=max(1, math.ceil(2 * self.refresh)))
        return walk

    def _list_families(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily(
            "hotline_list_entries", "Entries of each stored hash list", labels=["list", "kind"]
        )
        versions = GaugeMetricFamily(
            "hotline_list_version", "Version of each stored hash list", labels=["list"]
        )
        for info in self.session.lists().info():
            entries.add_metric([info.name, info.kind], info.total)
            versions.add_metric([info.name], info.version)
        yield entries
        yield versions


def _notice_families(walk: _Walk) -> Iterator[Metric]:
    by_state = {(status, ""): 0 for status in STATUSES} | {(s, c): n for s, c, n in walk.notices}
    notices = GaugeMetricFamily(
        "hotline_notices",
        "Notices by status and the channel that carried them "
        "(the routed channel until sent; empty: not routed yet)",
        labels=["status", "channel"],
    )
    for (status, channel), count in sorted(by_state.items()):
        if count or not channel:
            notices.add_metric([status, channel], count)
    yield notices
    yield walk.removal.family(
        "hotline_time_to_removal_seconds",
        "Seconds from a removed notice to the first check that found its image gone",
    )


def _redis_time(client: redis.Redis) -> float:
    """Redis's clock, in unix seconds: the one clock every daemon of a deployment shares."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6


def _hits_pending(client: redis.Redis, stream: str) -> int:
    """Hits the notifiers have not acknowledged: read and pending, or not read yet (lag)."""
    if not client.exists(stream):
        return 0
    for group in client.xinfo_groups(stream):
        name = group.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == NOTIFIER_GROUP:
            lag = group.get("lag")
            if lag is None:  # Redis cannot tell (entries deleted); count the stream
                return int(client.xlen(stream))
            return int(group.get("pending", 0)) + int(lag)
    return int(client.xlen(stream))  # no notifier has read yet


def _run_families(runs: Iterable[RunRecord]) -> Iterator[Metric]:
    labels = ["run", "status"]
    pages = GaugeMetricFamily("hotline_run_pages", "Pages crawled by a recent run", labels=labels)
    images = GaugeMetricFamily("hotline_run_images", "Images hashed by a recent run", labels=labels)
    hits = GaugeMetricFamily("hotline_run_hits", "Confirmed hits of a recent run", labels=labels)
    review = GaugeMetricFamily(
        "hotline_run_review", "Near misses a recent run sent to review", labels=labels
    )
    errors = GaugeMetricFamily(
        "hotline_run_errors", "Failed requests of a recent run by kind", labels=["run", "kind"]
    )
    decode_errors = GaugeMetricFamily(
        "hotline_run_decode_errors",
        "Images of a recent run that could not be decoded, by code",
        labels=["run", "code"],
    )
    for run in runs:
        stats = run.stats
        values = [run.id, run.status]
        pages.add_metric(values, stats.pages)
        images.add_metric(values, stats.images)
        hits.add_metric(values, stats.confirmed)
        review.add_metric(values, stats.review)
        for kind, count in sorted(stats.errors.items()):
            errors.add_metric([run.id, kind], count)
        for code, count in sorted(stats.decode_errors.items()):
            decode_errors.add_metric([run.id, code], count)
    yield from (pages, images, hits, review, errors, decode_errors)


class _Histogram:
    """Cumulative bucket counts of observed values, as Prometheus exposes them."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * len(self.bounds)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets = [(_bound(b), c) for b, c in zip(self.bounds, self.counts, strict=True)]
        buckets.append(("+Inf", self.total))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


def _bound(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class _Walk:
    """The store metrics that walk every notice and review item, as the daemons share them
    (``P metrics:walk``): made at ``at`` (unix seconds)."""

    at: float
    review_pending: int
    notices: list[tuple[str, str, int]]  # status, channel, count
    removal: _Histogram

    def to_json(self) -> str:
        return json.dumps(
            {
                "at": self.at,
                "review_pending": self.review_pending,
                "notices": self.notices,
                "removal": {
                    "bounds": self.removal.bounds,
                    "counts": self.removal.counts,
                    "total": self.removal.total,
                    "sum": self.removal.sum,
                },
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes | None) -> _Walk | None:
        """The shared walk, or ``None`` when there is none or it is not one this version
        reads (another version's buckets, a damaged value): then it is made again."""
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            removal = _Histogram(float(b) for b in data["removal"]["bounds"])
            if removal.bounds != TIME_TO_REMOVAL_BUCKETS:
                return None
            removal.counts = [int(c) for c in data["removal"]["counts"]]
            removal.total = int(data["removal"]["total"])
            removal.sum = float(data["removal"]["sum"])
            walk = cls(
                at=float(data["at"]),
                review_pending=int(data["review_pending"]),
                notices=[(str(s), str(c), int(n)) for s, c, n in data["notices"]],
                removal=removal,
            )
        except (ValueError, TypeError, KeyError, RecursionError, ArithmeticError):
            return None
        counts = [walk.review_pending, removal.total, *removal.counts]
        counts += [n for _, _, n in walk.notices]
        if (
            len(removal.counts) != len(removal.bounds)
            or min(counts) < 0
            or not math.isfinite(walk.at)
            or not math.isfinite(removal.sum)
        ):
            return None
        return walk


@dataclass
class DaemonMetrics:
    """The metrics a daemon counts itself. Every counter exists (callers need no checks), but
    only those of the daemon's role are in its registry, so a worker reports no notices."""

    registry: CollectorRegistry
    role: str

    def __post_init__(self) -> None:
        r = self.registry

        def of(*roles: str) -> CollectorRegistry | None:
            return r if self.role in roles else None

        info = Gauge(
            "hotline_daemon_info",
            "The daemon: its role and version",
            ["role", "version"],
            registry=r,
        )
        info.labels(self.role, _version()).set(1)
        self.notices = Counter(
            "hotline_notifier_notices",
            "Hits the notifier handled, by outcome",
            ["outcome"],
            registry=of("notifier"),
        )
        self.delivery_failures = Counter(
            "hotline_delivery_failures",
            "Deliveries that failed: temporary (retried) or permanent (dead letter)",
            ["kind"],
            registry=of("notifier"),
        )
        self.recheck_outcomes = Counter(
            "hotline_recheck_outcomes",
            "Rechecks of noticed images, by outcome",
            ["outcome"],
            registry=of("recheck"),
        )
        self.scheduler_starts = Counter(
            "hotline_scheduler_starts",
            "Scheduled runs this scheduler started or failed to start",
            ["result"],
            registry=of("scheduler"),
        )
        self.worker_runs = Counter(
            "hotline_worker_runs",
            "Runs this worker finished its share of, by reason",
            ["reason"],
            registry=of("worker"),
        )
        self._worker_counts = _WorkerCounts()
        if self.role == "worker":
            r.register(self._worker_counts)
        self._notifier_seen: dict[str, int] = {}
        for outcome in (*NOTIFIER_OUTCOMES, "awaiting_manual"):
            self.notices.labels(outcome)
        for kind in ("temporary", "permanent"):
            self.delivery_failures.labels(kind)
        for result in ("started", "failed"):
            self.scheduler_starts.labels(result)
        self.index_bytes = Gauge(
            "hotline_index_bytes",
            "Bytes the hash lists and their indexes hold in this worker (an upper bound)",
            registry=of("worker"),
        )

    def count_worker(self, crawled: Callable[[], tuple[int, int]]) -> None:
        """Serve a worker's pages and images as counters read at scrape time: ``crawled``
        returns both so far, the current run's included."""
        self._worker_counts.crawled = crawled

    def count_notifier(self, stats: NotifierStats) -> None:
        """Add what ``stats`` (the notifier's running totals) counted since the last call."""
        totals = {name: int(getattr(stats, name)) for name in NOTIFIER_OUTCOMES}
        totals["awaiting_manual"] = len(stats.awaiting_manual)
        for name, total in totals.items():
            step = total - self._notifier_seen.get(name, 0)
            if step > 0:
                self.notices.labels(name).inc(step)
                if name == "retrying":
                    self.delivery_failures.labels("temporary").inc(step)
                elif name == "dead_lettered":
                    self.delivery_failures.labels("permanent").inc(step)
            self._notifier_seen[name] = total


class _WorkerCounts(Collector):
    """``hotline_worker_pages_total`` and ``hotline_worker_images_total``, live: a long run
    moves them while it goes, not only when this worker's share of it ends."""

    def __init__(self) -> None:
        self.crawled: Callable[[], tuple[int, int]] = lambda: (0, 0)  # until a worker runs

    def collect(self) -> Iterable[Metric]:
        pages, images = self.crawled()
        yield CounterMetricFamily("hotline_worker_pages", "Pages this worker crawled", pages)
        yield CounterMetricFamily("hotline_worker_images", "Images this worker hashed", images)


def serve_metrics(
    role: str, session: Session, *, port: int, host: str = "127.0.0.1"
) -> DaemonMetrics:
    """Serve ``/metrics`` for ``role`` on ``host:port`` from a thread (it lives as long as the
    process) and return the daemon's own counters. ``OSError`` if the port is taken."""
    metrics = daemon_metrics(role, session)
    start_http_server(port, addr=host, registry=metrics.registry)
    return metrics


def daemon_metrics(role: str, session: Session) -> DaemonMetrics:
    """Everything a daemon of ``role`` reports: the process, the store and its own counters."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(StoreCollector(session))
    return DaemonMetrics(registry, role)
