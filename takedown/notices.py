"""Notice records, their status, and the audit trail, in Redis.

One notice per incident (image URL + list + entry): its id *is* the incident id, so however
often a hit is delivered to the notifier, re-queued or resent, there is one record and one
reference. A notice moves through these statuses::

    queued ─────────► sent ──(reminders)──► escalated
      │  ▲              │  ▲                    │
      │  │              │  └── mark-sent ──┐    │
      │  │              ▼                  │    ▼
      │  │           removed / gone_unreachable (closed; still watched for reappearance)
      │  │              │
      │  └─ reopen ─────┘  (content found online again: ``reappeared``, a new numbered notice)
      ├─► awaiting_manual (outbox / form delivery prepared; an analyst sends it and runs
      │                    ``notices mark-sent``)
      ├─► unclassified    (the list's category has no X-ARF classification: an analyst decides)
      ├─► unroutable      (no recipient: waits for an analyst; ``notices resend`` retries)
      └─► failed          (delivery kept failing: dead-lettered; ``notices resend`` retries)

``removed`` is a confirmed removal (404/410/451 or different bytes, seen twice
``removal_confirm_after`` apart); ``gone_unreachable`` means the URL could not be reached on
enough checks spread over ``unreachable_min_span``: reported apart from removals.

Every change of status, and every delivery, reminder, escalation and recheck verdict, is one
event appended in the same transaction to the global ``audit`` stream and to the notice's own
``timeline`` stream, with its time and actor (``notifier@host``, ``recheck@host``,
``analyst@host``). The notice hash holds the hit (URLs, hashes, response metadata), the route,
and the times and counters the statistics are computed from; never any image content.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import redis

from store.audit import event_fields
from store.base import RedisStore, decode_hash
from store.clock import iso, parse_iso
from store.errors import QueueError
from store.queue import HitRecord
from store.text import one_line, text
from takedown.model import DeliveryReceipt, Route
from takedown.notice import REFERENCE_PREFIX, reference_for

__all__ = [
    "CLOSED_STATUSES",
    "FIGURE_FIELDS",
    "OPEN_STATUSES",
    "STATUSES",
    "UNROUTABLE",
    "WAITING_STATUSES",
    "AuditEvent",
    "LockBusy",
    "NotAwaitingManual",
    "Notice",
    "NoticeFields",
    "NoticeFigures",
    "NoticeNotFound",
    "NoticeStateError",
    "NoticeStore",
    "NoticeTally",
    "iso",
    "parse_iso",
    "removal_seconds",
]

log = logging.getLogger(__name__)

STATUSES = (
    "queued",
    "unclassified",
    "unroutable",
    "awaiting_manual",
    "sent",
    "escalated",
    "failed",
    "removed",
    "gone_unreachable",
)
#: Statuses in which the content is believed to be online and is rechecked.
OPEN_STATUSES = ("sent", "escalated")
#: Statuses of a notice whose content is gone; a reappearance reopens it.
CLOSED_STATUSES = ("removed", "gone_unreachable")
#: Statuses that wait for an analyst's decision before anything is sent.
WAITING_STATUSES = ("unclassified", "unroutable", "awaiting_manual", "failed")
#: The provider a notice without one is listed under.
UNROUTABLE = "(unroutable)"
#: Seconds a notice lock is held before another process may take it over.
LOCK_TTL_MS = 120_000

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
if ARGV[4] ~= '' and #redis.call('XRANGE', KEYS[6], ARGV[4], ARGV[4], 'COUNT', 1) == 0 then
    return -1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local event = cjson.decode(ARGV[3])
local fields = {}
for k, v in pairs(event) do
    table.insert(fields, k)
    table.insert(fields, v)
end
redis.call('XADD', KEYS[4], '*', unpack(fields))
redis.call('XADD', KEYS[5], '*', unpack(fields))
return 1
"""

