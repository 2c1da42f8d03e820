"""The recheck schedule and what verdicts do, against a real redis-server and a real SMTP server.

Verdicts are fed as the fetcher reports them (:class:`store.rechecks.RecheckResult`: notice
id, state, reason, HTTP status, time checked): no fetching happens here. One controllable
clock drives the store, the notifier that sends the first notice and the book, so due times,
reminder intervals and escalation delays are exact and nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis

from matchers.lists import HashList, ListEntry, Thresholds
from store.clock import iso
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue, HitRecord
from store.rechecks import RecheckResult
from takedown.channels.dispatch import Deliverer
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.directory import ProviderDirectory
from takedown.model import DeliveryReceipt
from takedown.notice import NoticeFacts, NoticeRenderer, message_id_for
from takedown.notices import NoticeStateError, NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.recheck import RecheckBook
from takedown.routing import Router
from takedown.settings import TakedownSettings
from takedown.stats import provider_stats
from tests import builders
from tests.builders import TEST_IDENTITY
from tests.helpers import HOST_A, Clock
from tests.servers.smtp import SmtpServer

ALPHA = "abuse@alpha-hosting.example"
UPSTREAM = "abuse@transit-upstream.example"
REGISTRAR = "abuse@registrar.example"
T0 = 1_800_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR
SETTINGS = TakedownSettings(
    reminder_interval=DAY,
    escalate_after=7 * DAY,
    recheck_schedule=(HOUR, 4 * HOUR, 12 * HOUR),
    unreachable_confirmations=3,
    recheck_lease=600.0,
    classification=builders.TEST_CLASSIFICATION,
)


def make_hit(number: int) -> HitRecord:
    """A hit on host A that the crawl first saw an hour before the clock starts."""
    return builders.make_hit(number, HOST_A, first_seen=iso(T0 - HOUR))


def directory_yaml(*, upstream: bool) -> str:
    text = f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: {ALPHA}\n"
    return text + (f"  upstream: {UPSTREAM}\n" if upstream else "")


@dataclass
class Rig:
    clock: Clock
    store: NoticeStore
    smtp: SmtpServer
    deliverer: Deliverer
    sender: NoticeSender
    router: Router

    def book(self, settings: TakedownSettings = SETTINGS, **kwargs: Any) -> RecheckBook:
        kwargs.setdefault("sender", self.sender)
        kwargs.setdefault("router", self.router)
        return RecheckBook(self.store, settings, actor="recheck@test", clock=self.clock, **kwargs)

    def notifier(self) -> Notifier:
        """The real notifier, on the rig's clock."""
        return Notifier(
            self.store.client,
            self.store.keys,
            router=self.router,
            sender=self.sender,
            settings=SETTINGS,
            consumer="c1",
            clock=self.clock,
        )

    def send(self, *hits: HitRecord) -> None:
        """Queue the hits and send their first notices through the real notifier at T0."""
        queue = HitQueue(self.store.client, self.store.keys)
        for hit in hits:
            queue.enqueue(hit)
        assert self.notifier().run(once=True).sent == len(hits)

    def mark_sent(self, hit: HitRecord, *, due: float) -> None:
        """A notice recorded as sent (no message), due for its first recheck at ``due``."""
        self.store.create(hit, actor="test")
        self.store.sent(
            hit.incident,
            DeliveryReceipt("smtp", ALPHA, "250 OK"),
            actor="test",
            message_id=f"<{hit.incident}.notice.0@hotline.example>",
            recheck_at=due,
        )

    def due_at(self, notice_id: str) -> float | None:
        return self.store.client.zscore(self.store.keys.recheck, notice_id)

    def events(self, notice_id: str) -> list[str]:
        return [e.event for e in self.store.timeline(notice_id)]


@pytest.fixture
def rig(redis_client: redis.Redis, redis_prefix: str, smtp_server: SmtpServer) -> Iterator[Rig]:
    clock = Clock(T0)
    store = NoticeStore(redis_client, Keys(redis_prefix), clock=clock)
    deliverer = Deliverer(
        SmtpChannel(SmtpSettings(smtp_server.host, smtp_server.port, security="none"))
    )
    sender = NoticeSender(store, NoticeRenderer(TEST_IDENTITY), deliverer, NoticeFacts)
    router = Router(
        ProviderDirectory.from_yaml(directory_yaml(upstream=True)), ProviderDirectory.empty(), None
    )
    with deliverer:
        yield Rig(clock, store, smtp_server, deliverer, sender, router)


