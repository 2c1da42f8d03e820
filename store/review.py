"""An analyst's decisions on the review queue (near misses): show, confirm, dismiss.

The functions the CLI (``hotline review``) and the web console call. A review item is the
``P review`` stream entry of one incident (image URL + list entry; see :mod:`store.queue`),
found by its incident id or a unique prefix of at least six hex digits.

* **confirm** appends the item to ``P hits`` as a confirmed hit (the same incident id, with
  ``decided_by`` and ``decision_reason`` set), so the notifier notices it like any other hit.
  One atomic script checks for an earlier decision, appends, and records the decision: however
  often it runs, at most one hit is appended. An incident that is already in ``P hits`` is not
  appended again; the decision points at the existing entry.
* **dismiss** adds the incident to ``P review:dismissed``, which :meth:`HitQueue.enqueue`
  consults: no crawl queues that (image URL, entry) again, as a hit or for review.
  :meth:`ReviewDesk.add_to_allow_list` optionally adds the image's hashes (SHA-256; PDQ and pHash
  when the record has them) to an allow-list, so the image is ignored at any URL.

A decision is final: the same decision again changes nothing and says who made it
(:attr:`Outcome.new` is false); the other decision raises :class:`ReviewConflict`. Every
decision, and every allow-list change, is one event in the ``P audit`` stream and in the
incident's ``P notice:<id>:timeline`` (the notice's own timeline, once it exists), with the
same fields as the notice events (``notice`` is the incident id) and the analyst as actor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final, cast

import redis

from matchers.algorithms import PDQ_MIN_QUALITY
from matchers.lists import ALLOW, HashList, ListEntry, validate_list_name
from store.audit import event_fields
from store.base import RedisStore, decode_hash
from store.clock import iso
from store.errors import ListNotFound, QueueError, StoreError
from store.lists import ListStore
from store.queue import HitRecord
from store.text import text

__all__ = [
    "CONFIRMED",
    "DECISIONS",
    "DISMISSED",
    "MIN_PREFIX",
    "AllowListed",
    "Decision",
    "Outcome",
    "ReviewConflict",
    "ReviewDesk",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewReasonError",
    "allow_entries",
]

CONFIRMED: Final = "confirmed"
DISMISSED: Final = "dismissed"
DECISIONS: Final = (CONFIRMED, DISMISSED)
#: Fewest hex digits of an incident id that find a review item.
MIN_PREFIX: Final = 6
#: Hex digits of a full incident id.
ID_LENGTH: Final = 32
#: Longest reason an analyst may give, in characters.
MAX_REASON: Final = 1000
#: Seconds an allow-list edit may hold the list's lock, and may wait for it.
LIST_LOCK_TIMEOUT: Final = 60.0

# KEYS: the review stream, the decisions hash; ARGV: the entry to start after ("-" for the
# first), how many entries to read. Returns how many were read, how many have no decision,
# and the last entry id read.
_PENDING = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local pending, last = 0, ''
for _, row in ipairs(rows) do
    last = row[1]
    local data, incident = row[2], ''
    for i = 1, #data, 2 do
        if data[i] == 'incident' then
            incident = data[i + 1]
        end
    end
    if redis.call('HEXISTS', KEYS[2], incident) == 0 then
        pending = pending + 1
    end
end
return {#rows, pending, last}
"""

# KEYS: decisions, audit, timeline, hits stream, hits ids, dismissed set.
# ARGV: incident, decision (JSON), confirmed|dismissed, event (JSON), then the hit's fields.
# Returns {1, decision} when recorded, {0, earlier decision} when decided before,
# {-1, hits entry} when a dismissal meets an incident that is already a confirmed hit.
_DECIDE = """
local incident = ARGV[1]
local prior = redis.call('HGET', KEYS[1], incident)
if prior then
    return {0, prior}
end
local existing = redis.call('HGET', KEYS[5], incident)
local entry = ''
if ARGV[3] == 'confirmed' then
    if existing then
        entry = existing
    else
        entry = redis.call('XADD', KEYS[4], '*', unpack(ARGV, 5))
        redis.call('HSET', KEYS[5], incident, entry)
    end
else
    if existing then
        return {-1, existing}
    end
    redis.call('SADD', KEYS[6], incident)
end
local decision = cjson.decode(ARGV[2])
decision['hit_entry'] = entry
local encoded = cjson.encode(decision)
redis.call('HSET', KEYS[1], incident, encoded)
local event = cjson.decode(ARGV[4])
local fields = {}
for k, v in pairs(event) do
    table.insert(fields, k)
    table.insert(fields, v)
end
redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XADD', KEYS[3], '*', unpack(fields))
return {1, encoded}
"""