# KEYS: the notices index; ARGV: a notice key's prefix, first rank, last rank. For each
# notice of that slice: its status and channel (the one that carried it, else the routed
# one), and for a removed notice the raw times its time to removal is computed from. Reads
# a few fields server-side, so a tally of 100 000 notices moves counts, not records.
_TALLY = """
local counts, removed = {}, {}
local ids = redis.call('ZRANGE', KEYS[1], ARGV[2], ARGV[3])
for _, id in ipairs(ids) do
    local f = redis.call('HMGET', ARGV[1] .. id, 'status', 'delivered_via', 'channel',
        'sent_at', 'first_seen_gone')
    if f[1] then
        local channel = f[2] or ''
        if channel == '' then
            channel = f[3] or ''
        end
        local key = f[1] .. '\t' .. channel
        counts[key] = (counts[key] or 0) + 1
        if f[1] == 'removed' then
            table.insert(removed, f[4] or '')
            table.insert(removed, f[5] or '')
        end
    end
end
local flat = {}
for key, n in pairs(counts) do
    table.insert(flat, key)
    table.insert(flat, n)
end
return {#ids, flat, removed}
"""

# KEYS: an index of notices; ARGV: a notice key's prefix, first rank, last rank, then field
# names. For each notice of that slice whose record exists: its id, then those fields (''
# when unset).
_FIELDS = """
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], ARGV[2], ARGV[3])
for _, id in ipairs(ids) do
    local key = ARGV[1] .. id
    if redis.call('EXISTS', key) == 1 then
        table.insert(out, id)
        local values = redis.call('HMGET', key, unpack(ARGV, 4))
        for i = 1, #ARGV - 3 do
            table.insert(out, values[i] or '')
        end
    end
end
return {#ids, out}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class NoticeNotFound(QueueError):
    """No notice has the given id (or id prefix)."""


class HitGone(QueueError):
    """The hit a notice was to be made from is no longer in the hits stream (a purge removed
    it, with its notice, after the notifier had read it)."""


class NoticeStateError(QueueError):
    """What was asked cannot be done in the notice's current state (an analyst's mistake,
    not a failure: reopening an open notice, resending a closed one)."""


class LockBusy(QueueError):
    """Another live process is working on this notice right now."""


class NotAwaitingManual(QueueError):
    """``mark-sent`` of a notice that is not waiting to be sent by hand."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    notice: str
    event: str
    status: str
    actor: str
    time: str
    detail: str
    entry_id: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "notice": self.notice,
            "event": self.event,
            "status": self.status,
            "actor": self.actor,
            "time": self.time,
            "detail": self.detail,
        }


class NoticeFields:
    """Reading a notice's stored fields: times, counters, the provider, time to removal."""

    __slots__ = ()
    status: str
    fields: Mapping[str, str]

    def time(self, name: str) -> float | None:
        raw = self.fields.get(name)
        return float(raw) if raw else None

    def count(self, name: str) -> int:
        raw = self.fields.get(name)
        return int(raw) if raw else 0

    @property
    def provider(self) -> str:
        return self.fields.get("provider") or UNROUTABLE

    def time_to_removal(self) -> tuple[float | None, float | None]:
        """Seconds from the notice to removal as an interval: (last seen online, first seen
        gone), both measured from when the notice was sent and never negative."""
        sent = self.time("sent_at")
        upper = removal_seconds(sent, self.time("first_seen_gone"))
        if sent is None or upper is None:
            return None, None
        online = self.time("last_seen_online") or sent
        return max(0.0, online - sent), upper


#: The fields :class:`NoticeFigures` holds: what the statistics (``takedown.stats``) read.
FIGURE_FIELDS = (
    "provider",
    "reopens",
    "reminders",
    "escalations",
    "sent_at",
    "first_seen_gone",
    "last_seen_online",
)


