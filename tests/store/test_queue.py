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