class ReviewNotFound(QueueError):
    """No review item has the given id, the prefix is ambiguous, or it is not an id."""


class ReviewConflict(QueueError):
    """The item was decided the other way already (or is already a confirmed hit)."""


class ReviewReasonError(StoreError, ValueError):
    """The reason given for a decision is empty or too long."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An analyst's decision on one review item."""

    incident: str
    decision: str
    actor: str
    reason: str
    ts: float
    hit_entry: str = ""

    @property
    def time(self) -> str:
        return iso(self.ts)

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "actor": self.actor,
            "reason": self.reason,
            "time": self.time,
            "hit_entry": self.hit_entry or None,
        }

    @classmethod
    def from_json(cls, incident: str, raw: str) -> Decision:
        try:
            data = json.loads(raw)
            return cls(
                incident=incident,
                decision=str(data["decision"]),
                actor=str(data["actor"]),
                reason=str(data.get("reason", "")),
                ts=float(data["ts"]),
                hit_entry=str(data.get("hit_entry") or ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise QueueError(f"the decision on review item {incident} is corrupt: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A review-stream record, its stream entry id, and the decision on it (if any)."""

    record: HitRecord
    entry_id: str
    decision: Decision | None

    @property
    def id(self) -> str:
        return self.record.incident

    def as_json(self) -> dict[str, Any]:
        """The object ``hotline review list --json`` prints: the record, ``id`` (its
        incident id) and ``decision`` (``null`` while pending)."""
        out = self.record.as_json()
        out["id"] = self.id
        out["decision"] = None if self.decision is None else self.decision.as_json()
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :meth:`ReviewDesk.confirm` or :meth:`ReviewDesk.dismiss` did: ``new`` is false
    when the same decision had been made before (``decision`` is then the earlier one);
    ``allow_listed`` says what a dismissal with an allow-list added to it."""

    item: ReviewItem
    decision: Decision
    new: bool
    allow_listed: AllowListed | None = None


@dataclass(frozen=True, slots=True)
class AllowListed:
    """What :meth:`ReviewDesk.add_to_allow_list` did: the entries added (none when the list had
    them all) and the list's version afterwards."""

    list: str
    added: tuple[ListEntry, ...]
    version: int
    created: bool


def allow_entries(record: HitRecord) -> list[ListEntry]:
    """The allow-list entries for a record's image: SHA-256 always; PDQ when its quality is
    good enough to match (a weak PDQ hash is refused, not stored); pHash when present. The
    entry id names the incident, so a list shows where each entry came from."""
    entry_id = f"review:{record.incident}"
    entries = [ListEntry("sha256", record.sha256, entry_id)]
    if record.pdq and record.pdq_quality is not None and record.pdq_quality >= PDQ_MIN_QUALITY:
        entries.append(ListEntry("pdq", record.pdq, entry_id))
    if record.phash:
        entries.append(ListEntry("phash", record.phash, entry_id))
    return entries


class ReviewDesk(RedisStore):
    """Reads review items and records analysts' decisions on them."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {"decide": _DECIDE, "pending": _PENDING}

    # -- reading -----------------------------------------------------------------------------

    def decisions(self) -> dict[str, Decision]:
        """Every decision, by incident id."""
        raw = self.read_hash(self.keys.review_decisions)
        return {incident: Decision.from_json(incident, value) for incident, value in raw.items()}

    def decided(self) -> set[str]:
        """The incident ids that have a decision."""
        return {text(i) for i in cast("list[bytes]", self.client.hkeys(self.keys.review_decisions))}

    def decisions_of(self, incidents: Sequence[str]) -> dict[str, Decision]:
        """The decisions on those of ``incidents`` that have one."""
        if not incidents:
            return {}
        raw = cast("list[bytes | None]", self.client.hmget(self.keys.review_decisions, incidents))
        return {
            incident: Decision.from_json(incident, text(value))
            for incident, value in zip(incidents, raw, strict=True)
            if value is not None
        }

    def decision(self, incident: str) -> Decision | None:
        raw = cast("bytes | None", self.client.hget(self.keys.review_decisions, incident))
        return None if raw is None else Decision.from_json(incident, text(raw))

    def items(self, *, batch: int = 500) -> Iterator[ReviewItem]:
        """Every review item with its decision, oldest first."""
        decisions = self.decisions()
        stream = self.keys.review
        start = "-"
        while True:
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.client.xrange(stream, min=start, max="+", count=batch),
            )
            for entry_id, data in rows:
                record = HitRecord.from_fields(data)
                yield ReviewItem(record, text(entry_id), decisions.get(record.incident))
                start = "(" + text(entry_id)
            if len(rows) < batch:
                return

    def pending(self, *, batch: int = 1000) -> int:
        """How many review items await a decision: the count of :meth:`items` without a
        decision, made inside Redis (no record leaves it)."""
        pending, start = 0, "-"
        while True:
            size, undecided, last = self.script(
                "pending", keys=[self.keys.review, self.keys.review_decisions], args=[start, batch]
            )
            pending += int(undecided)
            if int(size) < batch:
                return pending
            start = "(" + text(last)

    def find(self, id_or_prefix: str) -> ReviewItem:
        """The review item whose incident id is, or starts with, ``id_or_prefix`` (at least
        :data:`MIN_PREFIX` hex digits, like a git commit)."""
        wanted = id_or_prefix.strip().lower()
        if not MIN_PREFIX <= len(wanted) <= ID_LENGTH or any(
            c not in "0123456789abcdef" for c in wanted
        ):
            raise ReviewNotFound(
                f"{id_or_prefix!r} is not a review item id ({MIN_PREFIX} to {ID_LENGTH} hex digits)"
            )
        ids_key = self.keys.stream_ids("review")
        if len(wanted) == ID_LENGTH:
            found = cast("bytes | None", self.client.hget(ids_key, wanted))
            matches = {} if found is None else {wanted: text(found)}
        else:
            matches = {
                text(k): text(v)
                for k, v in cast(
                    "Iterator[tuple[bytes, bytes]]",
                    self.client.hscan_iter(ids_key, match=f"{wanted}*", count=1000),
                )
            }
        if not matches:
            raise ReviewNotFound(f"no review item {id_or_prefix}")
        if len(matches) > 1:
            raise ReviewNotFound(f"{id_or_prefix} is ambiguous: {len(matches)} review items match")
        ((incident, entry_id),) = matches.items()
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            self.client.xrange(self.keys.review, min=entry_id, max=entry_id),
        )
        if not rows:
            raise ReviewNotFound(f"review item {incident} is indexed but its entry is gone")
        return ReviewItem(HitRecord.from_fields(rows[0][1]), entry_id, self.decision(incident))

    def timeline(self, incident: str) -> list[dict[str, str]]:
        """The events of the incident's timeline stream (decisions, then the notice's)."""
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            self.client.xrange(self.keys.notice_timeline(incident)),
        )
        return [decode_hash(data) for _, data in rows]

    # -- deciding ----------------------------------------------------------------------------

    def confirm(self, id_or_prefix: str, *, actor: str, reason: str) -> Outcome:
        """Turn the review item into a confirmed hit in ``P hits`` (at most once).

        Raises:
            ReviewNotFound: no such item.
            ReviewConflict: the item was dismissed.
        """
        item = self.find(id_or_prefix)
        hit = replace(
            item.record, verdict=CONFIRMED, decided_by=actor, decision_reason=_reason(reason)
        )
        hit_args: list[str] = []
        for name, value in hit.to_fields().items():
            hit_args.extend((name, value))
        return self._decide(item, CONFIRMED, actor=actor, reason=reason, hit_args=hit_args)

    def dismiss(
        self, id_or_prefix: str, *, actor: str, reason: str, allow_list: str | None = None
    ) -> Outcome:
        """Never queue the item's incident again (see :meth:`HitQueue.enqueue`); with
        ``allow_list``, first add the image's hashes to that allow-list
        (:meth:`add_to_allow_list`; also when the item was dismissed before).

        Raises:
            ReviewNotFound: no such item.
            ReviewConflict: the item was confirmed, or is a confirmed hit already, or
                ``allow_list`` names a list of known hashes.
        """
        item = self.find(id_or_prefix)
        _reason(reason)
        if item.decision is not None and item.decision.decision != DISMISSED:
            raise self._conflict(item.decision)
        hit_entry = cast("bytes | None", self.client.hget(self.keys.stream_ids(CONFIRMED), item.id))
        if item.decision is None and hit_entry is not None:
            raise self._already_a_hit(item, text(hit_entry))
        allowed = None
        if allow_list is not None:
            allowed = self.add_to_allow_list(item, allow_list, actor=actor)
        outcome = self._decide(item, DISMISSED, actor=actor, reason=reason, hit_args=[])
        return replace(outcome, allow_listed=allowed)

    def add_to_allow_list(self, item: ReviewItem, name: str, *, actor: str) -> AllowListed:
        """Add the item's image hashes to the allow-list ``name`` (created if missing; a new
        version keeps every existing entry). Nothing is saved when the list has them all.

        Raises:
            ReviewConflict: ``name`` is a list of known hashes, not an allow-list.
            matchers.errors.HashListError: ``name`` is not a valid list name.
        """
        validate_list_name(name)
        lists = ListStore(self.client, self.keys)
        wanted = allow_entries(item.record)
        lock = self.client.lock(
            self.keys.list_lock(name),
            timeout=LIST_LOCK_TIMEOUT,
            blocking_timeout=LIST_LOCK_TIMEOUT,
        )
        if not lock.acquire():
            raise QueueError(f"allow-list {name!r} is being changed by another process; try again")
        try:
            try:
                current: HashList | None = lists.load(name)
            except ListNotFound:
                current = None
            if current is not None and current.kind != ALLOW:
                raise ReviewConflict(f"list {name!r} holds known hashes, not an allow-list")
            existing = [] if current is None else list(current.entries)
            have = {(e.algorithm, e.hash) for e in existing}
            added = tuple(e for e in wanted if (e.algorithm, e.hash) not in have)
            if not added and current is not None:
                return AllowListed(name, (), current.version, created=False)
            thresholds = None if current is None else current.thresholds
            info = lists.save(HashList(name, [*existing, *added], thresholds, kind=ALLOW))
        finally:
            lock.release()
        algorithms = ", ".join(e.algorithm for e in added)
        self._event(
            item.id,
            "allow_listed",
            DISMISSED,
            actor,
            f"{algorithms} of {item.record.url} added to allow-list {name}"
            f" (version {info.version})",
        )
        return AllowListed(name, added, info.version, created=current is None)

    # -- helpers -----------------------------------------------------------------------------

    def _decide(
        self, item: ReviewItem, decision: str, *, actor: str, reason: str, hit_args: list[str]
    ) -> Outcome:
        reason = _reason(reason)
        now = self.clock()
        record = {"decision": decision, "actor": actor, "reason": reason, "ts": repr(now)}
        event = event_fields(
            item.id, f"review_{decision}", decision, actor, now, f"{reason} ({item.record.url})"
        )
        args = [item.id, json.dumps(record), decision, json.dumps(event), *hit_args]
        keys = [
            self.keys.review_decisions,
            self.keys.audit,
            self.keys.notice_timeline(item.id),
            self.keys.hits,
            self.keys.stream_ids(CONFIRMED),
            self.keys.review_dismissed,
        ]
        try:
            status, value = cast("list[Any]", self.script("decide", keys=keys, args=args))
        except redis.RedisError as exc:
            raise QueueError(f"could not record the decision on {item.id}: {exc}") from exc
        if int(status) < 0:
            raise self._already_a_hit(item, text(value))
        recorded = Decision.from_json(item.id, text(value))
        if int(status) == 0 and recorded.decision != decision:
            raise self._conflict(recorded)
        return Outcome(replace(item, decision=recorded), recorded, new=bool(int(status)))

    @staticmethod
    def _conflict(earlier: Decision) -> ReviewConflict:
        return ReviewConflict(
            f"review item {earlier.incident} was already {earlier.decision} by {earlier.actor} "
            f"at {earlier.time}; a decision is final"
        )

    @staticmethod
    def _already_a_hit(item: ReviewItem, hit_entry: str) -> ReviewConflict:
        return ReviewConflict(
            f"review item {item.id} is already a confirmed hit (hits entry {hit_entry}); "
            "there is nothing to dismiss"
        )

    def _event(self, incident: str, event: str, status: str, actor: str, detail: str) -> None:
        fields = event_fields(incident, event, status, actor, self.clock(), detail)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.audit, fields)  # type: ignore[arg-type]
            pipe.xadd(self.keys.notice_timeline(incident), fields)  # type: ignore[arg-type]
            pipe.execute()


def _reason(reason: str) -> str:
    """The reason as stored: one stripped line of at most :data:`MAX_REASON` characters."""
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise ReviewReasonError("a decision needs a reason (--reason TEXT)")
    if len(cleaned) > MAX_REASON:
        raise ReviewReasonError(f"the reason is longer than {MAX_REASON} characters")
    return cleaned
