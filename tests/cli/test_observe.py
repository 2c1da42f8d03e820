"""What operators watch: ``--log-format json`` (one event per line, one line per notice state
change) and ``--metrics-port`` (Prometheus metrics scraped from a running daemon), through
the real CLI, a real redis-server and loopback only."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from store.keys import Keys
from store.queue import HitQueue
from takedown.notices import NoticeStore
from tests.builders import directory_config, make_hit
from tests.helpers import (
    HOTLINE,
    WAIT_TIMEOUT,
    free_port,
    metric_value,
    one_line_error,
    run_cli,
    scrape_metrics,
    wait_for,
)

N_HITS = 3
METRICS_HOST = "127.0.0.1"


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Notices to the outbox (no SMTP configured) for a directory that knows HOST_A."""
    return {**env, "HOTLINE_CONFIG": str(directory_config(tmp_path))}


def _enqueue(client: redis.Redis, prefix: str, count: int) -> list[str]:
    queue = HitQueue(client, Keys(prefix))
    hits = [make_hit(n) for n in range(1, count + 1)]
    for hit in hits:
        assert queue.enqueue(hit) is not None
    return [hit.incident for hit in hits]


def test_json_logs_have_one_line_per_notice_state_change(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    notices = _enqueue(redis_client, redis_prefix, N_HITS)
    result = run_cli(["notifier", "--once", "--json", "--log-format", "json"], env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(e) for e in events)
    logged: dict[str, list[str]] = {}
    for event in events:
        if event.get("event") == "notice":
            logged.setdefault(event["notice"], []).append(event["action"])
    store = NoticeStore(redis_client, Keys(redis_prefix))
    assert sorted(logged) == sorted(notices)
    for notice_id in notices:
        timeline = [e.event for e in store.timeline(notice_id)]
        assert logged[notice_id] == timeline, notice_id
        assert store.get(notice_id).status == "awaiting_manual"
    batches = [e for e in events if e.get("event") == "notifier_batch"]
    assert batches and "awaiting manual sending 3" in batches[-1]["message"]


def test_text_logs_name_each_change_on_one_line(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    (notice,) = _enqueue(redis_client, redis_prefix, 1)
    result = run_cli(["notifier", "--once"], {**env, "HOTLINE_LOG_FORMAT": "text"})
    assert result.returncode == 0, result.stderr
    changes = [line for line in result.stderr.splitlines() if " takedown.notices: notice " in line]
    actions = [
        line.split(" takedown.notices: notice ", 1)[1].split()[1].rstrip(":") for line in changes
    ]
    timeline = [e.event for e in NoticeStore(redis_client, Keys(redis_prefix)).timeline(notice)]
    assert actions == timeline
    assert all(" INFO " in line for line in changes)


@pytest.mark.parametrize(
    ("args", "extra_env", "expected"),
    [
        (["--log-format", "xml"], {}, "--log-format: expected text or json, got 'xml'"),
        ([], {"HOTLINE_LOG_FORMAT": "yaml"}, "HOTLINE_LOG_FORMAT: expected text or json"),
    ],
)
def test_a_bad_log_format_is_one_line_exit_2(
    env: dict[str, str], args: list[str], extra_env: dict[str, str], expected: str
) -> None:
    result = run_cli(["notifier", "--once", *args], {**env, **extra_env})
    assert expected in one_line_error(result, 2)


def test_a_running_notifier_serves_its_metrics(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    port = free_port(METRICS_HOST)
    log = tmp_path / "notifier.err"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [*HOTLINE, "notifier", "--metrics-port", str(port), "--metrics-host", METRICS_HOST],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        wait_for(lambda: "waiting for hits" in log.read_text(), "the notifier to start")
        _enqueue(redis_client, redis_prefix, N_HITS)
        store = NoticeStore(redis_client, Keys(redis_prefix))
        wait_for(lambda: store.counts()["awaiting_manual"] == N_HITS, "the notices to be prepared")
        # The store's figures are read at the first scrape, after the notices were made (a
        # scrape within STORE_REFRESH of another reuses its figures).
        samples = scrape_metrics(METRICS_HOST, port)
        assert metric_value(samples, "hotline_store_up") == 1
        assert metric_value(samples, "hotline_daemon_info", role="notifier") == 1
        assert (
            metric_value(samples, "hotline_notices", status="awaiting_manual", channel="outbox")
            == N_HITS
        )
        assert metric_value(samples, "hotline_notices", status="sent", channel="") == 0
        assert metric_value(samples, "hotline_queue_depth", queue="hits_pending") == 0
        assert metric_value(samples, "hotline_queue_depth", queue="dead_letters") == 0
        assert (
            metric_value(samples, "hotline_notifier_notices_total", outcome="awaiting_manual")
            == N_HITS
        )
        assert metric_value(samples, "hotline_delivery_failures_total", kind="permanent") == 0
        assert metric_value(samples, "hotline_time_to_removal_seconds_count") == 0
        assert metric_value(samples, "process_resident_memory_bytes") > 10 * 2**20
        # A notifier reports notices, never a worker's figures.
        assert "hotline_worker_pages_total" not in samples
        assert "hotline_index_bytes" not in samples
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=WAIT_TIMEOUT)
    assert code == 0, log.read_text()


def test_a_metrics_port_in_use_is_one_line_exit_2(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind((METRICS_HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["scheduler", "--once", "--metrics-port", str(port)], env)
    line = one_line_error(result, 2)
    assert f"--metrics-port {port}: cannot listen on {METRICS_HOST}" in line
