"""The notifier with the routing of issue 11: fallback abuse addresses after a permanent
refusal, and a suggested RFC 2142 route that goes out only once an analyst approves it.

Real redis-server, real loopback RDAP registry, real aiosmtpd server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from email.utils import parseaddr
from pathlib import Path

import pytest
import redis

from store.errors import QueueError
from store.keys import Keys
from store.queue import HitQueue, HitRecord
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.directory import ProviderDirectory
from takedown.model import Recipient, Route
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.rdap import RdapClient
from takedown.routing import Router
from takedown.settings import TakedownSettings
from tests.builders import (
    TEST_CLASSIFICATION,
    TEST_CLASSIFICATION_VALUE,
    TEST_IDENTITY,
    make_hit,
)
from tests.helpers import HOST_A
from tests.servers.rdap import RdapServer
from tests.servers.smtp import SmtpServer

DATA = Path(__file__).parent / "data" / "rdap"
FIRST = "abuse@hosting.example.nl"
SECOND = "abuse-escalation@hosting.example.nl"


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str) -> NoticeStore:
    return NoticeStore(redis_client, Keys(redis_prefix))


def make_notifier(
    store: NoticeStore, smtp: SmtpServer, rdap: RdapClient | None, outbox: Path
) -> Iterator[Notifier]:
    router = Router(ProviderDirectory.empty(), ProviderDirectory.empty(), rdap)
    deliverer = Deliverer(
        SmtpChannel(SmtpSettings(smtp.host, smtp.port, security="none")),
        None,
        OutboxChannel(OutboxSettings(outbox)),
    )
    sender = NoticeSender(store, NoticeRenderer(TEST_IDENTITY), deliverer, NoticeFacts)
    try:
        yield Notifier(
            store.client,
            store.keys,
            router=router,
            sender=sender,
            settings=TakedownSettings(retry_after=3600, classification=TEST_CLASSIFICATION),
            consumer="c1",
        )
    finally:
        deliverer.close()


def enqueue(store: NoticeStore, hit: HitRecord) -> None:
    assert HitQueue(store.client, store.keys).enqueue(hit) is not None


@pytest.fixture
def ripe_registry(rdap_server: RdapServer) -> Iterator[RdapClient]:
    """RIPE-style record (no objectClassName, two abuse addresses) for all of 127/8."""
    doc = json.loads((DATA / "ripe_ip.json").read_text(encoding="utf-8"))
    rdap_server.add_network("127.0.0.0/8", doc)
    with RdapClient(rdap_server.url, timeout=5.0) as client:
        yield client


def recipients(smtp: SmtpServer) -> list[str]:
    return [parseaddr(str(m.message["To"]))[1] for m in smtp.messages]


def test_a_permanent_refusal_falls_back_to_the_next_abuse_address(
    store: NoticeStore, smtp_server: SmtpServer, ripe_registry: RdapClient, tmp_path: Path
) -> None:
    hit = make_hit(1)
    enqueue(store, hit)
    smtp_server.refuse(550, "no such mailbox", at="rcpt", times=1)
    for notifier in make_notifier(store, smtp_server, ripe_registry, tmp_path):
        notifier.run(once=True)
    assert recipients(smtp_server) == [SECOND]
    notice = store.get(hit.incident)
    assert notice.status == "sent"
    events = store.timeline(hit.incident)
    fallback = [e for e in events if e.event == "fallback"]
    assert len(fallback) == 1
    assert FIRST in fallback[0].detail and SECOND in fallback[0].detail
    assert "550" in fallback[0].detail


def test_when_every_address_refuses_the_notice_fails(
    store: NoticeStore, smtp_server: SmtpServer, ripe_registry: RdapClient, tmp_path: Path
) -> None:
    hit = make_hit(2)
    enqueue(store, hit)
    smtp_server.refuse(550, "no such mailbox", at="rcpt", times=2)
    for notifier in make_notifier(store, smtp_server, ripe_registry, tmp_path):
        notifier.run(once=True)
    assert smtp_server.messages == []
    assert store.get(hit.incident).status == "failed"
    assert [e.event for e in store.timeline(hit.incident)].count("fallback") == 1


def test_a_temporary_refusal_does_not_jump_to_the_fallback(
    store: NoticeStore, smtp_server: SmtpServer, ripe_registry: RdapClient, tmp_path: Path
) -> None:
    hit = make_hit(3)
    enqueue(store, hit)
    smtp_server.refuse(451, "try again later", at="rcpt", times=1)
    for notifier in make_notifier(store, smtp_server, ripe_registry, tmp_path):
        notifier.run(once=True)
    assert smtp_server.messages == []
    assert store.get(hit.incident).status == "queued"  # retried later, same address
    assert "fallback" not in [e.event for e in store.timeline(hit.incident)]


def test_the_suggested_route_waits_for_an_analyst_then_goes_out(
    store: NoticeStore, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    hit = make_hit(4, url="http://img.example.net/4.jpg", page="http://img.example.net/")
    assert hit.ip == HOST_A  # the crawl's address: no DNS lookup
    enqueue(store, hit)
    for notifier in make_notifier(store, smtp_server, None, tmp_path):
        notifier.run(once=True)
        notice = store.get(hit.incident)
        assert notice.status == "unroutable"
        assert notice.route is not None and notice.route.suggested is not None
        assert notice.route.suggested.address == "abuse@example.net"
        notifier.run(once=True)
        assert smtp_server.messages == []  # never sent on its own

        assert notifier.approve_route(hit.incident, actor="analyst@alice") == "sent"
        with pytest.raises(QueueError, match="no route to approve: it is sent"):
            notifier.approve_route(hit.incident, actor="analyst@alice")
    assert recipients(smtp_server) == ["abuse@example.net"]
    after = store.get(hit.incident)
    assert after.status == "sent"
    assert after.route is not None and after.route.method == "approved"
    approved = [e for e in store.timeline(hit.incident) if e.event == "route_approved"]
    assert [(e.actor, e.status) for e in approved] == [("analyst@alice", "queued")]
    assert "abuse@example.net" in approved[0].detail


def test_an_ip_literal_host_has_no_suggestion_to_approve(
    store: NoticeStore, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    hit = make_hit(5)
    enqueue(store, hit)
    for notifier in make_notifier(store, smtp_server, None, tmp_path):
        notifier.run(once=True)
        assert store.get(hit.incident).status == "unroutable"
        with pytest.raises(QueueError, match="has no suggested recipient"):
            notifier.approve_route(hit.incident, actor="analyst@alice")
    assert smtp_server.messages == []


def test_notices_show_the_as_name_in_text_and_xarf() -> None:
    hit = make_hit(6, url="http://img.example.net/6.jpg")
    route = Route(
        host="img.example.net",
        ip=HOST_A,
        method="rdap",
        recipient=Recipient("img.example.net", "abuse@example.net", "smtp"),
        asn=64500,
        as_name="EXAMPLE-AS Example Hosting",
    )
    facts = NoticeFacts(
        notice_id=hit.incident,
        hit=hit,
        route=route,
        first_seen="2026-11-22T10:00:00Z",
        last_verified="2026-11-22T11:00:00Z",
        kind="notice",
        sequence=0,
        sent_first=None,
        created="2026-11-22T11:01:00Z",
        classification=TEST_CLASSIFICATION_VALUE,
    )
    for language in ("en", "de"):
        recipient = Recipient("img.example.net", "abuse@example.net", "smtp", language)
        rendered = NoticeRenderer(TEST_IDENTITY).render(
            replace(facts, route=replace(route, recipient=recipient))
        )
        assert "AS64500 (EXAMPLE-AS Example Hosting)" in rendered.text
    without_provider = NoticeRenderer(TEST_IDENTITY).render(facts)
    assert without_provider.xarf["asn"] == 64500
    assert without_provider.xarf["hosting_provider"] == "EXAMPLE-AS Example Hosting"
