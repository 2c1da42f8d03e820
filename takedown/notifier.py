"""The notifier: from a confirmed hit in the ``hits`` stream to a delivered notice.

It reads the stream through the consumer group :data:`store.keys.NOTIFIER_GROUP`, so any
number of notifiers share the work and each hit is handled by one of them at a time:

* **At least once.** An entry is acknowledged (XACK) only after its notice was delivered, or
  it was settled otherwise (unroutable, already sent, dead-lettered). A notifier that dies
  leaves its entries pending: restarted under the same consumer name it resumes its own
  pending entries first; other notifiers reclaim them with XAUTOCLAIM once they have been idle
  for ``retry_after``.
* **Idempotent effects.** The notice id is the incident id (image URL + list + entry), so a
  hit delivered twice finds its notice already ``sent`` and is only acknowledged. A per-notice
  lock keeps two notifiers from sending the same notice at once. The one window no queue can
  close — the mail server accepted the message and the process died before recording it — is
  narrowed to that instant (a Redis unreachable at that instant is waited for, up to
  :data:`RECORD_PATIENCE`) and made harmless: the retry carries the same Message-ID (and the
  webhook the same ``Idempotency-Key``), so the receiving side can recognise it, and the
  timeline records that the send was resumed.
* **Dead letters.** A hit whose delivery failed ``max_attempts`` times, or failed in a way
  retrying cannot fix (a 5xx mail reply, an unreadable entry), is copied with its error to the
  ``hits:dead`` stream, its notice is marked ``failed`` for an analyst, and the entry is
  acknowledged. ``hotline notices resend`` tries again.
* **Classified or held.** Before routing, a notice gets its X-ARF classification from the
  configuration's ``[classification]`` table or the list's stored mapping
  (:mod:`takedown.classification`). A category neither maps is never sent: the notice moves
  to ``unclassified``, its entry is acknowledged, and it waits for an analyst's
  ``hotline notices classify`` (:meth:`Notifier.classify`).
* **Prepared, not sent.** A notice delivered through a channel that only prepares it (the
  outbox, a web form: :data:`takedown.channels.base.MANUAL_CHANNELS`) becomes
  ``awaiting_manual`` and is not rechecked; ``hotline notices mark-sent`` moves it to ``sent``
  and schedules its first recheck.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, cast

import redis

from store.clock import iso, parse_iso
from store.errors import QueueError
from store.keys import NOTIFIER_GROUP, Keys
from store.lists import ListStore, normalise_classification
from store.queue import HitRecord
from store.text import text
from takedown.channels.base import Delivers, is_manual
from takedown.classification import Classifier
from takedown.errors import DeliveryError, NoticeError
from takedown.model import DeliveryReceipt, NoticeKind, OutgoingNotice, Recipient, Route
from takedown.notice import reference_for
from takedown.notices import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    HitGone,
    LockBusy,
    Notice,
    NoticeNotFound,
    NoticeStateError,
    NoticeStore,
)
from takedown.settings import TakedownSettings

__all__ = [
    "BATCH_SIZE",
    "BLOCK_MS",
    "RECORD_PATIENCE",
    "NoticeSender",
    "Notifier",
    "NotifierStats",
    "Renderer",
    "Router",
    "default_consumer_name",
    "route_target",
]

log = logging.getLogger(__name__)

#: Entries read from the stream per call.
BATCH_SIZE = 50
#: Milliseconds one blocking read waits for new hits before the loop checks for work to
#: reclaim and for a stop request.
BLOCK_MS = 1000
#: Seconds a sender waits for an unreachable Redis to record a message the channel accepted
#: (a restart, a failover): giving up at once leaves the notice "sending", and resuming it
#: sends the message a second time.
RECORD_PATIENCE = 60.0
#: Seconds between two tries to reach Redis meanwhile.
RECORD_RETRY_INTERVAL = 0.5


class Router(Protocol):
    def route(self, url: str, ip: str | None = None) -> Route: ...


class Renderer(Protocol):
    def render(self, facts: Any) -> OutgoingNotice: ...


def default_consumer_name() -> str:
    """The host name: one notifier per host unless ``--consumer`` names more."""
    return socket.gethostname() or "notifier"


def route_target(hit: HitRecord) -> str:
    """The URL whose host is noticed: the image URL, or for an image inlined in the page
    (a ``data:`` URL) the page that carries it."""
    return hit.page if hit.url.startswith("data:") else hit.url


@dataclass(slots=True)
class NotifierStats:
    sent: int = 0
    already_sent: int = 0
    unroutable: int = 0
    retrying: int = 0
    dead_lettered: int = 0
    unclassified: int = 0
    busy: int = 0
    resumed: int = 0
    reappeared: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: Prepared for sending by hand (outbox, form): notice id -> where (file or form URL).
    awaiting_manual: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Every counter by name, ``errors`` as a copy (for ``--json`` and the logs)."""
        return asdict(self)


