"""Crawl runs as records in Redis: what was crawled, how, by whom, how it went.

Every crawl — on demand (``hotline crawl``, ``scrapy crawl``) or scheduled — is one run, kept
in the ``P crawl:<id>`` hash and indexed in the ``P crawls`` sorted set (see
:mod:`store.keys`). A run moves through these statuses::

    queued ──► running ──► finished      (the crawl ended by itself: reason "finished")
      │           ├──────► failed        (any other reason: queue_failed, shutdown, ...)
      │           └──────► cancelled     (``request_cancel``; the crawl stops itself)
      └──────────────────► cancelled     (cancelled before it started: at once)

Every change of status is one Lua script, so it is atomic against every other: a cancel
that comes first makes ``start`` refuse (cancel wins the race), and a run that ended never
goes back to running. While a run is running, its crawl pushes live counts
(:class:`RunStats`) and health flags every few seconds; at the end it writes the final counts,
the flags and Scrapy's own stats. A run holds URLs, settings and counts: never any content.

A run's crawl options are stored as the JSON object of :class:`store.options.CrawlOptions`
(:meth:`RunRecord.crawl_options` reads them back); ``RunRecord.options`` is that object as
recorded, which ``runs show`` prints.

Records written before runs existed (``started``/``finished`` as ISO text, no ``status``)
still read: their status is derived from the finish reason and their counts from the stats.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import math
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from store.base import RedisStore, chunks, decode_hash, json_field
from store.clock import iso, parse_iso
from store.errors import RunExists, RunNotFound, RunStateError
from store.options import CrawlOptions
from store.text import text

__all__ = [
    "CRAWL_STATS",
    "ENDED",
    "ORIGIN_CLI",
    "ORIGIN_SCRAPY",
    "REASON_CANCELLED",
    "REASON_FINISHED",
    "STATUSES",
    "RunExists",
    "RunNotFound",
    "RunRecord",
    "RunStateError",
    "RunStats",
    "RunStore",
    "iso",
    "new_run_id",
    "schedule_origin",
    "status_for_reason",
]

STATUSES = ("queued", "running", "finished", "failed", "cancelled")
#: Statuses a run never leaves.
ENDED = frozenset({"finished", "failed", "cancelled"})
ORIGIN_CLI = "cli"
ORIGIN_SCRAPY = "scrapy"
#: The finish reason of a crawl that ended by itself, and of one stopped by a cancel.
REASON_FINISHED = "finished"
REASON_CANCELLED = "cancelled"
#: strftime format of the time part of a run id.
RUN_ID_TIME = "%Y%m%dT%H%M%SZ"
#: Run ids: the crawl id format (UTC start second, ``-``, 6 hex digits) or any such token.
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: Runs read per round trip when listing.
LIST_BATCH = 100

#: Where each run count comes from in a crawl's Scrapy stats (``errors`` are per kind, below).
CRAWL_STATS: Mapping[str, str] = {
    "requests": "downloader/request_count",
    "retries": "retry/count",
    "responses": "response_received_count",
    "pages": "crawl/pages",
    "images": "crawl/images",
    "files": "crawl/files",
    "hashed": "matcher/hashed",
    "confirmed": "matcher/confirmed",
    "review": "matcher/review",
    "pages_capped": "crawl/pages_capped",
    "parse_timeouts": "crawl/parse_timeout",
}
#: Stats key prefix of failed requests by exception type (the spider's errback counts them).
CRAWL_ERRORS_PREFIX = "crawl/errors/"
#: Stats key prefix of images that could not be decoded, by code (``matchers.guards``).
CRAWL_DECODE_ERRORS_PREFIX = "matcher/decode_error/"
#: Stats keys of other errors, and the kind each is counted as.
CRAWL_OTHER_ERRORS: Mapping[str, str] = {"hits/queue_error": "QueueError"}

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
end
return 1
"""

# Every transition script answers {1, new status} or {0, current status}; '' when missing.
_START = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0, ''}
end
local status = redis.call('HGET', KEYS[1], 'status') or 'unknown'
if status ~= 'queued' or redis.call('HEXISTS', KEYS[1], 'cancel_requested') == 1 then
    return {0, status}
