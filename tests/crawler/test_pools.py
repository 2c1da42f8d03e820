"""Crawls through each hashing pool (``MATCHER_POOL``): the same hits, review items and decode
errors as hashing on the reactor thread; no image byte left anywhere by worker processes; no
worker process left after SIGINT or SIGTERM.

Real loopback sites on two hosts, the session's redis-server, ``hotline crawl`` in a
subprocess with a temp directory of its own.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from crawler.hashing import POOL_INLINE, POOL_KINDS, POOL_PROCESS, POOL_THREAD
from hotline.imagegen import cropped, encode, resized, textured_image, watermarked
from hotline.loopback import Exchange, Route, html_page, image_response, serve_linked
from matchers.algorithms import hamming
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry, Thresholds
from store.connection import redis_from_url
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue, HitRecord
from tests.helpers import HOST_A, HOST_B, HOTLINE, WAIT_TIMEOUT, hotline_env, run_cli, wait_for
from tests.nocontent import WindowFinder, files_changed_in_temp

#: Two workers whatever the machine: the pool's concurrency is exercised everywhere.
WORKERS = "2"
SHARED_MEMORY = Path("/dev/shm")
CRAWL_SETS = ("AUTOTHROTTLE_ENABLED=0", f"MATCHER_WORKERS={WORKERS}", "LOG_LEVEL=DEBUG")
WORKER_MODULE = "crawler.hashworker"
#: Seconds a crawl has to exit after SIGINT or SIGTERM (it finishes what is in flight).
EXIT_TIMEOUT = 60.0


@dataclass
class PoolSite:
    """Known images as exact and resized copies, a near copy for review, a truncated JPEG, a
    data: URI and a page that is not an image behind an image URL; ``/hold`` keeps its
    connection until ``release`` is set (for the shutdown tests)."""

    seed: str
    hold_seed: str
    routes_a: dict[str, Route] = field(default_factory=dict)
    routes_b: dict[str, Route] = field(default_factory=dict)
    served: list[bytes] = field(default_factory=list)
    hash_list: HashList = field(default_factory=lambda: HashList(name="pool", entries=[]))
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def _build(base_a: str, base_b: str) -> PoolSite:
    site = PoolSite(seed=f"{base_a}/", hold_seed=f"{base_a}/held")
    entries: list[ListEntry] = []
    imgs: list[str] = []
    distances: list[int] = []

    def add(path: str, body: bytes, on_b: bool = False) -> None:
        site.served.append(body)
        (site.routes_b if on_b else site.routes_a)[path] = image_response(body, "image/jpeg")
        imgs.append(f"<img src='{(base_b if on_b else base_a) + path}'>")

    for n in range(4):
        original = textured_image(7100 + n, 480, 360)
        known = encode(original, "JPEG", quality=90)
        d = digest_bytes(known)
        assert d.pdq is not None and d.phash is not None
        entries += [
            ListEntry("sha256", d.sha256, f"k{n}", "test"),
            ListEntry("pdq", d.pdq, f"k{n}", "test"),
            ListEntry("phash", d.phash, f"k{n}", "test"),
        ]
        add(f"/img/known-{n}.jpg", known, on_b=n % 2 == 1)
        add(f"/img/resized-{n}.jpg", encode(resized(original, 0.6), "JPEG", quality=80))
        near = encode(cropped(watermarked(original, "copy"), 0.03), "JPEG", quality=75)
        c = digest_bytes(near)
        assert c.pdq is not None
        distances.append(hamming(d.pdq, c.pdq))
        add(f"/img/near-{n}.jpg", near)
    for n in range(6):  # distractors: on no list
        add(f"/img/other-{n}.jpg", encode(textured_image(7200 + n, 400, 300), "JPEG"))
    truncated = encode(textured_image(7300, 400, 300), "JPEG")
    add("/img/truncated.jpg", truncated[: len(truncated) // 2])
    inline = encode(textured_image(7100, 480, 360), "PNG")  # k0's picture, as a data: URI
    site.served.append(inline)
    imgs.append(f"<img src='data:image/png;base64,{base64.b64encode(inline).decode()}'>")
    site.routes_a["/img/page.jpg"] = html_page("<p>not an image</p>")
    imgs.append("<img src='/img/page.jpg'>")
    # Near copies fall between confirm and review: both a pdq confirm below the smallest
    # distance, and a review threshold above the largest.
    confirm = min(distances) - 1
    assert confirm >= 0, distances
    site.hash_list = HashList(
        name="pool",
        entries=entries,
        thresholds=Thresholds(pdq_confirm=confirm, pdq_review=max(distances) + 8, phash_confirm=0),
    )
    half = len(imgs) // 2
    site.routes_a["/"] = html_page("".join(imgs[:half]) + "<a href='/two'>two</a>")
    site.routes_a["/two"] = html_page("".join(imgs[half:]))

    def hold(exchange: Exchange) -> None:
        site.held.set()
        site.release.wait(WAIT_TIMEOUT)
        body = b"<html><p>released</p></html>"
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        exchange.write(body)

    site.routes_a["/held"] = html_page(
        "".join(imgs[:4]) + "<a href='/hold'>hold</a>" + "<a href='/two'>two</a>"
    )
    site.routes_a["/hold"] = hold
    return site


@pytest.fixture(scope="module")
def pool_site() -> Iterator[PoolSite]:
    with serve_linked(_build, (HOST_A, HOST_B)) as served:
        yield served.site
        served.site.release.set()


@dataclass
class PoolCrawl:
    returncode: int
    output: str
    summary: dict[str, Any]
    hits: set[tuple[str, str, str, int, str]]
    tmp_dir: Path
    started: float
    records: list[HitRecord]


def _env(redis_url: str, prefix: str, root: Path) -> dict[str, str]:
    tmp_dir = root / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return hotline_env(
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_KEY_PREFIX=prefix,
        HOTLINE_DATA_DIR=str(root / "data"),
        HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
        TMPDIR=str(tmp_dir),
    )


def _args(seed: str, pool: str) -> list[str]:
    sets = [*CRAWL_SETS, f"MATCHER_POOL={pool}"]
    return ["crawl", seed, "--json", "--verbose", *(arg for s in sets for arg in ("--set", s))]


def _crawl(
    pool: str,
    site: PoolSite,
    redis_url: str,
    client: redis.Redis,
    root: Path,
    hash_list: HashList | None = None,
) -> PoolCrawl:
    prefix = f"pools-{pool}-{time.monotonic_ns()}:"
    ListStore(client, Keys(prefix)).save(hash_list or site.hash_list)
    env = _env(redis_url, prefix, root)
    started = time.time()
    done = run_cli(_args(site.seed, pool), env)
    summary = json.loads(done.stdout) if done.returncode == 0 else {}
    records = [
        (r, v)
        for v in ("confirmed", "review")
        for r in HitQueue(client, Keys(prefix)).iter_records(v)
    ]
    hits = {
        (r.url if not r.url.startswith("data:") else "data:", r.entry, r.algorithm, r.distance, v)
        for r, v in records
    }
    return PoolCrawl(
        returncode=done.returncode,
        output=done.stdout + done.stderr,
        summary=summary,
        hits=hits,
        tmp_dir=Path(env["TMPDIR"]),
        started=started,
        records=[r for r, _v in records],
    )


@pytest.fixture(scope="module")
def crawls(
    pool_site: PoolSite, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, PoolCrawl]:
    client = redis_from_url(redis_server)
    try:
        return {
            pool: _crawl(pool, pool_site, redis_server, client, tmp_path_factory.mktemp(pool))
            for pool in POOL_KINDS
        }
    finally:
        client.close()


FIGURES = ("pages", "images", "hashed", "confirmed_new", "review_new", "undecodable", "errors")


@pytest.mark.parametrize("pool", [p for p in POOL_KINDS if p != POOL_INLINE])
def test_every_pool_finds_what_the_reactor_thread_finds(
    crawls: dict[str, PoolCrawl], pool: str
) -> None:
    inline, other = crawls[POOL_INLINE], crawls[pool]
    assert inline.returncode == 0, inline.output[-3000:]
    assert other.returncode == 0, other.output[-3000:]
    assert {k: other.summary[k] for k in FIGURES} == {k: inline.summary[k] for k in FIGURES}
    assert other.hits == inline.hits
    assert other.summary["finish_reason"] == "finished"


def test_the_site_exercises_every_outcome(crawls: dict[str, PoolCrawl]) -> None:
    summary, hits = crawls[POOL_INLINE].summary, crawls[POOL_INLINE].hits
    verdicts = {(entry, verdict) for _url, entry, _alg, _dist, verdict in hits}
    assert {(f"k{n}", "confirmed") for n in range(4)} <= verdicts
    assert {(f"k{n}", "review") for n in range(4)} <= verdicts
    assert any(url == "data:" for url, *_ in hits)
    assert summary["undecodable"] == 1
    assert summary["images"] == summary["hashed"] == 4 * 3 + 6 + 1 + 1


@pytest.mark.parametrize(
    ("pool", "kept", "perceptual"),
    [(POOL_PROCESS, ("sha256", "pdq"), "pdq"), (POOL_THREAD, ("sha256",), "none")],
    ids=["process-pdq", "thread-exact"],
)
def test_a_crawl_computes_only_the_hashes_its_lists_hold(
    pool_site: PoolSite,
    redis_server: str,
    tmp_path: Path,
    pool: str,
    kept: tuple[str, ...],
    perceptual: str,
) -> None:
    full = pool_site.hash_list
    assert full is not None
    restricted = HashList(
        name=full.name,
        entries=[e for e in full.entries if e.algorithm in kept],
        thresholds=full.thresholds,
    )
    client = redis_from_url(redis_server)
    try:
        run = _crawl(pool, pool_site, redis_server, client, tmp_path, hash_list=restricted)
    finally:
        client.close()
    assert run.returncode == 0, run.output[-3000:]
    assert f"'matcher/perceptual': '{perceptual}'" in run.output
    confirmed = {entry for _url, entry, _alg, _dist, verdict in run.hits if verdict == "confirmed"}
    assert {f"k{n}" for n in range(4)} <= confirmed  # the exact copies, by SHA-256
    assert run.records
    assert all(r.phash is None for r in run.records)  # no list holds pHash: never computed
    assert all((r.pdq is not None) == ("pdq" in kept) for r in run.records)
    assert {r.algorithm for r in run.records} <= set(kept)
    # Exact hashes only: nothing is decoded, so the truncated JPEG goes unnoticed.
    assert run.summary["undecodable"] == (1 if "pdq" in kept else 0)
    assert run.summary["images"] == run.summary["hashed"] == 4 * 3 + 6 + 1 + 1


def test_the_process_pool_reports_its_workers(crawls: dict[str, PoolCrawl]) -> None:
    output = crawls[POOL_PROCESS].output
    assert f"'matcher/pool/workers': {WORKERS}" in output
    assert "'matcher/pool/in_flight_max':" in output
    assert "worker_crashed" not in output


def test_no_image_byte_is_left_by_the_worker_processes(
    crawls: dict[str, PoolCrawl],
    pool_site: PoolSite,
    redis_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run = crawls[POOL_PROCESS]
    finder = WindowFinder(pool_site.served)
    candidates = [
        *(p for p in run.tmp_dir.rglob("*") if p.is_file()),
        *files_changed_in_temp(
            Path(tempfile.gettempdir()), run.started, tmp_path_factory.getbasetemp()
        ),
    ]
    if SHARED_MEMORY.is_dir():  # nothing may pass through shared memory either
        candidates += [
            p for p in SHARED_MEMORY.rglob("*") if p.is_file() and p.stat().st_mtime >= run.started
        ]
    for path in candidates:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        assert finder.find(data, str(path)) is None
    client = redis_from_url(redis_server)
    try:
        for key in client.scan_iter(match="pools-process-*", count=1000):
            dumped = client.dump(key)
            assert dumped is not None
            assert finder.find(key + dumped, f"redis key {key!r}") is None
    finally:
        client.close()
    assert finder.find(run.output.encode("utf-8", "surrogateescape"), "logs") is None


# -- shutdown ---------------------------------------------------------------------------------


def _children(pid: int) -> dict[int, str]:
    """Processes whose parent is ``pid``, with their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_no_worker_process_outlives_a_crawl_stopped_by_a_signal(
    pool_site: PoolSite, redis_url: str, redis_prefix: str, tmp_path: Path, signum: int
) -> None:
    client = redis_from_url(redis_url)
    try:
        ListStore(client, Keys(redis_prefix)).save(pool_site.hash_list)
    finally:
        client.close()
    pool_site.held.clear()
    pool_site.release.clear()
    crawl = subprocess.Popen(
        [*HOTLINE, *_args(pool_site.hold_seed, POOL_PROCESS)],
        env=_env(redis_url, redis_prefix, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pool_site.held.wait(WAIT_TIMEOUT), "the crawl never reached /hold"
        workers = wait_for(
            lambda: [p for p, cmd in _children(crawl.pid).items() if WORKER_MODULE in cmd],
            "the hash workers",
        )
        assert len(workers) == int(WORKERS)
        crawl.send_signal(signum)
        pool_site.release.set()  # the held request completes: the crawl can wind down
        _, err = crawl.communicate(timeout=EXIT_TIMEOUT)
    finally:
        pool_site.release.set()
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
    assert "Traceback" not in err, err[-3000:]
    assert not [pid for pid in workers if _alive(pid)]
