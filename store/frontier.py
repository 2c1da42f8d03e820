"""The shared crawl frontier of a distributed run, in Redis.

Workers (``hotline worker``) crawl one run together through these keys (see
:mod:`store.keys`): the run's pending requests are a scrapy-redis priority queue
(``crawl:<id>:frontier``), its fingerprints a shared dupefilter (``:seen``), and the page cap
per seed is counted once for all workers (``:budget``). What this module adds to
scrapy-redis is that a worker's requests are **leased**, not popped:

* :meth:`Frontier.pop` moves the best request into the worker's in-flight hash
  (``:inflight:<worker>``) and notes the worker's heartbeat, in one script;
* :meth:`Frontier.ack` drops it from there once everything the request led to is done (its
  items queued, the requests it found pushed);
* a worker whose heartbeat is older than the lease is dead: :meth:`Frontier.drain` (which
  any worker calls when it runs out of work) moves its in-flight requests back into the
  frontier, so they are crawled again, and then says whether the run is drained — nothing
  pending and nothing in flight anywhere;
* a request whose lease expired ``max_attempts`` times (it killed or stalled every worker
  that took it) is not put back again but given up: it goes to the run's dead letters
  (``:dead``) with the reason, and the run goes on without it.

At every moment a request is in the frontier, in one worker's in-flight hash, dead or done,
so "drained" is exact. Every script first checks that the run is ``running``: once it ended
nothing is taken or added, and :meth:`Frontier.clear` removes the keys for good, so the next
run crawls afresh. The frontier holds URLs and crawl metadata, never content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, cast

import redis

from store.base import RedisStore, json_field
from store.errors import RunStateError
from store.keys import Keys
from store.runs import REASON_CANCELLED, RunRecord, RunStore
from store.text import text

__all__ = [
    "ADDED",
    "CAPPED",
    "DUPLICATE",
    "ENDED",
    "MAX_ATTEMPTS",
    "DeadLetter",
    "Drain",
    "Frontier",
    "end_abandoned_cancel",
]

#: Outcomes of :meth:`Frontier.push`.
ADDED: Final = 1
DUPLICATE: Final = 0
ENDED: Final = -1
CAPPED: Final = -2

# KEYS: crawl, seen, frontier, budget; ARGV: fingerprint ('' = no filter), member, score,
# seed ('' = not a page), page cap
_PUSH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return -1
end
if ARGV[1] ~= '' and redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
    return 0
end
if ARGV[4] ~= '' then
    local pages = tonumber(redis.call('HGET', KEYS[4], ARGV[4]) or '0')
    if pages >= tonumber(ARGV[5]) then
        return -2
    end
    redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""

# KEYS: crawl, frontier, inflight, workers; ARGV: worker, now, count
_POP = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return {}
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
for i = 1, #top, 2 do
    redis.call('ZREM', KEYS[2], top[i])
    redis.call('HSET', KEYS[3], top[i], top[i + 1])
end
return top
"""

# KEYS: crawl, workers; ARGV: worker, now
_HEARTBEAT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# KEYS: crawl, frontier, inflight, workers; ARGV: worker
_RELEASE = """
local moved = 0
if redis.call('HGET', KEYS[1], 'status') == 'running' then
    local entries = redis.call('HGETALL', KEYS[3])
    for i = 1, #entries, 2 do
        redis.call('ZADD', KEYS[2], entries[i + 1], entries[i])
        moved = moved + 1
    end
end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[1])
return moved
"""

# KEYS: crawl, frontier, workers, attempts, dead; ARGV: now, lease, in-flight key prefix,
# max attempts
_DRAIN = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then
    return {-1, 0, 0, 0}
