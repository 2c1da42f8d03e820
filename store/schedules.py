"""Crawl schedules in Redis, and when each one is due.

A schedule is a name, a trigger (``every 6h`` or a five-field cron expression, read in UTC),
the seed URLs parsed when it was added (never a file path: the file may change or vanish) and
the crawl options (:class:`store.options.CrawlOptions`, stored as its JSON object; each run
the schedule starts records the same). Key layout (see :mod:`store.keys`)::

    P schedules          set    schedule names
    P schedule:<name>    hash   trigger, seeds, options, next due, last claimed slot, last run
    P schedules:due      zset   names of active schedules scored by their next due time

A paused schedule keeps its hash but leaves ``schedules:due``; nothing else tells the scheduler
what to start.

**Slots and claims.** The time a schedule is due is its *slot*. A scheduler takes a due slot
with :meth:`ScheduleStore.claim`, a compare-and-set in one Lua script: it succeeds only if the
schedule's score in ``schedules:due`` is still that slot, and in the same step moves the score
to the first slot *after now* and records the claimed slot on the hash. Any number of
schedulers may therefore race on one slot and exactly one of them wins; a loser finds the score
moved and starts nothing. Because the next slot is computed from *now*, a scheduler that was
down for ten intervals starts one run for the oldest missed slot and reports how many later
slots that run stands in for (``skipped``), instead of starting ten.

The claim is at most once: a scheduler that dies between its claim and the start of the run
loses that one slot (the schedule goes on at the next one), which is the safe side for a crawl.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, cast

from croniter import CroniterError, croniter

from store.base import RedisStore, decode_hash
from store.clock import format_duration, iso, parse_duration
from store.errors import ScheduleCorrupt, ScheduleError, ScheduleExists, ScheduleNotFound
from store.options import CrawlOptions
from store.text import text

__all__ = [
    "CRON_FIELDS",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "Claim",
    "Schedule",
    "ScheduleCorrupt",
    "ScheduleError",
    "ScheduleExists",
    "ScheduleNotFound",
    "ScheduleStore",
    "Trigger",
    "iso",
    "parse_trigger",
    "validate_schedule_name",
]

#: Shortest ``--every`` accepted by default, in seconds (a crawl a minute is already a lot).
MIN_INTERVAL: Final = 60.0
#: The longest interval between runs (a year): a longer one names a time past what the
#: records can write (``--every 99999999d`` was stored, then broke ``schedule list``).
MAX_INTERVAL: Final = 366 * 86400.0
#: The fields of a cron expression, in order (UTC; no seconds field).
CRON_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")
#: Missed cron slots are counted up to this many (the count is informational).
MAX_COUNTED_SLOTS: Final = 10_000
#: Due schedules taken per scheduler tick.
DEFAULT_CLAIM_BATCH: Final = 100
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CRON_PROBE_TIME: Final = 0.0  # 1970-01-01T00:00:00Z, where a probe expression is evaluated

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# KEYS: due zset, schedule hash. ARGV: name, expected slot, next due, claimer, now.
_CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
    return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HGET', KEYS[2], 'paused') == '1' then
    return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'next_due', ARGV[3], 'last_slot', ARGV[2],
           'last_claimed_by', ARGV[4], 'last_claimed_at', ARGV[5])
return 1
"""

# KEYS: schedule hash, due zset. ARGV: name, paused (0|1), next due (resume only), field pairs.
_SET_PAUSED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
if ARGV[2] == '1' then
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('HSET', KEYS[1], 'paused', '1')
else
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
    redis.call('HSET', KEYS[1], 'paused', '0', 'next_due', ARGV[3])
end
return 1
"""

# KEYS: schedule hash. ARGV: counter increment, field pairs. Never recreates a removed one.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then
    redis.call('HINCRBY', KEYS[1], 'runs_started', ARGV[1])
end
return 1
"""

_REMOVE = """
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return existed
"""

