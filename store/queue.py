"""The notice-and-takedown queue: confirmed hits and review items as Redis streams.

A hit is keyed by its *incident*: one image URL matched against one list entry. Enqueueing is
idempotent per incident (a Lua script checks the ``<stream>:ids`` hash and appends to the stream
in one atomic step), so a re-crawl, a retried request or two crawl processes racing each other
never add a duplicate. The stream entry holds URLs, hashes and response metadata only: never
image bytes, never a thumbnail.

The same script applies two more rules, in this order:

1. **Dismissed**: an incident an analyst dismissed (its id is in ``P review:dismissed``, see
   :mod:`store.review`) is never queued again, to either stream.
2. **Reappearance**: a *confirmed* sighting of an incident that is already in ``P hits`` and
   whose notice is closed (its id is in ``P notices:status:removed`` or
   ``P notices:status:gone_unreachable``) is appended to ``P hits`` again, with the field
   ``reappeared`` = ``1``; ``P hits:ids`` then points at the new entry. The marker hash
   ``P hits:reappeared`` (incident -> that entry id) stops a second append while the notice
   is still closed: whoever reopens the notice (the notifier) deletes the incident's field
   (``HDEL``), and a sighting while the notice is open clears a stale one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, cast

import redis

from store.base import RedisStore, decode_hash
from store.errors import QueueError
from store.text import text

VERDICTS = ("confirmed", "review")
#: The notice statuses of a closed notice: those of ``takedown.notices.CLOSED_STATUSES``
#: (``store`` cannot import ``takedown``; a test keeps the two equal).
CLOSED_NOTICE_STATUSES = ("removed", "gone_unreachable")
#: Value of the ``reappeared`` field of a hit appended again for a closed notice.
REAPPEARED = "1"

# KEYS: stream, stream ids, dismissed set, the closed-status sets (2), reappeared markers.
# ARGV: incident, "1" if the record is a confirmed hit, then the fields (name, value, ...).
_ENQUEUE_ONCE = (
    """
local incident = ARGV[1]
if redis.call('SISMEMBER', KEYS[3], incident) == 1 then
    return {0, ''}
end
local existing = redis.call('HGET', KEYS[2], incident)
if ARGV[2] == '1' then
    local closed = redis.call('ZSCORE', KEYS[4], incident)
        or redis.call('ZSCORE', KEYS[5], incident)
    if not closed then
        redis.call('HDEL', KEYS[6], incident)
        if existing then
            return {0, existing}
        end
    elseif redis.call('HEXISTS', KEYS[6], incident) == 1 then
        return {0, existing or ''}
    end
    if closed then
        -- Its notice is closed (even if retention purged the first hit): a reappearance.
        local fields = {}
        for i = 3, #ARGV, 2 do
            local value = ARGV[i + 1]
            if ARGV[i] == 'reappeared' then
                value = '"""
    + REAPPEARED
    + """'
            end
            table.insert(fields, ARGV[i])
            table.insert(fields, value)
        end
        local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
        redis.call('HSET', KEYS[2], incident, id)
        redis.call('HSET', KEYS[6], incident, id)
        return {1, id}
    end
elseif existing then
    return {0, existing}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[2], incident, id)
return {1, id}
"""
)


# KEYS: a stream; ARGV: the entry to start after ("-" for the first), how many entries to
# read, the crawl and the list an entry must have ('' for any). Returns how many entries were
# read, the last one's id, and for each that matched: its id, incident and first_seen.
_SELECT = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out, last = {}, ''
for _, row in ipairs(rows) do
    last = row[1]
    local data, f = row[2], {}
    for i = 1, #data, 2 do
        f[data[i]] = data[i + 1]
    end
    if (ARGV[3] == '' or f['crawl'] == ARGV[3]) and (ARGV[4] == '' or f['list'] == ARGV[4]) then
        table.insert(out, row[1])
        table.insert(out, f['incident'] or '')
        table.insert(out, f['first_seen'] or '')
    end
