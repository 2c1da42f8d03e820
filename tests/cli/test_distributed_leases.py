"""Leases of distributed runs under strain, end to end: a worker busy on a long page keeps its
lease, a stopped worker hands its requests back within its stop timeout, a run cancelled after
its workers died still ends, and a request that keeps losing its workers becomes a dead letter.
Real Redis, real loopback sites, the CLI as subprocesses (see test_distributed.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

import redis

from hotline.loopback import Exchange, serve
from store.frontier import Frontier
from store.keys import Keys
from store.runs import RunStore
from tests.cli.test_distributed import (
    CRAWL_SETS,
    TEST_LEASE,
    GridSite,
    _env,
    _hits,
    _leftover_frontier_keys,
    _save_list,
    finish,
    grid,
    start_worker,
)
from tests.helpers import HOST_A, HOTLINE, WAIT_TIMEOUT, run_cli, wait_for

__all__ = ["grid"]  # the fixture, shared with test_distributed.py

#: A worker's --stop-timeout in these tests (seconds).
STOP_TIMEOUT = "1"
#: Long enough that a worker whose stop waited for /gate's download could not exit in time.
SLOW_DOWNLOADS = ["--set", "DOWNLOAD_TIMEOUT=120"]


def _worker(env: dict[str, str], name: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    with log.open("w") as handle:
        return subprocess.Popen(
            [*HOTLINE, "worker", "--json", "--id", name, *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
        )


def _queue(grid: GridSite, env: dict[str, str], *extra: str) -> str:
    queued = run_cli(
        ["crawl", grid.seed, "--distributed", "--detach", "--json", *CRAWL_SETS, *extra], env
    )
    assert queued.returncode == 0, queued.stderr
    run_id: str = json.loads(queued.stdout)["crawl"]
    return run_id


def test_a_stopped_worker_hands_its_requests_back_within_its_stop_timeout(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    keys = Keys(redis_prefix)
    log = tmp_path / "stopped.log"
    stopped = _worker(env, "stopped", log, "--stop-timeout", STOP_TIMEOUT)
    try:
        run_id = _queue(grid, env, *SLOW_DOWNLOADS)
        frontier = Frontier(redis_client, keys, run_id)
        assert grid.gate_entered.wait(WAIT_TIMEOUT), "the worker never reached /gate"
        wait_for(lambda: frontier.in_flight().get("stopped"), "the worker's leased requests")
        stopped.send_signal(signal.SIGTERM)
        # /gate's download stalls until the gate opens (60 s): the stop must not wait for it.
        stopped.wait(WAIT_TIMEOUT / 3)
    finally:
        if stopped.poll() is None:
            stopped.kill()
        stopped.communicate()
    assert stopped.returncode == 0, log.read_text()[-3000:]
    assert "requests back to run" in log.read_text()
    assert "stopped" not in frontier.in_flight()
    assert len(frontier) >= 1  # /gate is pending again, not lost with the worker
    grid.gate.set()

    heir_log = tmp_path / "heir.log"
    (result,) = finish(start_worker(env, "heir", heir_log), heir_log)
    assert (result["run"], result["reason"], result["reclaimed"]) == (run_id, "finished", 0)
    assert sorted(_hits(redis_client, redis_prefix, run_id)) == sorted(grid.expected_hits())
    assert _leftover_frontier_keys(redis_client, redis_prefix, run_id) == []


def test_a_run_cancelled_after_its_workers_died_ends(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    keys = Keys(redis_prefix)
    store = RunStore(redis_client, keys)
    doomed = start_worker(env, "doomed", tmp_path / "doomed.log")
    try:
        run_id = _queue(grid, env)
        frontier = Frontier(redis_client, keys, run_id)
        assert grid.gate_entered.wait(WAIT_TIMEOUT), "the worker never reached /gate"
        wait_for(lambda: frontier.in_flight().get("doomed"), "the worker's leased requests")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(WAIT_TIMEOUT)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.communicate()
    cancel = run_cli(["runs", "cancel", run_id, "--json"], env)
    assert cancel.returncode == 0, cancel.stderr
    # Its heartbeat may still be within the lease: then the next worker to look ends it.
    log = tmp_path / "next.log"
    following = _worker(env, "next", log)
    try:
        wait_for(lambda: store.status(run_id) == "cancelled", "the cancelled run to end")
        following.send_signal(signal.SIGTERM)
        out, _ = following.communicate(timeout=WAIT_TIMEOUT)
    finally:
        if following.poll() is None:
            following.kill()
            following.communicate()
    grid.gate.set()
    assert following.returncode == 0, log.read_text()[-3000:]
    assert json.loads(out) == []  # it never crawled the cancelled run
    record = store.get(run_id)
    assert (record.status, record.reason) == ("cancelled", "cancelled")
    assert store.distributed() == []
    assert _leftover_frontier_keys(redis_client, redis_prefix, run_id) == []
    shown = run_cli(["runs", "show", run_id], env)
    assert "running (cancel requested)" not in shown.stdout


def test_a_worker_busy_on_a_long_page_keeps_its_lease(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    """A page that takes seconds of CPU to read (200 000 images), twice the lease: read off
    the reactor, so the heartbeat goes on and the idle worker never takes the page over."""
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    keys = Keys(redis_prefix)
    store = RunStore(redis_client, keys)
    gate = threading.Event()
    slow_fetches: list[str] = []

    def seed(exchange: Exchange) -> None:
        gate.wait(WAIT_TIMEOUT)  # until both workers are in the run
        body = b"<a href='/slow'>slow</a>"
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        exchange.write(body)

    slow_page = "".join(f"<img src='/i/{n}.png'>" for n in range(200_000)).encode()

    def slow(exchange: Exchange) -> None:
        slow_fetches.append(exchange.path)
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(slow_page))})
        exchange.write(slow_page)

    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker(env, f"w{n + 1}", logs[n]) for n in range(2)]
    try:
        with serve({"/": seed, "/slow": slow}, host=HOST_A) as site:
            queued = run_cli(
                [
                    "crawl",
                    site.url("/"),
                    "--distributed",
                    "--detach",
                    "--json",
                    *CRAWL_SETS,
                    "--set",
                    "CRAWL_MAX_IMAGES_PER_PAGE=1",
                    "--set",
                    "CRAWL_PARSE_TIMEOUT=120",
                ],
                env,
            )
            assert queued.returncode == 0, queued.stderr
            run_id = json.loads(queued.stdout)["crawl"]
            frontier = Frontier(redis_client, keys, run_id)
            wait_for(lambda: len(frontier.in_flight()) == 2, "both workers in the run")
            gate.set()
            results = [finish(w, log) for w, log in zip(workers, logs, strict=True)]
    finally:
        gate.set()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    assert slow_fetches == ["/slow"]  # once: never taken over
    assert [r[0]["reclaimed"] for r in results] == [0, 0]
    assert store.get(run_id).status == "finished"
    assert float(TEST_LEASE) < 2  # the page reads for longer than the lease
