"""The pieces behind ``--log-format`` and ``--metrics-port``: the JSON log formatter, the
notifier's counters, the store collector's reads (a real redis-server), and the Grafana
dashboard's queries against the metrics the daemons serve."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry

from hotline.logs import JsonFormatter
from hotline.metrics import ROLES, DaemonMetrics, StoreCollector, daemon_metrics
from hotline.services import Session
from store.keys import Keys
from store.queue import HitQueue
from store.runs import RunStats, RunStore
from takedown.notices import NoticeStore
from takedown.notifier import NotifierStats
from tests.builders import make_hit
from tests.helpers import free_port

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
#: Grafana's grid is 24 columns wide.
GRID_WIDTH = 24


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("takedown.notices", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_a_json_log_line_is_one_object_with_the_extra_fields() -> None:
    line = JsonFormatter().format(
        _record("notice N-1 sent:\nsmtp", event="notice", notice="abc", attempts=2)
    )
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "notice N-1 sent:\nsmtp"
    assert (data["event"], data["notice"], data["attempts"]) == ("notice", "abc", 2)
    assert (data["level"], data["logger"]) == ("INFO", "takedown.notices")
    assert data["time"].endswith("Z") and "T" in data["time"]


def test_bytes_never_reach_a_json_log_line() -> None:
    body = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4  # what an image's bytes look like
    line = JsonFormatter().format(_record("fetched", body=body, nested={"raw": bytearray(body)}))
    data = json.loads(line)
    assert data["body"] == f"<{len(body)} bytes>"
    assert data["nested"] == {"raw": f"<{len(body)} bytes>"}
    assert body.hex() not in line and repr(body)[:40] not in line


def test_a_traceback_is_one_field_of_one_line() -> None:
    try:
        raise ValueError("broken\nin two")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: broken" in json.loads(line)["error"]


def test_the_notifier_counters_add_what_the_totals_gained() -> None:
    metrics = DaemonMetrics(CollectorRegistry(), "notifier")
    stats = NotifierStats()
    stats.sent, stats.retrying = 2, 1
    metrics.count_notifier(stats)
    metrics.count_notifier(stats)  # the same totals again add nothing
    stats.sent, stats.dead_lettered = 5, 1
    stats.awaiting_manual["n1"] = "outbox/n1.eml"
    metrics.count_notifier(stats)
    counted = Counter(
        {
            s.labels.get("outcome", s.labels.get("kind", "")): s.value
            for family in metrics.registry.collect()
            for s in family.samples
            if s.name.endswith("_total") and s.value
        }
    )
    assert counted == {
        "sent": 5,
        "retrying": 1,
        "dead_lettered": 1,
        "awaiting_manual": 1,
        "temporary": 1,
        "permanent": 1,
    }


def _gauge(collector: StoreCollector, name: str, **labels: str) -> float | None:
    for family in collector.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_the_store_is_read_at_most_once_per_refresh(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    now = [100.0]
    session = Session(redis_client, redis_url, Keys(redis_prefix))
    collector = StoreCollector(session, refresh=15.0, clock=lambda: now[0])
    assert _gauge(collector, "hotline_queue_depth", queue="hits_pending") == 0
    HitQueue(redis_client, Keys(redis_prefix)).enqueue(make_hit(1))
    now[0] += 14.0
    assert _gauge(collector, "hotline_queue_depth", queue="hits_pending") == 0  # reused
    now[0] += 1.0
    assert _gauge(collector, "hotline_queue_depth", queue="hits_pending") == 1  # read again


def test_the_daemons_share_one_walk_of_the_notices_per_refresh(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    notices = NoticeStore(redis_client, keys)
    notices.create(make_hit(1), actor="t")
    wall = [1_800_000_000.0]
    session = Session(redis_client, redis_url, keys)

    def daemon() -> StoreCollector:  # a fresh collector: nothing of its own to reuse
        return StoreCollector(session, refresh=15.0, wall=lambda: wall[0])

    assert _gauge(daemon(), "hotline_notices", status="queued", channel="") == 1
    notices.create(make_hit(2), actor="t")
    wall[0] += 14.0
    # Another daemon within the refresh: the first one's walk, not a walk of its own.
    assert _gauge(daemon(), "hotline_notices", status="queued", channel="") == 1
    HitQueue(redis_client, keys).enqueue(make_hit(9))
    assert _gauge(daemon(), "hotline_queue_depth", queue="hits_pending") == 1  # not shared
    wall[0] += 1.0
    assert _gauge(daemon(), "hotline_notices", status="queued", channel="") == 2
    # A daemon that took a walk 14 s old reads again once that walk is a refresh old, not
    # a whole refresh after it took it.
    wall[0] += 14.0
    clock = [0.0]
    late = StoreCollector(session, refresh=15.0, clock=lambda: clock[0], wall=lambda: wall[0])
    assert _gauge(late, "hotline_notices", status="queued", channel="") == 2
    notices.create(make_hit(3), actor="t")
    wall[0] += 1.0
    clock[0] += 1.0
    assert _gauge(late, "hotline_notices", status="queued", channel="") == 3
    # A damaged or foreign walk is made again, not served.
    notices.create(make_hit(4), actor="t")
    good = redis_client.get(keys.metrics_walk)
    assert good is not None
    walk = json.loads(good)
    damages = [
        b"{not json",
        b'{"at": 1}',
        b"[]",
        b'"x"',
        json.dumps(walk | {"review_pending": 1e400}).encode(),  # inf: not an int
        json.dumps(walk | {"review_pending": -1}).encode(),
        json.dumps(walk | {"at": float("nan")}).encode(),
        json.dumps(walk | {"removal": walk["removal"] | {"bounds": [1, 2]}}).encode(),
    ]
    for damaged in damages:
        redis_client.set(keys.metrics_walk, damaged)
        assert _gauge(daemon(), "hotline_notices", status="queued", channel="") == 4
    assert 0 < redis_client.ttl(keys.metrics_walk) <= 30


def test_an_unreachable_store_is_reported_down_not_stale(redis_prefix: str) -> None:
    url = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)  # nothing listens there
    try:
        collector = StoreCollector(Session(client, url, Keys(redis_prefix)))
        names = {family.name for family in collector.collect()}
    finally:
        client.close()
    assert names == {"hotline_store_up"}
    assert _gauge(collector, "hotline_store_up") == 0


def test_a_runs_failed_requests_and_undecodable_images_are_reported_by_kind(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    runs = RunStore(redis_client, keys)
    run_id = runs.create(seeds=["http://a.example/"], options={}, origin="cli")
    # What a crawl's Scrapy stats say, as the crawl records them.
    stats = RunStats.from_crawl_stats(
        {
            "crawl/pages": 4,
            "crawl/images": 9,
            "crawl/errors/TimeoutError": 2,
            "matcher/decode_error": 3,
            "matcher/decode_error/truncated": 2,
            "matcher/decode_error/unsupported": 1,
        }
    )
    runs.finish(run_id, "finished", "finished", stats)
    collector = StoreCollector(Session(redis_client, redis_url, keys))
    assert _gauge(collector, "hotline_run_pages", run=run_id, status="finished") == 4
    assert _gauge(collector, "hotline_run_errors", run=run_id, kind="TimeoutError") == 2
    assert _gauge(collector, "hotline_run_decode_errors", run=run_id, code="truncated") == 2
    assert _gauge(collector, "hotline_run_decode_errors", run=run_id, code="unsupported") == 1
    assert _gauge(collector, "hotline_run_errors", run=run_id, kind="truncated") is None


def test_a_record_the_store_cannot_read_is_reported_not_raised(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys(redis_prefix)
    redis_client.sadd(keys.lists, "broken")
    redis_client.hset(keys.list("broken"), mapping={"version": "not a number", "kind": "known"})
    collector = StoreCollector(Session(redis_client, redis_url, keys))
    with caplog.at_level(logging.WARNING, logger="hotline.metrics"):
        names = {family.name for family in collector.collect()}
    assert names == {"hotline_store_up"}
    assert _gauge(collector, "hotline_store_up") == 0
    (record,) = caplog.records
    assert "cannot read the store" in record.getMessage()
    assert "\n" not in record.getMessage()


def _served(redis_client: redis.Redis, redis_url: str, redis_prefix: str) -> dict[str, set[str]]:
    """Every sample name some daemon serves, with the labels it carries."""
    session = Session(redis_client, redis_url, Keys(redis_prefix))
    served: dict[str, set[str]] = {}
    for role in ROLES:
        for family in daemon_metrics(role, session).registry.collect():
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_count", "_sum"),
            }.get(family.type, ("",))
            labels = {label for sample in family.samples for label in sample.labels}
            for suffix in suffixes:
                served.setdefault(family.name + suffix, set()).update(labels)
    return served


def test_every_metric_the_dashboard_queries_is_served(
    redis_client: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    # Some samples (and so their labels) exist only with data: a hit, a run and a list.
    HitQueue(redis_client, Keys(redis_prefix)).enqueue(make_hit(1))
    served = _served(redis_client, redis_url, redis_prefix)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    queried: set[str] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(re.findall(r"\b(?:hotline|process)_[a-z_]+", target["expr"]))
            assert names, target["expr"]
            for name in names:
                assert name in served, f"{panel['title']}: {name} is not served"
            for name, matchers in re.findall(r"\b(hotline_[a-z_]+)\{([^}]*)\}", target["expr"]):
                for label in re.findall(r"([a-z_]+)\s*!?=~?", matchers):
                    assert label in served[name], f"{panel['title']}: {name} has no {label}"
            queried |= names
    # Every family of ours is on the dashboard (a new metric gets a panel).
    ours = {name for name in served if name.startswith("hotline_")}
    histogram_parts = {n for n in ours if n.endswith(("_count", "_sum"))}
    assert ours - histogram_parts - queried == set()
