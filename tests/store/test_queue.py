"""The hits/review streams against a real redis-server."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import cast

import redis

from store.keys import Keys
from store.queue import HitQueue, incident_id
from tests.builders import make_hit

#: Every optional field set, so a round trip through the stream has to keep each of them.
RECORD = make_hit(pdq="d" * 64, pdq_quality=88, phash="e" * 16)


def test_enqueue_is_idempotent_per_url_and_entry(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    first = queue.enqueue(RECORD)
    assert first is not None
    # A re-crawl finds the same incident later, from another page: not queued again.
    assert queue.enqueue(replace(RECORD, page="http://site.example/other", crawl="c2")) is None
    # Another entry, or another URL, is another incident.
    assert queue.enqueue(replace(RECORD, entry="k02")) is not None
    assert queue.enqueue(replace(RECORD, url="http://img.example/b.jpg")) is not None
    assert queue.count("confirmed") == 3
    assert redis_client.xlen(f"{redis_prefix}hits") == 3
    records = list(queue.iter_records("confirmed"))
    assert records[0] == RECORD  # the first sighting is kept: page, crawl, first_seen
    assert records[0].incident == incident_id(RECORD.url, "known", "k001")


def test_review_items_go_to_their_own_stream(redis_client: redis.Redis, redis_prefix: str) -> None:
    queue = HitQueue(redis_client, Keys(redis_prefix))
    review = replace(
        RECORD,
        verdict="review",
        algorithm="pdq",
        distance=40,
        ip=None,
        content_length=None,
        pdq_quality=None,
    )
    assert queue.enqueue(review) is not None
    assert queue.count("confirmed") == 0
    assert list(queue.iter_records("review")) == [review]


def test_racing_writers_queue_an_incident_once(redis_url: str, redis_prefix: str) -> None:
    from store.connection import redis_from_url

    def enqueue(n: int) -> str | None:
        client = redis_from_url(redis_url)
        try:
            return HitQueue(client, Keys(redis_prefix)).enqueue(replace(RECORD, crawl=f"c{n}"))
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(enqueue, range(16)))
    assert sum(r is not None for r in results) == 1


def test_stream_never_holds_more_than_the_record(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    queue = HitQueue(redis_client, Keys(redis_prefix))
    queue.enqueue(RECORD)
    entries = redis_client.xrange(f"{redis_prefix}hits")
    ((_, fields),) = cast(list[tuple[bytes, dict[bytes, bytes]]], entries)
    assert {k.decode() for k in fields} == set(RECORD.to_fields())


# -- the rules of issue 11: dismissed incidents, reappearance ------------------------------


def test_the_closed_statuses_are_the_notice_stores() -> None:
    from store.queue import CLOSED_NOTICE_STATUSES
    from takedown.notices import CLOSED_STATUSES

    assert CLOSED_NOTICE_STATUSES == CLOSED_STATUSES


def test_a_dismissed_incident_is_never_queued_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    review = replace(RECORD, verdict="review", algorithm="pdq", distance=40)
    redis_client.sadd(keys.review_dismissed, RECORD.incident)
    # Neither as a near miss nor, under looser thresholds, as a confirmed hit.
    assert queue.enqueue(review) is None
    assert queue.enqueue(RECORD) is None
    assert (queue.count("review"), queue.count("confirmed")) == (0, 0)
    assert not redis_client.exists(keys.stream_ids("confirmed"), keys.stream_ids("review"))
    # Another entry of the same image is another incident, and is queued.
    assert queue.enqueue(replace(RECORD, entry="k02")) is not None


def _reappeared(redis_client: redis.Redis, keys: Keys) -> dict[str, str]:
    raw = cast("dict[bytes, bytes]", redis_client.hgetall(keys.hits_reappeared))
    return {k.decode(): v.decode() for k, v in raw.items()}


def test_a_closed_notice_s_hit_found_again_is_appended_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    incident = RECORD.incident
    first = queue.enqueue(RECORD)
    assert first is not None
    # While the notice is open (or has no status yet), a sighting is a duplicate.
    redis_client.zadd(keys.notices_in("sent"), {incident: 1.0})
    assert queue.enqueue(replace(RECORD, crawl="c2")) is None
    # The notice is closed: the next confirmed sighting is appended again, marked.
    redis_client.zrem(keys.notices_in("sent"), incident)
    redis_client.zadd(keys.notices_in("removed"), {incident: 1.0})
    again = queue.enqueue(replace(RECORD, crawl="c3", page="http://site.example/back"))
    assert again is not None and again != first
    assert queue.count("confirmed") == 2
    assert redis_client.hget(keys.stream_ids("confirmed"), incident) == again.encode()
    assert _reappeared(redis_client, keys) == {incident: again}
    records = list(queue.iter_records("confirmed"))
    assert [(r.crawl, r.reappeared) for r in records] == [("crawl-1", False), ("c3", True)]
    assert records[1].page == "http://site.example/back"
    assert queue.latest("confirmed", incident) == records[1]
    assert queue.latest("confirmed", replace(RECORD, entry="k99").incident) is None
    assert queue.latest("review", incident) is None
    ((_, fields),) = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        redis_client.xrange(keys.hits, min=again, max=again),
    )
    assert fields[b"reappeared"] == b"1"
    # Until the notice is reopened, further sightings add nothing.
    assert queue.enqueue(replace(RECORD, crawl="c4")) is None
    # A near miss of the same incident is not a reappearance: the review stream rule holds.
    near = replace(RECORD, verdict="review", algorithm="pdq", distance=40, crawl="c5")
    assert queue.enqueue(near) is not None
    assert queue.enqueue(replace(near, crawl="c6")) is None
    assert queue.count("confirmed") == 2


def test_the_reappearance_marker_ends_with_the_reopened_notice(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    incident = RECORD.incident
    queue.enqueue(RECORD)
    redis_client.zadd(keys.notices_in("gone_unreachable"), {incident: 1.0})
    assert queue.enqueue(replace(RECORD, crawl="c2")) is not None
    # The notifier reopens the notice (sent again) but leaves the marker: a sighting while
    # the notice is open clears it, so the next closing is watched again.
    redis_client.zrem(keys.notices_in("gone_unreachable"), incident)
    redis_client.zadd(keys.notices_in("sent"), {incident: 1.0})
    assert queue.enqueue(replace(RECORD, crawl="c3")) is None
    assert _reappeared(redis_client, keys) == {}
    redis_client.zrem(keys.notices_in("sent"), incident)
    redis_client.zadd(keys.notices_in("removed"), {incident: 1.0})
    third = queue.enqueue(replace(RECORD, crawl="c4"))
    assert third is not None
    # The documented way for the notifier: HDEL the marker when it reopens.
    redis_client.hdel(keys.hits_reappeared, incident)
    fourth = queue.enqueue(replace(RECORD, crawl="c5"))  # still listed as removed here
    assert fourth is not None
    assert [r.crawl for r in queue.iter_records("confirmed")] == ["crawl-1", "c2", "c4", "c5"]


def test_a_closed_notice_whose_hit_was_purged_still_reappears(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """Retention removes a closed notice's hit (and its index entry) before the notice: the
    content found again is still a reappearance, not a first sighting."""
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    incident = RECORD.incident
    redis_client.zadd(keys.notices_in("removed"), {incident: 1.0})
    assert not redis_client.hexists(keys.stream_ids("confirmed"), incident)
    again = queue.enqueue(replace(RECORD, crawl="c2"))
    assert again is not None
    [record] = queue.iter_records("confirmed")
    assert (record.crawl, record.reappeared) == ("c2", True)
    assert _reappeared(redis_client, keys) == {incident: again}
    assert queue.enqueue(replace(RECORD, crawl="c3")) is None


def test_reappeared_survives_a_json_copy_of_the_record() -> None:
    """The notice store keeps the hit as JSON and reads it back through text fields."""
    from store.queue import HitRecord

    record = replace(RECORD, reappeared=True, decided_by="analyst@a", decision_reason="why")
    as_text = {k: "" if v is None else str(v) for k, v in record.as_json().items()}
    assert HitRecord.from_fields(as_text) == record
    assert HitRecord.from_fields(record.to_fields()) == record
    assert record.to_fields()["reappeared"] == "1"
    assert RECORD.to_fields()["reappeared"] == ""


def test_select_finds_the_entries_a_filter_of_the_records_finds(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    queue = HitQueue(redis_client, Keys(redis_prefix))
    for n in range(7):
        crawl, list_name = ("run-a", "run-b")[n % 2], ("known", "other")[n % 3 == 0]
        queue.enqueue(
            make_hit(n, crawl=crawl, list=list_name, first_seen=f"2026-11-2{n}T00:00:00Z")
        )
    records = list(queue.iter_records("confirmed"))
    for crawl, list_name in (("", ""), ("run-a", ""), ("", "other"), ("run-b", "known"), ("x", "")):
        wanted = [
            r
            for r in records
            if (not crawl or r.crawl == crawl) and (not list_name or r.list == list_name)
        ]
        for batch in (2, 7, 1000):
            found = queue.select("confirmed", crawl=crawl, list_name=list_name, batch=batch)
            assert [(e.incident, e.first_seen) for e in found] == [
                (r.incident, r.first_seen) for r in wanted
            ], (crawl, list_name, batch)
            read = queue.records("confirmed", [e.id for e in found])
            assert read == [(e.id, r) for e, r in zip(found, wanted, strict=True)]
    assert queue.select("review") == []
    everything = queue.select("confirmed")
    picked = [everything[4].id, "0-1", everything[1].id]  # in that order; a missing one left out
    assert queue.records("confirmed", picked, batch=2) == [
        (everything[4].id, records[4]),
        (everything[1].id, records[1]),
    ]
