"""Notices sent by hand (outbox, web form) and through Cloudflare's API, end to end in the
takedown package: the real notifier, notice store and recheck book on a real redis-server, the
real renderer, files in a directory, and a recording HTTP server as the Cloudflare API.

One clock drives store, notifier and book, so "sent at" and due times are exact and nothing
sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from store.clock import iso
from store.keys import Keys
from store.queue import HitQueue, HitRecord
from store.rechecks import RecheckResult
from takedown.cdn import load_builtin_cdns
from takedown.channels.availability import ChannelAwareRouter
from takedown.channels.cloudflare import CloudflareChannel, CloudflareSettings, RedisReportLedger
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.directory import ProviderDirectory
from takedown.model import CHANNELS
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NotAwaitingManual, NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.recheck import RecheckBook
from takedown.routing import Router
from takedown.settings import TakedownSettings
from tests import builders
from tests.builders import TEST_CLASSIFICATION, TEST_IDENTITY
from tests.helpers import HOST_A, HOST_B, Clock
from tests.servers.webhook import Reply, WebhookServer

T0 = 1_800_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR
FORM = "https://abuse.alpha-hosting.example/report"
SETTINGS = TakedownSettings(
    reminder_interval=DAY,
    escalate_after=30 * DAY,
    recheck_schedule=(2 * HOUR, 6 * HOUR),
    classification=TEST_CLASSIFICATION,
)
FORM_DIRECTORY = f"""
- name: Alpha Hosting
  cidrs: [{HOST_A}/32]
  channel: form
  form_url: {FORM}
- name: Beta Hosting
  cidrs: [{HOST_B}/32]
  abuse: abuse@beta-hosting.example
  channel: outbox
