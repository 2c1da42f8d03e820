"""Retention and data minimisation: what is kept how long, and the purge that deletes the rest.

A hotline keeps what it needs to act, to answer a provider's or a court's questions and to
publish its yearly figures, and nothing longer. The ``[retention]`` table of the configuration
sets one period per kind of record (``"off"`` or ``0`` keeps that kind forever)::

    closed_notices  365d  a notice closed (removed or gone_unreachable) this long ago, with its
                          timeline, lock, schedule entry and every index entry naming it
    hits            180d  a ``hits`` stream entry (and its ``hits:ids`` entry) of a notice
                          closed this long ago, or that never became a notice and was queued
                          this long ago
    review          180d  a ``review`` stream entry (and its ``review:ids`` entry), by the same
                          rule as hits
    dead_letters    180d  a ``hits:dead`` entry written this long ago, unless its notice is
                          still open
    audit           365d  ``audit`` stream entries this old (trimmed with XTRIM MINID)

Rules that no period overrides:

* An open notice (anything but ``removed`` and ``gone_unreachable``: queued, waiting for an
  analyst, sent, escalated) is never purged, nor its hit, review item or dead letter.
* A hit the notifier has not handled yet (not delivered to its consumer group, or delivered and
  not acknowledged) is never purged.
* A notice is purged with its hit and review item, and its dead letters go with it, whatever
  their own periods: nothing that names a purged notice stays behind, except ``audit`` entries,
  which age on their own (keep ``audit`` no longer than ``closed_notices`` for the URLs of
  purged notices to go too).

Ages are measured from the times the records carry: a notice's closing time is the first event
of the run of closed states at the end of its timeline; a hit or review item is aged from its
``first_seen``, a dead letter from its ``time``, an audit entry from its ``ts`` (each falling
back to the stream entry id's time).

Crash safety: every record goes in one atomic step together with the index entries that point
at it (a MULTI/EXEC watched on the notice, or one script per stream entry), so a purge killed
half-way leaves no dangling entry, and running it again finishes the work. Index entries left
dangling by anything else (a notice id in ``notices``, ``notices:status:<s>`` or ``recheck``
without its notice) are removed too. A purge holds ``purge:lock`` (one purge at a time) and
writes one ``purged`` event to the audit stream: the actor, the counts per kind and the
cutoffs, never a URL. A dry run counts the same and changes nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import redis

from store.base import RedisStore, chunks, decode_hash
from store.clock import DAY, HOUR, iso, parse_iso
from store.errors import QueueError
from store.keys import NOTIFIER_GROUP, Keys
from store.text import text
from takedown.notices import CLOSED_STATUSES, STATUSES

__all__ = [
    "DEFAULT_RETENTION",
    "KINDS",
    "MIN_PERIOD",
    "PURGE_CHECK_INTERVAL",
    "PURGE_INTERVAL",
    "PurgeBusy",
    "PurgeInterrupted",
    "PurgeReport",
    "Purger",
    "RetentionSettings",
    "run_daily",
]

#: The kinds of record a purge deletes, in the order reports list them.
KINDS = ("notices", "hits", "review", "dead_letters", "audit", "index_entries")
#: The shortest period a retention setting accepts (a bare number is seconds: "365" is a typo).
MIN_PERIOD = DAY
#: How often the notifier daemon purges, and how often it looks whether a purge is due.
PURGE_INTERVAL = DAY
PURGE_CHECK_INTERVAL = HOUR
#: Milliseconds the purge lock lives without being renewed (it is renewed every batch).
PURGE_LOCK_TTL_MS = 600_000
#: Records read per round trip.
BATCH_SIZE = 200

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Delete one stream entry that belongs to no notice, with its ``:ids`` entry (only if it
# still names this entry), its consumer-group reference, the incident's timeline (an
# analyst's review decision is written there) and, for a review item, the decision: KEYS
# stream, ids, notice, review decisions, notice timeline; ARGV entry id, incident, group (""
# for none), "1" for a review item. Refused (0) if the notice exists by now. Dismissals
# (``review:dismissed``, ids only) are kept: a dismissed image stays dismissed.
_DROP_ENTRY = """
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
    return 0