class NoticeSender:
    """Renders and delivers one message of a notice (the notice, a reminder, an escalation)
    and records the outcome. Shared by the notifier, ``notices resend`` and the rechecks."""

    def __init__(
        self,
        store: NoticeStore,
        renderer: Renderer,
        deliverer: Delivers,
        facts_factory: Callable[..., Any],
    ) -> None:
        self.store = store
        self.renderer = renderer
        self.deliverer = deliverer
        self.facts_factory = facts_factory

    def render(
        self,
        notice: Notice,
        route: Route,
        *,
        kind: NoticeKind,
        sequence: int,
        recipient: Recipient | None = None,
    ) -> OutgoingNotice:
        """Render one message; ``recipient`` overrides the route's (escalations)."""
        now = self.store.clock()
        last_verified = notice.time("last_seen_online") or now
        sent_first = notice.time("first_sent_at") or notice.time("sent_at")
        facts = self.facts_factory(
            notice_id=notice.id,
            hit=notice.hit,
            route=route,
            first_seen=notice.hit.first_seen or iso(notice.created),
            last_verified=iso(last_verified),
            kind=kind,
            sequence=sequence,
            sent_first=iso(sent_first) if sent_first else iso(now),
            created=iso(now),
            recipient=recipient,
            classification=notice.fields.get("classification", ""),
        )
        return self.renderer.render(facts)

    def deliver(self, notice: Notice, outgoing: OutgoingNotice) -> DeliveryReceipt:
        """Deliver, marking the notice as 'sending' first so an interrupted send is known.

        Once the channel has accepted the message, a Redis that cannot be reached is waited
        for (up to :data:`RECORD_PATIENCE`) before the error is raised, so that the caller
        can record the delivery rather than leave the notice to be sent again."""
        key = self.store.keys.notice(notice.id)
        self.store.client.hset(
            key, mapping={"sending_since": repr(self.store.clock()), "sending": outgoing.message_id}
        )
        receipt = self.deliverer.deliver(outgoing)
        deadline = time.monotonic() + RECORD_PATIENCE
        waiting = False
        while True:
            try:
                self.store.client.hset(key, "sending_since", "")
                return receipt
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() >= deadline:
                    raise
                if not waiting:
                    log.warning(
                        "notice %s: %s accepted %s, but Redis is unreachable (%s): waiting for "
                        "Redis to record it",
                        notice.id,
                        receipt.destination,
                        outgoing.message_id,
                        " ".join(str(exc).split()),
                    )
                    waiting = True
                time.sleep(RECORD_RETRY_INTERVAL)


