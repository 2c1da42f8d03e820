"""Runs as an analyst and a scheduler see them: every crawl leaves a run record with live and
final counts and health flags; `hotline runs list|show|cancel`; `hotline crawl --run ID`.
Real Redis, loopback sites, the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, Route, RunningServer, html_page, image_response, serve
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry
from store.keys import Keys
from store.lists import ListStore
from store.runs import RunRecord, RunStats, RunStore
from tests.helpers import (
    CLI_TIMEOUT,
    HOST_A,
    HOTLINE,
    WAIT_TIMEOUT,
    free_port,
    one_line_error,
    run_cli,
    wait_for,
)

#: Seconds between the live updates of a test crawl's run.
LIVE_INTERVAL = "0.2"


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str) -> RunStore:
    return RunStore(redis_client, Keys(redis_prefix))


def crawl_args(*urls: str) -> list[str]:
    return [
        "crawl",
        *urls,
        "--allow-private-networks",
        "--json",
        "--set",
        "AUTOTHROTTLE_ENABLED=0",
        "--set",
        f"CRAWLRECORD_INTERVAL={LIVE_INTERVAL}",
    ]


@pytest.fixture
def site(redis_client: redis.Redis, redis_prefix: str) -> Iterator[RunningServer]:
    """Two pages, two images; one image is on the known list."""
    known = encode(textured_image(301), "JPEG", quality=90)
    other = encode(textured_image(302), "JPEG", quality=90)
    assert digest_bytes(known).sha256 != digest_bytes(other).sha256
    ListStore(redis_client, Keys(redis_prefix)).save(
        HashList(name="k", entries=[ListEntry("sha256", digest_bytes(known).sha256, "e1", "t")])
    )
    pages = {
        "/": html_page("<img src='/a.jpg'><a href='/two'>two</a>"),
        "/two": html_page("<img src='/b.jpg'>"),
        "/a.jpg": image_response(other, "image/jpeg"),
        "/b.jpg": image_response(known, "image/jpeg"),
    }
    with serve(pages, host=HOST_A) as server:
        yield server


def test_a_crawl_is_recorded_as_a_finished_run(
    env: dict[str, str], site: RunningServer, store: RunStore
) -> None:
    crawl = run_cli(crawl_args(site.url("/")), env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    summary = json.loads(crawl.stdout)
    run_id = summary["crawl"]
    assert summary["health"] == []

    listed = json.loads(run_cli(["runs", "list", "--json"], env).stdout)
    assert [r["id"] for r in listed] == [run_id]
    (record,) = listed
    assert (record["status"], record["origin"], record["reason"]) == ("finished", "cli", "finished")
    stats = record["stats"]
    assert (stats["pages"], stats["images"], stats["hashed"], stats["confirmed"]) == (2, 2, 2, 1)
    assert (stats["review"], stats["errors"], record["health"]) == (0, {}, [])
    assert record["started_unix"] <= record["finished_unix"]
    assert record["finished"].endswith("Z")

    shown = run_cli(["runs", "show", run_id.rsplit("-", 1)[1], "--json"], env)
    assert shown.returncode == 0, shown.stderr
    full = json.loads(shown.stdout)
    assert full["id"] == run_id and full["seeds"] == [site.url("/")]
    assert full["options"]["allow_private_networks"] is True
    assert full["options"]["overrides"]["CRAWLRECORD_INTERVAL"] == LIVE_INTERVAL
    assert full["crawl_stats"]["crawl/pages"] == 2
    assert full["crawl_stats"]["finish_reason"] == "finished"

    table = run_cli(["runs", "list"], env)
    assert table.returncode == 0 and run_id in table.stdout and "finished" in table.stdout
    assert "ok" in table.stdout
    assert "seeds" in run_cli(["runs", "show", run_id], env).stdout


def test_a_seed_whose_server_is_down_is_flagged_no_pages(
    env: dict[str, str], store: RunStore
) -> None:
    url = f"http://{HOST_A}:{free_port(HOST_A)}/"
    crawl = run_cli(crawl_args(url), env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    summary = json.loads(crawl.stdout)
    assert summary["health"] == ["no_pages"]
    record = store.get(summary["crawl"])
    assert (record.status, record.stats.pages) == ("finished", 0)
    assert record.stats.errors == {"DownloadConnectionRefusedError": 1}
    assert set(record.health) == {"no_pages"}  # one request is too few to judge the error rate
    listed = run_cli(["runs", "list"], env)
    assert "no_pages" in listed.stdout

    strict = run_cli([*crawl_args(url), "--set", "HEALTH_MIN_REQUESTS=1"], env)
    assert json.loads(strict.stdout)["health"] == ["error_rate", "no_pages"]


def test_cancel_stops_a_running_crawl(env: dict[str, str], store: RunStore, tmp_path: Path) -> None:
    entered = threading.Event()
    release = threading.Event()
    after: list[str] = []

    def slow(exchange: Exchange) -> None:
        entered.set()
        release.wait(WAIT_TIMEOUT)  # stall until the test lets it answer
        body = b"<html><a href='/after'>after</a></html>"
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        exchange.write(body)

    def page_after(exchange: Exchange) -> None:
        after.append(exchange.path)
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": "0"})

    pages: dict[str, Route] = {
        "/": html_page("<a href='/slow'>slow</a>"),
        "/slow": slow,
        "/after": page_after,
    }
    with serve(pages, host=HOST_A) as site:
        out_path, err_path = tmp_path / "crawl.out", tmp_path / "crawl.err"
        with out_path.open("w") as out, err_path.open("w") as err:
            crawl = subprocess.Popen(
                HOTLINE + crawl_args(site.url("/")), env=env, stdout=out, stderr=err
            )
        try:
            assert entered.wait(WAIT_TIMEOUT), "the crawl never reached the slow page"

            def running_with_live_counts() -> RunRecord | None:
                runs = store.list(status="running")
                return runs[0] if runs and runs[0].stats.pages >= 1 else None

            running = wait_for(running_with_live_counts, "live counts of the running run")
            cancel = run_cli(["runs", "cancel", running.id, "--json"], env)
            assert cancel.returncode == 0, cancel.stderr
            assert json.loads(cancel.stdout) == {
                "id": running.id,
                "status": "running",
                "cancel_requested": True,
            }
            wait_for(lambda: store.get(running.id).stopping, "the crawl to see the cancel")
        finally:
            release.set()
            code = crawl.wait(WAIT_TIMEOUT)
    assert code == 1, err_path.read_text()[-3000:]
    last = err_path.read_text().strip().splitlines()[-1]
    assert last == f"error: crawl {running.id} did not finish: cancelled"
    record = store.get(running.id)
    assert (record.status, record.reason) == ("cancelled", "cancelled")
    assert record.cancel_requested is not None and record.stats.pages == 2
    assert after == []  # nothing new was fetched once the crawl stopped
    again = run_cli(["runs", "cancel", running.id], env)
    assert again.returncode == 2
    assert one_line_error(again) == f"error: run {running.id} already ended: cancelled"


#: ``hotline crawl`` with another process acting on the run between the command's check that
#: it is queued and its crawl's start: ``MEANWHILE=start`` as a scheduler's launch repeated
#: after a crash does, ``MEANWHILE=cancel`` as an analyst's ``runs cancel``.
MEANWHILE_MAIN = """
import os, sys
import hotline.crawlrun as crawlrun
from crawler.redis import connect
from store.keys import Keys
from store.runs import RunStore