end
local dropped = redis.call('XDEL', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
    redis.call('HDEL', KEYS[2], ARGV[2])
end
if ARGV[2] ~= '' then
    redis.call('DEL', KEYS[5])
    if ARGV[4] == '1' then
        redis.call('HDEL', KEYS[4], ARGV[2])
    end
end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
    pcall(redis.call, 'XACK', KEYS[1], ARGV[3], ARGV[1])
end
return dropped
"""


# Acknowledge an entry in a consumer group if there is one: KEYS stream; ARGV group, entry id.
_ACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    pcall(redis.call, 'XACK', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class PurgeBusy(QueueError):
    """Another process holds the purge lock."""


class PurgeInterrupted(QueueError):
    """The purge was asked to stop between two batches (what it deleted stays deleted)."""


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """Seconds each kind of record is kept; ``None`` keeps it forever."""

    closed_notices: float | None = 365 * DAY
    hits: float | None = 180 * DAY
    review: float | None = 180 * DAY
    dead_letters: float | None = 180 * DAY
    audit: float | None = 365 * DAY

    FIELDS: ClassVar[tuple[str, ...]] = (
        "closed_notices",
        "hits",
        "review",
        "dead_letters",
        "audit",
    )

    def cutoffs(self, now: float) -> dict[str, float | None]:
        """Per setting, the unix time at or before which a record has expired."""
        out: dict[str, float | None] = {}
        for name in self.FIELDS:
            period = cast("float | None", getattr(self, name))
            out[name] = None if period is None else now - period
        return out


DEFAULT_RETENTION = RetentionSettings()


@dataclass(slots=True)
class PurgeReport:
    """What a purge deleted (or, dry, would delete), per kind, and the cutoffs it used."""

    dry_run: bool
    time: float
    cutoffs: dict[str, float | None]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Notices that changed while the purge looked at them; the next purge decides again.
    changed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "time": iso(self.time),
            "counts": dict(self.counts),
            "cutoffs": {
                name: None if cut is None else iso(cut) for name, cut in self.cutoffs.items()
            },
            "changed": self.changed,
        }

    def summary(self) -> str:
        """One line of counts (the audit event's detail): no URL, no id."""
        counts = ", ".join(f"{name} {self.counts[name]}" for name in KINDS)
        return f"{'would purge' if self.dry_run else 'purged'} {counts}"


@dataclass(slots=True)
class _RunState:
    """What one run has purged so far (a dry run only pretends, so it must remember)."""

    purged: set[str] = field(default_factory=set)  # notice ids
    dropped: set[tuple[str, str]] = field(default_factory=set)  # (verdict, entry id) gone with them


#: Told after each batch: the kind being purged and the report so far.
Progress = Callable[[str, PurgeReport], None]


class Purger(RedisStore):
    """Deletes the records whose retention period is over, and every index entry naming them."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "release": _RELEASE,
        "renew": _RENEW,
        "drop_entry": _DROP_ENTRY,
        "ack": _ACK,
    }

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        settings: RetentionSettings,
        *,
        actor: str,
        clock: Callable[[], float] = time.time,
        batch: int = BATCH_SIZE,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(client, keys, clock=clock)
        self.settings = settings
        self.actor = actor
        self.batch = batch
        self.progress = progress
        self.stop = stop
        self._token = ""

    # -- entry points ------------------------------------------------------------------------

    def purge(self, *, dry_run: bool = False) -> PurgeReport:
        """Delete (or with ``dry_run`` only count) every expired record; raises
        :class:`PurgeBusy` when another purge is running."""
        if dry_run:
            now = self.clock()
            report = PurgeReport(dry_run=True, time=now, cutoffs=self.settings.cutoffs(now))
            self._run(report)
            return report
        with self._locked():
            return self._purge_and_record()

    def purge_if_due(self, interval: float = PURGE_INTERVAL) -> PurgeReport | None:
        """Purge unless one finished less than ``interval`` ago or is running now (several
        notifiers: one of them purges, once per interval); the report, or None."""
        try:
            with self._locked():
                last = _float(self.read_text(self.keys.purge_last))
                if last is not None and self.clock() - last < interval:
                    return None
                return self._purge_and_record()
        except PurgeBusy:
            return None

    # -- the run -----------------------------------------------------------------------------

    def _purge_and_record(self) -> PurgeReport:
        now = self.clock()
        report = PurgeReport(dry_run=False, time=now, cutoffs=self.settings.cutoffs(now))
        try:
            self._run(report)
        except PurgeInterrupted:
            self._record(report, interrupted=True)
            raise
        self._record(report, interrupted=False)
        return report

    def _record(self, report: PurgeReport, *, interrupted: bool) -> None:
        """The purge's one audit event (counts and cutoffs only), and its time for the daily
        purge (an interrupted purge is done again at the next look)."""
        now = self.clock()
        event = {
            "notice": "",
            "event": "purged",
            "status": "",
            "actor": self.actor,
            "time": iso(now),
            "ts": repr(now),
            "detail": report.summary() + (" (interrupted)" if interrupted else ""),
            "counts": json.dumps(report.counts, sort_keys=True),
            "cutoffs": json.dumps(report.as_dict()["cutoffs"], sort_keys=True),
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keys.audit, event)  # type: ignore[arg-type]
        if not interrupted:
            pipe.set(self.keys.purge_last, repr(now))
        pipe.execute()

    def _run(self, report: PurgeReport) -> None:
        state = _RunState()
        self._closed_notices(report, state)
        self._orphan_entries("confirmed", report, state)
        self._orphan_entries("review", report, state)
        self._dead_letters(report, state)
        self._dangling_index_entries(report)
        self._audit(report)

    def _step(self, kind: str, report: PurgeReport) -> None:
        """Between two batches: keep the lock, tell the progress callback, stop if asked."""
        if not report.dry_run and self._token:
            self.script("renew", keys=[self.keys.purge_lock], args=[self._token, PURGE_LOCK_TTL_MS])
        if self.progress is not None:
            self.progress(kind, report)
        if self.stop is not None and self.stop.is_set():
            raise PurgeInterrupted(f"purge stopped while purging {kind}")

    # -- notices -----------------------------------------------------------------------------

    def _closed_notices(self, report: PurgeReport, state: _RunState) -> None:
        """Closed notices: the whole notice once ``closed_notices`` is over; before that,
        its hit and review item once their own periods (counted from the closing) are."""
        cut = report.cutoffs
        if cut["closed_notices"] is None and cut["hits"] is None and cut["review"] is None:
            return
        for status in CLOSED_STATUSES:
            ids = self.members(self.keys.notices_in(status))
            for chunk in chunks(ids, self.batch):
                for notice_id in chunk:
                    self._closed_notice(notice_id, report, state)
                self._step("notices", report)

    def _closed_notice(self, notice_id: str, report: PurgeReport, state: _RunState) -> None:
        keys = self.keys
        key = keys.notice(notice_id)
        cut = report.cutoffs
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                fields = decode_hash(cast("dict[bytes, bytes]", pipe.hgetall(key)))
                if fields.get("status") not in CLOSED_STATUSES:
                    return  # reopened, or gone: the index sweep handles a missing notice
                if pipe.hexists(keys.hits_reappeared, notice_id):
                    return  # the content is back: the notifier is about to reopen it
                closed_at = self._closed_at(notice_id, fields)
                whole = _expired(closed_at, cut["closed_notices"])
                entries: dict[str, tuple[str, bool]] = {}
                for verdict, period in (("confirmed", "hits"), ("review", "review")):
                    if whole or _expired(closed_at, cut[period]):
                        found = self._entry_of(verdict, notice_id)
                        if found is not None:
                            entries[verdict] = found
                if not whole and not entries:
                    return
                if report.dry_run:
                    pipe.unwatch()
                else:
                    pipe.multi()
                    if whole:
                        pipe.delete(
                            key, keys.notice_timeline(notice_id), keys.notice_lock(notice_id)
                        )
                        pipe.zrem(keys.notices, notice_id)
                        for any_status in STATUSES:
                            pipe.zrem(keys.notices_in(any_status), notice_id)
                        pipe.zrem(keys.recheck, notice_id)
                    for verdict, (entry_id, _) in entries.items():
                        self._queue_drop(pipe, verdict, notice_id, entry_id)
                    if whole or "review" in entries:
                        pipe.hdel(keys.review_decisions, notice_id)
                    pipe.execute()
            except redis.WatchError:
                report.changed += 1
                return
        if whole:
            report.counts["notices"] += 1
            state.purged.add(notice_id)
        for verdict, (entry_id, in_stream) in entries.items():
            state.dropped.add((verdict, entry_id))
            kind = "hits" if verdict == "confirmed" else "review"
            report.counts[kind if in_stream else "index_entries"] += 1

    def _closed_at(self, notice_id: str, fields: Mapping[str, str]) -> float:
        """When the notice entered the closed state it is in: the oldest event of the run of
        closed events that ends its timeline (its last change when the timeline says
        otherwise, so nothing is purged early)."""
        fallback = max(
            _float(fields.get("updated")) or 0.0,
            _float(fields.get("first_seen_gone")) or 0.0,
            _float(fields.get("created")) or 0.0,
        )
        closed_at: float | None = None
        upper = "+"
        timeline = self.keys.notice_timeline(notice_id)
        while True:
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.client.xrevrange(timeline, max=upper, min="-", count=self.batch),
            )
            for entry_id, data in rows:
                event = decode_hash(data)
                if event.get("status") not in CLOSED_STATUSES:
                    return fallback if closed_at is None else closed_at
                closed_at = _event_time(text(entry_id), event)
                upper = "(" + text(entry_id)
            if len(rows) < self.batch:
                return fallback if closed_at is None else closed_at

    def _entry_of(self, verdict: str, incident: str) -> tuple[str, bool] | None:
        """The stream entry id queued for ``incident`` and whether the entry is still in the
        stream (its ``:ids`` entry alone is an index entry), or None."""
        raw = self.client.hget(self.keys.stream_ids(verdict), incident)
        if raw is None:
            return None
        entry_id = text(cast("bytes", raw))
        found = self.client.xrange(self.keys.stream(verdict), entry_id, entry_id, count=1)
        return entry_id, bool(found)

    def _queue_drop(self, pipe: Any, verdict: str, incident: str, entry_id: str) -> None:
        """Queue, in ``pipe``, the deletion of a stream entry, its ``:ids`` entry and (for a
        hit) its reference in the notifier's consumer group."""
        stream = self.keys.stream(verdict)
        pipe.xdel(stream, entry_id)
        pipe.hdel(self.keys.stream_ids(verdict), incident)
        if verdict == "confirmed":
            self._scripts["ack"](keys=[stream], args=[NOTIFIER_GROUP, entry_id], client=pipe)

    # -- stream entries without a notice -------------------------------------------------------

    def _orphan_entries(self, verdict: str, report: PurgeReport, state: _RunState) -> None:
        """Hits or review items that belong to no notice (never noticed, or the notice was
        purged), queued before the cutoff; hits only once the notifier has handled them."""
        kind = "hits" if verdict == "confirmed" else "review"
        cut = report.cutoffs[kind]
        if cut is None:
            return
        stream = self.keys.stream(verdict)
        handled_upto: tuple[int, int] | None = None
        if verdict == "confirmed":
            handled_upto = self._group_position(stream)
            if handled_upto is None:
                return  # no notifier has read the stream yet: nothing was handled
        for rows in self._stream_batches(stream):
            pending = self._pending(stream, rows) if verdict == "confirmed" else set()
            candidates: list[tuple[str, str]] = []
            for entry_id, data in rows:
                if (verdict, entry_id) in state.dropped:
                    continue  # went with its notice (a dry run sees it still)
                if handled_upto is not None and (
                    _id_tuple(entry_id) > handled_upto or entry_id in pending
                ):
                    continue
                if _expired(_entry_time(entry_id, data, "first_seen"), cut):
                    candidates.append((entry_id, data.get("incident", "")))
            exists = self._exist([incident for _, incident in candidates if incident])
            for entry_id, incident in candidates:
                if incident and exists.get(incident) and incident not in state.purged:
                    continue  # a notice's entry: decided with its notice
                if report.dry_run:
                    report.counts[kind] += 1
                    continue
                dropped = self.script(
                    "drop_entry",
                    keys=[
                        stream,
                        self.keys.stream_ids(verdict),
                        self.keys.notice(incident),
                        self.keys.review_decisions,
                        self.keys.notice_timeline(incident),
                    ],
                    args=[
                        entry_id,
                        incident,
                        NOTIFIER_GROUP if verdict == "confirmed" else "",
                        "1" if verdict == "review" else "",
                    ],
                )
                report.counts[kind] += int(dropped)
            self._step(kind, report)

    def _group_position(self, stream: str) -> tuple[int, int] | None:
        """The notifier group's last delivered entry id, or None without a group."""
        try:
            groups = self.client.xinfo_groups(stream)
        except redis.ResponseError:  # no such stream
            return None
        for group in groups:
            if text(group["name"]) == NOTIFIER_GROUP:
                return _id_tuple(text(group["last-delivered-id"]))
        return None

    def _pending(self, stream: str, rows: list[tuple[str, dict[str, str]]]) -> set[str]:
        """Ids of ``rows`` that a notifier holds and has not acknowledged."""
        if not rows:
            return set()
        pending = cast(
            "list[dict[str, Any]]",
            self.client.xpending_range(
                stream, NOTIFIER_GROUP, min=rows[0][0], max=rows[-1][0], count=len(rows)
            ),
        )
        return {text(p["message_id"]) for p in pending}

    # -- dead letters ------------------------------------------------------------------------

    def _dead_letters(self, report: PurgeReport, state: _RunState) -> None:
        """Dead letters of a purged notice, and those older than the cutoff whose notice is
        closed or gone (an unreadable hit has none)."""
        cut = report.cutoffs["dead_letters"]
        stream = self.keys.dead_letters
        for rows in self._stream_batches(stream):
            named = [data.get("notice", "") for _, data in rows]
            statuses = self._statuses([n for n in named if n])
            doomed: list[str] = []
            for entry_id, data in rows:
                notice_id = data.get("notice", "")
                status = None if notice_id in state.purged else statuses.get(notice_id)
                if notice_id and status is None:
                    doomed.append(entry_id)  # names a notice that is no more
                elif (status is None or status in CLOSED_STATUSES) and _expired(
                    _entry_time(entry_id, data, "time"), cut
                ):
                    doomed.append(entry_id)
            if doomed and not report.dry_run:
                report.counts["dead_letters"] += int(self.client.xdel(stream, *doomed))
            elif doomed:
                report.counts["dead_letters"] += len(doomed)
            self._step("dead_letters", report)

    # -- index entries naming no notice --------------------------------------------------------

    def _dangling_index_entries(self, report: PurgeReport) -> None:
        """Notice ids in ``notices``, ``notices:status:<s>`` or ``recheck`` whose notice does
        not exist (never left by a purge; swept so a rerun repairs any other interruption)."""
        indexes = [
            self.keys.notices,
            *(self.keys.notices_in(s) for s in STATUSES),
            self.keys.recheck,
        ]
        for index in indexes:
            for chunk in chunks(self.members(index), self.batch):
                exists = self._exist(list(chunk))
                gone = [notice_id for notice_id in chunk if not exists.get(notice_id)]
                if gone and not report.dry_run:
                    report.counts["index_entries"] += int(self.client.zrem(index, *gone))
                elif gone:
                    report.counts["index_entries"] += len(gone)
                self._step("index_entries", report)

    # -- audit -------------------------------------------------------------------------------

    def _audit(self, report: PurgeReport) -> None:
        """Trim the audit stream to the entries newer than the cutoff (XTRIM MINID: the
        stream is in time order, so the oldest entries go, up to the first one to keep)."""
        cut = report.cutoffs["audit"]
        if cut is None:
            return
        stream = self.keys.audit
        old = 0
        keep_from: str | None = None
        last = ""
        for rows in self._stream_batches(stream):
            for entry_id, data in rows:
                if not _expired(_entry_time(entry_id, data, "ts"), cut):
                    keep_from = entry_id
                    break
                old += 1
                last = entry_id
            if keep_from is not None:
                break
            self._step("audit", report)
        if old == 0:
            return
        if report.dry_run:
            report.counts["audit"] += old
            return
        if keep_from is None:  # every entry is old: trim up to just after the last one
            ms, seq = _id_tuple(last)
            keep_from = f"{ms}-{seq + 1}"
        report.counts["audit"] += int(self.client.xtrim(stream, minid=keep_from, approximate=False))

    # -- helpers -----------------------------------------------------------------------------

    def _stream_batches(self, stream: str) -> Iterator[list[tuple[str, dict[str, str]]]]:
        """The stream's entries, oldest first, a batch at a time (safe to delete from)."""
        start = "-"
        while True:
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.client.xrange(stream, min=start, max="+", count=self.batch),
            )
            if not rows:
                return
            batch = [(text(entry_id), _lenient(data)) for entry_id, data in rows]
            yield batch
            if len(rows) < self.batch:
                return
            start = "(" + batch[-1][0]

    def _exist(self, notice_ids: list[str]) -> dict[str, bool]:
        pipe = self.client.pipeline(transaction=False)
        for notice_id in notice_ids:
            pipe.exists(self.keys.notice(notice_id))
        return {n: bool(e) for n, e in zip(notice_ids, pipe.execute(), strict=True)}

    def _statuses(self, notice_ids: list[str]) -> dict[str, str]:
        pipe = self.client.pipeline(transaction=False)
        for notice_id in notice_ids:
            pipe.hget(self.keys.notice(notice_id), "status")
        return {
            n: text(s) for n, s in zip(notice_ids, pipe.execute(), strict=True) if s is not None
        }

    @contextmanager
    def _locked(self) -> Iterator[None]:
        key = self.keys.purge_lock
        token = f"{self.actor}|{secrets.token_hex(8)}"
        if not self.client.set(key, token, nx=True, px=PURGE_LOCK_TTL_MS):
            holder = (self.read_text(key) or "").partition("|")[0] or "another process"
            raise PurgeBusy(
                f"a purge is already running ({holder}); if that process died, its lock "
                f"expires within {PURGE_LOCK_TTL_MS // 60_000} minutes"
            )
        self._token = token
        try:
            yield
        finally:
            self._token = ""
            self.script("release", keys=[key], args=[token])


def run_daily(
    purger: Purger,
    stop: threading.Event,
    *,
    interval: float = PURGE_INTERVAL,
    check_every: float = PURGE_CHECK_INTERVAL,
    on_report: Callable[[PurgeReport], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """The daemon's purge loop: look now and every ``check_every`` seconds whether a purge is
    due (one per ``interval`` across all processes sharing the Redis), until ``stop`` is set
    (a purge under way stops at its next batch: ``purger`` should have ``stop`` too).
    A failed purge is reported and tried again at the next look."""
    while True:
        try:
            report = purger.purge_if_due(interval)
        except PurgeInterrupted:
            return
        except (QueueError, redis.RedisError) as exc:
            if on_error is not None:
                on_error(exc)
        else:
            if report is not None and on_report is not None:
                on_report(report)
        if stop.wait(check_every):
            return


def _expired(when: float, cutoff: float | None) -> bool:
    return cutoff is not None and when <= cutoff


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _id_time(entry_id: str) -> float:
    return _id_tuple(entry_id)[0] / 1000.0


def _event_time(entry_id: str, event: Mapping[str, str]) -> float:
    return _entry_time(entry_id, event, "ts")


def _entry_time(entry_id: str, data: Mapping[str, str], name: str) -> float:
    """The time a record carries in field ``name`` (unix seconds or ISO 8601), else the time
    in its stream entry id."""
    raw = data.get(name, "")
    value = _float(raw)
    if value is not None:
        return value
    if raw:
        try:
            return parse_iso(raw)
        except ValueError:
            pass
    if name == "ts" and data.get("time"):
        try:
            return parse_iso(data["time"])
        except ValueError:
            pass
    return _id_time(entry_id)


def _lenient(data: Mapping[bytes, bytes]) -> dict[str, str]:
    """Stream fields as text, undecodable bytes replaced (a dead letter may hold junk)."""
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in data.items()}