end
redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[1], 'updated', ARGV[1])
return {1, 'running'}
"""

_UPDATE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return 0
end
redis.call('HSET', KEYS[1], 'counts', ARGV[1], 'health', ARGV[2], 'updated', ARGV[3])
return 1
"""

_FINISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0, ''}
end
local status = redis.call('HGET', KEYS[1], 'status') or 'unknown'
if status ~= 'queued' and status ~= 'running' then
    return {0, status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2], 'finished', ARGV[3],
           'updated', ARGV[3], 'counts', ARGV[4], 'health', ARGV[5])
if ARGV[6] ~= '' then
    redis.call('HSET', KEYS[1], 'stats', ARGV[6])
end
redis.call('ZREM', KEYS[2], ARGV[7])
return {1, ARGV[1]}
"""

_CANCEL = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0, ''}
end
local status = redis.call('HGET', KEYS[1], 'status') or 'unknown'
if status ~= 'queued' and status ~= 'running' then
    return {0, status}
end
redis.call('HSETNX', KEYS[1], 'cancel_requested', ARGV[1])
if status == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'cancelled', 'reason', 'cancelled',
               'finished', ARGV[1], 'updated', ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    return {1, 'cancelled'}
end
return {1, status}
"""

# A worker joining a distributed run: the first starts it (queued -> running), the others
# join it running; {1, status} or {0, current status}.
_JOIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {0, ''}
end
local status = redis.call('HGET', KEYS[1], 'status') or 'unknown'
if redis.call('HEXISTS', KEYS[1], 'cancel_requested') == 1 then
    return {0, status}
end
if status == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[1], 'updated', ARGV[1])
    return {1, 'running'}
end
if status == 'running' then
    return {1, 'running'}
end
return {0, status}
"""

# One worker's counts of a distributed run; the run's counts become the sum over workers.
# After the run ended only a worker's final counts are taken (ARGV[4] == '1').
_PART = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return false
end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' and ARGV[4] ~= '1' then
    return false
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local total = {errors = {}, decode_errors = {}}
for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
    local ok, part = pcall(cjson.decode, raw)
    if ok and type(part) == 'table' then
        for name, value in pairs(part) do
            if (name == 'errors' or name == 'decode_errors') and type(value) == 'table' then
                for kind, n in pairs(value) do
                    if type(n) == 'number' then
                        total[name][kind] = (total[name][kind] or 0) + n
                    end
                end
            elseif type(value) == 'number' then
                total[name] = (total[name] or 0) + value
            end
        end
    end
end
local encoded = cjson.encode(total)
redis.call('HSET', KEYS[1], 'counts', encoded, 'updated', ARGV[3])
return encoded
"""

_HEALTH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return 0
end
redis.call('HSET', KEYS[1], 'health', ARGV[1])
return 1
"""

_STOPPING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return 0
end
redis.call('HSET', KEYS[1], 'stopping', ARGV[1], 'stopping_since', ARGV[2])
return 1
"""


def new_run_id(at: float | None = None, suffix: str | None = None) -> str:
    """A sortable run id, the one format of every run and crawl id: the UTC second ``at``
    (default now), ``-``, and ``suffix`` (default 6 random hex digits; a schedule's slot
    passes a suffix of its own so that its id is the same every time it is computed)."""
    stamp = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return f"{stamp.strftime(RUN_ID_TIME)}-{suffix or secrets.token_hex(3)}"


def schedule_origin(name: str) -> str:
    """The origin of a run started by the schedule ``name``."""
    return f"schedule:{name}"