_DROP_STRAY = """
if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def validate_schedule_name(name: str) -> str:
    """Return ``name`` if valid (as list names: 1-64 of ``A-Z a-z 0-9 . _ -``, starting
    alphanumeric), else raise :class:`ScheduleError`."""
    if _NAME_RE.fullmatch(name) is None:
        raise ScheduleError(
            f"invalid schedule name {name!r}: use 1-64 of A-Z a-z 0-9 . _ - starting alphanumeric"
        )
    return name


# -- triggers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a schedule is due: ``every`` seconds on a grid, or a cron expression in UTC."""

    every: float | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError("a trigger is either an interval or a cron expression")

    def describe(self) -> str:
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"cron {self.cron}"

    def as_json(self) -> dict[str, Any]:
        return {"every": self.every} if self.every is not None else {"cron": self.cron}

    def next_after(self, after: float, *, anchor: float) -> float:
        """The first slot strictly after ``after``. An interval's slots are
        ``anchor + k * every`` for whole ``k`` (the grid the schedule was added on);
        a cron expression ignores ``anchor``."""
        if self.every is not None:
            steps = math.floor((after - anchor) / self.every) + 1
            slot = anchor + steps * self.every
            # Floating point may land one step short on a grid point; never return <= after.
            return slot if slot > after else slot + self.every
        return float(croniter(self.cron, after).get_next(float))

    def slots_between(self, start: float, end: float) -> int:
        """How many slots fall in ``(start, end]`` (cron: counted up to a cap)."""
        if end <= start:
            return 0
        if self.every is not None:
            return math.floor((end - start) / self.every)
        it = croniter(self.cron, start)
        count = 0
        while count < MAX_COUNTED_SLOTS and it.get_next(float) <= end:
            count += 1
        return count


def _parse_cron(expression: str) -> str:
    text = " ".join(expression.split())
    fields = text.split(" ")
    if text.startswith("@"):
        fields = []
    elif len(fields) != len(CRON_FIELDS):
        raise ScheduleError(
            f"--cron {expression!r}: expected {len(CRON_FIELDS)} fields "
            f"({', '.join(CRON_FIELDS)}), got {len(fields) if text else 0}"
        )
    for index, value in enumerate(fields):  # name the first field croniter refuses
        probe = ["*"] * len(CRON_FIELDS)
        probe[index] = value
        try:
            croniter(" ".join(probe), _CRON_PROBE_TIME)
        except (CroniterError, ValueError) as exc:
            raise ScheduleError(
                f"--cron {expression!r}: bad {CRON_FIELDS[index]} field {value!r} ({exc})"
            ) from None
    try:
        croniter(text, _CRON_PROBE_TIME).get_next(float)
    except (CroniterError, ValueError) as exc:
        raise ScheduleError(f"--cron {expression!r}: {exc}") from None
    return text


