"""The notifier on its consumer group, against a real redis-server and real delivery servers.

Everything is real except the clock of the content: hits are enqueued with the project's own
queue (or, for broken entries, XADDed by hand), notices are rendered by the real renderer and
delivered to an aiosmtpd server, a recording webhook receiver or an outbox directory. What is
asserted is what can be observed from outside: messages received, the stream's pending
entries (XPENDING), the dead-letter stream, the notice's status and its timeline. Nothing
sleeps: stale entries are made "stale" with ``retry_after=0`` (XAUTOCLAIM's min-idle 0).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from store.errors import QueueError
from store.keys import NOTIFIER_GROUP, Keys
from store.lists import ClassificationMap
from store.queue import HitQueue, HitRecord
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.channels.signature import SIGNATURE_HEADER, verify_signature
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.channels.webhook import IDEMPOTENCY_HEADER, WebhookChannel, WebhookSettings
from takedown.directory import ProviderDirectory
from takedown.notice import NoticeFacts, NoticeRenderer, message_id_for
from takedown.notices import NoticeStore
from takedown.notifier import NoticeSender, Notifier, NotifierStats
from takedown.routing import Router
from takedown.settings import TakedownSettings
from tests.builders import TEST_CLASSIFICATION, TEST_IDENTITY, label_hex, make_hit
from tests.helpers import HOST_A, HOST_B
from tests.servers.smtp import SmtpServer
from tests.servers.webhook import WebhookServer

ALPHA = "abuse@alpha-hosting.example"
BETA = "abuse@beta-hosting.example"
SECRET = "whsec-notifier-test-41d2"
DIRECTORY = f"""
- name: Alpha Hosting
  cidrs: [{HOST_A}/32]
  abuse: {ALPHA}
- name: Beta Hosting
  cidrs: [{HOST_B}/32]
  abuse: {BETA}
