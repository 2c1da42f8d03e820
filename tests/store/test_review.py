"""Analysts' decisions on review items (store.review) against a real redis-server."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import cast

import pytest
import redis

from hotline.imagegen import encode, textured_image
from matchers.digest import digest_bytes
from matchers.index import Matcher
from matchers.lists import ALLOW, KNOWN, HashList, ListEntry
from store.clock import iso
from store.connection import redis_from_url
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue, HitRecord
from store.review import (
    ReviewConflict,
    ReviewDesk,
    ReviewNotFound,
    ReviewReasonError,
    allow_entries,
)
from takedown.notices import NoticeStore
from tests.builders import make_hit
from tests.helpers import Clock

ALICE = "analyst@alice"
BOB = "analyst@bob"


def near_miss(number: int = 1, **changes: object) -> HitRecord:
    """A made-up review item: a PDQ near miss with every perceptual hash present."""
    hit = make_hit(
        number,
        verdict="review",
        algorithm="pdq",
        distance=44,
        pdq=f"{number:064x}"[::-1],
        pdq_quality=90,
        phash=f"{number:016x}"[::-1],
    )
    return replace(hit, **changes)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(redis_prefix: str) -> Keys:
    return Keys(redis_prefix)


@pytest.fixture
def queue(redis_client: redis.Redis, keys: Keys) -> HitQueue:
    return HitQueue(redis_client, keys)


@pytest.fixture
def desk(redis_client: redis.Redis, keys: Keys, clock: Clock) -> ReviewDesk:
    return ReviewDesk(redis_client, keys, clock=clock)


def _stream(client: redis.Redis, key: str) -> list[dict[str, str]]:
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(key))
    return [{k.decode(): v.decode() for k, v in data.items()} for _, data in rows]


def test_confirm_appends_one_confirmed_hit_however_often_it_runs(
    desk: ReviewDesk, queue: HitQueue, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    item = near_miss()
    queue.enqueue(item)
    outcome = desk.confirm(item.incident[:8], actor=ALICE, reason="same  scene,\n recropped")
    assert outcome.new
    assert (outcome.decision.decision, outcome.decision.actor) == ("confirmed", ALICE)
    [hit] = list(queue.iter_records("confirmed"))
    assert hit == replace(
        item,
        verdict="confirmed",
        decided_by=ALICE,
        decision_reason="same scene, recropped",
    )
    assert hit.incident == item.incident
    entry = cast("bytes | None", redis_client.hget(keys.stream_ids("confirmed"), item.incident))
    assert entry is not None and entry.decode() == outcome.decision.hit_entry
    # Again, by someone else, later: nothing new; the first decision is reported.
    clock.advance(60)
    again = desk.confirm(item.incident, actor=BOB, reason="agree")
    assert not again.new
    assert (again.decision.actor, again.decision.time) == (ALICE, iso(clock.now - 60))
    # A crawl that now finds the incident confirmed adds nothing either.
    assert queue.enqueue(replace(item, verdict="confirmed", algorithm="sha256")) is None
    assert queue.count("confirmed") == 1
    assert desk.find(item.incident).decision == outcome.decision


def test_racing_confirms_append_one_hit(
    redis_url: str, redis_client: redis.Redis, keys: Keys, queue: HitQueue
) -> None:
    item = near_miss()
    queue.enqueue(item)

    def confirm(n: int) -> bool:
        client = redis_from_url(redis_url)
        try:
            desk = ReviewDesk(client, keys)
            return desk.confirm(item.incident, actor=f"analyst@a{n}", reason="r").new
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(confirm, range(16)))
    assert sum(results) == 1
    assert queue.count("confirmed") == 1


def test_dismiss_keeps_the_incident_out_of_both_streams(
    desk: ReviewDesk, queue: HitQueue, redis_client: redis.Redis, keys: Keys
) -> None:
    item = near_miss()
    other_entry = near_miss(entry="k999")
    queue.enqueue(item)
    outcome = desk.dismiss(item.incident, actor=ALICE, reason="a different scene")
    assert outcome.new and outcome.decision.decision == "dismissed"
    assert outcome.allow_listed is None
    # A re-crawl under looser thresholds would confirm it: it is not queued.
    assert queue.enqueue(replace(item, verdict="confirmed")) is None
    assert queue.enqueue(replace(item, crawl="c2")) is None
    assert (queue.count("confirmed"), queue.count("review")) == (0, 1)
    # Only that (URL, entry): the same image against another entry still counts.
    assert queue.enqueue(other_entry) is not None
    assert desk.dismiss(item.incident, actor=BOB, reason="again").new is False
    assert redis_client.smembers(keys.review_dismissed) == {item.incident.encode()}


def test_pending_counts_the_items_without_a_decision(desk: ReviewDesk, queue: HitQueue) -> None:
    assert desk.pending() == 0
    items = [near_miss(n) for n in range(1, 8)]
    for item in items:
        queue.enqueue(item)
    desk.confirm(items[0].incident, actor=ALICE, reason="the same image")
    desk.dismiss(items[3].incident, actor=BOB, reason="a different scene")
    desk.dismiss(items[6].incident, actor=BOB, reason="a different scene")
    undecided = sum(1 for item in desk.items() if item.decision is None)
    assert undecided == 4
    # In slices of 2, 3 and 7 (the last slice full, so one more, empty, is read).
    assert desk.pending(batch=2) == desk.pending(batch=3) == desk.pending(batch=7) == undecided
    decided = {items[n].incident for n in (0, 3, 6)}
    assert desk.decided() == decided
    asked = [items[6].incident, items[1].incident, items[0].incident]
    found = desk.decisions_of(asked)
    assert set(found) == {items[6].incident, items[0].incident}
    assert found == {i: desk.decision(i) for i in found}
    assert desk.decisions_of([]) == {}


def test_a_decision_is_final(desk: ReviewDesk, queue: HitQueue) -> None:
    confirmed, dismissed, crawled = near_miss(1), near_miss(2), near_miss(3)
    for item in (confirmed, dismissed, crawled):
        queue.enqueue(item)
    desk.confirm(confirmed.incident, actor=ALICE, reason="yes")
    desk.dismiss(dismissed.incident, actor=ALICE, reason="no")
    with pytest.raises(ReviewConflict, match="already confirmed by analyst@alice"):
        desk.dismiss(confirmed.incident, actor=BOB, reason="no")
    with pytest.raises(ReviewConflict, match="already dismissed by analyst@alice"):
        desk.confirm(dismissed.incident, actor=BOB, reason="yes")
    # The crawl confirmed this incident meanwhile (thresholds changed): nothing to dismiss.
    queue.enqueue(replace(crawled, verdict="confirmed"))
    with pytest.raises(ReviewConflict, match="already a confirmed hit"):
        desk.dismiss(crawled.incident, actor=BOB, reason="no")
    assert queue.count("confirmed") == 2
    assert {i.id: i.decision and i.decision.decision for i in desk.items()} == {
        confirmed.incident: "confirmed",
        dismissed.incident: "dismissed",
        crawled.incident: None,
    }


def test_a_decision_needs_a_reason(desk: ReviewDesk, queue: HitQueue) -> None:
    item = near_miss()
    queue.enqueue(item)
    with pytest.raises(ReviewReasonError):
        desk.confirm(item.incident, actor=ALICE, reason=" \n ")
    with pytest.raises(ReviewReasonError):
        desk.dismiss(item.incident, actor=ALICE, reason="x" * 1001)
    assert queue.count("confirmed") == 0
    assert desk.find(item.incident).decision is None


def _sharing_a_prefix() -> tuple[HitRecord, HitRecord]:
    """Two review items whose incident ids share their first six hex digits."""
    seen: dict[str, HitRecord] = {}
    for number in itertools.count(1):
        item = near_miss(number)
        prefix = item.incident[:6]
        if prefix in seen:
            return seen[prefix], item
        seen[prefix] = item
    raise AssertionError("unreachable")


def test_ids_and_prefixes(desk: ReviewDesk, queue: HitQueue) -> None:
    first, second = _sharing_a_prefix()
    assert first.incident != second.incident
    queue.enqueue(first)
    queue.enqueue(second)
    with pytest.raises(ReviewNotFound, match="ambiguous: 2"):
        desk.find(first.incident[:6])
    common = next(i for i in range(6, 32) if first.incident[i] != second.incident[i])
    assert desk.find(first.incident[: common + 1].upper()).record == first
    assert desk.find(second.incident).record == second
    for wrong in ("abcde", "xyz123456", "0" * 33):
        with pytest.raises(ReviewNotFound, match="not a review item id"):
            desk.find(wrong)
    with pytest.raises(ReviewNotFound, match="no review item"):
        desk.find("0" * 32)
    # A confirmed hit is not a review item.
    hit = make_hit(7)
    queue.enqueue(hit)
    with pytest.raises(ReviewNotFound):
        desk.find(hit.incident)


def test_decisions_go_to_the_audit_and_the_incidents_timeline(
    desk: ReviewDesk, queue: HitQueue, clock: Clock, redis_client: redis.Redis, keys: Keys
) -> None:
    confirmed, dismissed = near_miss(1), near_miss(2)
    queue.enqueue(confirmed)
    queue.enqueue(dismissed)
    desk.confirm(confirmed.incident, actor=ALICE, reason="recropped copy")
    clock.advance(5)
    desk.dismiss(dismissed.incident, actor=BOB, reason="unrelated", allow_list="fp")
    desk.confirm(confirmed.incident, actor=BOB, reason="again")  # no event: nothing changed
    audit = _stream(redis_client, keys.audit)
    layout = {"notice", "event", "status", "actor", "time", "ts", "detail"}
    assert all(set(event) == layout for event in audit)
    assert [(e["notice"], e["event"], e["status"], e["actor"]) for e in audit] == [
        (confirmed.incident, "review_confirmed", "confirmed", ALICE),
        (dismissed.incident, "allow_listed", "dismissed", BOB),
        (dismissed.incident, "review_dismissed", "dismissed", BOB),
    ]
    assert audit[0]["time"] == iso(clock.now - 5)
    assert "recropped copy" in audit[0]["detail"] and confirmed.url in audit[0]["detail"]
    assert "fp" in audit[1]["detail"]
    # The notice timeline is the same stream the notice store reads, when the notice exists.
    notices = NoticeStore(redis_client, keys, clock=clock)
    [hit] = list(queue.iter_records("confirmed"))
    notices.create(hit, actor="notifier@test")
    timeline = notices.timeline(confirmed.incident)
    assert [(e.event, e.actor) for e in timeline] == [
        ("review_confirmed", ALICE),
        ("queued", "notifier@test"),
    ]
    assert [e["event"] for e in desk.timeline(dismissed.incident)] == [
        "allow_listed",
        "review_dismissed",
    ]


def test_allow_listing_adds_a_new_version_that_keeps_every_entry(
    desk: ReviewDesk, queue: HitQueue, redis_client: redis.Redis, keys: Keys
) -> None:
    lists = ListStore(redis_client, keys)
    kept = ListEntry("sha256", "ab" * 32, "earlier-false-positive")
    lists.save(HashList("fp", [kept], kind=ALLOW))
    first, weak = near_miss(1), near_miss(2, pdq_quality=10)
    queue.enqueue(first)
    queue.enqueue(weak)
    outcome = desk.dismiss(first.incident, actor=ALICE, reason="fp", allow_list="fp")
    assert outcome.allow_listed is not None
    assert [e.algorithm for e in outcome.allow_listed.added] == ["sha256", "pdq", "phash"]
    assert (outcome.allow_listed.version, outcome.allow_listed.created) == (2, False)
    stored = lists.load("fp")
    assert stored.kind == ALLOW
    assert set(stored.entries) == {
        kept,
        ListEntry("sha256", first.sha256, f"review:{first.incident}"),
        ListEntry("pdq", cast("str", first.pdq), f"review:{first.incident}"),
        ListEntry("phash", cast("str", first.phash), f"review:{first.incident}"),
    }
    # A weak PDQ hash is not stored: it would silence unrelated images.
    assert [e.algorithm for e in allow_entries(weak)] == ["sha256", "phash"]
    # Dismissing again with the list: the hashes are there, nothing is saved.
    again = desk.dismiss(first.incident, actor=BOB, reason="fp", allow_list="fp")
    assert not again.new and again.allow_listed is not None
    assert again.allow_listed.added == ()
    assert lists.versions()["fp"] == 2


def test_allow_listing_refuses_a_known_list(
    desk: ReviewDesk, queue: HitQueue, redis_client: redis.Redis, keys: Keys
) -> None:
    lists = ListStore(redis_client, keys)
    lists.save(HashList("known", [ListEntry("sha256", "cd" * 32, "k1")], kind=KNOWN))
    item = near_miss()
    queue.enqueue(item)
    with pytest.raises(ReviewConflict, match="not an allow-list"):
        desk.dismiss(item.incident, actor=ALICE, reason="fp", allow_list="known")
    assert lists.versions()["known"] == 1
    assert desk.find(item.incident).decision is None  # nothing decided either


def test_an_allow_listed_image_is_not_matched_at_any_url(
    desk: ReviewDesk, queue: HitQueue, redis_client: redis.Redis, keys: Keys
) -> None:
    data = encode(textured_image(4711), "JPEG")
    digest = digest_bytes(data)
    assert digest.pdq and digest.phash
    lists = ListStore(redis_client, keys)
    lists.save(HashList("known", [ListEntry("sha256", digest.sha256, "k1")]))
    known, allow = lists.load_for_matching()
    assert Matcher(known, allow).match(digest), "the image matches before it is allow-listed"
    item = near_miss(
        sha256=digest.sha256, pdq=digest.pdq, pdq_quality=digest.pdq_quality, phash=digest.phash
    )
    queue.enqueue(item)
    outcome = desk.dismiss(item.incident, actor=ALICE, reason="benign", allow_list="fp-new")
    assert outcome.allow_listed is not None and outcome.allow_listed.created
    assert [info.kind for info in lists.info() if info.name == "fp-new"] == [ALLOW]
    known, allow = lists.load_for_matching(["known"])
    assert Matcher(known, allow).match_or_allowed(digest) == ([], True)