def verdict(
    hit: HitRecord, state: Any, at: float, *, reason: str = "", status: int | None = None
) -> RecheckResult:
    return RecheckResult(hit.incident, hit.url, state, reason or state, status, iso(at))


# -- the schedule --------------------------------------------------------------------------------


def test_claim_due_takes_only_due_notices_and_leases_them(rig: Rig) -> None:
    early, late, closed = make_hit(1), make_hit(2), make_hit(3)
    rig.mark_sent(early, due=T0 + HOUR)
    rig.mark_sent(late, due=T0 + 5 * HOUR)
    rig.mark_sent(closed, due=T0 + HOUR)
    rig.store.record(closed.incident, "removed", actor="test", status="removed")
    book = rig.book(replace(SETTINGS, watch_for=0.0))  # closed notices are not watched

    rig.clock.now = T0 + HOUR - 1
    assert book.claim_due() == []
    rig.clock.now = T0 + HOUR
    assert book.due_count() == 2
    [target] = book.claim_due()
    assert (target.notice_id, target.url, target.sha256) == (
        early.incident,
        early.url,
        early.sha256,
    )
    # The closed notice was due too: it is dropped from the schedule, not handed out.
    assert rig.due_at(closed.incident) is None
    assert book.scheduled_count() == 2
    # Leased: taken again right away, nothing comes back.
    assert rig.due_at(early.incident) == T0 + HOUR + SETTINGS.recheck_lease
    assert book.claim_due() == []
    rig.clock.now = T0 + HOUR + SETTINGS.recheck_lease - 1
    assert book.claim_due() == []
    # The lease ran out (the process that took it died): due again.
    rig.clock.now = T0 + HOUR + SETTINGS.recheck_lease
    assert [t.notice_id for t in book.claim_due()] == [early.incident]
    # everything=True takes every scheduled notice, due or not, leased or not.
    assert sorted(t.notice_id for t in book.claim_due(everything=True)) == sorted(
        [early.incident, late.incident]
    )
    assert book.claim_due(limit=1, everything=True) != []


def test_claimed_targets_carry_their_lists_thresholds_and_bad_records_are_set_aside(
    rig: Rig,
) -> None:
    tuned, default, corrupt = make_hit(1), replace(make_hit(2), list="other"), make_hit(3)
    video = replace(make_hit(4), media_type="video", file_type="mp4", pdq=None, phash=None)
    ListStore(rig.store.client, rig.store.keys).save(
        HashList(
            name="known",
            entries=[ListEntry("sha256", tuned.sha256, tuned.entry)],
            thresholds=Thresholds(pdq_confirm=20, pdq_review=40, phash_confirm=4),
        )
    )
    rig.mark_sent(tuned, due=T0)
    rig.mark_sent(default, due=T0)
    rig.mark_sent(video, due=T0)
    rig.mark_sent(replace(corrupt, sha256="not-a-hash"), due=T0)
    invalid: list[tuple[str, str]] = []
    targets = rig.book().claim_due(on_invalid=lambda n, exc: invalid.append((n, str(exc))))
    by_id = {t.notice_id: t for t in targets}
    assert set(by_id) == {tuned.incident, default.incident, video.incident}
    assert [by_id[h.incident].media_type for h in (tuned, video)] == ["image", "video"]
    assert (by_id[tuned.incident].pdq_threshold, by_id[tuned.incident].phash_threshold) == (20, 4)
    assert (by_id[default.incident].pdq_threshold, by_id[default.incident].phash_threshold) == (
        Thresholds().pdq_confirm,
        Thresholds().phash_confirm,
    )
    [(notice_id, why)] = invalid
    assert notice_id == corrupt.incident and notice_id in why
    # Set aside, not dropped: it stays scheduled (leased) like the others.
    assert rig.due_at(corrupt.incident) == T0 + SETTINGS.recheck_lease


# -- removal -------------------------------------------------------------------------------------