def parse_trigger(
    every: str | None, cron: str | None, *, min_interval: float = MIN_INTERVAL
) -> Trigger:
    """The trigger of ``--every`` or ``--cron`` (exactly one), validated; errors are one line
    naming the option and the value."""
    if cron is not None and every is None:
        return Trigger(cron=_parse_cron(cron))
    if every is None or cron is not None:
        raise ScheduleError("give exactly one of --every DURATION or --cron EXPRESSION")
    try:
        seconds = parse_duration(every.strip())
    except ValueError as exc:
        raise ScheduleError(f"--every {every!r}: {exc}") from None
    if seconds < min_interval:
        raise ScheduleError(
            f"--every {every!r}: shorter than the minimum of {format_duration(min_interval)}"
        )
    if not seconds <= MAX_INTERVAL:  # not NaN either
        raise ScheduleError(
            f"--every {every!r}: longer than the maximum of {format_duration(MAX_INTERVAL)}"
        )
    return Trigger(every=seconds)


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule as stored."""

    name: str
    trigger: Trigger
    seeds: tuple[str, ...]
    options: CrawlOptions
    created_at: float
    next_due: float
    paused: bool = False
    last_slot: float | None = None
    last_run_id: str = ""
    last_started_at: float | None = None
    last_error: str = ""
    last_failed_at: float | None = None
    runs_started: int = 0
    last_claimed_at: float | None = None
    last_settled_slot: float | None = None  # the last slot whose start succeeded or failed

    @property
    def last_start_failed(self) -> bool:
        """True if the latest attempt to start a run failed."""
        if self.last_failed_at is None:
            return False
        return self.last_started_at is None or self.last_failed_at >= self.last_started_at

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trigger": self.trigger.describe(),
            **self.trigger.as_json(),
            "seeds": list(self.seeds),
            "options": self.options.as_dict(),
            "created_at": iso(self.created_at),
            "next_run": None if self.paused else iso(self.next_due),
            "paused": self.paused,
            "last_slot": None if self.last_slot is None else iso(self.last_slot),
            "last_run_id": self.last_run_id or None,
            "last_started_at": None if self.last_started_at is None else iso(self.last_started_at),
            "last_error": self.last_error if self.last_start_failed else None,
            "runs_started": self.runs_started,
        }

    @classmethod
    def from_hash(cls, name: str, raw: Mapping[bytes, bytes]) -> Schedule:
        fields = decode_hash(raw)
        current = "trigger"
        try:
            every = fields.get("every") or None
            trigger = Trigger(
                every=float(every) if every else None, cron=fields.get("cron") or None
            )
            current = "seeds"
            seeds = tuple(str(s) for s in json.loads(fields["seeds"]))
            current = "options"
            stored = json.loads(fields["options"])
            if not isinstance(stored, dict):
                raise ValueError("not an object")
            options = CrawlOptions.from_dict(stored)
            current = "times"
            return cls(
                name=name,
                trigger=trigger,
                seeds=seeds,
                options=options,
                created_at=float(fields["created_at"]),
                next_due=float(fields["next_due"]),
                paused=fields.get("paused") == "1",
                last_slot=_optional_float(fields.get("last_slot")),
                last_run_id=fields.get("last_run_id", ""),
                last_started_at=_optional_float(fields.get("last_started_at")),
                last_error=fields.get("last_error", ""),
                last_failed_at=_optional_float(fields.get("last_failed_at")),
                runs_started=int(fields.get("runs_started") or 0),
                last_claimed_at=_optional_float(fields.get("last_claimed_at")),
                last_settled_slot=_optional_float(fields.get("last_settled_slot")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ScheduleCorrupt(f"schedule {name!r} is corrupt ({current}: {exc})") from None


def _optional_float(text: str | None) -> float | None:
    return float(text) if text else None


@dataclass(frozen=True, slots=True)
class Claim:
    """A slot a scheduler won: start one run for it."""

    schedule: Schedule
    slot: float
    next_due: float
    skipped: int = 0  # later slots that had passed too; this one run stands in for them
    claimed_at: float = field(default=0.0)


# -- the store -----------------------------------------------------------------------------


class ScheduleStore(RedisStore):
    """Schedules in Redis: add, read, pause, resume, remove, and the claim of due slots."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "create": _CREATE,
        "claim": _CLAIM,
        "set_paused": _SET_PAUSED,
        "update": _UPDATE,
        "remove": _REMOVE,
        "drop_stray": _DROP_STRAY,
    }

    def add(
        self,
        name: str,
        trigger: Trigger,
        seeds: Sequence[str],
        options: CrawlOptions | None = None,
    ) -> Schedule:
        """Store a new schedule; its first slot is the trigger's first after now."""
        validate_schedule_name(name)
        if not seeds:
            raise ScheduleError(f"schedule {name!r}: no seed URL")
        now = self.clock()
        schedule = Schedule(
            name=name,
            trigger=trigger,
            seeds=tuple(seeds),
            options=options or CrawlOptions(),
            created_at=now,
            next_due=trigger.next_after(now, anchor=now),
        )
        mapping = {
            "every": "" if trigger.every is None else repr(trigger.every),
            "cron": trigger.cron or "",
            "seeds": json.dumps(list(schedule.seeds)),
            "options": json.dumps(schedule.options.as_dict(), sort_keys=True),
            "created_at": repr(now),
            "next_due": repr(schedule.next_due),
            "paused": "0",
            "runs_started": "0",
        }
        args: list[str] = [name, repr(schedule.next_due)]
        for key, value in mapping.items():
            args += [key, value]
        created = self.script(
            "create",
            keys=[self.keys.schedule(name), self.keys.schedules, self.keys.schedules_due],
            args=args,
        )
        if not created:
            raise ScheduleExists(f"schedule {name!r} already exists (remove it first)")
        return schedule

    def get(self, name: str) -> Schedule:
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.keys.schedule(name)))
        if not raw:
            raise ScheduleNotFound(f"no schedule {name!r}")
        return Schedule.from_hash(name, raw)

    def names(self) -> list[str]:
        members = cast("set[bytes]", self.client.smembers(self.keys.schedules))
        return sorted(text(m) for m in members)

    def all(self) -> list[Schedule]:
        """Every schedule, by name; one that vanished while listing is left out."""
        schedules = []
        for name in self.names():
            try:
                schedules.append(self.get(name))
            except ScheduleNotFound:
                continue
        return schedules

    def pause(self, name: str) -> Schedule:
        """Stop starting runs for ``name`` until it is resumed (idempotent)."""
        key = self.keys.schedule(name)
        if not self.script(
            "set_paused", keys=[key, self.keys.schedules_due], args=[name, "1", "0"]
        ):
            raise ScheduleNotFound(f"no schedule {name!r}")
        return self.get(name)

    def resume(self, name: str) -> Schedule:
        """Start runs again from the first slot after now: slots missed while paused are
        not made up for. Resuming an active schedule changes nothing."""
        schedule = self.get(name)
        if not schedule.paused:
            return schedule
        now = self.clock()
        next_due = schedule.trigger.next_after(now, anchor=schedule.next_due)
        if not self.script(
            "set_paused",
            keys=[self.keys.schedule(name), self.keys.schedules_due],
            args=[name, "0", repr(next_due)],
        ):
            raise ScheduleNotFound(f"no schedule {name!r}")
        return self.get(name)

    def remove(self, name: str) -> None:
        existed = self.script(
            "remove",
            keys=[self.keys.schedule(name), self.keys.schedules, self.keys.schedules_due],
            args=[name],
        )
        if not existed:
            raise ScheduleNotFound(f"no schedule {name!r}")

    # -- the scheduler's side ----------------------------------------------------------------

    def due(self, now: float, *, limit: int = DEFAULT_CLAIM_BATCH) -> list[tuple[str, float]]:
        """Active schedules due at ``now``, oldest slot first, as (name, slot)."""
        rows = cast(
            "list[tuple[bytes, float]]",
            self.client.zrangebyscore(
                self.keys.schedules_due, "-inf", repr(now), start=0, num=limit, withscores=True
            ),
        )
        return [(text(name), float(score)) for name, score in rows]

    def next_due_time(self) -> float | None:
        """The earliest slot of any active schedule, or None with none active."""
        rows = cast(
            "list[tuple[bytes, float]]",
            self.client.zrange(self.keys.schedules_due, 0, 0, withscores=True),
        )
        return float(rows[0][1]) if rows else None

    def claim(self, name: str, slot: float, *, now: float, claimer: str) -> Claim | None:
        """Take ``slot`` of ``name`` if it is still due there, moving the schedule on to its
        first slot after ``now`` in the same atomic step; None if another scheduler took it
        first (or the schedule was paused or removed meanwhile)."""
        try:
            schedule = self.get(name)
        except ScheduleNotFound:  # removed meanwhile; drop a stray due entry
            self.script(
                "drop_stray", keys=[self.keys.schedules_due, self.keys.schedule(name)], args=[name]
            )
            return None
        except ScheduleCorrupt:
            self.client.zrem(self.keys.schedules_due, name)  # never spin on it
            raise
        next_due = schedule.trigger.next_after(now, anchor=slot)
        won = self.script(
            "claim",
            keys=[self.keys.schedules_due, self.keys.schedule(name)],
            args=[name, repr(slot), repr(next_due), claimer, repr(now)],
        )
        if not won:
            return None
        return Claim(
            schedule=schedule,
            slot=slot,
            next_due=next_due,
            skipped=schedule.trigger.slots_between(slot, now),
            claimed_at=now,
        )

    def record_start(
        self, name: str, run_id: str, *, started_at: float, slot: float | None = None
    ) -> bool:
        """Note a started run on the schedule (False if it was removed meanwhile); ``slot``
        is the due time it was started for (None: on demand)."""
        fields = {"last_run_id": run_id, "last_started_at": repr(started_at), "last_error": ""}
        if slot is not None:
            fields["last_settled_slot"] = repr(slot)
        return self._record(name, fields, started=1)

    def record_failure(
        self, name: str, error: str, *, at: float, slot: float | None = None
    ) -> bool:
        """Note that starting a run failed (the slot is not retried)."""
        fields = {"last_error": f"{iso(at)}: {error}"[:2000], "last_failed_at": repr(at)}
        if slot is not None:
            fields["last_settled_slot"] = repr(slot)
        return self._record(name, fields)

    def unstarted(self, now: float, *, grace: float) -> list[tuple[str, float]]:
        """Slots claimed at least ``grace`` seconds ago whose start was never recorded,
        started nor failed: the scheduler that claimed them died in between. Oldest first."""
        lost = []
        for name in self.names():
            try:
                schedule = self.get(name)
            except ScheduleError:  # removed meanwhile, or corrupt (the claim reports that)
                continue
            slot = schedule.last_slot
            claimed = schedule.last_claimed_at
            if slot is None or claimed is None or schedule.last_settled_slot == slot:
                continue
            if now - claimed >= grace:
                lost.append((schedule.name, slot))
        return sorted(lost, key=lambda item: item[1])

    def _record(self, name: str, fields: Mapping[str, str], *, started: int = 0) -> bool:
        args: list[str] = [str(started)]
        for key, value in fields.items():
            args += [key, value]
        return bool(self.script("update", keys=[self.keys.schedule(name)], args=args))