@dataclass(frozen=True, slots=True)
class NoticeFigures(NoticeFields):
    """A notice's status and its :data:`FIGURE_FIELDS` (those set), without the hit."""

    id: str
    status: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Notice(NoticeFields):
    """One notice as stored (read-only view of the hash)."""

    id: str
    hit: HitRecord
    status: str
    created: float
    fields: Mapping[str, str]

    @property
    def route(self) -> Route | None:
        raw = self.fields.get("route")
        return Route.from_json(raw) if raw else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "url": self.hit.url,
            "page": self.hit.page,
            "list": self.hit.list,
            "entry": self.hit.entry,
            "provider": self.fields.get("provider") or None,
            "recipient": self.fields.get("recipient") or None,
            "channel": self.fields.get("channel") or None,
            "created": iso(self.created),
        }
        for name in (
            "first_sent_at",
            "sent_at",
            "closed_at",
            "last_seen_online",
            "first_seen_gone",
            "escalated_at",
            "last_checked",
        ):
            value = self.time(name)
            out[name] = None if value is None else iso(value)
        out["reminders"] = self.count("reminders")
        out["attempts"] = self.count("attempts")
        out["checks"] = self.count("checks")
        out["reopens"] = self.count("reopens")
        out["policy_refusals"] = self.count("policy_refusals")
        out["removal_reason"] = self.fields.get("removal_reason") or None
        lower, upper = self.time_to_removal()
        out["time_to_removal"] = None if upper is None else {"min_s": lower, "max_s": upper}
        out["last_error"] = self.fields.get("last_error") or None
        out["route"] = None if self.route is None else self.route.to_dict()
        return out


def removal_seconds(sent: float | None, gone: float | None) -> float | None:
    """Seconds from a notice sent at ``sent`` to the first check that found its image gone
    (``gone``), never negative; ``None`` unless both are known."""
    if sent is None or gone is None:
        return None
    return max(0.0, gone - sent)


@dataclass
class NoticeTally:
    """What :meth:`NoticeStore.tally` counted: notices by (status, channel), the channel
    empty until routed, and the seconds to removal of each removed notice whose times are
    known."""

    by_state: Counter[tuple[str, str]] = field(default_factory=Counter)
    removal_seconds: list[float] = field(default_factory=list)


def _time(raw: bytes | None) -> float | None:
    """A stored time field as seconds; ``None`` when empty or unreadable."""
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


