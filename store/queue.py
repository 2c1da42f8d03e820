"""The notice-and-takedown queue: confirmed hits and review items as Redis streams.

A hit is keyed by its *incident*: one image URL matched against one list entry. Enqueueing is
idempotent per incident (a Lua script checks the ``<stream>:ids`` hash and appends to the stream
in one atomic step), so a re-crawl, a retried request or two crawl processes racing each other
never add a duplicate. The stream entry holds URLs, hashes and response metadata only: never
image bytes, never a thumbnail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, cast

import redis

from store.base import RedisStore, decode_hash
from store.errors import QueueError
from store.text import text

VERDICTS = ("confirmed", "review")

_ENQUEUE_ONCE = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
    return {0, existing}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[2], ARGV[1], id)
return {1, id}
"""


def incident_id(url: str, list_name: str, entry: str) -> str:
    """The deterministic id of one (image URL, list entry) incident: 32 lowercase hex."""
    material = "\n".join((url, list_name, entry)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class HitRecord:
    """One match of one image against one list entry, as queued.

    ``url`` is the image URL (for an image inlined as a ``data:`` URI, a ``data:`` URL naming
    its media type and SHA-256 instead of the content). Times are ISO 8601 UTC.
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

    INT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"pdq_quality", "distance", "status", "content_length"}
    )

    @property
    def incident(self) -> str:
        return incident_id(self.url, self.list, self.entry)

    def to_fields(self) -> dict[str, str]:
        """Stream fields: every value as text, ``None`` as the empty string."""
        out = {"incident": self.incident}
        for name, value in asdict(self).items():
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
            else:
                kwargs[f.name] = raw if raw or f.type == "str" else None
        if kwargs["distance"] is None:
            kwargs["distance"] = 0
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
    }

    def enqueue(self, record: HitRecord) -> str | None:
        """Append ``record`` to its verdict's stream; return the new entry id, or ``None``
        when this incident is already queued."""
        if record.verdict not in VERDICTS:
            raise QueueError(f"cannot queue a record with verdict {record.verdict!r}")
        fields_ = record.to_fields()
        args: list[str] = [fields_["incident"]]
        for name, value in fields_.items():
            args.extend((name, value))
        try:
            created, entry_id = cast(
                "list[Any]",
                self.script(
                    "enqueue",
                    keys=[self.keys.stream(record.verdict), self.keys.stream_ids(record.verdict)],
                    args=args,
                ),
            )
        except redis.RedisError as exc:
            raise QueueError(f"could not queue incident {record.incident}: {exc}") from exc
        return text(entry_id) if created else None

    def count(self, verdict: str) -> int:
        return int(self.client.xlen(self.keys.stream(verdict)))

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