"""
#: Long enough that nothing in a test ever counts as idle for it.
NEVER = 3600.0


@dataclass
class Rig:
    client: redis.Redis
    keys: Keys
    store: NoticeStore
    smtp: SmtpServer
    outbox_dir: Path
    closers: list[Deliverer] = field(default_factory=list)

    def notifier(
        self,
        consumer: str = "c1",
        *,
        max_attempts: int = 5,
        retry_after: float = NEVER,
        directory: str = DIRECTORY,
        smtp: bool = True,
        webhook: bool = False,
        fallback_to_outbox: bool = False,
        classification: Mapping[str, ClassificationMap] = TEST_CLASSIFICATION,
    ) -> Notifier:
        router = Router(ProviderDirectory.from_yaml(directory), ProviderDirectory.empty(), None)
        deliverer = Deliverer(
            SmtpChannel(SmtpSettings(self.smtp.host, self.smtp.port, security="none"))
            if smtp
            else None,
            WebhookChannel(WebhookSettings(secret=SECRET, backoff=0)) if webhook else None,
            OutboxChannel(OutboxSettings(self.outbox_dir)),
            fallback_to_outbox=fallback_to_outbox,
        )
        self.closers.append(deliverer)
        sender = NoticeSender(self.store, NoticeRenderer(TEST_IDENTITY), deliverer, NoticeFacts)
        settings = TakedownSettings(
            max_attempts=max_attempts, retry_after=retry_after, classification=classification
        )
        return Notifier(
            self.client,
            self.keys,
            router=router,
            sender=sender,
            settings=settings,
            consumer=consumer,
        )

    def enqueue(self, hit: HitRecord) -> str:
        entry_id = HitQueue(self.client, self.keys).enqueue(hit)
        assert entry_id is not None
        return entry_id

    def pending(self) -> dict[str, str]:
        """Pending entry id -> the consumer that holds it."""
        rows = cast(
            "list[dict[str, Any]]",
            self.client.xpending_range(self.keys.hits, NOTIFIER_GROUP, "-", "+", 100),
        )
        return {_s(r["message_id"]): _s(r["consumer"]) for r in rows}

    def dead(self) -> list[dict[str, str]]:
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]", self.client.xrange(self.keys.dead_letters)
        )
        return [{_s(k): v.decode("utf-8", "replace") for k, v in data.items()} for _, data in rows]

    def events(self, notice_id: str) -> list[str]:
        return [e.event for e in self.store.timeline(notice_id)]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def to_addr(rig: Rig, index: int) -> str:
    return parseaddr(str(rig.smtp.messages[index].message["To"]))[1]


@pytest.fixture
def rig(
    redis_client: redis.Redis, redis_prefix: str, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[Rig]:
    keys = Keys(redis_prefix)
    result = Rig(redis_client, keys, NoticeStore(redis_client, keys), smtp_server, tmp_path / "out")
    try:
        yield result
    finally:
        for deliverer in result.closers:
            deliverer.close()


# -- exactly once --------------------------------------------------------------------------------


def test_one_message_per_hit_and_a_second_run_sends_nothing(rig: Rig) -> None:
    hits = [make_hit(1), make_hit(2), make_hit(3, HOST_B)]
    for hit in hits:
        rig.enqueue(hit)
    # The queue is idempotent per incident: the same hit again adds nothing.
    assert HitQueue(rig.client, rig.keys).enqueue(hits[0]) is None

    stats = rig.notifier().run(once=True)
    assert stats.sent == 3
    messages = rig.smtp.wait_for_messages(3)
    assert len(messages) == 3
    by_id = {str(m.message["Message-ID"]): m for m in messages}
    for hit in hits:
        message = by_id[message_id_for(TEST_IDENTITY, hit.incident, "notice", 0)]
        assert message.rcpt_tos == ((ALPHA if hit.ip == HOST_A else BETA),)
        notice = rig.store.get(hit.incident)
        assert notice.status == "sent"
        assert notice.fields["message_id"] == str(message.message["Message-ID"])
        assert rig.events(hit.incident) == ["queued", "classified", "routed", "sent"]
    assert sorted(rig.store.ids()) == sorted(h.incident for h in hits)
    assert rig.pending() == {}

    again = rig.notifier().run(once=True)
    assert (again.sent, again.already_sent) == (0, 0)
    assert len(rig.smtp.messages) == 3


def test_the_same_hit_delivered_twice_makes_one_notice(rig: Rig) -> None:
    hit = make_hit(1)
    rig.enqueue(hit)
    # A second copy in the stream (what at-least-once delivery can always produce).
    rig.client.xadd(rig.keys.hits, hit.to_fields())  # type: ignore[arg-type]
    stats = rig.notifier().run(once=True)
    assert (stats.sent, stats.already_sent) == (1, 1)
    assert len(rig.smtp.messages) == 1
    assert rig.store.ids() == [hit.incident]
    assert rig.events(hit.incident) == ["queued", "classified", "routed", "sent"]
    assert rig.pending() == {}


# -- failures, retries and dead letters ----------------------------------------------------------


def test_transient_refusal_stays_pending_and_is_delivered_by_the_next_run(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    rig.smtp.refuse(451, "try again later", times=1)

    first = rig.notifier("c1", retry_after=0).run(once=True)
    assert (first.sent, first.retrying) == (0, 1)
    notice = rig.store.get(hit.incident)
    assert notice.status == "queued"
    assert notice.count("attempts") == 1
    assert "451" in notice.fields["last_error"]
    assert rig.events(hit.incident) == ["queued", "classified", "routed", "delivery_failed"]
    assert rig.pending() == {entry_id: "c1"}
    assert rig.smtp.messages == []

    # Another notifier takes the failed entry over (XAUTOCLAIM, min idle 0) and delivers it.
    second = rig.notifier("c2", retry_after=0).run(once=True)
    assert second.sent == 1
    [message] = rig.smtp.wait_for_messages(1)
    assert message.rcpt_tos == (ALPHA,)
    assert rig.store.status(hit.incident) == "sent"
    assert rig.events(hit.incident)[-1] == "sent"
    assert rig.pending() == {}
    assert rig.dead() == []


def test_own_pending_entry_is_resumed_by_the_same_consumer(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    rig.smtp.refuse(451, times=1)
    rig.notifier("c1").run(once=True)
    assert rig.pending() == {entry_id: "c1"}
    # A restart under the same name resumes its own pending entries at once, idle or not.
    assert rig.notifier("c1").run(once=True).sent == 1
    assert rig.pending() == {}
    assert len(rig.smtp.messages) == 1


def test_permanent_refusal_is_dead_lettered_at_once_and_resend_delivers(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    rig.smtp.refuse(550, "mailbox unavailable", times=1)

    notifier = rig.notifier(max_attempts=5)
    stats = notifier.run(once=True)
    assert (stats.sent, stats.dead_lettered) == (0, 1)
    assert rig.pending() == {}  # acknowledged: a 5xx is not retried
    [dead] = rig.dead()
    assert dead["entry"] == entry_id
    assert dead["notice"] == hit.incident
    assert dead["attempts"] == "1"
    assert "550" in dead["error"]
    # The dead letter carries the hit itself, not only a reference to it.
    assert (dead["url"], dead["sha256"], dead["entry"]) == (hit.url, hit.sha256, entry_id)
    notice = rig.store.get(hit.incident)
    assert notice.status == "failed"
    assert rig.events(hit.incident)[-2:] == ["delivery_failed", "dead_lettered"]
    assert "permanent failure" in rig.store.timeline(hit.incident)[-1].detail
    assert rig.smtp.messages == []

    # Nothing retries it by itself ...
    assert rig.notifier().run(once=True).sent == 0
    # ... until an analyst resends it, once the mailbox accepts mail again.
    assert notifier.resend(hit.incident, actor="analyst@test") == "sent"
    [message] = rig.smtp.wait_for_messages(1)
    assert str(message.message["Message-ID"]) == message_id_for(
        TEST_IDENTITY, hit.incident, "notice", 0
    )
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    assert notice.count("attempts") == 0
    events = rig.store.timeline(hit.incident)
    assert [e.event for e in events][-3:] == ["resend_requested", "routed", "sent"]
    assert events[-3].actor == "analyst@test"


def test_transient_failures_up_to_max_attempts_are_dead_lettered(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    rig.smtp.refuse(451, "greylisted", times=None)
    for attempt in (1, 2):
        stats = rig.notifier(max_attempts=3, retry_after=0).run(once=True)
        assert (stats.retrying, stats.dead_lettered) == (1, 0)
        assert rig.store.get(hit.incident).count("attempts") == attempt
        assert rig.pending() == {entry_id: "c1"}
        assert rig.store.status(hit.incident) == "queued"
    stats = rig.notifier(max_attempts=3, retry_after=0).run(once=True)
    assert (stats.retrying, stats.dead_lettered) == (0, 1)
    assert rig.pending() == {}
    [dead] = rig.dead()
    assert (dead["entry"], dead["attempts"]) == (entry_id, "3")
    assert "451" in dead["error"]
    assert rig.store.status(hit.incident) == "failed"
    assert rig.events(hit.incident).count("delivery_failed") == 3
    assert "after 3 attempts" in rig.store.timeline(hit.incident)[-1].detail
    assert rig.smtp.messages == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"junk": "not a hit"}, id="no-hit-fields"),
        pytest.param({"url": b"\xff\xfe", "list": "known", "entry": "k1"}, id="not-utf8"),
        pytest.param({"url": f"http://{HOST_A}/x.jpg", "list": "known"}, id="no-entry"),
        pytest.param(
            {"url": f"http://{HOST_A}/x.jpg", "list": "known", "entry": "k9", "status": "ok"},
            id="bad-integer",
        ),
        pytest.param(
            {"url": f"http://{HOST_A}/x.jpg", "list": "known", "entry": "k9", "first_seen": "soon"},
            id="bad-time",
        ),
    ],
)
def test_unreadable_entry_is_dead_lettered_and_the_loop_goes_on(
    rig: Rig, fields: dict[str, str | bytes]
) -> None:
    junk_id = _s(rig.client.xadd(rig.keys.hits, fields))  # type: ignore[arg-type]
    good = make_hit(1)
    rig.enqueue(good)
    stats = rig.notifier().run(once=True)
    assert (stats.sent, stats.dead_lettered) == (1, 1)
    [dead] = rig.dead()
    assert dead["entry"] == junk_id
    assert dead["error"].startswith("unreadable hit:")
    assert dead["notice"] == ""
    assert rig.pending() == {}
    assert rig.store.ids() == [good.incident]  # no notice for the junk
    assert len(rig.smtp.messages) == 1


# -- several consumers ---------------------------------------------------------------------------


def test_stale_entries_of_a_dead_consumer_are_reclaimed_only_once_idle(rig: Rig) -> None:
    hits = [make_hit(1), make_hit(2, HOST_B)]
    entry_ids = [rig.enqueue(hit) for hit in hits]
    rig.notifier("c1").ensure_group()
    # c1 takes both entries and dies before handling them.
    rig.client.xreadgroup(NOTIFIER_GROUP, "c1", {rig.keys.hits: ">"}, count=10)
    assert rig.pending() == dict.fromkeys(entry_ids, "c1")

    patient = rig.notifier("c2", retry_after=NEVER).run(once=True)
    assert patient.sent == 0
    assert rig.pending() == dict.fromkeys(entry_ids, "c1")
    assert rig.smtp.messages == []

    eager = rig.notifier("c2", retry_after=0).run(once=True)
    assert eager.sent == 2
    assert rig.pending() == {}
    assert sorted(m.rcpt_tos for m in rig.smtp.wait_for_messages(2)) == [(ALPHA,), (BETA,)]
    for hit in hits:
        notice = rig.store.get(hit.incident)
        assert notice.status == "sent"
        assert {e.actor for e in rig.store.timeline(hit.incident)} == {"notifier@c2"}


def test_a_notice_locked_by_another_owner_is_skipped_then_handled(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    notifier = rig.notifier("c1", retry_after=0)
    stop = threading.Event()

    def guard(stats: NotifierStats) -> None:
        # A run must try a busy notice once, not spin on it until the lock expires.
        if stats.busy > 1:
            stop.set()

    with rig.store.lock(hit.incident, owner="other-host"):
        stats = notifier.run(once=True, stop=stop, on_batch=guard)
        assert stats.busy == 1
        assert rig.pending() == {entry_id: "c1"}
        assert rig.store.status(hit.incident) == "queued"
        assert rig.events(hit.incident) == ["queued"]
        assert rig.smtp.messages == []
    stats = notifier.run(once=True)
    assert stats.sent == 1
    assert rig.pending() == {}
    assert rig.store.status(hit.incident) == "sent"
    assert len(rig.smtp.messages) == 1


# -- channels and routing ------------------------------------------------------------------------


def test_webhook_provider_gets_a_signed_post_with_the_idempotency_key(rig: Rig) -> None:
    with WebhookServer(HOST_B) as receiver:
        directory = f"""