def status_for_reason(reason: str) -> str:
    """The final status of a crawl that closed with the Scrapy finish ``reason``."""
    if reason == REASON_FINISHED:
        return "finished"
    if reason == REASON_CANCELLED:
        return "cancelled"
    return "failed"


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _counts(raw: object) -> dict[str, int]:
    """A stored mapping of counts by kind ({} for anything else)."""
    return {str(k): _count(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


@dataclass(frozen=True, slots=True)
class RunStats:
    """A run's counts: requests (with retries), pages, images, files (bodies neither a page
    nor an image, matched by their exact hashes), matches, errors by kind."""

    requests: int = 0
    retries: int = 0
    responses: int = 0
    pages: int = 0
    images: int = 0
    files: int = 0
    hashed: int = 0
    confirmed: int = 0
    review: int = 0
    #: Pages with more images, links, stylesheets or frames than a per-page cap.
    pages_capped: int = 0
    #: Pages given up because reading them took more than their CPU budget.
    parse_timeouts: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    #: Images that could not be decoded, by code (``truncated``, ``unsupported``...): not
    #: failed requests, so not in ``errors`` nor in the error rate.
    decode_errors: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_crawl_stats(cls, stats: Mapping[str, Any]) -> RunStats:
        """The counts of a crawl's Scrapy stats (see :data:`CRAWL_STATS`)."""
        errors: dict[str, int] = {}
        decode_errors: dict[str, int] = {}
        for key, value in stats.items():
            if key.startswith(CRAWL_ERRORS_PREFIX) and _count(value):
                kind = key.removeprefix(CRAWL_ERRORS_PREFIX)
                errors[kind] = errors.get(kind, 0) + _count(value)
            elif key.startswith(CRAWL_DECODE_ERRORS_PREFIX) and _count(value):
                decode_errors[key.removeprefix(CRAWL_DECODE_ERRORS_PREFIX)] = _count(value)
        for key, kind in CRAWL_OTHER_ERRORS.items():
            if _count(stats.get(key)):
                errors[kind] = errors.get(kind, 0) + _count(stats.get(key))
        counts = {name: _count(stats.get(key)) for name, key in CRAWL_STATS.items()}
        return cls(
            **counts,
            errors=dict(sorted(errors.items())),
            decode_errors=dict(sorted(decode_errors.items())),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStats:
        """Inverse of :meth:`as_dict`; unknown keys are ignored, missing ones are 0."""
        counts = {name: _count(data.get(name)) for name in CRAWL_STATS}
        return cls(
            **counts,
            errors=_counts(data.get("errors")),
            decode_errors=_counts(data.get("decode_errors")),
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in CRAWL_STATS}
        data["errors"] = dict(self.errors)
        data["decode_errors"] = dict(self.decode_errors)
        return data

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def distinct_requests(self) -> int:
        """Requests not counting retries: each one ends in a response or an error."""
        return max(0, self.requests - self.retries)

    @property
    def error_rate(self) -> float:
        """Failed requests per distinct request (0 before the first request)."""
        if self.distinct_requests == 0:
            return 0.0
        return self.error_count / self.distinct_requests


def _time(raw: str | None) -> float | None:
    """Unix seconds of a stored time: a number, or ISO text (records before runs)."""
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return parse_iso(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored (a read-only view of its hash)."""

    id: str
    status: str
    origin: str
    seeds: list[str]
    options: dict[str, Any]
    created: float | None
    started: float | None
    finished: float | None
    reason: str | None
    stats: RunStats
    health: dict[str, str]
    cancel_requested: float | None = None
    stopping: str | None = None
    crawl_stats: dict[str, Any] = field(default_factory=dict)
    distributed: bool = False
    workers: dict[str, RunStats] = field(default_factory=dict)  # read by RunStore.get

    @classmethod
    def from_hash(cls, run_id: str, raw: Mapping[bytes, bytes] | Mapping[str, str]) -> RunRecord:
        fields = decode_hash(raw)
        reason = fields.get("reason") or None
        crawl_stats = json_field(fields.get("stats"), {})
        if not isinstance(crawl_stats, dict):
            crawl_stats = {}
        counts = json_field(fields.get("counts"), None)
        stats = (
            RunStats.from_dict(counts)
            if isinstance(counts, dict)
            else RunStats.from_crawl_stats(crawl_stats)
        )
        status = fields.get("status")
        if not status:  # a record from before runs: it has a finish reason once it ended
            status = "running" if reason is None else status_for_reason(reason)
        seeds = json_field(fields.get("seeds"), [])
        options = json_field(fields.get("options"), {})
        health = json_field(fields.get("health"), {})
        started = _time(fields.get("started"))
        return cls(
            id=run_id,
            status=status,
            origin=fields.get("origin") or (fields.get("spider") and ORIGIN_SCRAPY) or "",
            seeds=[str(s) for s in seeds] if isinstance(seeds, list) else [],
            options=options if isinstance(options, dict) else {},
            created=_time(fields.get("created")) or started,
            started=started,
            finished=_time(fields.get("finished")),
            reason=reason,
            stats=stats,
            health={str(k): str(v) for k, v in health.items()} if isinstance(health, dict) else {},
            cancel_requested=_time(fields.get("cancel_requested")),
            stopping=fields.get("stopping") or None,
            crawl_stats=crawl_stats,
            distributed=fields.get("distributed") == "1",
        )

    def crawl_options(self) -> CrawlOptions:
        """The recorded options, typed (missing ones take their defaults).

        Raises:
            ValueError: the record holds an unknown option or a bad value.
        """
        return CrawlOptions.from_dict(self.options)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from start to finish; for a running run, to ``now``."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else now
        return None if end is None else max(0.0, end - self.started)

    def as_json(self, *, full: bool = False, now: float | None = None) -> dict[str, Any]:
        """The run for ``--json``: times in ISO 8601 UTC and unix seconds; ``full`` adds the
        seeds, options and Scrapy's stats."""
        data: dict[str, Any] = {"id": self.id, "status": self.status, "origin": self.origin}
        for name in ("created", "started", "finished"):
            value = getattr(self, name)
            data[name] = None if value is None else iso(value)
            data[f"{name}_unix"] = value
        duration = self.duration(now)
        data["duration_s"] = None if duration is None else round(duration, 3)
        data["reason"] = self.reason
        data["stats"] = self.stats.as_dict()
        data["health"] = sorted(self.health)
        data["cancel_requested"] = self.cancel_requested is not None
        data["distributed"] = self.distributed
        if full:
            data["workers"] = {w: s.as_dict() for w, s in self.workers.items()}
            data["health_detail"] = dict(self.health)
            data["stopping"] = self.stopping
            data["seeds"] = list(self.seeds)
            data["options"] = dict(self.options)
            data["crawl_stats"] = dict(self.crawl_stats)
        return data


class RunStore(RedisStore):
    """Creates runs, moves them through their statuses, reads and lists them."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "create": _CREATE,
        "start": _START,
        "update": _UPDATE,
        "finish": _FINISH,
        "cancel": _CANCEL,
        "stopping": _STOPPING,
        "join": _JOIN,
        "part": _PART,
        "health": _HEALTH,
    }

    # -- writing -----------------------------------------------------------------------------

    def create(
        self,
        *,
        seeds: Sequence[str],
        options: CrawlOptions | Mapping[str, Any],
        origin: str,
        run_id: str | None = None,
        distributed: bool = False,
    ) -> str:
        """Record a new run in status ``queued``; returns its id (new unless given).
        ``options`` are stored as :meth:`CrawlOptions.as_dict`; a mapping is stored as given
        (``scrapy crawl`` records the subset of the keys its settings tell). A ``distributed``
        run is offered to the workers (``P crawls:distributed``) in the same step.
        Raises :class:`RunExists` if ``run_id`` is taken."""
        if isinstance(options, CrawlOptions):
            options = options.as_dict()
        run_id = run_id or new_run_id()
        if not _RUN_ID_RE.match(run_id):
            raise ValueError(f"run id {run_id!r}: 1-128 letters, digits, '_', '.', ':', '-'")
        if not origin:
            raise ValueError("a run needs an origin (cli, scrapy, schedule:<name>, ...)")
        now = self.clock()
        fields = {
            "id": run_id,
            "status": "queued",
            "origin": origin,
            "seeds": json.dumps(list(seeds)),
            "options": json.dumps(dict(options), sort_keys=True, default=str),
            "created": repr(now),
            "updated": repr(now),
            "counts": json.dumps(RunStats().as_dict()),
            "health": "{}",
        }
        if distributed:
            fields["distributed"] = "1"
        args: list[str] = [run_id, repr(now), "1" if distributed else "0"]
        for name, value in fields.items():
            args.extend((name, value))
        keys = [self.keys.crawl(run_id), self.keys.crawls, self.keys.crawls_distributed]
        if not self.script("create", keys=keys, args=args):
            raise RunExists(f"run {run_id} exists already")
        return run_id

    def _transition(self, script: str, run_id: str, args: Sequence[str]) -> tuple[bool, str]:
        keys = [self.keys.crawl(run_id), self.keys.crawls_distributed]
        done, status = cast("list[Any]", self.script(script, keys=keys, args=args))
        status = text(status)
        if not status:
            raise RunNotFound(f"no run {run_id}")
        if not done:
            return False, status
        return True, status

    def start(self, run_id: str) -> None:
        """queued -> running. Raises :class:`RunStateError` for any other status, or when a
        cancel was requested (cancel wins)."""
        done, status = self._transition("start", run_id, [repr(self.clock())])
        if not done:
            raise RunStateError(f"run {run_id} is {status}: it cannot start", status=status)

    def update_stats(
        self,
        run_id: str,
        stats: RunStats | Mapping[str, Any],
        *,
        health: Mapping[str, str] | None = None,
    ) -> bool:
        """Replace a running run's live counts (and health flags); False, and nothing
        written, once the run is not running (a late update never overwrites final counts)."""
        counts = stats if isinstance(stats, RunStats) else RunStats.from_dict(stats)
        args = [
            json.dumps(counts.as_dict(), sort_keys=True),
            json.dumps(dict(health or {}), sort_keys=True),
            repr(self.clock()),
        ]
        return bool(self.script("update", keys=[self.keys.crawl(run_id)], args=args))

    def finish(
        self,
        run_id: str,
        status: str,
        reason: str,
        stats: RunStats | Mapping[str, Any],
        health: Mapping[str, str] | None = None,
        *,
        crawl_stats: Mapping[str, Any] | None = None,
    ) -> None:
        """queued|running -> finished|failed|cancelled, with the final counts, the health
        flags (name -> why) and optionally Scrapy's stats. Raises :class:`RunStateError` if
        the run already ended."""
        if status not in ENDED:
            raise ValueError(f"a run finishes as one of {', '.join(sorted(ENDED))}, not {status}")
        counts = stats if isinstance(stats, RunStats) else RunStats.from_dict(stats)
        args = [
            status,
            reason,
            repr(self.clock()),
            json.dumps(counts.as_dict(), sort_keys=True),
            json.dumps(dict(health or {}), sort_keys=True),
            "" if crawl_stats is None else json.dumps(crawl_stats, default=str, sort_keys=True),
            run_id,
        ]
        done, current = self._transition("finish", run_id, args)
        if not done:
            raise RunStateError(f"run {run_id} already ended: {current}", status=current)

    def request_cancel(self, run_id: str) -> bool:
        """Ask a run to stop: a queued run is cancelled at once, a running one carries the
        flag until its crawl sees it and stops. False if the run had already ended."""
        done, _ = self._transition("cancel", run_id, [repr(self.clock()), run_id])
        return done

    def join(self, run_id: str) -> None:
        """A worker joins a distributed run: the first one starts it (queued -> running),
        the others find it running. Raises :class:`RunStateError` once it ended or a cancel
        was requested."""
        done, status = self._transition("join", run_id, [repr(self.clock())])
        if not done:
            why = "cancel requested" if status in ("queued", "running") else status
            raise RunStateError(f"run {run_id} cannot be joined: {why}", status=status)

    def update_part(
        self, run_id: str, worker: str, stats: RunStats, *, final: bool = False
    ) -> RunStats | None:
        """Record one worker's counts of a distributed run; the run's counts become the sum
        over its workers, which is returned. None (nothing written) when the run is not
        running, unless ``final`` (a worker's last counts, which land after the run ended)."""
        args = [
            worker,
            json.dumps(stats.as_dict(), sort_keys=True),
            repr(self.clock()),
            "1" if final else "0",
        ]
        keys = [self.keys.crawl(run_id), self.keys.crawl_parts(run_id)]
        total = self.script("part", keys=keys, args=args)
        if total is None:
            return None
        return RunStats.from_dict(json.loads(total))

    def update_health(self, run_id: str, health: Mapping[str, str]) -> bool:
        """Replace a running run's health flags (False, nothing written, once it ended)."""
        args = [json.dumps(dict(health), sort_keys=True)]
        return bool(self.script("health", keys=[self.keys.crawl(run_id)], args=args))

    def parts(self, run_id: str) -> dict[str, RunStats]:
        """A distributed run's counts per worker."""
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.keys.crawl_parts(run_id)))
        found: dict[str, RunStats] = {}
        for worker, value in sorted(raw.items()):
            data = json_field(text(value), {})
            found[text(worker)] = RunStats.from_dict(data if isinstance(data, dict) else {})
        return found

    def distributed(self) -> builtins.list[str]:
        """The distributed runs offered to workers (not ended), oldest first."""
        return self.members(self.keys.crawls_distributed)

    def stopping(self, run_id: str, reason: str) -> bool:
        """Note that a running run's crawl is stopping (draining its in-flight requests)."""
        args = [reason, repr(self.clock())]
        return bool(self.script("stopping", keys=[self.keys.crawl(run_id)], args=args))

    # -- reading -----------------------------------------------------------------------------

    def cancel_requested(self, run_id: str) -> bool:
        return bool(self.client.hexists(self.keys.crawl(run_id), "cancel_requested"))

    def status(self, run_id: str) -> str | None:
        """The run's status, None if there is no such run (one round trip, for polling)."""
        raw = cast("bytes | None", self.client.hget(self.keys.crawl(run_id), "status"))
        if raw is not None:
            return text(raw)
        if not self.client.exists(self.keys.crawl(run_id)):
            return None
        return self.get(run_id).status  # a record from before runs

    def get(self, run_id: str) -> RunRecord:
        """The run whose id is ``run_id``, starts with it, or ends with ``-<run_id>`` (the
        random part of the id); :class:`RunNotFound` if none or several match."""
        wanted = run_id.strip()
        if not wanted:
            raise RunNotFound("no run id given")
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.keys.crawl(wanted)))
        if raw:
            return self._with_workers(RunRecord.from_hash(wanted, raw))
        matches = [i for i in self.ids() if i.startswith(wanted) or i.endswith(f"-{wanted}")]
        if not matches:
            raise RunNotFound(f"no run {run_id}")
        if len(matches) > 1:
            raise RunNotFound(f"{run_id} is ambiguous: {len(matches)} runs match")
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.keys.crawl(matches[0])))
        if not raw:
            raise RunNotFound(f"no run {run_id}")
        return self._with_workers(RunRecord.from_hash(matches[0], raw))

    def _with_workers(self, record: RunRecord) -> RunRecord:
        if not record.distributed:
            return record
        return dataclasses.replace(record, workers=self.parts(record.id))

    def ids(self) -> builtins.list[str]:
        """Every run id, newest first."""
        return self.members(self.keys.crawls, newest_first=True)

    def list(self, limit: int | None = 20, status: str | None = None) -> builtins.list[RunRecord]:
        """Runs newest first (by creation), at most ``limit`` (None: all), optionally only
        those in ``status``."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        if limit is not None and limit <= 0:
            return []
        found: builtins.list[RunRecord] = []
        for chunk in chunks(self.ids(), LIST_BATCH):
            pipe = self.client.pipeline(transaction=False)
            for run_id in chunk:
                pipe.hgetall(self.keys.crawl(run_id))
            for run_id, raw in zip(chunk, pipe.execute(), strict=True):
                if not raw:
                    continue
                record = RunRecord.from_hash(run_id, raw)
                if status is None or record.status == status:
                    found.append(record)
                    if limit is not None and len(found) >= limit:
                        return found
        return found