end
local now, lease, most = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local reclaimed, dead, busy, alive = 0, 0, 0, 0
local workers = redis.call('HGETALL', KEYS[3])
for i = 1, #workers, 2 do
    local inflight = ARGV[3] .. workers[i]
    if tonumber(workers[i + 1]) < now - lease then
        local entries = redis.call('HGETALL', inflight)
        for j = 1, #entries, 2 do
            local attempts = redis.call('HINCRBY', KEYS[4], entries[j], 1)
            if attempts >= most then
                redis.call('HSET', KEYS[5], entries[j], cjson.encode({
                    reason = 'lease_expired', attempts = attempts, worker = workers[i],
                    at = now}))
                redis.call('HDEL', KEYS[4], entries[j])
                dead = dead + 1
            else
                redis.call('ZADD', KEYS[2], entries[j + 1], entries[j])
                reclaimed = reclaimed + 1
            end
        end
        redis.call('DEL', inflight)
        redis.call('HDEL', KEYS[3], workers[i])
    else
        alive = alive + 1
        if redis.call('HLEN', inflight) > 0 then
            busy = busy + 1
        end
    end
end
if busy == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
    return {1, reclaimed, dead, alive}
end
return {0, reclaimed, dead, alive}
"""

# KEYS: frontier, seen, budget, workers, attempts; ARGV: in-flight key prefix
_CLEAR = """
for _, worker in ipairs(redis.call('HKEYS', KEYS[4])) do
    redis.call('DEL', ARGV[1] .. worker)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
"""


#: Times a request's lease may expire before it is given up (a dead letter), by default.
MAX_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class Drain:
    """What :meth:`Frontier.drain` found: ``state`` is ``drained`` (nothing pending, nothing
    in flight), ``busy`` or ``ended`` (the run is not running); ``reclaimed`` counts the
    requests of dead workers it put back, ``dead`` those it gave up (dead letters), ``alive``
    the workers whose heartbeat is within the lease."""

    state: str
    reclaimed: int = 0
    dead: int = 0
    alive: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A request given up: its URL, why, after how many attempts, by which worker last."""

    url: str
    reason: str
    attempts: int
    worker: str
    at: float


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