class Notifier:
    """One consumer of the hits stream."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        router: Router,
        sender: NoticeSender,
        settings: TakedownSettings,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.router = router
        self.sender = sender
        self.store = sender.store
        self.settings = settings
        self.consumer = consumer or default_consumer_name()
        self.actor = f"notifier@{self.consumer}"
        self.clock = clock
        self.stats = NotifierStats()
        self.classifier = Classifier(settings.classification, ListStore(client, keys))

    # -- the loop ----------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if needed, reading from the start so
        hits queued before the first notifier ran are noticed too."""
        try:
            self.client.xgroup_create(self.keys.hits, NOTIFIER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise QueueError(
                    f"cannot create consumer group on {self.keys.hits}: {exc}"
                ) from exc

    def run(
        self,
        *,
        once: bool = False,
        stop: threading.Event | None = None,
        on_batch: Callable[[NotifierStats], None] | None = None,
    ) -> NotifierStats:
        """Work until ``stop`` is set (or, with ``once``, until nothing is left to do now).

        With ``once`` every entry is tried at most once per run: one that failed again or whose
        notice is busy stays pending for the next run rather than being retried in a tight
        loop (with ``retry_after`` 0, XAUTOCLAIM would otherwise hand it straight back).
        """
        stop = stop or threading.Event()
        seen: set[str] | None = set() if once else None
        self.ensure_group()
        self._resume_own(seen)
        self._sweep(seen)
        last_sweep = time.monotonic()
        while not stop.is_set():
            if not once and time.monotonic() - last_sweep >= max(self.settings.retry_after, 1.0):
                self._sweep(seen)
                last_sweep = time.monotonic()
            claimed = self._reclaim(seen)
            handled = self._read_new(block_ms=None if once else BLOCK_MS, seen=seen)
            if on_batch is not None and (claimed or handled):
                on_batch(self.stats)
            if once and not claimed and not handled:
                break
        return self.stats

    def _resume_own(self, seen: set[str] | None = None) -> None:
        """Entries this consumer name had taken but not acknowledged: the previous process
        under this name died. Handle them first, oldest first."""
        last = "0"
        while True:
            reply = self._xreadgroup(last, block_ms=None)
            if not reply:
                return
            for entry_id, data in reply:
                last = entry_id
                if not data:  # trimmed from the stream while pending
                    self._ack(entry_id)
                    continue
                if seen is not None:
                    seen.add(entry_id)
                self._handle(entry_id, data, resumed=True)
            if len(reply) < BATCH_SIZE:
                return

    def _reclaim(self, seen: set[str] | None = None) -> int:
        """Take over entries other consumers left idle for ``retry_after`` (and retry this
        consumer's own failed ones); entries in ``seen`` were already tried in this run."""
        min_idle = int(self.settings.retry_after * 1000)
        start = "0-0"
        handled = 0
        while True:
            reply: list[Any] = self.client.xautoclaim(
                self.keys.hits,
                NOTIFIER_GROUP,
                self.consumer,
                min_idle_time=min_idle,
                start_id=start,
                count=BATCH_SIZE,
            )
            next_start, entries = text(reply[0]), reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            for entry_id in deleted:
                self._ack(text(entry_id))
            for raw_id, data in entries:
                entry_id = text(raw_id)
                if not data or (seen is not None and entry_id in seen):
                    continue
                if seen is not None:
                    seen.add(entry_id)
                self._handle(entry_id, data, resumed=True)
                handled += 1
            if next_start == "0-0":
                return handled
            start = next_start

    def _read_new(self, *, block_ms: int | None, seen: set[str] | None = None) -> int:
        reply = self._xreadgroup(">", block_ms=block_ms)
        for entry_id, data in reply:
            if seen is not None:
                seen.add(entry_id)
            self._handle(entry_id, data, resumed=False)
        return len(reply)

    def _xreadgroup(
        self, last: str, *, block_ms: int | None
    ) -> list[tuple[str, Mapping[bytes, bytes]]]:
        reply = cast(
            "list[Any] | None",
            self.client.xreadgroup(
                NOTIFIER_GROUP,
                self.consumer,
                {self.keys.hits: last},
                count=BATCH_SIZE,
                block=block_ms,
            ),
        )
        if not reply:
            return []
        entries = reply[0][1]
        return [(text(entry_id), data or {}) for entry_id, data in entries]

    def _ack(self, entry_id: str) -> None:
        self.client.xack(self.keys.hits, NOTIFIER_GROUP, entry_id)

    # -- one hit -----------------------------------------------------------------------------

    def _handle(self, entry_id: str, data: Mapping[bytes, bytes], *, resumed: bool) -> None:
        try:
            hit = HitRecord.from_fields(data)
            if not hit.url or not hit.list or not hit.entry:
                raise ValueError("url, list and entry are required")
            if hit.first_seen:
                parse_iso(hit.first_seen)  # the notice record keeps it as a time
        except (ValueError, TypeError, KeyError) as exc:
            self._dead_letter(entry_id, data, f"unreadable hit: {exc}", notice_id=None)
            return
        notice_id = hit.incident
        try:
            self.store.create(hit, actor=self.actor, entry_id=entry_id)
        except HitGone:
            # A purge removed this hit with its (closed, expired) notice after it was read:
            # nothing to make again and nothing to send.
            log.info("hit %s: purged meanwhile with notice %s", entry_id, notice_id)
            self._ack(entry_id)
            return
        status = self.store.status(notice_id)
        if status in CLOSED_STATUSES and hit.reappeared and self._marked(notice_id, entry_id):
            # The content of a closed notice was found online again by a crawl: the queue
            # appended this entry, flagged, and marked it as the one awaiting the reopen. An
            # old entry of a notice closed again since is not one.
            try:
                self.store.reopen(
                    notice_id,
                    actor=self.actor,
                    event="reappeared",
                    detail=f"found online again by crawl {hit.crawl or '-'} on {hit.page}",
                )
                self.stats.reappeared += 1
            except NoticeStateError:  # a recheck reopened it a moment ago
                pass
            status = self.store.status(notice_id)
        if status in OPEN_STATUSES or status in CLOSED_STATUSES:
            self.stats.already_sent += 1
            self._ack(entry_id)
            return
        if status in {"unroutable", "failed", "unclassified", "awaiting_manual"}:
            # Settled for now; an analyst's `notices resend`, `classify` or `mark-sent` takes
            # it from here.
            self._ack(entry_id)
            return
        outcome = self._attempt(notice_id, entry_id, data, resumed=resumed)
        if outcome in {"sent", "unroutable", "already", "unclassified", "awaiting_manual", "gone"}:
            self._ack(entry_id)

    def _analyst_owner(self, actor: str) -> str:
        """The lock owner of an analyst's command: never the name of a notifier daemon (a
        daemon's name may take over its dead predecessor's lock; a command must not)."""
        return f"{self.consumer}/{actor}/{os.getpid()}".replace("|", "/")

    def _reroute(self, notice: Notice) -> Route:
        """Route the notice again; when nobody is found now but an analyst approved a route
        before, that route stands."""
        route = self.router.route(route_target(notice.hit), notice.hit.ip or None)
        stored = notice.route
        if route.recipient is None and stored is not None and stored.method == "approved":
            return stored
        return route

    def _marked(self, notice_id: str, entry_id: str) -> bool:
        """Whether ``entry_id`` is the queue's pending reappearance of this notice."""
        marker = self.client.hget(self.keys.hits_reappeared, notice_id)
        return marker is not None and text(cast("bytes", marker)) == entry_id

    def _attempt(
        self,
        notice_id: str,
        entry_id: str,
        data: Mapping[bytes, bytes] | None,
        *,
        resumed: bool,
    ) -> str:
        """One try at the first notice, under the notice's lock; returns its outcome
        (``busy`` when another process holds the lock, ``gone`` when the notice was purged)."""
        try:
            with self.store.lock(notice_id, owner=self.consumer):
                return self.send_first(notice_id, resumed=resumed, entry_id=entry_id)
        except LockBusy:
            self.stats.busy += 1
            return "busy"
        except NoticeNotFound:
            # Purged by retention (or an analyst) between reading the hit and sending: its
            # hit went with it, so there is nothing left to send.
            log.info("notice %s: purged meanwhile, nothing to send", notice_id)
            return "gone"
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception as exc:  # a bug or an unexpected failure: count it, retry later
            log.exception("notice %s: unexpected error", notice_id)
            kind = type(exc).__name__
            self.stats.errors[kind] = self.stats.errors.get(kind, 0) + 1
            return self._failed(notice_id, entry_id, data, f"{kind}: {exc}", permanent=False)

    def _sweep(self, seen: set[str] | None) -> int:
        """Retry notices left ``queued`` with no stream entry pending: a resend that failed
        transiently, or an entry acknowledged by an older process. Only those idle for
        ``retry_after``; a notice whose entry is still pending is the stream's to retry."""
        now = self.clock()
        handled = 0
        for notice_id in self.store.ids("queued"):
            if seen is not None and notice_id in seen:
                continue
            try:
                notice = self.store.get(notice_id)
            except QueueError:
                continue
            if now - (notice.time("updated") or notice.created) < self.settings.retry_after:
                continue
            entry = notice.fields.get("stream_entry", "")
            if entry and self.client.xpending_range(
                self.keys.hits, NOTIFIER_GROUP, min=entry, max=entry, count=1
            ):
                continue
            if seen is not None:
                seen.add(notice_id)
            self._attempt(notice_id, "", None, resumed=True)
            handled += 1
        return handled

    def send_first(
        self,
        notice_id: str,
        *,
        resumed: bool = False,
        entry_id: str = "",
        route: Route | None = None,
    ) -> str:
        """Classify, route (unless ``route`` is given) and deliver the first notice; returns
        sent, awaiting_manual (prepared for sending by hand), already (someone else sent or
        prepared it), unclassified, unroutable, retrying or dead. The caller holds the
        notice's lock."""
        notice = self.store.get(notice_id)
        if (
            notice.status in OPEN_STATUSES
            or notice.status in CLOSED_STATUSES
            or notice.status == "awaiting_manual"
        ):
            # Sent by another process between our look at the status and the lock.
            self.stats.already_sent += 1
            return "already"
        if resumed and notice.fields.get("sending_since"):
            self.stats.resumed += 1
            self.store.record(
                notice_id,
                "resumed",
                actor=self.actor,
                detail="an earlier send was interrupted; sending again with the same "
                f"Message-ID {notice.fields.get('sending', '')}",
            )
        if not notice.fields.get("classification"):
            if not self._classify_automatically(notice):
                return "unclassified"
            notice = self.store.get(notice_id)
        if route is None:
            route = self._reroute(notice)
        self.store.routed(notice_id, route, actor=self.actor)
        if route.recipient is None:
            self.stats.unroutable += 1
            return "unroutable"
        reopens = notice.count("reopens")
        try:
            outgoing = self.sender.render(
                notice,
                route,
                kind="reappearance" if reopens else "notice",
                sequence=reopens,
            )
        except NoticeError as exc:
            self._failed(notice_id, entry_id, None, f"cannot render: {exc}", permanent=True)
            return "dead"
        try:
            receipt = self.sender.deliver(notice, outgoing)
        except DeliveryError as exc:
            fallback = self._to_fallbacks(notice, route, exc, outgoing) if exc.permanent else None
            if fallback is None:
                return self._failed(notice_id, entry_id, None, str(exc), permanent=exc.permanent)
            outgoing, receipt = fallback
        if is_manual(receipt):
            return self._prepared(notice_id, receipt, outgoing)
        delay = self.settings.recheck_delay(0)
        self.store.sent(
            notice_id,
            receipt,
            actor=self.actor,
            message_id=outgoing.message_id,
            recheck_at=self.clock() + delay,
        )
        self.stats.sent += 1
        return "sent"

    def _prepared(self, notice_id: str, receipt: DeliveryReceipt, outgoing: OutgoingNotice) -> str:
        """The notice was written for an analyst to send: ``awaiting_manual``, no recheck."""
        self.store.record(
            notice_id,
            "prepared",
            actor=self.actor,
            status="awaiting_manual",
            fields={
                "prepared_at": self.clock(),
                "message_id": outgoing.message_id,
                "manual_destination": receipt.destination,
                "delivered_via": receipt.channel,
                "sending_since": "",
                "last_error": "",
            },
            detail=f"{receipt.channel} {receipt.destination}: {receipt.detail}; awaiting manual "
            "sending (then `hotline notices mark-sent`)",
        )
        self.stats.awaiting_manual[notice_id] = receipt.destination
        return "awaiting_manual"

    def resend(self, notice_id: str, *, actor: str) -> str:
        """An analyst's resend: route again (the directory may have changed) and deliver.

        A notice that never went out (queued, unroutable, failed) gets a fresh set of attempts
        and goes through the same path as a new hit. One that went out is sent again as the
        same message (same reference and Message-ID). A closed one is refused
        (:class:`NoticeStateError`): its content is gone; ``reopen`` it if it is back.
        """
        notice = self.store.get(notice_id)
        if notice.status in CLOSED_STATUSES:
            closed = notice.time("closed_at") or notice.time("first_seen_gone")
            when = f" on {iso(closed)}" if closed else ""
            raise NoticeStateError(
                f"notice {reference_for(notice_id)} is closed ({notice.status}{when}): "
                "there is nothing to resend; if the content is back, "
                "`hotline notices reopen` sends a new notice"
            )
        if notice.status == "unclassified":
            raise NoticeStateError(
                f"notice {reference_for(notice_id)} is unclassified: nothing can be sent before "
                "it is classified (`hotline notices classify`)"
            )
        with self.store.lock(notice_id, owner=self._analyst_owner(actor)):
            notice = self.store.get(notice_id)  # as it is now, under the lock
            never_sent = ("queued", "unroutable", "failed", "awaiting_manual")
            if notice.status in never_sent:
                self.store.record(
                    notice_id,
                    "resend_requested",
                    actor=actor,
                    status="queued",
                    fields={"attempts": 0},
                    expect=never_sent,
                )
                return self.send_first(notice_id)
            if notice.status not in OPEN_STATUSES:
                raise NoticeStateError(
                    f"notice {reference_for(notice_id)} is {notice.status}: nothing to resend"
                )
            route = self._reroute(notice)
            if route.recipient is None:
                raise NoticeStateError(
                    f"notice {notice_id}: no recipient now: {'; '.join(route.trail)}"
                )
            self.store.routed(notice_id, route, actor=actor)
            reopens = notice.count("reopens")
            outgoing = self.sender.render(
                notice, route, kind="reappearance" if reopens else "notice", sequence=reopens
            )
            receipt = self.sender.deliver(notice, outgoing)
            self.store.record(
                notice_id,
                "resent",
                actor=actor,
                fields={"last_message_at": self.clock()},
                detail=f"{receipt.channel} to {receipt.destination}: {receipt.detail}".rstrip(": "),
            )
            return "resent"

    def reopen(self, notice_id: str, *, actor: str, reason: str) -> str:
        """An analyst's reopen of a closed notice (the content is back): reopened, then sent
        as a new numbered notice with the same reference; returns the send's outcome.
        Raises :class:`NoticeStateError` when the notice is not closed."""
        with self.store.lock(notice_id, owner=self._analyst_owner(actor)):
            self.store.reopen(notice_id, actor=actor, event="reopened", detail=reason)
            return self.send_first(notice_id)

    def _failed(
        self,
        notice_id: str,
        entry_id: str,
        data: Mapping[bytes, bytes] | None,
        error: str,
        *,
        permanent: bool,
    ) -> str:
        self.store.record(
            notice_id,
            "delivery_failed",
            actor=self.actor,
            detail=error,
            fields={"last_error": error, "sending_since": ""},
            increment={"attempts": 1},
        )
        attempts = self.store.get(notice_id).count("attempts")
        if permanent or attempts >= self.settings.max_attempts:
            reason = "permanent failure" if permanent else f"{attempts} attempts"
            if entry_id:
                self._dead_letter(entry_id, data, error, notice_id=notice_id, attempts=attempts)
            self.store.record(
                notice_id,
                "dead_lettered",
                actor=self.actor,
                status="failed",
                detail=f"gave up after {reason}: {error}",
            )
            return "dead"
        self.stats.retrying += 1
        return "retrying"

    def _dead_letter(
        self,
        entry_id: str,
        data: Mapping[bytes, bytes] | None,
        error: str,
        *,
        notice_id: str | None,
        attempts: int = 0,
    ) -> None:
        record: dict[str, str] = {
            "entry": entry_id,
            "notice": notice_id or "",
            "error": error[:2000],
            "attempts": str(attempts),
            "consumer": self.consumer,
            "time": iso(self.clock()),
        }
        hit: Mapping[bytes, bytes] | Mapping[str, str] = data or {}
        if data is None and notice_id:
            # A delivery failure: the hit is copied from the notice, so the dead letter is
            # complete on its own (the stream entry may be trimmed later).
            hit = self.store.get(notice_id).hit.to_fields()
        for key, value in hit.items():
            # An unreadable entry may not even be UTF-8: keep what can be shown.
            name = _lenient_text(key)
            if name not in record:
                record[name] = _lenient_text(value)
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keys.dead_letters, record)  # type: ignore[arg-type]
        pipe.xack(self.keys.hits, NOTIFIER_GROUP, entry_id)
        pipe.execute()
        self.stats.dead_lettered += 1

    def _classify_automatically(self, notice: Notice) -> bool:
        """Give the notice the classification its list's category maps to, recording where
        it came from; with none, move it to ``unclassified`` and return False."""
        hit = notice.hit
        decision = self.classifier.decide(hit.list, hit.category)
        if decision is None:
            self.stats.unclassified += 1
            self.store.record(
                notice.id,
                "unclassified",
                actor=self.actor,
                status="unclassified",
                detail=f"list {hit.list!r} category {hit.category!r} maps to no X-ARF "
                "classification: nothing sent; an analyst decides with "
                "`hotline notices classify`",
            )
            return False
        self.store.record(
            notice.id,
            "classified",
            actor=self.actor,
            fields={"classification": decision.value},
            detail=f"{decision.value} from {decision.source}",
        )
        return True

    def classify(self, notice_id: str, value: str, *, actor: str, reason: str = "") -> str:
        """An analyst's classification of a notice not sent yet (``unclassified``, or
        ``queued``/``unroutable``/``failed``): recorded with the analyst's name and reason,
        stored on the notice, then the notice goes the way of a new hit (routed, delivered).
        Returns :meth:`send_first`'s outcome.

        Raises:
            NoticeError: ``value`` is not an X-ARF classification, or the notice already
                went out (its reports carried the classification it had then).
        """
        try:
            chosen = normalise_classification(value)
        except ValueError as exc:
            raise NoticeError(str(exc)) from None
        notice = self.store.get(notice_id)
        if notice.status not in {"unclassified", "queued", "unroutable", "failed"}:
            raise NoticeError(
                f"notice {notice_id} is {notice.status}: it was already sent (or prepared) with "
                f"classification {notice.fields.get('classification') or '(none)'}"
            )
        with self.store.lock(notice_id, owner=self._analyst_owner(actor)):
            previous = notice.fields.get("classification", "")
            change = f" (was {previous})" if previous and previous != chosen else ""
            self.store.record(
                notice_id,
                "classified",
                actor=actor,
                status="queued",
                fields={
                    "classification": chosen,
                    "classified_by": actor,
                    "classification_reason": reason,
                    "attempts": 0,
                },
                detail=f"{chosen}{change} by {actor}" + (f": {reason}" if reason else ""),
                expect=("unclassified", "queued", "unroutable", "failed"),
            )
            return self.send_first(notice_id)

    def _to_fallbacks(
        self, notice: Notice, route: Route, error: DeliveryError, refused: OutgoingNotice
    ) -> tuple[OutgoingNotice, DeliveryReceipt] | None:
        """After a permanent refusal, the recipient's further abuse addresses in order; the
        first that accepts wins. ``None`` when there are none or all refuse."""
        recipient = route.recipient
        if recipient is None or recipient.channel != "smtp":
            return None
        failed, last = recipient.address, error
        for index, address in enumerate(recipient.fallbacks):
            self.store.record(
                notice.id,
                "fallback",
                actor=self.actor,
                detail=f"{failed} refused the notice permanently ({last}); trying {address}",
            )
            nxt = replace(recipient, address=address, fallbacks=recipient.fallbacks[index + 1 :])
            outgoing = self.sender.render(
                notice, route, kind=refused.kind, sequence=refused.sequence, recipient=nxt
            )
            try:
                return outgoing, self.sender.deliver(notice, outgoing)
            except DeliveryError as exc:
                if not exc.permanent:
                    return None
                failed, last = address, exc
        return None

    def approve_route(self, notice_id: str, *, actor: str) -> str:
        """An analyst approves the suggested recipient of an unroutable notice (RFC 2142
        ``abuse@`` its domain): recorded with the analyst's name, then sent like a routed
        notice. Returns the outcome of :meth:`send_first`; raises :class:`NoticeStateError`
        when the notice is not unroutable or has no suggestion."""
        notice = self.store.get(notice_id)
        route = notice.route
        if notice.status != "unroutable" or route is None or route.suggested is None:
            why = (
                f"it is {notice.status}"
                if notice.status != "unroutable"
                else "its route has no suggested recipient"
            )
            raise NoticeStateError(f"notice {notice_id}: no route to approve: {why}")
        suggested = route.suggested
        approved = replace(
            route,
            method="approved",
            recipient=suggested,
            provider=route.provider or suggested.provider,
            suggested=None,
            trail=(*route.trail, f"approved by {actor}: {suggested.address} receives the notice"),
        )
        with self.store.lock(notice_id, owner=self._analyst_owner(actor)):
            self.store.record(
                notice_id,
                "route_approved",
                actor=actor,
                status="queued",
                fields={"attempts": 0},
                detail=f"suggested recipient {suggested.address} approved",
                expect=("unroutable",),
            )
            return self.send_first(notice_id, route=approved)


def _lenient_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