- name: Beta Hosting
  cidrs: [{HOST_B}/32]
  abuse: {BETA}
  channel: webhook
  webhook_url: {receiver.url("/abuse/notices")}
"""
        hit = make_hit(1, HOST_B)
        rig.enqueue(hit)
        stats = rig.notifier(directory=directory, webhook=True).run(once=True)
        assert stats.sent == 1
        [request] = receiver.wait_for_requests(1)
    assert request.method == "POST"
    assert request.path == "/abuse/notices"
    assert request.headers[IDEMPOTENCY_HEADER.lower()] == f"{hit.incident}.notice.0"
    signature = request.headers[SIGNATURE_HEADER.lower()]
    assert verify_signature(SECRET, signature, request.body)
    assert not verify_signature("some-other-secret", signature, request.body)
    assert not verify_signature(SECRET, signature, request.body + b" ")
    payload = json.loads(request.body)
    assert hit.incident in json.dumps(payload)
    assert hit.url in json.dumps(payload)
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    assert notice.fields["channel"] == "webhook"
    assert rig.smtp.messages == []


def test_outbox_fallback_when_the_wanted_channel_is_not_configured(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    stats = rig.notifier(smtp=False, fallback_to_outbox=True).run(once=True)
    stem = f"{hit.incident}.notice.0"
    # Written to the outbox is prepared, not sent: acknowledged, waiting for mark-sent.
    assert stats.sent == 0
    assert stats.awaiting_manual == {hit.incident: str(rig.outbox_dir / f"{stem}.eml")}
    assert entry_id not in rig.pending()
    assert sorted(p.name for p in rig.outbox_dir.iterdir()) == [f"{stem}.eml", f"{stem}.json"]
    eml = (rig.outbox_dir / f"{stem}.eml").read_bytes()
    assert message_id_for(TEST_IDENTITY, hit.incident, "notice", 0).encode() in eml
    assert ALPHA.encode() in eml
    meta = json.loads((rig.outbox_dir / f"{stem}.json").read_text(encoding="utf-8"))
    assert hit.incident in json.dumps(meta)
    assert rig.store.status(hit.incident) == "awaiting_manual"
    assert rig.client.zscore(rig.keys.recheck, hit.incident) is None
    assert "no smtp channel configured" in rig.store.timeline(hit.incident)[-1].detail
    assert rig.smtp.messages == []


def test_without_fallback_a_missing_channel_is_a_transient_failure(rig: Rig) -> None:
    hit = make_hit(1)
    entry_id = rig.enqueue(hit)
    stats = rig.notifier(smtp=False, fallback_to_outbox=False).run(once=True)
    assert (stats.sent, stats.retrying) == (0, 1)
    assert rig.pending() == {entry_id: "c1"}
    assert rig.store.status(hit.incident) == "queued"
    assert "no smtp is configured" in rig.store.get(hit.incident).fields["last_error"]
    assert not rig.outbox_dir.exists()


def test_unroutable_hit_is_acknowledged_and_waits_for_an_analyst(rig: Rig) -> None:
    hit = make_hit(1, "127.0.0.9")
    rig.enqueue(hit)
    stats = rig.notifier().run(once=True)
    assert (stats.sent, stats.unroutable) == (0, 1)
    assert rig.pending() == {}
    assert rig.store.status(hit.incident) == "unroutable"
    assert rig.smtp.messages == []


def test_data_url_hit_is_routed_by_its_page(rig: Rig) -> None:
    digest = label_hex("benign inline test image", "sha256")
    hit = make_hit(
        1,
        HOST_A,
        url=f"data:image/png;sha256={digest}",
        page=f"http://{HOST_B}/inline.html",
        sha256=digest,
        ip=None,
    )
    rig.enqueue(hit)
    assert rig.notifier().run(once=True).sent == 1
    [message] = rig.smtp.wait_for_messages(1)
    assert message.rcpt_tos == (BETA,)
    route = rig.store.get(hit.incident).route
    assert route is not None
    assert (route.host, route.method, route.provider) == (HOST_B, "directory-cidr", "Beta Hosting")


# -- resend --------------------------------------------------------------------------------------


def test_resend_of_a_sent_notice_repeats_the_message_and_a_removed_one_is_refused(
    rig: Rig,
) -> None:
    hit = make_hit(1)
    rig.enqueue(hit)
    notifier = rig.notifier()
    assert notifier.run(once=True).sent == 1
    assert notifier.resend(hit.incident, actor="analyst@test") == "resent"
    first, second = rig.smtp.wait_for_messages(2)
    assert str(first.message["Message-ID"]) == str(second.message["Message-ID"])
    assert str(second.message["Message-ID"]) == rig.store.get(hit.incident).fields["message_id"]
    assert second.rcpt_tos == (ALPHA,)
    assert rig.store.status(hit.incident) == "sent"
    assert rig.events(hit.incident)[-2:] == ["routed", "resent"]

    rig.store.record(hit.incident, "removed", actor="test", status="removed", stop_rechecks=True)
    with pytest.raises(QueueError, match="closed"):
        notifier.resend(hit.incident, actor="analyst@test")
    assert len(rig.smtp.messages) == 2
    assert rig.events(hit.incident)[-1] == "removed"


def test_a_resend_that_failed_for_now_is_retried_by_the_notifier(rig: Rig) -> None:
    hit = make_hit(1)
    HitQueue(rig.client, rig.keys).enqueue(hit)
    rig.smtp.refuse(550, "no such mailbox", times=1)
    rig.notifier().run(once=True)
    assert rig.store.status(hit.incident) == "failed"
    # The analyst resends while the relay is down for a moment: nothing is pending in the
    # stream any more, so only the notifier's sweep of queued notices can pick it up.
    rig.smtp.refuse(451, "try later", times=1)
    outcome = rig.notifier().resend(hit.incident, actor="analyst@test")
    assert outcome == "retrying"
    assert rig.store.status(hit.incident) == "queued"
    assert rig.notifier(retry_after=NEVER).run(once=True).sent == 0
    stats = rig.notifier(retry_after=0).run(once=True)
    assert stats.sent == 1
    assert rig.store.status(hit.incident) == "sent"
    assert len(rig.smtp.messages) == 1