class Frontier(RedisStore):
    """One run's frontier; ``member`` is a serialized request, ``score`` its priority
    (lower first, as in scrapy-redis: ``-request.priority``)."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "push": _PUSH,
        "pop": _POP,
        "heartbeat": _HEARTBEAT,
        "release": _RELEASE,
        "drain": _DRAIN,
        "clear": _CLEAR,
    }

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        run_id: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, keys, clock=clock)
        self.run_id = run_id
        self.key = keys.frontier(run_id)
        self._crawl = keys.crawl(run_id)
        self._seen = keys.frontier_seen(run_id)
        self._budget = keys.frontier_budget(run_id)
        self._workers = keys.frontier_workers(run_id)
        self._inflight_prefix = keys.frontier_inflight(run_id, "")
        self._attempts = keys.frontier_attempts(run_id)
        self._dead = keys.frontier_dead(run_id)

    def _inflight(self, worker: str) -> str:
        return self.keys.frontier_inflight(self.run_id, worker)

    def __len__(self) -> int:
        return int(self.client.zcard(self.key))

    def push(
        self,
        member: bytes,
        score: float,
        *,
        fingerprint: str = "",
        seed: str = "",
        page_cap: int = 0,
    ) -> int:
        """Add a request unless its ``fingerprint`` was seen; a page (``seed`` given) only
        while its seed has had fewer than ``page_cap`` pages. Returns :data:`ADDED`,
        :data:`DUPLICATE`, :data:`CAPPED` or :data:`ENDED` (the run is not running)."""
        keys = [self._crawl, self._seen, self.key, self._budget]
        args: list[str | bytes] = [fingerprint, member, repr(float(score)), seed, str(page_cap)]
        return int(cast("int", self.script("push", keys=keys, args=args)))

    def pop_many(self, worker: str, count: int) -> list[tuple[bytes, float]]:
        """Lease the ``count`` best pending requests to ``worker`` (and note its heartbeat),
        best first; fewer when there are fewer, none when the run is not running."""
        keys = [self._crawl, self.key, self._inflight(worker), self._workers]
        top = cast(
            "list[bytes]", self.script("pop", keys=keys, args=[worker, repr(self.clock()), count])
        )
        return [(top[i], float(top[i + 1])) for i in range(0, len(top), 2)]

    def pop(self, worker: str) -> tuple[bytes, float] | None:
        """Lease the best pending request to ``worker``; None when there is none."""
        popped = self.pop_many(worker, 1)
        return popped[0] if popped else None

    def ack(self, worker: str, *members: bytes) -> None:
        """These leased requests are done."""
        if members:
            self.client.hdel(self._inflight(worker), *members)

    def heartbeat(self, worker: str) -> bool:
        """Keep ``worker``'s leases; False once the run is not running."""
        keys = [self._crawl, self._workers]
        return bool(self.script("heartbeat", keys=keys, args=[worker, repr(self.clock())]))

    def release(self, worker: str) -> int:
        """``worker`` stops: its in-flight requests go back to the frontier at once (while
        the run runs) and it leaves the run. Returns how many went back."""
        keys = [self._crawl, self.key, self._inflight(worker), self._workers]
        return int(cast("int", self.script("release", keys=keys, args=[worker])))

    def drain(self, lease: float, max_attempts: int = MAX_ATTEMPTS) -> Drain:
        """Put back the requests of workers silent for more than ``lease`` seconds (or give
        up those that came back ``max_attempts`` times), then tell whether the run is
        drained."""
        keys = [self._crawl, self.key, self._workers, self._attempts, self._dead]
        args = [repr(self.clock()), repr(float(lease)), self._inflight_prefix, max_attempts]
        state, reclaimed, dead, alive = cast(
            "list[int]", self.script("drain", keys=keys, args=args)
        )
        name = {1: "drained", 0: "busy"}.get(int(state), "ended")
        return Drain(name, int(reclaimed), int(dead), int(alive))

    def dead_letters(self) -> list[DeadLetter]:
        """The requests given up, oldest first."""
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self._dead))
        found = []
        for member, value in raw.items():
            data = json_field(text(value), {})
            data = data if isinstance(data, dict) else {}
            request = json_field(text(member), {})
            url = request.get("url") if isinstance(request, dict) else None
            found.append(
                DeadLetter(
                    url=url if isinstance(url, str) else "(unreadable request)",
                    reason=str(data.get("reason", "")),
                    attempts=_int(data.get("attempts")),
                    worker=str(data.get("worker", "")),
                    at=float(_int(data.get("at"))),
                )
            )
        return sorted(found, key=lambda letter: (letter.at, letter.url))

    def dead_count(self) -> int:
        return int(self.client.hlen(self._dead))

    def in_flight(self) -> dict[str, int]:
        """Requests in flight per registered worker."""
        workers = [w.decode() for w in cast("list[bytes]", self.client.hkeys(self._workers))]
        pipe = self.client.pipeline(transaction=False)
        for worker in workers:
            pipe.hlen(self._inflight(worker))
        return dict(zip(workers, (int(n) for n in pipe.execute()), strict=True))

    def clear(self) -> None:
        """Remove the run's frontier, dupefilter, page budget, workers, attempts and in-flight
        keys (its dead letters stay with the run)."""
        keys = [self.key, self._seen, self._budget, self._workers, self._attempts]
        self.script("clear", keys=keys, args=[self._inflight_prefix])


def recorded_lease(record: RunRecord, default: float) -> float:
    """The lease a distributed run's workers use: its ``FRONTIER_LEASE`` override (``--set``)
    if it has a usable one, else ``default``."""
    raw = record.options.get("overrides", {})
    value = raw.get("FRONTIER_LEASE") if isinstance(raw, Mapping) else None
    try:
        lease = float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
    return lease if 0 < lease < float("inf") else default


def end_abandoned_cancel(runs: RunStore, run_id: str, lease: float) -> bool:
    """End a distributed run whose cancel no worker is left to carry out: it is running with a
    cancel requested, and every worker in it has been silent for more than ``lease`` seconds
    (killed; a live worker stops the run itself). Its in-flight requests are dropped with the
    frontier, and the run ends ``cancelled`` with the counts it has. True if it was ended."""
    record = runs.get(run_id)
    if not record.distributed or record.status != "running" or record.cancel_requested is None:
        return False
    frontier = Frontier(runs.client, runs.keys, record.id, clock=runs.clock)
    drain = frontier.drain(lease)
    if drain.state == "ended" or drain.alive:
        return False
    try:
        runs.finish(record.id, "cancelled", REASON_CANCELLED, record.stats, record.health)
    except RunStateError:
        return False  # it ended meanwhile
    frontier.clear()
    return True