def test_removed_closes_the_notice_only_when_confirmed_an_hour_later(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    assert rig.due_at(hit.incident) == T0 + HOUR  # first step of the schedule

    rig.clock.now = T0 + HOUR
    assert book.apply(verdict(hit, "online", T0 + HOUR, status=200)) == "online"
    # First sighting: nothing closes, the confirming check is due an hour later.
    gone = T0 + 5 * HOUR
    rig.clock.now = gone
    outcome = book.apply(verdict(hit, "removed", gone, reason="not found", status=404))
    assert outcome == "removal_pending"
    assert rig.store.status(hit.incident) == "sent"
    assert rig.due_at(hit.incident) == gone + HOUR
    # `recheck --all` again ten minutes later: does not count, the due time stays.
    rig.clock.now = gone + 600
    outcome = book.apply(verdict(hit, "removed", gone + 600, reason="not found", status=404))
    assert outcome == "removal_pending"
    assert rig.store.status(hit.incident) == "sent"
    assert rig.due_at(hit.incident) == gone + HOUR
    assert "not counted" in rig.store.timeline(hit.incident)[-1].detail
    # Seen gone again an hour after the first sighting: confirmed.
    rig.clock.now = gone + HOUR
    outcome = book.apply(verdict(hit, "removed", gone + HOUR, reason="not found", status=404))
    assert outcome == "removed"
    notice = rig.store.get(hit.incident)
    assert notice.status == "removed"
    # [last seen online - sent, first seen gone - sent]: gone since the FIRST sighting.
    assert notice.time_to_removal() == (HOUR, 5 * HOUR)
    assert notice.fields["removal_reason"].startswith("not found (http 404); confirmed 1h after")
    assert notice.count("checks") == 4
    # Closed, and watched for the content coming back.
    assert rig.due_at(hit.incident) == gone + HOUR + SETTINGS.watch_interval
    assert rig.events(hit.incident)[-4:] == [
        "verified_online",
        "removal_seen",
        "removal_seen",
        "removed",
    ]
    assert rig.store.timeline(hit.incident)[-1].actor == "recheck@test"
    assert len(rig.smtp.messages) == 1


def test_online_between_two_removed_sightings_starts_the_confirmation_again(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    assert book.apply(verdict(hit, "removed", T0 + HOUR, status=404)) == "removal_pending"
    assert book.apply(verdict(hit, "online", T0 + 2 * HOUR, status=200)) == "online"
    assert rig.store.get(hit.incident).time("removal_seen_at") is None
    # Two hours after the first sighting, but only the first of a new pair.
    assert book.apply(verdict(hit, "removed", T0 + 3 * HOUR, status=404)) == "removal_pending"
    assert book.apply(verdict(hit, "removed", T0 + 4 * HOUR, status=404)) == "removed"
    assert rig.store.get(hit.incident).time("first_seen_gone") == T0 + 3 * HOUR


def test_quick_unreachable_checks_close_nothing(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    # `recheck --once --all` three times, a second apart: one counted check, two not.
    for k in range(3):
        at = T0 + HOUR + k
        rig.clock.now = at
        assert book.apply(verdict(hit, "unreachable", at, reason="http 403")) == "unreachable"
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    assert notice.count("unreachable_streak") == 1
    assert "not counted" in rig.store.timeline(hit.incident)[-1].detail
    # Ten checks an hour apart: more than enough checks, but not the 72 h span.
    for k in range(1, 11):
        at = T0 + HOUR + k * HOUR
        rig.clock.now = at
        assert book.apply(verdict(hit, "unreachable", at, reason="timeout")) == "unreachable"
    assert rig.store.status(hit.incident) == "sent"
    assert rig.store.get(hit.incident).count("unreachable_streak") == 11


def test_unreachable_closes_as_gone_unreachable_after_n_checks_over_the_span(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    times = [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    for at in times[:2]:
        rig.clock.now = at
        assert book.apply(verdict(hit, "unreachable", at, reason="connection refused")) == (
            "unreachable"
        )
    assert rig.store.timeline(hit.incident)[-1].detail.startswith(
        "connection refused (2 of 3 checks over 1h of 3d)"
    )
    # Online again: the outage is over, the streak starts from zero.
    rig.clock.now = times[2]
    assert book.apply(verdict(hit, "online", times[2], status=200)) == "online"
    notice = rig.store.get(hit.incident)
    assert (notice.status, notice.count("unreachable_streak")) == ("sent", 0)
    assert notice.time("first_unreachable_at") is None

    first = T0 + 4 * HOUR
    for at in (first, first + DAY, first + 2 * DAY):
        rig.clock.now = at
        assert book.apply(verdict(hit, "unreachable", at, status=503)) == "unreachable"
    last = first + 3 * DAY
    rig.clock.now = last
    assert book.apply(verdict(hit, "unreachable", last, status=503)) == "gone_unreachable"
    notice = rig.store.get(hit.incident)
    assert notice.status == "gone_unreachable"
    # Gone since the FIRST failure of this streak, last seen online just before it.
    assert notice.time("first_seen_gone") == first
    assert "unreachable on 4 checks over 3d" in notice.fields["removal_reason"]
    assert rig.due_at(hit.incident) == last + SETTINGS.watch_interval


def test_a_fetch_refused_by_the_policy_changes_nothing(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    before = rig.store.get(hit.incident)
    for k in range(3):
        at = T0 + HOUR + k
        rig.clock.now = at
        refused = verdict(hit, "refused", at, reason="127.0.0.2: the address policy refused it")
        assert book.apply(refused) == "refused"
    after = rig.store.get(hit.incident)
    assert after.status == "sent"
    assert after.count("policy_refusals") == 3
    for name in ("checks", "unreachable_streak"):
        assert after.count(name) == before.count(name) == 0
    for name in ("first_seen_gone", "removal_seen_at", "first_unreachable_at"):
        assert after.time(name) is None
    assert after.time("last_seen_online") == before.time("last_seen_online")
    [event] = {e.event for e in rig.store.timeline(hit.incident)[-3:]}
    assert event == "recheck_refused"
    assert rig.store.timeline(hit.incident)[-1].detail.startswith("configuration error")
    assert rig.due_at(hit.incident) == T0 + HOUR + 2 + SETTINGS.recheck_delay(0)


# -- reappearance --------------------------------------------------------------------------------


def close_removed(rig: Rig, book: RecheckBook, hit: HitRecord, at: float) -> None:
    assert book.apply(verdict(hit, "removed", at, status=404)) == "removal_pending"
    assert book.apply(verdict(hit, "removed", at + HOUR, status=404)) == "removed"


def test_content_back_online_reopens_the_notice_and_a_numbered_notice_goes_out(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    close_removed(rig, book, hit, T0 + 2 * HOUR)
    closed_at = T0 + 3 * HOUR
    [first] = rig.smtp.messages
    assert book.claim_due() == []  # watched, but not due yet
    back = closed_at + SETTINGS.watch_interval
    rig.clock.now = back
    [target] = book.claim_due()
    assert target.notice_id == hit.incident
    assert target.referer == hit.page  # the browser-like look sends the page as Referer
    assert book.apply(verdict(hit, "online", back, reason="same bytes", status=200)) == (
        "reappeared"
    )
    notice = rig.store.get(hit.incident)
    assert (notice.status, notice.count("reopens")) == ("queued", 1)
    assert notice.time("first_seen_gone") is None and notice.time("sent_at") is None
    assert notice.time("first_sent_at") == T0
    assert rig.due_at(hit.incident) is None  # rechecks resume once it is sent again
    assert rig.events(hit.incident)[-1] == "reappeared"

    # The notifier sends it again: a new numbered message, same reference.
    rig.clock.now = back + SETTINGS.retry_after
    notifier = rig.notifier()
    assert notifier.run(once=True).sent == 1
    again = rig.smtp.wait_for_messages(2)[1].message
    reference = f"HL-{hit.incident[:12]}"
    assert reference in str(first.message["Subject"]) and reference in str(again["Subject"])
    assert str(again["Subject"]).startswith("Online again (1): ")
    assert str(again["Message-ID"]).startswith(f"<{hit.incident}.reappearance.1@")
    assert str(again["In-Reply-To"]).startswith(f"<{hit.incident}.notice.0@")
    notice = rig.store.get(hit.incident)
    assert notice.status == "sent"
    # The removal clock restarted at the new notice.
    assert notice.time("sent_at") == back + SETTINGS.retry_after
    assert notice.time_to_removal() == (None, None)
    assert rig.due_at(hit.incident) == back + SETTINGS.retry_after + HOUR
    # Removed again: time to removal counts from the second notice.
    resent = back + SETTINGS.retry_after
    close_removed(rig, book, hit, resent + 2 * HOUR)
    assert rig.store.get(hit.incident).time_to_removal() == (0.0, 2 * HOUR)
    [row] = provider_stats(rig.store.iter_notices())
    assert [r.as_dict() for r in provider_stats(rig.store.figures())] == [row.as_dict()]
    assert (row.removed, row.reappeared, row.notices) == (1, 1, 1)


def test_a_closed_notice_is_watched_for_watch_for_and_then_let_go(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    settings = replace(SETTINGS, watch_interval=30 * DAY, watch_for=45 * DAY)
    book = rig.book(settings)
    close_removed(rig, book, hit, T0 + HOUR)
    closed_at = T0 + 2 * HOUR
    look = closed_at + 30 * DAY
    rig.clock.now = look
    assert book.apply(verdict(hit, "removed", look, status=404)) == "watched"
    assert rig.due_at(hit.incident) == look + 30 * DAY
    assert rig.store.status(hit.incident) == "removed"
    rig.clock.now = look + 30 * DAY  # 60 days after closing: past watch_for
    assert book.claim_due() == []
    assert rig.due_at(hit.incident) is None


def test_resend_of_a_closed_notice_and_reopen_of_an_open_one_are_refused(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    notifier = rig.notifier()
    with pytest.raises(NoticeStateError, match="is sent, not closed"):
        notifier.reopen(hit.incident, actor="analyst@test", reason="seen again")
    close_removed(rig, rig.book(), hit, T0 + HOUR)
    with pytest.raises(NoticeStateError, match=r"is closed \(removed on .*reopen"):
        notifier.resend(hit.incident, actor="analyst@test")
    assert notifier.reopen(hit.incident, actor="analyst@jo", reason="seen on a forum") == "sent"
    [reopened] = [e for e in rig.store.timeline(hit.incident) if e.event == "reopened"]
    assert (reopened.actor, reopened.detail) == ("analyst@jo", "seen on a forum")
    assert len(rig.smtp.wait_for_messages(2)) == 2


# -- reminders -----------------------------------------------------------------------------------


def test_a_notice_sent_before_classifications_were_kept_is_reminded_with_its_mapping(
    rig: Rig,
) -> None:
    """An upgrade: a notice already sent has no stored classification; its reminder takes
    the one its list maps to now, and says where it came from."""
    hit, other = make_hit(1), replace(make_hit(2), list="unmapped")
    rig.mark_sent(hit, due=T0 + HOUR)  # recorded as sent, never classified
    rig.mark_sent(other, due=T0 + HOUR)
    assert "classification" not in rig.store.get(hit.incident).fields
    book = rig.book()
    at = T0 + DAY
    rig.clock.now = at
    assert book.apply(verdict(hit, "online", at, status=200)) == "reminded"
    [message] = rig.smtp.wait_for_messages(1)
    [report] = [
        json.loads(part.get_content())
        for part in message.message.iter_attachments()
        if part.get_content_type() == "application/json"
    ]
    assert report["classification"] == builders.TEST_CLASSIFICATION_VALUE
    [event] = [e for e in rig.store.timeline(hit.incident) if e.event == "classified"]
    assert event.actor == "recheck@test" and "sent before classifications" in event.detail
    # Without a mapping it is not rendered, and the failure says why.
    assert book.apply(verdict(other, "online", at, status=200)) == "online"
    assert "classification" in rig.store.get(other.incident).fields["last_error"]


def test_reminders_follow_the_interval_and_reply_to_the_notice(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    [original] = rig.smtp.wait_for_messages(1)
    original_id = str(original.message["Message-ID"])
    assert original_id == message_id_for(TEST_IDENTITY, hit.incident, "notice", 0)
    book = rig.book()

    # Not a day since the notice: only verified.
    rig.clock.now = T0 + HOUR
    assert book.apply(verdict(hit, "online", T0 + HOUR)) == "online"
    assert rig.due_at(hit.incident) == T0 + HOUR + SETTINGS.recheck_delay(1)
    assert len(rig.smtp.messages) == 1

    rig.clock.now = T0 + DAY
    assert book.apply(verdict(hit, "online", T0 + DAY)) == "reminded"
    _, reminder = rig.smtp.wait_for_messages(2)
    assert "Reminder 1" in str(reminder.message["Subject"])
    assert str(reminder.message["In-Reply-To"]) == original_id
    assert str(reminder.message["Message-ID"]) == message_id_for(
        TEST_IDENTITY, hit.incident, "reminder", 1
    )
    assert reminder.rcpt_tos == (ALPHA,)
    notice = rig.store.get(hit.incident)
    assert notice.count("reminders") == 1
    assert notice.time("last_message_at") == T0 + DAY
    assert notice.time("last_seen_online") == T0 + DAY
    # The last step of the schedule repeats.
    assert rig.due_at(hit.incident) == T0 + DAY + SETTINGS.recheck_delay(2)
    assert rig.events(hit.incident)[-2:] == ["verified_online", "reminded"]

    # The interval runs from the last message, not from the notice.
    rig.clock.now = T0 + DAY + 12 * HOUR
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "online"
    assert len(rig.smtp.messages) == 2
    rig.clock.now = T0 + 2 * DAY
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "reminded"
    third = rig.smtp.wait_for_messages(3)[2]
    assert "Reminder 2" in str(third.message["Subject"])
    assert rig.store.get(hit.incident).count("reminders") == 2
    assert rig.store.status(hit.incident) == "sent"


def test_a_refused_reminder_is_recorded_and_tried_again_next_time(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    rig.smtp.refuse(451, "try later", times=1)
    rig.clock.now = T0 + DAY
    assert book.apply(verdict(hit, "online", T0 + DAY)) == "online"
    notice = rig.store.get(hit.incident)
    assert notice.count("reminders") == 0
    assert rig.events(hit.incident)[-1] == "delivery_failed"
    assert "451" in notice.fields["last_error"]
    rig.clock.now = T0 + DAY + HOUR
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "reminded"
    assert rig.store.get(hit.incident).count("reminders") == 1


# -- escalation ----------------------------------------------------------------------------------


def test_escalation_writes_to_the_upstream_and_flags_the_notice(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    route = rig.store.get(hit.incident).route
    assert route is not None
    assert route.upstream_abuse == UPSTREAM  # from the directory's `upstream`

    rig.clock.now = T0 + 7 * DAY
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "escalated"
    _, escalation = rig.smtp.wait_for_messages(2)
    assert escalation.rcpt_tos == (UPSTREAM,)
    assert "Escalation 1" in str(escalation.message["Subject"])
    assert str(escalation.message["In-Reply-To"]) == message_id_for(
        TEST_IDENTITY, hit.incident, "notice", 0
    )
    notice = rig.store.get(hit.incident)
    assert notice.status == "escalated"
    assert notice.time("escalated_at") == T0 + 7 * DAY
    assert rig.store.ids("escalated") == [hit.incident]
    last = rig.store.timeline(hit.incident)[-1]
    assert (last.event, last.status) == ("escalated", "escalated")
    assert UPSTREAM in last.detail
    # Escalated notices stay open: still rechecked, never escalated twice.
    assert rig.due_at(hit.incident) is not None
    rig.clock.now = T0 + 7 * DAY + HOUR
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "online"
    assert len(rig.smtp.messages) == 2


def test_escalation_goes_to_registrar_and_upstream_of_the_stored_route(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    stored = rig.store.get(hit.incident).route
    assert stored is not None
    rig.store.routed(
        hit.incident,
        replace(stored, registrar="Example Registrar", registrar_abuse=REGISTRAR),
        actor="test",
    )
    rig.clock.now = T0 + 8 * DAY
    assert rig.book().apply(verdict(hit, "online", rig.clock.now)) == "escalated"
    messages = rig.smtp.wait_for_messages(3)
    assert sorted(m.rcpt_tos for m in messages[1:]) == [(REGISTRAR,), (UPSTREAM,)]
    # Two messages, two Message-IDs (and two outbox files, where the outbox delivers).
    ids = {str(m.message["Message-ID"]) for m in messages[1:]}
    assert len(ids) == 2
    assert all(".escalation." in i for i in ids)
    detail = rig.store.timeline(hit.incident)[-1].detail
    assert REGISTRAR in detail
    assert UPSTREAM in detail


def test_escalation_without_contacts_flags_the_notice_for_an_analyst(rig: Rig) -> None:
    rig.router = Router(
        ProviderDirectory.from_yaml(directory_yaml(upstream=False)),
        ProviderDirectory.empty(),
        None,
    )
    hit = make_hit(1)
    rig.send(hit)
    rig.clock.now = T0 + 7 * DAY
    assert rig.book().apply(verdict(hit, "online", rig.clock.now)) == "escalated"
    notice = rig.store.get(hit.incident)
    assert notice.status == "escalated"
    assert "an analyst must act" in rig.store.timeline(hit.incident)[-1].detail
    assert len(rig.smtp.messages) == 1  # the original notice only


def test_a_failed_escalation_leaves_the_notice_sent_for_the_next_check(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    rig.smtp.refuse(451, "try later", times=1)
    book = rig.book()
    rig.clock.now = T0 + 7 * DAY
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "online"
    assert rig.store.status(hit.incident) == "sent"
    assert rig.events(hit.incident)[-1] == "delivery_failed"
    rig.clock.now = T0 + 7 * DAY + HOUR
    assert book.apply(verdict(hit, "online", rig.clock.now)) == "escalated"
    assert rig.smtp.wait_for_messages(2)[1].rcpt_tos == (UPSTREAM,)


# -- closed notices ------------------------------------------------------------------------------


def test_verdict_for_a_notice_no_longer_open_is_closed_and_unscheduled(rig: Rig) -> None:
    hit, unknown = make_hit(1), make_hit(2)
    rig.mark_sent(hit, due=T0 + HOUR)
    rig.store.record(hit.incident, "dead_lettered", actor="analyst@test", status="failed")
    assert rig.due_at(hit.incident) == T0 + HOUR  # recorded without stopping the rechecks
    book = rig.book()
    assert book.apply(verdict(hit, "online", T0 + HOUR)) == "closed"
    assert rig.due_at(hit.incident) is None
    assert rig.events(hit.incident) == ["queued", "sent", "dead_lettered"]
    # A verdict for a notice that does not exist at all is closed as well.
    rig.store.client.zadd(rig.store.keys.recheck, {unknown.incident: T0})
    assert book.apply(verdict(unknown, "removed", T0 + HOUR)) == "closed"
    assert book.scheduled_count() == 0


def test_an_unknown_state_is_refused(rig: Rig) -> None:
    hit = make_hit(1)
    rig.mark_sent(hit, due=T0 + HOUR)
    with pytest.raises(ValueError, match="unknown recheck state"):
        rig.book().apply(verdict(hit, "maybe", T0 + HOUR))
    assert rig.events(hit.incident) == ["queued", "sent"]


def test_a_crawl_and_a_recheck_finding_the_content_again_reopen_it_once(rig: Rig) -> None:
    hit = make_hit(1)
    rig.send(hit)
    book = rig.book()
    close_removed(rig, book, hit, T0 + HOUR)
    # A crawl finds it again: the queue appends the hit, flagged and marked...
    queue = HitQueue(rig.store.client, rig.store.keys)
    assert queue.enqueue(replace(hit, crawl="crawl-2")) is not None
    # ...and before the notifier reads it, the watching recheck finds it online too.
    back = T0 + 2 * HOUR + SETTINGS.watch_interval
    rig.clock.now = back
    assert book.apply(verdict(hit, "online", back, status=200)) == "reappeared"
    assert rig.store.client.hget(rig.store.keys.hits_reappeared, hit.incident) is None
    rig.clock.now = back + SETTINGS.retry_after
    notifier = rig.notifier()
    stats = notifier.run(once=True)  # no error, one message
    assert (stats.sent, stats.reappeared) == (1, 0)
    notice = rig.store.get(hit.incident)
    assert (notice.status, notice.count("reopens")) == ("sent", 1)
    assert rig.events(hit.incident).count("reappeared") == 1
    messages = rig.smtp.wait_for_messages(2)
    assert str(messages[1].message["Message-ID"]).startswith(f"<{hit.incident}.reappearance.1@")
    notifier.run(once=True)
    assert len(rig.smtp.messages) == 2  # exactly once
