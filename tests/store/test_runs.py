"""Run records on a real Redis: transitions, their atomicity, lookup, listing; the mapping of
Scrapy stats to run counts; crawl health checks on crafted counts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
import redis
from scrapy.settings import Settings

from crawler.extensions import CrawlHealth, ErrorRate, NoImages, NoPages
from crawler.settings import HEALTH_MAX_ERROR_RATE, HEALTH_MIN_REQUESTS, HEALTH_NO_IMAGES_MIN_PAGES
from store.connection import redis_from_url
from store.errors import RunExists, RunNotFound, RunStateError
from store.keys import Keys
from store.runs import RunStats, RunStore, new_run_id, schedule_origin, status_for_reason
from tests.helpers import HOST_A, Clock

SEEDS = [f"http://{HOST_A}:8000/"]
OPTIONS = {"depth": 1, "max_pages": 10, "lists": ["known"]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str, clock: Clock) -> RunStore:
    return RunStore(redis_client, Keys(redis_prefix), clock=clock)


def _new(store: RunStore, run_id: str | None = None, origin: str = "cli") -> str:
    return store.create(seeds=SEEDS, options=OPTIONS, origin=origin, run_id=run_id)


# -- transitions -------------------------------------------------------------------------------


def test_a_run_goes_queued_running_finished(store: RunStore, clock: Clock) -> None:
    run_id = _new(store, origin=schedule_origin("nightly"))
    run = store.get(run_id)
    assert (run.status, run.origin, run.seeds, run.options) == (
        "queued",
        "schedule:nightly",
        SEEDS,
        OPTIONS,
    )
    assert run.created == clock.now and run.started is None and run.finished is None
    clock.now += 1
    store.start(run_id)
    assert store.get(run_id).status == "running"
    assert store.get(run_id).started == clock.now
    live = RunStats(requests=3, responses=3, pages=2, images=1, errors={"TimeoutError": 1})
    assert store.update_stats(run_id, live, health={"error_rate": "why"})
    run = store.get(run_id)
    assert run.stats == live and run.health == {"error_rate": "why"}
    clock.now += 10
    final = RunStats(requests=5, responses=5, pages=3, images=2, hashed=2, confirmed=1)
    store.finish(run_id, "finished", "finished", final, {}, crawl_stats={"crawl/pages": 3})
    run = store.get(run_id)
    assert (run.status, run.reason, run.stats, run.health) == ("finished", "finished", final, {})
    assert run.duration() == 10.0 and run.crawl_stats == {"crawl/pages": 3}
    data = run.as_json(full=True)
    assert run.started is not None
    assert data["started_unix"] == run.started
    assert data["started"] == datetime.fromtimestamp(run.started, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert data["seeds"] == SEEDS and data["stats"]["confirmed"] == 1


def test_an_ended_run_never_runs_again(store: RunStore) -> None:
    for final in ("finished", "failed", "cancelled"):
        run_id = _new(store)
        store.start(run_id)
        store.finish(run_id, final, final, RunStats(pages=1))
        with pytest.raises(RunStateError) as info:
            store.start(run_id)
        assert info.value.status == final
        assert not store.update_stats(run_id, RunStats(pages=99))
        assert not store.request_cancel(run_id)
        with pytest.raises(RunStateError):
            store.finish(run_id, "failed", "again", RunStats())
        run = store.get(run_id)
        assert (run.status, run.stats.pages) == (final, 1)


def test_a_running_run_is_not_started_twice(store: RunStore) -> None:
    run_id = _new(store)
    store.start(run_id)
    with pytest.raises(RunStateError) as info:
        store.start(run_id)
    assert info.value.status == "running"


def test_cancel_a_queued_run_at_once_and_it_never_starts(store: RunStore) -> None:
    run_id = _new(store)
    assert not store.cancel_requested(run_id)
    assert store.request_cancel(run_id)
    run = store.get(run_id)
    assert (run.status, run.reason) == ("cancelled", "cancelled")
    assert store.cancel_requested(run_id) and run.finished is not None
    with pytest.raises(RunStateError) as info:
        store.start(run_id)
    assert info.value.status == "cancelled"


def test_cancel_a_running_run_sets_the_flag_for_its_crawl(store: RunStore) -> None:
    run_id = _new(store)
    store.start(run_id)
    assert store.request_cancel(run_id)
    assert store.get(run_id).status == "running"  # the crawl stops it
    assert store.cancel_requested(run_id)
    assert store.stopping(run_id, "cancelled")
    assert store.get(run_id).stopping == "cancelled"
    store.finish(run_id, status_for_reason("cancelled"), "cancelled", RunStats())
    assert store.get(run_id).status == "cancelled"
    assert not store.stopping(run_id, "cancelled")


def test_cancel_and_start_racing_cancel_wins(
    redis_url: str, redis_prefix: str, store: RunStore
) -> None:
    """Start and cancel at the same moment from two clients, many times: either the start is
    refused (the run is cancelled) or the run started and carries the cancel flag its crawl
    stops on. Never a running run without the flag."""
    keys = Keys(redis_prefix)
    clients = [redis_from_url(redis_url) for _ in range(2)]
    try:
        starter, canceller = (RunStore(c, keys) for c in clients)
        outcomes = {"refused": 0, "started": 0}
        for _ in range(60):
            run_id = _new(store)
            barrier = threading.Barrier(2)
            started: list[bool] = []

            def start(
                run_id: str = run_id,
                barrier: threading.Barrier = barrier,
                started: list[bool] = started,
            ) -> None:
                barrier.wait()
                try:
                    starter.start(run_id)
                    started.append(True)
                except RunStateError:
                    started.append(False)

            def cancel(run_id: str = run_id, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                assert canceller.request_cancel(run_id)

            threads = [threading.Thread(target=start), threading.Thread(target=cancel)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            run = store.get(run_id)
            assert run.cancel_requested is not None
            if started[0]:
                outcomes["started"] += 1
                assert run.status == "running"
            else:
                outcomes["refused"] += 1
                assert run.status == "cancelled"
        assert sum(outcomes.values()) == 60
    finally:
        for c in clients:
            c.close()


def test_create_refuses_a_taken_id_and_bad_input(store: RunStore) -> None:
    run_id = _new(store, "20300101T000000Z-abcdef")
    with pytest.raises(RunExists):
        _new(store, run_id)
    with pytest.raises(ValueError, match="run id"):
        _new(store, "has space")
    with pytest.raises(ValueError, match="origin"):
        store.create(seeds=SEEDS, options={}, origin="")
    with pytest.raises(ValueError):
        store.finish(run_id, "running", "x", RunStats())
    with pytest.raises(RunNotFound):
        store.start("20300101T000000Z-000000")
    with pytest.raises(RunNotFound):
        store.request_cancel("nothing")


def test_new_ids_have_the_crawl_id_format() -> None:
    a, b = new_run_id(), new_run_id()
    assert a != b and len(a) == len("20300101T000000Z-abcdef") and a[15:17] == "Z-"


# -- reading -----------------------------------------------------------------------------------


def test_lookup_by_id_prefix_or_random_suffix(store: RunStore) -> None:
    one = _new(store, "20300101T000000Z-aaa111")
    two = _new(store, "20300101T000000Z-bbb222")
    _new(store, "20300102T000000Z-ccc333")
    assert store.get(one).id == one
    assert store.get("20300101T000000Z-b").id == two
    assert store.get("aaa111").id == one
    with pytest.raises(RunNotFound, match="ambiguous: 2 runs"):
        store.get("20300101")
    with pytest.raises(RunNotFound, match="no run"):
        store.get("ddd444")
    with pytest.raises(RunNotFound):
        store.get("  ")


def test_list_newest_first_with_limit_and_status(store: RunStore, clock: Clock) -> None:
    ids = []
    for _ in range(5):
        clock.now += 60
        ids.append(_new(store))
    store.start(ids[1])
    store.request_cancel(ids[3])
    assert [r.id for r in store.list(limit=None)] == ids[::-1]
    assert [r.id for r in store.list(limit=2)] == [ids[4], ids[3]]
    assert [r.id for r in store.list(status="queued")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in store.list(status="queued", limit=1)] == [ids[4]]
    assert [r.id for r in store.list(status="running")] == [ids[1]]
    assert [r.id for r in store.list(status="cancelled")] == [ids[3]]
    assert store.list(status="failed") == []
    with pytest.raises(ValueError):
        store.list(status="done")


def test_records_from_before_runs_still_read(
    redis_client: redis.Redis, redis_prefix: str, store: RunStore
) -> None:
    keys = Keys(redis_prefix)
    crawl_stats = {"crawl/pages": 4, "crawl/images": 3, "matcher/confirmed": 1}
    redis_client.hset(
        keys.crawl("old1"),
        mapping={
            "started": "2030-01-01T00:00:00+00:00",
            "spider": "hotline",
            "finished": "2030-01-01T00:01:00+00:00",
            "reason": "shutdown",
            "stats": json.dumps(crawl_stats),
        },
    )
    redis_client.zadd(keys.crawls, {"old1": 1_893_456_000})
    run = store.get("old1")
    assert (run.status, run.reason, run.origin) == ("failed", "shutdown", "scrapy")
    assert (run.stats.pages, run.stats.images, run.stats.confirmed) == (4, 3, 1)
    assert run.duration() == 60.0
    assert [r.id for r in store.list()] == ["old1"]
    assert store.status("old1") == "failed" and store.status("none") is None


# -- Scrapy stats -> run counts ----------------------------------------------------------------


def test_crawl_stats_map_to_run_counts() -> None:
    stats = {
        "downloader/request_count": 12,
        "retry/count": 2,
        "response_received_count": 8,
        "crawl/pages": 3,
        "crawl/images": 5,
        "matcher/hashed": 4,
        "matcher/confirmed": 2,
        "matcher/review": 1,
        "crawl/errors/TimeoutError": 1,
        "crawl/errors/HttpError": 2,
        "hits/queue_error": 1,
        "matcher/decode_error": 3,
        "matcher/decode_error/truncated": 2,
        "matcher/decode_error/unsupported": 1,
        "start_time": "not a count",
    }
    run = RunStats.from_crawl_stats(stats)
    assert run == RunStats(
        requests=12,
        retries=2,
        responses=8,
        pages=3,
        images=5,
        hashed=4,
        confirmed=2,
        review=1,
        errors={"HttpError": 2, "QueueError": 1, "TimeoutError": 1},
        decode_errors={"truncated": 2, "unsupported": 1},
    )
    # Images that could not be decoded are not failed requests.
    assert run.distinct_requests == 10 and run.error_count == 4 and run.error_rate == 0.4
    assert RunStats.from_dict(run.as_dict()) == run
    assert RunStats.from_crawl_stats({}) == RunStats() and RunStats().error_rate == 0.0


# -- crawl health ------------------------------------------------------------------------------


def _flags(stats: RunStats, *, final: bool = True) -> set[str]:
    return set(CrawlHealth.from_settings(Settings()).evaluate(stats, final=final))


HEALTHY = RunStats(requests=20, responses=20, pages=10, images=30, hashed=30)


def test_each_health_check_can_fail() -> None:
    # The default thresholds the cases below are built around.
    assert (HEALTH_MAX_ERROR_RATE, HEALTH_MIN_REQUESTS, HEALTH_NO_IMAGES_MIN_PAGES) == (0.5, 10, 5)
    assert _flags(HEALTHY) == set()
    down = RunStats(requests=2, retries=1, errors={"ConnectionRefusedError": 1})
    assert _flags(down) == {"no_pages"}
    assert "no_pages" not in _flags(RunStats(requests=1, responses=1, images=1))  # image seed
    failing = RunStats(requests=20, responses=8, pages=8, images=9, errors={"TimeoutError": 12})
    assert _flags(failing) == {"error_rate"}
    half = RunStats(requests=20, responses=10, pages=10, images=9, errors={"TimeoutError": 10})
    assert _flags(half) == set()  # at the threshold, not above it
    few = RunStats(requests=9, responses=1, pages=1, images=1, errors={"TimeoutError": 8})
    assert _flags(few) == set()  # too few requests to judge
    blind = RunStats(requests=6, responses=6, pages=6)
    assert _flags(blind) == {"no_images"}
    assert _flags(RunStats(requests=4, responses=4, pages=4)) == set()
    flooded = RunStats(requests=20, responses=20, pages=10, images=30, hashed=30, pages_capped=1)
    assert _flags(flooded) == _flags(flooded, final=False) == {"page_caps"}
    assert RunStats.from_crawl_stats({"crawl/pages_capped": 2}).pages_capped == 2
    stalled = RunStats(requests=20, responses=20, pages=10, images=30, parse_timeouts=1)
    assert _flags(stalled) == _flags(stalled, final=False) == {"parse_timeouts"}
    assert RunStats.from_crawl_stats({"crawl/parse_timeout": 3}).parse_timeouts == 3


def test_live_health_judges_only_live_checks() -> None:
    starting = RunStats()
    assert _flags(starting, final=False) == set()
    assert _flags(starting, final=True) == {"no_pages"}
    failing = RunStats(requests=20, errors={"TimeoutError": 15}, pages=5)
    assert _flags(failing, final=False) == {"error_rate"}


def test_health_thresholds_come_from_settings() -> None:
    settings = Settings({"HEALTH_MAX_ERROR_RATE": "0.1", "HEALTH_MIN_REQUESTS": "1"})
    health = CrawlHealth.from_settings(settings)
    stats = RunStats(requests=2, retries=1, errors={"ConnectionRefusedError": 1})
    flags = health.evaluate(stats, final=True)
    assert set(flags) == {"no_pages", "error_rate"}
    assert "1 of 1 requests failed (100% > 10%): ConnectionRefusedError 1" in flags["error_rate"]
    checks = [NoPages(), ErrorRate(max_rate=1.0, min_requests=1), NoImages(min_pages=1)]
    assert CrawlHealth(checks).evaluate(stats, final=True) == {"no_pages": flags["no_pages"]}