class NoticeStore(RedisStore):
    """Reads and writes notice records; every write that changes state is audited."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "create": _CREATE,
        "release": _RELEASE,
        "tally": _TALLY,
        "fields": _FIELDS,
    }

    # -- reading -----------------------------------------------------------------------------

    def get(self, notice_id: str) -> Notice:
        raw = cast("dict[bytes, bytes]", self.client.hgetall(self.keys.notice(notice_id)))
        if not raw:
            raise NoticeNotFound(f"no notice {notice_id}")
        return self._from_hash(notice_id, raw)

    def find(self, id_or_prefix: str) -> Notice:
        """The notice whose id is, or starts with, ``id_or_prefix`` (at least 6 hex digits,
        like a git commit); a reference such as ``HL-0123456789ab`` works too."""
        wanted = id_or_prefix.strip().lower().removeprefix(f"{REFERENCE_PREFIX}-".lower())
        if len(wanted) < 6 or any(c not in "0123456789abcdef" for c in wanted):
            raise NoticeNotFound(f"{id_or_prefix!r} is not a notice id (6 to 32 hex digits)")
        if len(wanted) == 32:
            return self.get(wanted)
        matches = [m for m in self.ids() if m.startswith(wanted)]
        if not matches:
            raise NoticeNotFound(f"no notice {id_or_prefix}")
        if len(matches) > 1:
            raise NoticeNotFound(f"{id_or_prefix} is ambiguous: {len(matches)} notices match")
        return self.get(matches[0])

    def status(self, notice_id: str) -> str | None:
        raw = self.client.hget(self.keys.notice(notice_id), "status")
        return None if raw is None else text(cast("bytes", raw))

    def ids(self, status: str | None = None, *, provider: str | None = None) -> list[str]:
        """Notice ids, oldest first: all, or those in ``status``; with ``provider``, only
        that provider's (as :attr:`Notice.provider` names it: :data:`UNROUTABLE` for none),
        read as the provider alone, inside Redis."""
        if provider is not None:
            found = self.fields_of_each(("provider",), status)
            return [i for i, (name,) in found.items() if (name or UNROUTABLE) == provider]
        key = self.keys.notices if status is None else self.keys.notices_in(status)
        members = cast("list[bytes]", self.client.zrange(key, 0, -1))
        return [text(m) for m in members]

    def iter_notices(self, status: str | None = None, *, batch: int = 200) -> Iterator[Notice]:
        ids = self.ids(status)
        for start in range(0, len(ids), batch):
            yield from self.get_many(ids[start : start + batch], batch=batch)

    def tally(self, *, batch: int = 1000) -> NoticeTally:
        """Every notice by status and channel, with the times to removal of the removed
        ones, counted inside Redis in slices of ``batch`` (a few fields each, never the
        hit; counts come back, not records). A notice purged meanwhile may shift another
        out of the walk, as with any walk of a changing set."""
        tally = NoticeTally()
        start = 0
        while True:
            size, counts, removed = self.script(
                "tally",
                keys=[self.keys.notices],
                args=[self.keys.notice(""), start, start + batch - 1],
            )
            for key, count in zip(counts[::2], counts[1::2], strict=True):
                state, channel = text(key).split("\t", 1)
                tally.by_state[(state, channel)] += int(count)
            for sent, gone in zip(removed[::2], removed[1::2], strict=True):
                seconds = removal_seconds(_time(sent), _time(gone))
                if seconds is not None:
                    tally.removal_seconds.append(seconds)
            if int(size) < batch:
                return tally
            start += batch

    def fields_of_each(
        self, names: Sequence[str], status: str | None = None, *, batch: int = 1000
    ) -> dict[str, tuple[str, ...]]:
        """Notice id -> the values of ``names`` ('' when unset), for every notice (or those
        in ``status``) whose record exists, oldest first, read inside Redis in slices of
        ``batch``: the few fields a listing filters on, without the hit of each notice."""
        if not names:
            raise ValueError("name at least one field")
        index = self.keys.notices if status is None else self.keys.notices_in(status)
        found: dict[str, tuple[str, ...]] = {}
        width, start = len(names) + 1, 0
        while True:
            size, flat = self.script(
                "fields",
                keys=[index],
                args=[self.keys.notice(""), start, start + batch - 1, *names],
            )
            for i in range(0, len(flat), width):
                found[text(flat[i])] = tuple(text(v) for v in flat[i + 1 : i + width])
            if int(size) < batch:
                return found
            start += batch

    def figures(self, status: str | None = None) -> list[NoticeFigures]:
        """Every notice (or those in ``status``) as the statistics read it, oldest first:
        :meth:`fields_of_each` of :data:`FIGURE_FIELDS`, so the hits stay in Redis."""
        found = self.fields_of_each(("status", *FIGURE_FIELDS), status)
        return [
            NoticeFigures(
                notice_id,
                values[0],
                {name: v for name, v in zip(FIGURE_FIELDS, values[1:], strict=True) if v},
            )
            for notice_id, values in found.items()
            if values[0]  # every notice has a status
        ]

    def fields_of(
        self, notice_ids: Sequence[str], names: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        """:meth:`fields_of_each` for the notices of ``notice_ids`` that exist."""
        pipe = self.client.pipeline(transaction=False)
        for notice_id in notice_ids:
            pipe.hmget(self.keys.notice(notice_id), ["status", *names])
        found: dict[str, tuple[str, ...]] = {}
        for notice_id, values in zip(notice_ids, pipe.execute(), strict=True):
            if values[0] is not None:  # every notice has a status
                found[notice_id] = tuple("" if v is None else text(v) for v in values[1:])
        return found

    def get_many(self, notice_ids: Sequence[str], *, batch: int = 200) -> list[Notice]:
        """The notices of ``notice_ids`` that exist, in that order."""
        found: list[Notice] = []
        for start in range(0, len(notice_ids), batch):
            chunk = notice_ids[start : start + batch]
            pipe = self.client.pipeline(transaction=False)
            for notice_id in chunk:
                pipe.hgetall(self.keys.notice(notice_id))
            for notice_id, raw in zip(chunk, pipe.execute(), strict=True):
                if raw:
                    found.append(self._from_hash(notice_id, raw))
        return found

    def timeline(self, notice_id: str) -> list[AuditEvent]:
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            self.client.xrange(self.keys.notice_timeline(notice_id)),
        )
        return [_event(entry_id, data) for entry_id, data in rows]

    def audit(self, *, count: int = 100) -> list[AuditEvent]:
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            self.client.xrevrange(self.keys.audit, count=count),
        )
        return [_event(entry_id, data) for entry_id, data in reversed(rows)]

    def counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(self.keys.notices_in(status))
        return dict(zip(STATUSES, (int(n) for n in pipe.execute()), strict=True))

    # -- writing -----------------------------------------------------------------------------

    def create(self, hit: HitRecord, *, actor: str, entry_id: str = "") -> bool:
        """Record a notice for ``hit`` in status ``queued`` unless one exists; True if new.

        With ``entry_id``, the hit's entry in the hits stream must still be there: a purge
        removes a closed notice with its hit, and a notifier that read the hit just before must
        not make the notice again (:class:`HitGone`)."""
        notice_id = hit.incident
        now = self.clock()
        fields = {
            "id": notice_id,
            "hit": json.dumps(hit.as_json(), sort_keys=True),
            "status": "queued",
            "created": repr(now),
            "last_seen_online": repr(parse_iso(hit.first_seen)) if hit.first_seen else "",
            "stream_entry": entry_id,
        }
        event = event_fields(notice_id, "queued", "queued", actor, now, f"hit {hit.url}")
        args: list[str] = [notice_id, repr(now), json.dumps(event), entry_id]
        for name, value in fields.items():
            args.extend((name, value))
        created = self.script(
            "create",
            keys=[
                self.keys.notice(notice_id),
                self.keys.notices,
                self.keys.notices_in("queued"),
                self.keys.audit,
                self.keys.notice_timeline(notice_id),
                self.keys.hits,
            ],
            args=args,
        )
        if created == -1:
            raise HitGone(f"hit {entry_id} of notice {notice_id} is no longer queued")
        if created:
            _log_change(notice_id, "queued", "queued", "", actor, f"hit {hit.url}")
        return bool(created)

    def record(
        self,
        notice_id: str,
        event: str,
        *,
        actor: str,
        detail: str = "",
        status: str | None = None,
        fields: Mapping[str, str | float | int] | None = None,
        increment: Mapping[str, int] | None = None,
        recheck_at: float | None = None,
        stop_rechecks: bool = False,
        expect: Collection[str] | None = None,
    ) -> None:
        """Apply one change atomically: set ``fields``, bump counters, move to ``status``
        (if given), (re)schedule or drop the recheck, and append the audit event.

        With ``expect``, the change is made only if the notice is in one of those statuses
        at that moment (checked inside the transaction); otherwise
        :class:`NoticeStateError` is raised and nothing changes."""
        now = self.clock()
        key = self.keys.notice(notice_id)
        values = {name: _field(value) for name, value in (fields or {}).items()}
        values["updated"] = repr(now)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(key, "status")
                    if raw is None:
                        raise NoticeNotFound(f"no notice {notice_id}")
                    current = text(cast("bytes", raw))
                    if expect is not None and current not in expect:
                        raise NoticeStateError(
                            f"notice {reference_for(notice_id)} is {current}, not "
                            f"{' or '.join(expect)}"
                        )
                    new_status = status or current
                    created = pipe.zscore(self.keys.notices, notice_id) or now
                    pipe.multi()
                    mapping: dict[Any, Any] = {**values, "status": new_status}
                    pipe.hset(key, mapping=mapping)
                    for name, step in (increment or {}).items():
                        pipe.hincrby(key, name, step)
                    if new_status != current:
                        pipe.zrem(self.keys.notices_in(current), notice_id)
                        pipe.zadd(self.keys.notices_in(new_status), {notice_id: created})
                    if recheck_at is not None:
                        pipe.zadd(self.keys.recheck, {notice_id: recheck_at})
                    if stop_rechecks:
                        pipe.zrem(self.keys.recheck, notice_id)
                    entry = event_fields(notice_id, event, new_status, actor, now, detail)
                    pipe.xadd(self.keys.audit, entry)  # type: ignore[arg-type]
                    pipe.xadd(self.keys.notice_timeline(notice_id), entry)  # type: ignore[arg-type]
                    pipe.execute()
                    _log_change(notice_id, event, new_status, current, actor, detail)
                    return
                except redis.WatchError:
                    continue

    def routed(self, notice_id: str, route: Route, *, actor: str) -> None:
        recipient = route.recipient
        fields: dict[str, str | float | int] = {
            "route": route.to_json(),
            "provider": route.provider or (recipient.provider if recipient else ""),
            "recipient": ""
            if recipient is None
            else (recipient.address or recipient.webhook_url or recipient.form_url or ""),
            "channel": "" if recipient is None else recipient.channel,
        }
        if recipient is None:
            self.record(
                notice_id,
                "unroutable",
                actor=actor,
                status="unroutable",
                fields=fields,
                detail="; ".join(route.trail) or "no recipient found",
            )
            return
        self.record(
            notice_id,
            "routed",
            actor=actor,
            fields=fields,
            detail=f"{route.method}: {recipient.provider} via {recipient.channel}"
            f" {recipient.address or recipient.webhook_url or ''}".rstrip(),
        )

    def sent(
        self,
        notice_id: str,
        receipt: DeliveryReceipt,
        *,
        actor: str,
        message_id: str,
        recheck_at: float,
    ) -> None:
        now = self.clock()
        self.record(
            notice_id,
            "sent",
            actor=actor,
            status="sent",
            fields={
                "sent_at": now,
                "last_message_at": now,
                "message_id": message_id,
                "delivered_via": receipt.channel,
                "sending_since": "",
                "last_error": "",
            },
            recheck_at=recheck_at,
            detail=f"{receipt.channel} to {receipt.destination}: {receipt.detail}".rstrip(": "),
        )

    def reopen(
        self,
        notice_id: str,
        *,
        actor: str,
        event: str = "reopened",
        detail: str = "",
        at: float | None = None,
    ) -> None:
        """Reopen a closed notice: the content is online again (``event`` ``reappeared``
        when a crawl or recheck found it, ``reopened`` when an analyst says so).

        The notice goes back to ``queued`` for the notifier, which sends it again as a new
        numbered message with the same reference (kind ``reappearance``). The removal clock
        restarts: the closing times are cleared, the first notice's time is kept as
        ``first_sent_at``; counters (reminders, escalations) carry on, so message numbers are
        never reused."""
        notice = self.get(notice_id)
        seen = self.clock() if at is None else at
        first_sent = notice.time("first_sent_at") or notice.time("sent_at")
        try:
            self.record(
                notice_id,
                event,
                actor=actor,
                status="queued",
                detail=detail or "reopened",
                fields={
                    "first_sent_at": "" if first_sent is None else first_sent,
                    "sent_at": "",
                    "last_seen_online": seen,
                    "first_seen_gone": "",
                    "closed_at": "",
                    "removal_reason": "",
                    "removal_seen_at": "",
                    "unreachable_streak": 0,
                    "first_unreachable_at": "",
                    "last_unreachable_at": "",
                    "attempts": 0,
                    "stream_entry": "",
                },
                increment={"reopens": 1},
                stop_rechecks=True,
                expect=CLOSED_STATUSES,
            )
        except NoticeStateError:
            current = self.status(notice_id) or "gone"
            raise NoticeStateError(
                f"notice {reference_for(notice_id)} is {current}, not closed: "
                "only a removed or gone_unreachable notice can be reopened"
            ) from None
        # The queue's marker of a reappearance waiting for this reopen (store.queue): a crawl
        # that finds the content again from now on appends a new hit only once it closes again.
        self.client.hdel(self.keys.hits_reappeared, notice_id)

    def mark_sent(self, notice_id: str, *, actor: str, recheck_at: float, note: str = "") -> Notice:
        """An analyst sent a prepared notice (outbox or form) by hand: ``awaiting_manual`` ->
        ``sent``, with ``sent_at`` now and the first recheck at ``recheck_at``, as a send by
        the notifier. Raises :class:`NotAwaitingManual` for a notice in any other status."""
        with self.lock(notice_id, owner=actor):
            notice = self.get(notice_id)
            if notice.status != "awaiting_manual":
                raise NotAwaitingManual(
                    f"notice {notice_id} is {notice.status}, not awaiting_manual: only a notice "
                    "prepared for manual sending can be marked sent"
                )
            now = self.clock()
            where = notice.fields.get("manual_destination") or notice.fields.get("channel", "")
            detail = f"sent by hand via {notice.fields.get('channel') or '?'} {where}".rstrip()
            self.record(
                notice_id,
                "marked_sent",
                actor=actor,
                status="sent",
                fields={
                    "sent_at": now,
                    "last_message_at": now,
                    "marked_sent_by": actor,
                    "sending_since": "",
                    "last_error": "",
                },
                recheck_at=recheck_at,
                detail=f"{detail}; note: {note}" if note else detail,
            )
            return self.get(notice_id)

    # -- locking -----------------------------------------------------------------------------

    @contextmanager
    def lock(self, notice_id: str, *, owner: str) -> Iterator[None]:
        """Hold the notice's send lock for the block.

        ``owner`` is the consumer name: a process restarted under the same name takes over a
        lock its dead predecessor left (one live process per consumer name, as with the
        stream's consumer group), anyone else gets :class:`LockBusy` until the lock expires.
        """
        key = self.keys.notice_lock(notice_id)
        token = f"{owner}|{secrets.token_hex(8)}"
        acquired = self.client.set(key, token, nx=True, px=LOCK_TTL_MS)
        if not acquired:
            holder = self.client.get(key)
            holder_text = "" if holder is None else text(cast("bytes", holder))
            if holder_text.partition("|")[0] != owner:
                raise LockBusy(
                    f"notice {notice_id} is being sent by {holder_text.partition('|')[0]}"
                )
            self.client.set(key, token, px=LOCK_TTL_MS)
        try:
            yield
        finally:
            self.script("release", keys=[key], args=[token])

    # -- helpers -----------------------------------------------------------------------------

    def _from_hash(self, notice_id: str, raw: Mapping[bytes, bytes]) -> Notice:
        fields = decode_hash(raw)
        try:
            hit_data = json.loads(fields["hit"])
            hit = HitRecord.from_fields(
                {k: "" if v is None else str(v) for k, v in hit_data.items()}
            )
            created = float(fields["created"])
        except (KeyError, ValueError, TypeError) as exc:
            raise QueueError(f"notice {notice_id} is corrupt: {exc}") from exc
        return Notice(notice_id, hit, fields.get("status", "queued"), created, fields)


def _log_change(
    notice_id: str, event: str, status: str, previous: str, actor: str, detail: str
) -> None:
    """One log line per change of a notice (what its timeline records), for the daemons'
    logs: ``notice N-... sent: smtp to abuse@...`` with the fields as ``extra``."""
    log.info(
        "notice %s %s%s",
        reference_for(notice_id),
        event,
        f": {one_line(detail)}" if detail else "",
        extra={
            "event": "notice",
            "notice": notice_id,
            "action": event,
            "status": status,
            "previous": previous,
            "actor": actor,
        },
    )


def _field(value: str | float | int) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _event(entry_id: bytes, data: Mapping[bytes, bytes]) -> AuditEvent:
    values = decode_hash(data)
    return AuditEvent(
        notice=values.get("notice", ""),
        event=values.get("event", ""),
        status=values.get("status", ""),
        actor=values.get("actor", ""),
        time=values.get("time", ""),
        detail=values.get("detail", ""),
        entry_id=text(entry_id),
    )