"""
ACCOUNT = "0123456789abcdef0123456789abcdef"


def make_hit(number: int, host: str = HOST_A, **changes: object) -> HitRecord:
    return builders.make_hit(number, host, first_seen=iso(T0 - HOUR), **changes)


@dataclass
class Rig:
    clock: Clock
    store: NoticeStore
    outbox: Path
    deliverer: Deliverer
    router: ChannelAwareRouter

    def notifier(self) -> Notifier:
        sender = NoticeSender(
            self.store, NoticeRenderer(TEST_IDENTITY), self.deliverer, NoticeFacts
        )
        return Notifier(
            self.store.client,
            self.store.keys,
            router=self.router,
            sender=sender,
            settings=SETTINGS,
            consumer="c1",
            clock=self.clock,
        )

    def book(self) -> RecheckBook:
        sender = NoticeSender(
            self.store, NoticeRenderer(TEST_IDENTITY), self.deliverer, NoticeFacts
        )
        return RecheckBook(
            self.store,
            SETTINGS,
            sender=sender,
            router=self.router,
            actor="recheck@t",
            clock=self.clock,
        )

    def enqueue(self, *hits: HitRecord) -> None:
        queue = HitQueue(self.store.client, self.store.keys)
        for hit in hits:
            queue.enqueue(hit)

    def due_at(self, notice_id: str) -> float | None:
        return self.store.client.zscore(self.store.keys.recheck, notice_id)

    def online(self, notice_id: str, url: str) -> RecheckResult:
        return RecheckResult(notice_id, url, "online", "same image", 200, iso(self.clock()))


def make_rig(
    client: redis.Redis,
    prefix: str,
    tmp_path: Path,
    *,
    directory: str,
    cloudflare: CloudflareChannel | None = None,
) -> Rig:
    clock = Clock(T0)
    keys = Keys(prefix)
    store = NoticeStore(client, keys, clock=clock)
    outbox = tmp_path / "outbox"
    deliverer = Deliverer(
        outbox=OutboxChannel(OutboxSettings(outbox)), fallback_to_outbox=True, cloudflare=cloudflare
    )
    available = CHANNELS if cloudflare else [c for c in CHANNELS if c != "cloudflare"]
    router = ChannelAwareRouter(
        Router(ProviderDirectory.from_yaml(directory), load_builtin_cdns(), None), available
    )
    return Rig(clock, store, outbox, deliverer, router)


@pytest.fixture
def rig(redis_client: redis.Redis, redis_prefix: str, tmp_path: Path) -> Iterator[Rig]:
    result = make_rig(redis_client, redis_prefix, tmp_path, directory=FORM_DIRECTORY)
    yield result
    result.deliverer.close()


def test_form_and_outbox_notices_wait_for_an_analyst(rig: Rig) -> None:
    form_hit, outbox_hit = make_hit(1), make_hit(2, HOST_B)
    rig.enqueue(form_hit, outbox_hit)
    stats = rig.notifier().run(once=True)
    assert stats.sent == 0
    assert stats.awaiting_manual == {
        form_hit.incident: FORM,
        outbox_hit.incident: str(rig.outbox / f"{outbox_hit.incident}.notice.0.eml"),
    }
    for hit in (form_hit, outbox_hit):
        notice = rig.store.get(hit.incident)
        assert notice.status == "awaiting_manual"
        assert notice.time("sent_at") is None
        assert rig.due_at(hit.incident) is None  # never rechecked before it is sent
        assert (rig.outbox / f"{hit.incident}.notice.0.eml").is_file()
        assert [e.event for e in rig.store.timeline(hit.incident)] == [
            "queued",
            "classified",
            "routed",
            "prepared",
        ]
    prepared = rig.store.timeline(form_hit.incident)[-1]
    assert prepared.status == "awaiting_manual"
    assert prepared.detail.startswith(f"form {FORM}: prepared {form_hit.incident}.notice.0.eml")
    meta = json.loads((rig.outbox / f"{form_hit.incident}.notice.0.json").read_text("utf-8"))
    assert meta["recipient"]["form_url"] == FORM
    # The hit is settled: a second run prepares nothing again.
    assert rig.notifier().run(once=True).awaiting_manual == {}
    assert len(rig.store.timeline(form_hit.incident)) == 4


def test_an_unsent_notice_gets_no_recheck_reminder_or_escalation(rig: Rig) -> None:
    hit = make_hit(1)
    rig.enqueue(hit)
    rig.notifier().run(once=True)
    rig.clock.advance(40 * DAY)  # past every reminder and escalation delay
    book = rig.book()
    assert book.claim_due(everything=True) == []
    assert book.apply(rig.online(hit.incident, hit.url)) == "closed"
    assert sorted(p.name for p in rig.outbox.iterdir()) == [
        f"{hit.incident}.notice.0.eml",
        f"{hit.incident}.notice.0.json",
    ]
    assert rig.store.get(hit.incident).status == "awaiting_manual"
    assert rig.store.timeline(hit.incident)[-1].event == "prepared"


def test_mark_sent_starts_the_clock_like_a_send(rig: Rig) -> None:
    hit = make_hit(1)
    rig.enqueue(hit)
    rig.notifier().run(once=True)
    rig.clock.advance(3 * HOUR)  # the analyst submits the form three hours later
    marked_at = rig.clock()
    after = rig.store.mark_sent(
        hit.incident, actor="analyst@desk", recheck_at=marked_at + 2 * HOUR, note="ticket 4711"
    )
    assert after.status == "sent"
    assert after.time("sent_at") == marked_at
    assert after.fields["marked_sent_by"] == "analyst@desk"
    assert rig.due_at(hit.incident) == marked_at + 2 * HOUR
    event = rig.store.timeline(hit.incident)[-1]
    assert (event.event, event.status, event.actor) == ("marked_sent", "sent", "analyst@desk")
    assert FORM in event.detail and "ticket 4711" in event.detail
    with pytest.raises(NotAwaitingManual, match="is sent, not awaiting_manual"):
        rig.store.mark_sent(hit.incident, actor="analyst@desk", recheck_at=marked_at)


def test_a_reminder_for_a_marked_notice_is_prepared_not_sent(rig: Rig) -> None:
    hit = make_hit(1)
    rig.enqueue(hit)
    rig.notifier().run(once=True)
    rig.store.mark_sent(hit.incident, actor="analyst@desk", recheck_at=T0 + 2 * HOUR)
    book = rig.book()
    rig.clock.advance(2 * HOUR)
    [target] = book.claim_due()
    assert book.apply(rig.online(target.notice_id, target.url)) == "online"  # too early
    rig.clock.advance(DAY)
    assert book.apply(rig.online(hit.incident, hit.url)) == "reminded"
    assert (rig.outbox / f"{hit.incident}.reminder.1.eml").is_file()
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    assert notice.count("reminders") == 1
    event = rig.store.timeline(hit.incident)[-1]
    assert event.event == "reminder_prepared"
    assert "awaiting manual sending" in event.detail and FORM in event.detail


def test_cloudflare_notice_is_reported_once_through_the_api(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    body = b'{"success": true, "errors": [], "messages": [], "result": "success"}'
    with WebhookServer(HOST_B, default=200) as api:
        api.script(Reply(200, body=body))
        store_keys = Keys(redis_prefix)
        channel = CloudflareChannel(
            CloudflareSettings(
                account_id=ACCOUNT,
                api_token="cf-token-notifier-test",
                reporter_name=TEST_IDENTITY.name,
                reporter_email=TEST_IDENTITY.email,
                api_url=api.url("/client/v4"),
            ),
            ledger=RedisReportLedger(redis_client, store_keys),
        )
        rig = make_rig(redis_client, redis_prefix, tmp_path, directory="", cloudflare=channel)
        # Fetched from an address in Cloudflare's published ranges: the shipped entry routes it.
        hit = make_hit(1, ip="104.16.0.10")
        rig.enqueue(hit)
        try:
            stats = rig.notifier().run(once=True)
            assert stats.sent == 1
            notice = rig.store.get(hit.incident)
            assert notice.status == "sent"
            assert notice.fields["channel"] == "cloudflare"
            assert rig.due_at(hit.incident) == T0 + 2 * HOUR
            sent = rig.store.timeline(hit.incident)[-1]
            assert sent.event == "sent"
            assert sent.detail.startswith("cloudflare to http://")
            assert "result: success" in sent.detail
            assert json.loads(api.requests[0].body)["urls"] == hit.url
            # An analyst's resend of the same message does not report it a second time.
            assert rig.notifier().resend(hit.incident, actor="analyst@desk") == "resent"
            assert len(api.requests) == 1
            assert "not posted again" in rig.store.timeline(hit.incident)[-1].detail
        finally:
            rig.deliverer.close()
        assert not rig.outbox.exists()


def test_cloudflare_without_credentials_is_prepared_for_its_form(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    rig = make_rig(redis_client, redis_prefix, tmp_path, directory="")
    hit = make_hit(1, ip="104.16.0.10")
    rig.enqueue(hit)
    stats = rig.notifier().run(once=True)
    rig.deliverer.close()
    assert stats.awaiting_manual == {hit.incident: "https://abuse.cloudflare.com/"}
    notice = rig.store.get(hit.incident)
    assert notice.status == "awaiting_manual"
    assert notice.fields["channel"] == "form"
    assert notice.fields["recipient"] == "https://abuse.cloudflare.com/"
    route = notice.route
    assert route is not None
    assert "HOTLINE_CLOUDFLARE_API_TOKEN are not set" in route.trail[-1]
