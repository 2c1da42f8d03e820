"""``hotline purge`` and the notifier daemon's daily purge, through the real CLI.

The records are written in the test process with the project's own stores and a clock set
hundreds of days back, so the CLI, which runs on the real time, finds them expired.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from store.clock import DAY
from store.keys import Keys
from store.queue import HitQueue
from store.text import text
from takedown.notices import NoticeStore
from tests.builders import CLASSIFICATION_TOML, IDENTITY_TOML, make_hit
from tests.helpers import HOTLINE, Clock, ok_json, one_line_error, run_cli, wait_for
from tests.takedown.test_retention import changes, entries, snapshot


@dataclass
class Records:
    old: str  # closed 390 days ago: expired
    recent: str  # closed 10 days ago
    open: str  # sent 400 days ago and never closed


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "hotline.toml"
    config.write_text(IDENTITY_TOML + CLASSIFICATION_TOML + '[rdap]\nurl = ""\n', encoding="utf-8")
    return {**env, "HOTLINE_CONFIG": str(config)}


@pytest.fixture
def records(redis_client: redis.Redis, redis_prefix: str) -> Records:
    keys = Keys(redis_prefix)
    clock = Clock(time.time() - 400 * DAY)
    store = NoticeStore(redis_client, keys, clock=clock)
    queue = HitQueue(redis_client, keys)
    hits = [make_hit(n) for n in (1, 2, 3)]
    for hit in hits:
        queue.enqueue(hit)
        store.create(hit, actor="notifier@test")
        store.record(hit.incident, "sent", actor="notifier@test", status="sent")
    clock.advance(10 * DAY)
    store.record(hits[0].incident, "removed", actor="recheck@test", status="removed")
    clock.advance(380 * DAY)
    store.record(hits[1].incident, "removed", actor="recheck@test", status="removed")
    return Records(hits[0].incident, hits[1].incident, hits[2].incident)


def listed(env: dict[str, str]) -> set[str]:
    return {n["id"] for n in ok_json(["notices", "list"], env)}


def test_dry_run_then_purge(
    env: dict[str, str], records: Records, redis_client: redis.Redis, redis_prefix: str
) -> None:
    before = snapshot(redis_client, redis_prefix)
    dry = ok_json(["purge", "--dry-run"], env)
    assert snapshot(redis_client, redis_prefix) == before
    assert dry["dry_run"] is True
    assert (dry["counts"]["notices"], dry["counts"]["hits"]) == (1, 1)

    shown = run_cli(["purge"], env)
    assert shown.returncode == 0, shown.stderr
    assert "closed notices" in shown.stdout
    row = next(line for line in shown.stdout.splitlines() if "closed notices" in line)
    assert "1" in row.split()
    removed, _ = changes(before, snapshot(redis_client, redis_prefix))
    keys = Keys(redis_prefix)
    assert keys.notice(records.old) in removed
    assert not any(records.recent in k or records.open in k for k in removed)
    assert listed(env) == {records.recent, records.open}
    again = ok_json(["purge"], env)
    assert again["counts"]["notices"] == 0
    assert again["dry_run"] is False
    timeline = ok_json(["notices", "show", records.recent], env)["timeline"]
    assert timeline[-1]["event"] == "removed"


@pytest.mark.parametrize(
    ("table", "field_name"),
    [('closed_notices = "365"', "closed_notices"), ('audit = "forever"', "audit")],
)
def test_configuration_errors_exit_2_naming_the_file_and_field(
    env: dict[str, str], table: str, field_name: str
) -> None:
    config = Path(env["HOTLINE_CONFIG"])
    config.write_text(config.read_text() + f"[retention]\n{table}\n", encoding="utf-8")
    line = one_line_error(run_cli(["purge", "--dry-run"], env), 2)
    assert f"{config}: [retention] {field_name}:" in line


def test_a_running_purge_keeps_the_command_out(
    env: dict[str, str], records: Records, redis_client: redis.Redis, redis_prefix: str
) -> None:
    redis_client.set(Keys(redis_prefix).purge_lock, "notifier@elsewhere|00ff", px=60_000)
    line = one_line_error(run_cli(["purge"], env), 3)
    assert "notifier@elsewhere" in line
    assert records.old in listed(env)


def test_the_notifier_daemon_purges_at_start(
    env: dict[str, str], records: Records, redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)

    def purge_event() -> dict[str, str] | None:
        for _, data in reversed(entries(redis_client, keys.audit)):
            if data.get(b"event") == b"purged":
                return {text(k): text(v) for k, v in data.items()}
        return None

    daemon = subprocess.Popen(
        [*HOTLINE, "notifier", "--consumer", "daemon-1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        event = wait_for(purge_event, "the daemon's purge")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
    assert daemon.returncode == 0, stderr
    assert event["actor"] == "notifier@daemon-1"
    assert json.loads(event["counts"])["notices"] == 1
    assert "retention: purged notices 1" in stderr
    assert not redis_client.exists(keys.notice(records.old))
    assert redis_client.get(keys.purge_last) is not None
