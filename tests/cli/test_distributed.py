"""Distributed runs end to end: `hotline crawl --distributed` queues a run, `hotline worker`
processes crawl it from the shared frontier. Real Redis, real loopback sites on two hosts,
the CLI as subprocesses; a worker killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from hotline.imagegen import encode, textured_image
from hotline.loopback import (
    Exchange,
    Route,
    html_page,
    image_response,
    redirect,
    serve,
    serve_linked,
)
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry
from store.frontier import Frontier
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue
from store.runs import RunStore
from tests.helpers import (
    HOST_A,
    HOTLINE,
    KILL_AT_MAIN,
    WAIT_TIMEOUT,
    Samples,
    free_port,
    hotline_env,
    listening_sockets,
    metric_value,
    one_line_error,
    run_cli,
    scrape_metrics,
    wait_for,
)
from tests.nocontent import WindowFinder

PAGES = 8
IMAGES_PER_PAGE = 3
#: Lease of the test runs' workers: a killed worker's requests are taken over after it.
TEST_LEASE = "1.5"


@dataclass
class GridSite:
    """Pages on host A with images on A and B; ``known`` maps each planted copy of a known
    image (its URL) to its list entry; ``gate`` holds back the page /gate until set."""

    seed: str
    known: dict[str, str] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    gate_entered: threading.Event = field(default_factory=threading.Event)
    routes_a: dict[str, Route] = field(default_factory=dict)
    routes_b: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    hash_list: HashList = field(default_factory=lambda: HashList(name="grid", entries=[]))
    images: list[bytes] = field(default_factory=list)  # every image body served

    def expected_hits(self) -> set[tuple[str, str]]:
        return set(self.known.items())


def _build(base_a: str, base_b: str) -> GridSite:
    site = GridSite(seed=f"{base_a}/")
    routes_a, routes_b = site.routes_a, site.routes_b
    known_entries: list[ListEntry] = []
    seed = 500
    links = []
    for p in range(PAGES):
        imgs = []
        for i in range(IMAGES_PER_PAGE):
            seed += 1
            body = encode(textured_image(seed), "JPEG", quality=88)
            site.images.append(body)
            on_b = i == 1
            path = f"/img/{p}-{i}.jpg"
            (routes_b if on_b else routes_a)[path] = image_response(body, "image/jpeg")
            url = (base_b if on_b else base_a) + path
            imgs.append(f"<img src='{url}'>")
            if i == 0:  # one known image per page
                entry = f"e{p}"
                known_entries.append(ListEntry("sha256", digest_bytes(body).sha256, entry, "t"))
                site.known[url] = entry
        links.append(f"<a href='/p{p}'>p{p}</a>")
        routes_a[f"/p{p}"] = html_page("".join(imgs) + "<a href='/'>home</a>")
    # A page reached through a redirect, a missing image, and the gated page (its image is
    # known: only a crawl of /gate finds it).
    gate_body = encode(textured_image(990), "JPEG", quality=88)
    site.images.append(gate_body)
    known_entries.append(ListEntry("sha256", digest_bytes(gate_body).sha256, "gate", "t"))
    site.known[f"{base_a}/img/gate.jpg"] = "gate"
    routes_a["/img/gate.jpg"] = image_response(gate_body, "image/jpeg")

    def gated(exchange: Exchange) -> None:
        site.requests.append(exchange.path)
        site.gate_entered.set()
        site.gate.wait(WAIT_TIMEOUT)
        body = b"<html><img src='/img/gate.jpg'></html>"
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        exchange.write(body)

    routes_a["/gate"] = gated
    routes_a["/moved"] = redirect("/p0")
    routes_a["/"] = html_page(
        "<a href='/gate'>gate</a>" + "".join(links) + "<a href='/moved'>moved</a>"
        "<img src='/img/missing.jpg'>"
    )
    site.hash_list = HashList(name="grid", entries=known_entries)
    return site


@pytest.fixture
def grid() -> Iterator[GridSite]:
    with serve_linked(_build) as served:
        yield served.site
        served.site.gate.set()


def _env(redis_url: str, prefix: str, data: Path) -> dict[str, str]:
    return hotline_env(
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_KEY_PREFIX=prefix,
        HOTLINE_DATA_DIR=str(data),
        HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
    )


CRAWL_SETS = [
    "--set",
    "AUTOTHROTTLE_ENABLED=0",
    "--set",
    "CRAWLRECORD_INTERVAL=0.2",
    "--set",
    f"FRONTIER_LEASE={TEST_LEASE}",
    "--set",
    "FRONTIER_POLL_INTERVAL=0.05",
]


def start_worker(
    env: dict[str, str], name: str, log: Path, kill_at: str = ""
) -> subprocess.Popen[str]:
    """``hotline worker --once`` as ``name``; with ``kill_at``, one that kills itself at that
    point (``FAULT_KILL_AT`` of :data:`tests.helpers.KILL_AT_MAIN`)."""
    command = [*HOTLINE] if not kill_at else [sys.executable, "-c", KILL_AT_MAIN]
    with log.open("w") as handle:
        return subprocess.Popen(
            [*command, "worker", "--once", "--json", "--id", name],
            env={**env, "FAULT_KILL_AT": kill_at} if kill_at else env,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
        )


def finish(worker: subprocess.Popen[str], log: Path) -> list[dict[str, object]]:
    out, _ = worker.communicate(timeout=90)
    assert worker.returncode == 0, log.read_text()[-3000:]
    results: list[dict[str, object]] = json.loads(out)
    return results


def _save_list(client: redis.Redis, prefix: str, grid: GridSite) -> None:
    ListStore(client, Keys(prefix)).save(grid.hash_list)


def _hits(client: redis.Redis, prefix: str, crawl: str) -> list[tuple[str, str]]:
    return [
        (r.url, r.entry)
        for r in HitQueue(client, Keys(prefix)).iter_records("confirmed")
        if r.crawl == crawl
    ]


def _leftover_frontier_keys(client: redis.Redis, prefix: str, run_id: str) -> list[str]:
    keys = Keys(prefix)
    pattern = f"{keys.crawl(run_id)}:*"
    return sorted(
        k.decode() for k in client.scan_iter(match=pattern) if not k.decode().endswith(":parts")
    )


def both_workers_crawl(
    grid: GridSite,
    env: dict[str, str],
    prefix: str,
    client: redis.Redis,
    args: list[str],
) -> subprocess.CompletedProcess[str]:
    """`hotline crawl --distributed ...` while two workers wait: /gate holds the run until
    both have joined it (registered in its frontier), so neither can miss it."""
    store = RunStore(client, Keys(prefix))
    result: list[subprocess.CompletedProcess[str]] = []
    crawl = threading.Thread(
        target=lambda: result.append(run_cli(["crawl", grid.seed, *args], env))
    )
    crawl.start()
    try:
        run_id = wait_for(lambda: next(iter(store.distributed()), None), "the queued run")
        frontier = Frontier(client, Keys(prefix), run_id)
        wait_for(lambda: len(frontier.in_flight()) == 2, "both workers in the run")
    finally:
        grid.gate.set()
        crawl.join()
    return result[0]


def test_two_workers_crawl_a_run_to_the_hits_of_one_process(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    # Hits are exactly-once per key prefix: the single-process crawl and the distributed run
    # each get their own.
    single_prefix, dist_prefix = redis_prefix + "one:", redis_prefix + "two:"
    for prefix in (single_prefix, dist_prefix):
        _save_list(redis_client, prefix, grid)

    single_env = _env(redis_url, single_prefix, tmp_path / "one")
    grid.gate.set()
    single = run_cli(["crawl", grid.seed, "--json", *CRAWL_SETS], single_env)
    grid.gate.clear()  # the distributed run waits at /gate until both workers are in
    assert single.returncode == 0, single.stderr[-3000:]
    single_summary = json.loads(single.stdout)
    single_hits = _hits(redis_client, single_prefix, single_summary["crawl"])
    assert set(single_hits) == grid.expected_hits()

    env = _env(redis_url, dist_prefix, tmp_path / "two")
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker(env, f"w{i + 1}", logs[i]) for i in range(2)]
    try:
        crawl = both_workers_crawl(
            grid, env, dist_prefix, redis_client, ["--distributed", "--json", *CRAWL_SETS]
        )
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        summary = json.loads(crawl.stdout)
        results = [finish(w, log) for w, log in zip(workers, logs, strict=True)]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    run_id = summary["crawl"]
    assert summary["status"] == "finished" and summary["distributed"] is True
    assert [r[0]["run"] for r in results] == [run_id, run_id]

    hits = _hits(redis_client, dist_prefix, run_id)
    assert sorted(hits) == sorted(single_hits)  # the same hits, each once
    assert summary["confirmed_new"] == len(single_hits)

    record = RunStore(redis_client, Keys(dist_prefix)).get(run_id)
    assert record.status == "finished" and record.reason == "finished"
    assert sorted(record.workers) == ["w1", "w2"]
    # Every page and image crawled once over both workers, as by one process.
    assert (
        record.stats.pages
        == single_summary["pages"]
        == sum(p.pages for p in record.workers.values())
    )
    assert record.stats.images == single_summary["images"]
    assert record.stats.errors == {"HttpError": 1}  # the missing image
    assert _leftover_frontier_keys(redis_client, dist_prefix, run_id) == []
    assert run_id not in RunStore(redis_client, Keys(dist_prefix)).distributed()

    listed = run_cli(["runs", "list"], env)
    assert "cli (distributed)" in listed.stdout
    shown = run_cli(["runs", "show", run_id], env)
    assert shown.returncode == 0, shown.stderr
    for name, part in record.workers.items():
        assert f"{name}: {part.pages} pages, {part.images} images" in shown.stdout


def test_a_worker_killed_mid_run_loses_nothing(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    keys = Keys(redis_prefix)
    doomed = start_worker(env, "doomed", tmp_path / "doomed.log")
    try:
        queued = run_cli(
            ["crawl", grid.seed, "--distributed", "--detach", "--json", *CRAWL_SETS], env
        )
        assert queued.returncode == 0, queued.stderr
        run_id = json.loads(queued.stdout)["crawl"]
        frontier = Frontier(redis_client, keys, run_id)
        assert grid.gate_entered.wait(WAIT_TIMEOUT), "the worker never reached /gate"
        wait_for(lambda: frontier.in_flight().get("doomed"), "the worker's leased requests")
        assert listening_sockets(doomed.pid) == []  # no RemoteControl in a worker either
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(WAIT_TIMEOUT)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.communicate()
    assert frontier.in_flight().get("doomed"), "the killed worker held no request"
    # Mid-run, with requests in flight: no Redis value holds image content.
    finder = WindowFinder(grid.images)
    stored = list(redis_client.scan_iter(match=f"{redis_prefix}*", count=1000))
    assert keys.frontier_inflight(run_id, "doomed").encode() in stored
    for key in stored:
        dumped = redis_client.dump(key)
        assert dumped is not None
        assert finder.find(key + dumped, f"redis key {key!r}") is None
    grid.gate.set()

    log = tmp_path / "heir.log"
    heir = start_worker(env, "heir", log)
    (result,) = finish(heir, log)
    assert result["run"] == run_id and result["reason"] == "finished"
    assert isinstance(result["reclaimed"], int) and result["reclaimed"] >= 1

    record = RunStore(redis_client, keys).get(run_id)
    assert record.status == "finished"
    hits = _hits(redis_client, redis_prefix, run_id)
    assert sorted(hits) == sorted(grid.expected_hits())  # every hit, each exactly once
    assert grid.requests.count("/gate") == 2  # crawled again by the heir
    for path in (tmp_path / "doomed.log", log):
        assert finder.find(path.read_bytes(), str(path)) is None
    assert _leftover_frontier_keys(redis_client, redis_prefix, run_id) == []


#: Where a worker dies (kill -9, by :data:`tests.helpers.KILL_AT_MAIN`), each before or after
#: the n-th call, n drawn by the seed: pushing a page's links, recording a hit, acknowledging a
#: request. Seeds are fixed, so a failure reproduces from its test id.
WORKER_KILL_POINTS = {
    "push": ("store.frontier:Frontier.push", 1, 8),
    "hit": ("store.queue:HitQueue.enqueue", 1, 6),
    "ack": ("store.frontier:Frontier.ack", 1, 4),
}
WORKER_KILLS = [
    (point, when, seed)
    for point in WORKER_KILL_POINTS
    for when in ("before", "after")
    for seed in (1, 2)
]


@pytest.mark.parametrize(
    ("point", "when", "seed"), WORKER_KILLS, ids=[f"{p}-{w}-{s}" for p, w, s in WORKER_KILLS]
)
def test_a_worker_killed_at_a_seeded_point_loses_nothing_and_records_no_hit_twice(
    redis_url: str,
    redis_client: redis.Redis,
    redis_prefix: str,
    grid: GridSite,
    tmp_path: Path,
    point: str,
    when: str,
    seed: int,
) -> None:
    target, low, high = WORKER_KILL_POINTS[point]
    nth = random.Random(seed).randint(low, high)
    _save_list(redis_client, redis_prefix, grid)
    grid.gate.set()
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    queued = run_cli(["crawl", grid.seed, "--distributed", "--detach", "--json", *CRAWL_SETS], env)
    assert queued.returncode == 0, queued.stderr
    run_id = json.loads(queued.stdout)["crawl"]
    doomed_log = tmp_path / "doomed.log"
    doomed = start_worker(env, "doomed", doomed_log, kill_at=f"{target}:{when}:{nth}")
    try:
        doomed.communicate(timeout=WAIT_TIMEOUT)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.communicate()
    assert doomed.returncode == -signal.SIGKILL, doomed_log.read_text()[-3000:]

    log = tmp_path / "heir.log"
    (result,) = finish(start_worker(env, "heir", log), log)
    assert (result["run"], result["reason"]) == (run_id, "finished")
    record = RunStore(redis_client, Keys(redis_prefix)).get(run_id)
    assert record.status == "finished"
    hits = _hits(redis_client, redis_prefix, run_id)
    assert sorted(hits) == sorted(grid.expected_hits())  # every hit, each exactly once
    assert Frontier(redis_client, Keys(redis_prefix), run_id).dead_count() == 0
    assert _leftover_frontier_keys(redis_client, redis_prefix, run_id) == []


def test_the_page_cap_counts_the_pages_of_all_workers(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker(env, f"w{i + 1}", logs[i]) for i in range(2)]
    try:
        crawl = both_workers_crawl(
            grid,
            env,
            redis_prefix,
            redis_client,
            ["--distributed", "--json", "--max-pages", "4", *CRAWL_SETS],
        )
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        for w, log in zip(workers, logs, strict=True):
            finish(w, log)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    record = RunStore(redis_client, Keys(redis_prefix)).get(json.loads(crawl.stdout)["crawl"])
    # The seed and 3 of its 10 links (/gate among them): 4 pages for the run, not 4 per
    # worker.
    assert record.stats.pages == 4
    assert sum(p.pages for p in record.workers.values()) == 4


def test_a_worker_does_not_give_up_a_seed_on_its_share_of_the_pages(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    # The frontier hands out a site's hubs (pages without images) before the pages they
    # link, and a worker sees only its share of a seed's pages: the seed give-up
    # (CRAWL_SEED_GIVE_UP_PAGES) made a worker of bench/soak.py's run (10 000 pages under 100
    # hubs) give the seed up after 50 hubs and drop the links of the hubs it parsed next,
    # 572 pages never crawled. A distributed run gives no seed up.
    hubs, per_hub = 4, 3
    routes: dict[str, Route] = {
        "/": html_page("".join(f"<a href='/hub/{h}'>hub {h}</a>" for h in range(hubs)))
    }
    for h in range(hubs):
        pages = "".join(f"<a href='/p/{h}-{p}'>page</a>" for p in range(per_hub))
        routes[f"/hub/{h}"] = html_page(pages)
        for p in range(per_hub):
            routes[f"/p/{h}-{p}"] = html_page(f"<img src='/img/{h}-{p}.png'>")
            body = encode(textured_image(7000 + 10 * h + p, 64, 48), "PNG")
            routes[f"/img/{h}-{p}.png"] = image_response(body, "image/png")
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    log = tmp_path / "w1.log"
    worker = start_worker(env, "w1", log)
    try:
        with serve(routes, host=HOST_A) as site:
            crawl = run_cli(
                [
                    "crawl",
                    site.url("/"),
                    "--distributed",
                    "--json",
                    "--depth",
                    "2",
                    *CRAWL_SETS,
                    "--set",
                    "CRAWL_SEED_GIVE_UP_PAGES=2",
                ],
                env,
            )
            assert crawl.returncode == 0, crawl.stderr[-3000:]
            finish(worker, log)
    finally:
        if worker.poll() is None:
            worker.kill()
    record = RunStore(redis_client, Keys(redis_prefix)).get(json.loads(crawl.stdout)["crawl"])
    assert record.status == "finished"
    assert record.stats.pages == 1 + hubs + hubs * per_hub
    assert record.stats.images == hubs * per_hub


def test_a_running_worker_serves_its_metrics_and_logs_json(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    port = free_port(HOST_A)
    log = tmp_path / "worker.log"
    metrics = ["--metrics-port", str(port), "--metrics-host", HOST_A]
    with log.open("w") as stderr:
        worker = subprocess.Popen(
            [*HOTLINE, "worker", "--id", "w1", "--log-format", "json", *metrics],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    result: list[subprocess.CompletedProcess[str]] = []
    crawl = threading.Thread(
        target=lambda: result.append(
            run_cli(["crawl", grid.seed, "--distributed", "--json", *CRAWL_SETS], env)
        )
    )
    try:
        crawl.start()

        # While /gate holds the run, the worker has the known list in memory (its digests at
        # least); between runs it holds none.
        def index_bytes() -> float:
            try:
                return metric_value(scrape_metrics(HOST_A, port), "hotline_index_bytes")
            except OSError:  # not listening yet
                return 0

        wait_for(
            lambda: index_bytes() >= len(grid.hash_list.entries) * 32, "the worker to load the list"
        )
        # Its pages count while the run goes on, not only once its share has ended.
        wait_for(
            lambda: metric_value(scrape_metrics(HOST_A, port), "hotline_worker_pages_total") > 0,
            "the worker to count the pages of the run it is crawling",
        )
        assert RunStore(redis_client, Keys(redis_prefix)).list(limit=1)[0].status == "running"
        grid.gate.set()
        crawl.join()
        assert result[0].returncode == 0, result[0].stderr[-3000:]
        record = RunStore(redis_client, Keys(redis_prefix)).get(
            json.loads(result[0].stdout)["crawl"]
        )
        assert record.status == "finished" and record.stats.pages > PAGES

        # The worker counts the run once its share has ended, just after the run did.
        def counted() -> Samples | None:
            samples = scrape_metrics(HOST_A, port)
            runs = samples.get("hotline_worker_runs_total", [])
            return samples if any(labels == {"reason": "finished"} for labels, _ in runs) else None

        samples: Samples = wait_for(counted, "the worker to count its run")
        assert metric_value(samples, "hotline_worker_runs_total", reason="finished") == 1
        assert metric_value(samples, "hotline_daemon_info", role="worker") == 1
        assert metric_value(samples, "hotline_worker_pages_total") == record.stats.pages
        assert metric_value(samples, "hotline_worker_images_total") == record.stats.images
        assert metric_value(samples, "hotline_index_bytes") == 0
        assert "hotline_notifier_notices_total" not in samples
    finally:
        grid.gate.set()
        crawl.join()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=WAIT_TIMEOUT)
    assert code == 0, log.read_text()[-3000:]
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r} in\n{log.read_text()[-1500:]}")
    (done,) = [e for e in events if e.get("event") == "worker_run"]
    assert (done["run"], done["reason"], done["pages"]) == (
        record.id,
        "finished",
        record.stats.pages,
    )


def test_a_cancelled_distributed_run_stops_its_workers(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, grid: GridSite, tmp_path: Path
) -> None:
    _save_list(redis_client, redis_prefix, grid)
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    store = RunStore(redis_client, Keys(redis_prefix))
    log = tmp_path / "w.log"
    worker = start_worker(env, "w", log)
    try:
        queued = run_cli(
            ["crawl", grid.seed, "--distributed", "--detach", "--json", *CRAWL_SETS], env
        )
        run_id = json.loads(queued.stdout)["crawl"]
        assert grid.gate_entered.wait(WAIT_TIMEOUT), "the worker never reached /gate"
        cancel = run_cli(["runs", "cancel", run_id, "--json"], env)
        assert cancel.returncode == 0, cancel.stderr
        # The gate holds the crawl until the worker has seen the cancel: released earlier,
        # the few pages behind it could finish the run between two of the worker's checks.
        wait_for(lambda: "cancel requested" in log.read_text(), "the worker to see the cancel")
        grid.gate.set()
        (result,) = finish(worker, log)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert (result["run"], result["reason"]) == (run_id, "cancelled")
    record = store.get(run_id)
    assert (record.status, record.reason) == ("cancelled", "cancelled")
    assert store.distributed() == []
    assert _leftover_frontier_keys(redis_client, redis_prefix, run_id) == []


def test_a_run_whose_options_cannot_be_crawled_fails_and_the_worker_says_so(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    store = RunStore(redis_client, Keys(redis_prefix))
    run_id = store.create(
        seeds=[f"http://{HOST_A}:9/"],
        options={"depth": "deep", "distributed": True},
        origin="cli",
        distributed=True,
    )
    log = tmp_path / "w.log"
    worker = start_worker(env, "w", log)
    out, _ = worker.communicate(timeout=90)
    assert worker.returncode == 1, log.read_text()
    assert json.loads(out)[0]["reason"] == "bad_run_options"
    assert "run options" in log.read_text()
    record = store.get(run_id)
    assert (record.status, record.reason) == ("failed", "bad_run_options")


# -- the command line around distributed runs ------------------------------------------------


def test_cli_refuses_what_makes_no_sense_for_distributed_runs(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    detach = run_cli(["crawl", f"http://{HOST_A}:9/", "--detach"], env)
    assert detach.returncode == 2
    assert "--detach goes with --distributed" in one_line_error(detach)

    queued = run_cli(["crawl", f"http://{HOST_A}:9/", "--distributed", "--detach", "--json"], env)
    assert queued.returncode == 0, queued.stderr
    run_id = json.loads(queued.stdout)["crawl"]
    direct = run_cli(["crawl", "--run", run_id], env)
    assert direct.returncode == 2
    assert "is distributed: `hotline worker` crawls it" in one_line_error(direct)

    bad = run_cli(["worker", "--once", "--allow-network", "not-a-network"], env)
    assert bad.returncode == 2
    assert "--allow-network" in one_line_error(bad)

    shown = json.loads(run_cli(["runs", "show", run_id, "--json"], env).stdout)
    assert shown["distributed"] is True and shown["status"] == "queued"
    assert shown["options"]["distributed"] is True and shown["workers"] == {}


def test_waiting_for_a_distributed_run_can_be_interrupted_and_the_run_goes_on(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    store = RunStore(redis_client, Keys(redis_prefix))
    waiting = subprocess.Popen(
        [*HOTLINE, "crawl", f"http://{HOST_A}:9/", "--distributed"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = wait_for(lambda: next(iter(store.distributed()), None), "the queued run")
        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate(timeout=WAIT_TIMEOUT)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 130, err
    assert f"hotline runs cancel {run_id}" in err
    assert store.get(run_id).status == "queued"  # still offered to the workers
    assert store.distributed() == [run_id]


def test_schedule_add_distributed_records_the_option(
    redis_url: str, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    env = _env(redis_url, redis_prefix, tmp_path / "data")
    added = run_cli(
        ["schedule", "add", "shared", f"http://{HOST_A}:9/", "--every", "1h", "--distributed"],
        env,
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_cli(["schedule", "list", "--json"], env).stdout)
    assert [s["options"]["distributed"] for s in listed] == [True]