end
return {#rows, last, out}
"""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """Where a record is in its stream, with what a listing filters it by."""

    id: str
    incident: str
    first_seen: str


def incident_id(url: str, list_name: str, entry: str) -> str:
    """The deterministic id of one (image URL, list entry) incident: 32 lowercase hex."""
    material = "\n".join((url, list_name, entry)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class HitRecord:
    """One match of one image against one list entry, as queued.

    ``url`` is the URL that was downloaded: an image's, or a file's (a video, an archive,
    any body on an exact list); for an image inlined as a ``data:`` URI, a ``data:`` URL
    naming its media type and SHA-256 instead of the content. Times are ISO 8601 UTC.
    ``media_type`` says what it is (``image``, ``video``, ``audio``, ``archive``, ``file``)
    and ``file_type`` its format as sniffed (``jpeg``, ``mp4``, ``zip``, ``pdf``; empty when
    unknown); a record queued before these fields existed reads as an image. A member of an
    archive has ``media_type`` ``archive_member``, its path in ``member`` (nested archives
    joined by ``!/``), its own hashes and format, and the archive's SHA-256 in
    ``container_sha256``; its ``url`` is the archive's, the thing to remove. A video matched
    by its frames has ``frame_times`` (seconds of the matching frames, comma-separated, the
    first 20), ``frames_matched`` (how many) and, for a video entry of a vPDQ list,
    ``frame_share`` (percent of frames matching); ``pdq`` is then the PDQ of the frame that
    matched best by PDQ (empty when none did), what a recheck looks for. A match confirmed by
    corroboration (its PDQ and its pHash both within the review distances of the entry) has
    ``corroborated_by``, the pHash distance (``algorithm`` and ``distance`` are the PDQ's).

    The last fields have defaults: ``decided_by`` and ``decision_reason`` are set on a hit an
    analyst confirmed from the review queue (the actor, ``analyst@<name>``, and the reason);
    ``reappeared`` is true on a hit appended again because its notice was closed and the
    content was found online again. In the stream ``reappeared`` is ``1`` or empty.
    """

    url: str
    page: str
    seed: str
    sha256: str
    md5: str
    sha1: str
    pdq: str | None
    pdq_quality: int | None
    phash: str | None
    list: str
    entry: str
    category: str
    algorithm: str
    distance: int
    verdict: str
    first_seen: str
    ip: str | None
    status: int | None
    content_type: str | None
    content_length: int | None
    server: str | None
    crawl: str
    decided_by: str = ""
    decision_reason: str = ""
    reappeared: bool = False
    media_type: str = "image"
    file_type: str = ""
    member: str = ""
    container_sha256: str = ""
    frame_times: str = ""
    frames_matched: int | None = None
    frame_share: str = ""
    corroborated_by: int | None = None

    INT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"pdq_quality", "distance", "status", "content_length", "frames_matched", "corroborated_by"}
    )
    BOOL_FIELDS: ClassVar[frozenset[str]] = frozenset({"reappeared"})

    @property
    def incident(self) -> str:
        return incident_id(self.url, self.list, self.entry)

    @property
    def match_text(self) -> str:
        """``pdq distance 38``, and ``, corroborated by phash distance 8`` when so."""
        text = f"{self.algorithm} distance {self.distance}"
        if self.corroborated_by is not None:
            text += f", corroborated by phash distance {self.corroborated_by}"
        return text

    def to_fields(self) -> dict[str, str]:
        """Stream fields: every value as text, ``None`` as the empty string."""
        out = {"incident": self.incident}
        for name, value in asdict(self).items():
            if isinstance(value, bool):
                out[name] = REAPPEARED if value else ""
            else:
                out[name] = "" if value is None else str(value)
        return out

    @classmethod
    def from_fields(cls, data: Mapping[Any, Any]) -> HitRecord:
        values = decode_hash(data)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            raw = values.get(f.name, "")
            if f.name in cls.INT_FIELDS:
                kwargs[f.name] = int(raw) if raw else None
            elif f.name in cls.BOOL_FIELDS:
                # "1" in the stream; "True" where a JSON copy of the record was turned to text
                kwargs[f.name] = raw.lower() in {REAPPEARED, "true"}
            else:
                kwargs[f.name] = raw if raw or f.type == "str" else None
        if kwargs["distance"] is None:
            kwargs["distance"] = 0
        if not kwargs["media_type"]:
            kwargs["media_type"] = "image"
        return cls(**kwargs)

    def as_json(self) -> dict[str, Any]:
        """The object printed by ``hotline hits list --json``."""
        out: dict[str, Any] = asdict(self)
        out["incident"] = self.incident
        return out


class HitQueue(RedisStore):
    """Append-once access to the ``hits`` and ``review`` streams."""

    SCRIPTS: ClassVar[Mapping[str, str]] = {
        "enqueue": _ENQUEUE_ONCE,
        "select": _SELECT,
    }

    def enqueue(self, record: HitRecord) -> str | None:
        """Append ``record`` to its verdict's stream; return the new entry id, or ``None``
        when this incident is already queued or was dismissed by an analyst.

        A confirmed record of an incident whose notice is closed is appended once more,
        marked ``reappeared`` (see the module's docstring); its new entry id is returned.
        """
        if record.verdict not in VERDICTS:
            raise QueueError(f"cannot queue a record with verdict {record.verdict!r}")
        fields_ = record.to_fields()
        args: list[str] = [fields_["incident"], "1" if record.verdict == "confirmed" else "0"]
        for name, value in fields_.items():
            args.extend((name, value))
        keys = [
            self.keys.stream(record.verdict),
            self.keys.stream_ids(record.verdict),
            self.keys.review_dismissed,
            *(self.keys.notices_in(status) for status in CLOSED_NOTICE_STATUSES),
            self.keys.hits_reappeared,
        ]
        try:
            created, entry_id = cast("list[Any]", self.script("enqueue", keys=keys, args=args))
        except redis.RedisError as exc:
            raise QueueError(f"could not queue incident {record.incident}: {exc}") from exc
        return text(entry_id) if created else None

    def count(self, verdict: str) -> int:
        return int(self.client.xlen(self.keys.stream(verdict)))

    def latest(self, verdict: str, incident: str) -> HitRecord | None:
        """The incident's latest record in a stream (a reappearance is appended again), by
        its entry in ``<stream>:ids``; ``None`` when it has none."""
        entry = cast("bytes | None", self.client.hget(self.keys.stream_ids(verdict), incident))
        if entry is None:
            return None
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            self.client.xrange(self.keys.stream(verdict), min=entry, max=entry, count=1),
        )
        return HitRecord.from_fields(rows[0][1]) if rows else None

    def select(
        self, verdict: str, *, crawl: str = "", list_name: str = "", batch: int = 1000
    ) -> list[StreamEntry]:
        """The entries of a stream (oldest first) whose record is of ``crawl`` and of
        ``list_name`` (each: any when empty), read inside Redis in slices of ``batch``: where
        each is, not the records (:meth:`records` reads those for a page)."""
        found: list[StreamEntry] = []
        start = "-"
        while True:
            size, last, flat = self.script(
                "select",
                keys=[self.keys.stream(verdict)],
                args=[start, batch, crawl, list_name],
            )
            for i in range(0, len(flat), 3):
                found.append(StreamEntry(*(text(v) for v in flat[i : i + 3])))
            if int(size) < batch:
                return found
            start = "(" + text(last)

    def records(
        self, verdict: str, entry_ids: Sequence[str], *, batch: int = 500
    ) -> list[tuple[str, HitRecord]]:
        """The entries of a stream of ``entry_ids`` that still exist, each with its record,
        in that order."""
        stream = self.keys.stream(verdict)
        out: list[tuple[str, HitRecord]] = []
        for start in range(0, len(entry_ids), batch):
            chunk = entry_ids[start : start + batch]
            pipe = self.client.pipeline(transaction=False)
            for entry in chunk:
                pipe.xrange(stream, min=entry, max=entry, count=1)
            rows = cast("list[list[tuple[bytes, dict[bytes, bytes]]]]", pipe.execute())
            out.extend(
                (entry, HitRecord.from_fields(found[0][1]))
                for entry, found in zip(chunk, rows, strict=True)
                if found
            )
        return out

    def iter_records(self, verdict: str, *, batch: int = 500) -> Iterator[HitRecord]:
        """Every record of a stream, oldest first."""
        stream = self.keys.stream(verdict)
        start = "-"
        while True:
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.client.xrange(stream, min=start, max="+", count=batch),
            )
            for entry_id, data in rows:
                yield HitRecord.from_fields(data)
                start = "(" + text(entry_id)
            if len(rows) < batch:
                return