original = crawlrun.run_crawl
action = os.environ.pop("MEANWHILE")

def meanwhile(*args, **kwargs):
    runs = RunStore(connect(kwargs["redis_url"]), Keys(kwargs["key_prefix"]))
    if action == "start":
        runs.start(kwargs["run_id"])
    else:
        runs.request_cancel(kwargs["run_id"])
    return original(*args, **kwargs)

crawlrun.run_crawl = meanwhile
from hotline.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize(("action", "status"), [("start", "running"), ("cancel", "cancelled")])
def test_a_queued_run_started_or_cancelled_meanwhile_is_refused_as_not_queued(
    env: dict[str, str], site: RunningServer, store: RunStore, action: str, status: str
) -> None:
    run_id = store.create(
        seeds=[site.url("/")],
        options={"depth": 0, "allow_private_networks": True},
        origin="schedule:nightly",
    )
    crawl = subprocess.run(
        [sys.executable, "-c", MEANWHILE_MAIN, "crawl", "--run", run_id],
        check=False,
        env={**env, "MEANWHILE": action},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert crawl.returncode == 2, crawl.stdout + crawl.stderr
    # The refusal of a run found not queued, not a failed crawl's summary.
    assert crawl.stderr.strip().splitlines()[-1] == (
        f"error: run {run_id} is {status}, not queued: nothing to crawl"
    )
    assert "finish reason" not in crawl.stdout + crawl.stderr
    record = store.get(run_id)
    assert record.status == status, "the refused crawl changed the run"
    assert record.stats.pages == 0


def test_crawl_a_queued_run(env: dict[str, str], site: RunningServer, store: RunStore) -> None:
    run_id = store.create(
        seeds=[site.url("/")],
        options={
            "depth": 0,
            "allow_private_networks": True,
            "overrides": {"AUTOTHROTTLE_ENABLED": "0"},
        },
        origin="schedule:nightly",
    )
    crawl = run_cli(["crawl", "--run", run_id, "--json"], env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    assert json.loads(crawl.stdout)["crawl"] == run_id
    record = store.get(run_id)
    assert (record.status, record.origin) == ("finished", "schedule:nightly")
    # Depth 0: the seed page and its image only.
    assert (record.stats.pages, record.stats.images, record.stats.confirmed) == (1, 1, 0)
    assert record.started is not None and record.created is not None
    assert record.created <= record.started

    again = run_cli(["crawl", "--run", run_id], env)
    assert again.returncode == 2
    assert one_line_error(again) == (
        f"error: run {run_id} is finished, not queued: nothing to crawl"
    )
    unknown = run_cli(["crawl", "--run", "nosuchrun"], env)
    assert unknown.returncode == 2 and "no run nosuchrun" in one_line_error(unknown)
    both = run_cli(["crawl", "--run", run_id, site.url("/")], env)
    assert both.returncode == 2 and "--run" in one_line_error(both)


def test_a_cancelled_queued_run_is_not_crawled(
    env: dict[str, str], site: RunningServer, store: RunStore
) -> None:
    run_id = store.create(seeds=[site.url("/")], options={}, origin="schedule:x")
    cancel = run_cli(["runs", "cancel", run_id], env)
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == f"run {run_id}: cancelled"
    crawl = run_cli(["crawl", "--run", run_id], env)
    assert crawl.returncode == 2 and "is cancelled, not queued" in one_line_error(crawl)


def test_runs_commands_on_records(env: dict[str, str], store: RunStore) -> None:
    assert json.loads(run_cli(["runs", "list", "--json"], env).stdout) == []
    assert run_cli(["runs", "list"], env).stdout.strip() == "no runs"
    queued = store.create(seeds=[f"http://{HOST_A}:1/"], options={"depth": 1}, origin="cli")
    done = store.create(seeds=[f"http://{HOST_A}:2/"], options={}, origin="scrapy")
    store.start(done)
    counts = RunStats(requests=3, responses=1, pages=1, errors={"TimeoutError": 2})
    store.finish(done, "failed", "shutdown", counts, {"no_images": "why"})

    listed = json.loads(run_cli(["runs", "list", "--json", "--status", "queued"], env).stdout)
    assert [r["id"] for r in listed] == [queued]
    assert [
        r["id"] for r in json.loads(run_cli(["runs", "list", "--json", "--limit", "1"], env).stdout)
    ] == [done]
    bad = run_cli(["runs", "list", "--status", "done"], env)
    assert bad.returncode == 2 and "--status 'done'" in one_line_error(bad)

    full = json.loads(run_cli(["runs", "show", done, "--json"], env).stdout)
    assert (full["status"], full["reason"], full["health"]) == ("failed", "shutdown", ["no_images"])
    assert full["health_detail"] == {"no_images": "why"}
    assert full["stats"]["errors"] == {"TimeoutError": 2}
    assert full["seeds"] == [f"http://{HOST_A}:2/"] and full["duration_s"] is not None
    table = run_cli(["runs", "list"], env).stdout
    assert "no_images" in table and "shutdown" not in table

    missing = run_cli(["runs", "show", "nosuchrun"], env)
    assert missing.returncode == 2 and one_line_error(missing) == "error: no run nosuchrun"
    unknown = run_cli(["runs", "cancel", "nosuchrun"], env)
    assert unknown.returncode == 2 and one_line_error(unknown) == "error: no run nosuchrun"
    ended = run_cli(["runs", "cancel", done], env)
    assert ended.returncode == 2
    assert one_line_error(ended) == f"error: run {done} already ended: failed"
    cancelled = json.loads(run_cli(["runs", "cancel", queued, "--json"], env).stdout)
    assert cancelled == {"id": queued, "status": "cancelled", "cancel_requested": True}
