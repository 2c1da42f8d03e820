"""Soak: a long distributed crawl with every daemon running; is memory flat?

A loopback site of N pages holding K small generated JPEGs each (defaults 10 000 pages, 5
images per page: 50 000 images) is served by this process from 127.0.0.2 and 127.0.0.3, half
of the images on each host. Pages and images are made on request, deterministically from the
path (an image's bytes from :func:`hotline.imagegen.textured_image` seeded by its number), and
only ever held in memory. One image in ``--known-every`` (500) is on a known list (its SHA-256),
so hits and notices flow all through the crawl.

The world: a private ``redis-server`` (:class:`EmbeddedRedis`: unix socket, AOF on) in a
temporary directory; a loopback SMTP server (:mod:`tests.servers.smtp`) on 127.0.0.1; a
``hotline.toml`` whose provider directory routes 127.0.0.2 and 127.0.0.3 to two made-up
providers by SMTP, with a short recheck schedule (``--recheck-after``, 30 s) so the recheck
daemon re-fetches every sent notice again and again during the soak. The list is imported with
``hotline hashes import``; two ``hotline worker`` processes, ``hotline notifier`` and
``hotline recheck`` start; the run is queued with ``hotline crawl SEED --distributed --detach``.

Every ``--interval`` seconds: the RSS of each daemon (``VmRSS`` summed over its process tree:
a worker's hashing pool included), of ``redis-server`` and of this process (the site), Redis
``INFO memory``, the frontier (pending and in-flight requests, the dupefilter's size) and the
counts. After the run ends and the notifier has drained, the daemons keep running for
``--tail`` seconds (rechecks only). Then everything is stopped and removed, also on Ctrl-C or
an error.

Output (one JSON object): per process the peak RSS and the slopes after warm-up (the first
``--warmup`` seconds, default a fifth of the crawl) by least squares over the samples taken
while the run crawled, in MiB per 10 000 pages and in MiB per minute (and per minute over the
tail alone),
and ``flat``: the per-pages slope under :data:`FLAT_MIB_PER_10K_PAGES`. Redis: ``used_memory``
before the crawl and at the end, bytes per hit and per notice (the end-to-baseline delta over
the counts, and from ``MEMORY USAGE`` of the keys of each family), bytes per timeline event
(each recheck appends one to the notice's timeline and to the audit stream). The frontier's
peak. Counts and wall time. With ``--runs N``, N - 1 more runs of the same site follow, one
after the other, with the same daemons, and ``consecutive_runs`` gives each process's RSS
after each run (the daemons idle ``--settle`` seconds first): memory a run leaves behind
shows as a step from one run to the next.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import redis  # noqa: E402

from hotline import imagegen  # noqa: E402
from hotline.loopback import Exchange, Response, html_page, serve_linked  # noqa: E402
from hotline.redisserver import EmbeddedRedis  # noqa: E402
from store.connection import redis_from_url  # noqa: E402
from store.frontier import Frontier  # noqa: E402
from store.keys import NOTIFIER_GROUP, Keys  # noqa: E402
from store.runs import RunStore  # noqa: E402
from tests.helpers import HOST_A, HOST_B, process_tree, redis_server_binary  # noqa: E402
from tests.servers.smtp import SmtpServer  # noqa: E402

HOTLINE = [sys.executable, "-m", "hotline.cli"]
CLI_TIMEOUT = 300.0
SMTP_HOST = "127.0.0.1"

DEFAULT_PAGES = 10_000
DEFAULT_IMAGES_PER_PAGE = 5
DEFAULT_INTERVAL = 5.0
DEFAULT_KNOWN_EVERY = 500
DEFAULT_TAIL = 90.0
DEFAULT_RECHECK_AFTER = "30s"
DEFAULT_TIMEOUT = 3 * 3600.0
#: The first fifth of the run (by time) is warm-up unless --warmup says otherwise.
WARMUP_FRACTION = 0.2
#: A process is flat when its RSS grows by less than this per 10 000 pages after warm-up.
FLAT_MIB_PER_10K_PAGES = 8.0
PAGES_PER_HUB = 100
IMAGE_SIZE = (64, 48)
JPEG_QUALITY = 80
IMAGE_SEED_BASE = 3_000_000
LIST_NAME = "soak"
#: Every run crawls without AutoThrottle and with enough connections per host that the
#: workers, not politeness, set the pace (as bench/crawl.py).
CRAWL_SETS = ("AUTOTHROTTLE_ENABLED=false", "CONCURRENT_REQUESTS_PER_DOMAIN=8")
#: Seconds a worker gets to hand back its requests on SIGTERM; then every daemon is killed.
STOP_TIMEOUT = 5.0
STOP_GRACE = 20.0
#: After the run ends, how long the notifier may take to notice every hit.
DRAIN_TIMEOUT = 300.0
KIB_PER_MIB = 1024.0

STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- the site ---------------------------------------------------------------------------------


def image_bytes(number: int) -> bytes:
    """Image ``number`` of the site: a small benign texture, the same bytes every time."""
    width, height = IMAGE_SIZE
    return imagegen.encode(
        imagegen.textured_image(IMAGE_SEED_BASE + number, width, height),
        "JPEG",
        quality=JPEG_QUALITY,
    )


_NUMBER = re.compile(r"/(\d+)\.(?:html|jpg)$")


class SoakSite:
    """``/`` links the hubs, each hub ``PAGES_PER_HUB`` pages, each page its images (even
    numbers on the first host, odd on the second) and back to its hub and the index. Every
    route but the index is a handler that builds its response from the number in the path."""

    def __init__(self, base_a: str, base_b: str, pages: int, per_page: int) -> None:
        self.base_a, self.base_b = base_a, base_b
        self.pages, self.per_page = pages, per_page
        self.hubs = -(-pages // PAGES_PER_HUB)
        self.images = pages * per_page
        self.seed_url = base_a + "/"
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()
        links = "\n".join(f"<li><a href='/hub/{h}.html'>hub {h}</a></li>" for h in range(self.hubs))
        index = html_page(_html("Soak index", f"<ul>\n{links}\n</ul>"))
        self.routes_a: dict[str, Response | Callable[[Exchange], None]] = {
            "/": index,
            "/hub/*": self._hub,
            "/p/*": self._page,
            "/img/*": self._image,
        }
        self.routes_b: dict[str, Response | Callable[[Exchange], None]] = {"/img/*": self._image}

    def image_url(self, number: int) -> str:
        return (self.base_b if number % 2 else self.base_a) + f"/img/{number}.jpg"

    def _count(self, kind: str) -> None:
        with self._lock:
            self.served[kind] += 1

    @staticmethod
    def _number(exchange: Exchange, limit: int) -> int | None:
        match = _NUMBER.search(exchange.path)
        if match is None or int(match.group(1)) >= limit:
            return None
        return int(match.group(1))

    @staticmethod
    def _send(exchange: Exchange, status: int, content_type: str, body: bytes) -> None:
        exchange.start(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
        exchange.write(body)

    def _html(self, exchange: Exchange, text: str | None) -> None:
        if text is None:
            self._send(exchange, 404, "text/plain", b"not found\n")
            return
        self._count("pages")
        self._send(exchange, 200, "text/html; charset=utf-8", text.encode())

    def _hub(self, exchange: Exchange) -> None:
        hub = self._number(exchange, self.hubs)
        if hub is None:
            self._html(exchange, None)
            return
        first = hub * PAGES_PER_HUB
        items = "\n".join(
            f"<li><a href='/p/{p}.html'>page {p}</a></li>"
            for p in range(first, min(first + PAGES_PER_HUB, self.pages))
        )
        self._html(exchange, _html(f"Hub {hub}", f"<ul>\n{items}\n</ul><a href='/'>index</a>"))

    def _page(self, exchange: Exchange) -> None:
        page = self._number(exchange, self.pages)
        if page is None:
            self._html(exchange, None)
            return
        first = page * self.per_page
        imgs = "\n".join(
            f"<img src='{self.image_url(n)}' alt='texture {n}'>"
            for n in range(first, first + self.per_page)
        )
        hub = page // PAGES_PER_HUB
        body = f"{imgs}\n<p><a href='/hub/{hub}.html'>hub</a> <a href='/'>index</a></p>"
        self._html(exchange, _html(f"Page {page}", body))

    def _image(self, exchange: Exchange) -> None:
        number = self._number(exchange, self.images)
        if number is None:
            self._send(exchange, 404, "text/plain", b"not found\n")
            return
        self._count("images")
        self._send(exchange, 200, "image/jpeg", image_bytes(number))


def _html(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1>\n{body}\n</body></html>"
    )


# --- processes --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:  # gone meanwhile
        return 0
    return 0


def tree_rss_kib(pid: int) -> int:
    """RSS of a daemon and its descendants (a worker's hashing pool); this process alone
    (its children are the daemons, counted apart)."""
    if pid == os.getpid():
        return rss_kib(pid)
    return sum(rss_kib(p) for p in process_tree(pid))


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class World:
    tmp: Path
    env: dict[str, str]
    client: redis.Redis
    keys: Keys
    redis_pid: int | None
    smtp: SmtpServer
    daemons: list[Daemon] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> Daemon:
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [*HOTLINE, *args],
                env=self.env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group: its hash pool dies with it
            )
        daemon = Daemon(name, proc, log_path)
        self.daemons.append(daemon)
        log(f"started {name} (pid {proc.pid})")
        return daemon

    def cli(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*HOTLINE, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"`hotline {' '.join(args[:2])}` exited {done.returncode}: {done.stderr[-1500:]}"
            )
        return done


def stop_daemons(daemons: list[Daemon]) -> None:
    """SIGTERM every daemon's process group, wait, then SIGKILL what is left."""
    for daemon in daemons:
        _signal_group(daemon.proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for daemon in daemons:
        try:
            daemon.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{daemon.name} did not stop on SIGTERM within {STOP_GRACE:g} s: killed")
        _signal_group(daemon.proc, signal.SIGKILL)
        try:
            daemon.proc.wait(10)
        except subprocess.TimeoutExpired:
            log(f"{daemon.name} (pid {daemon.proc.pid}) survived SIGKILL")


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the daemon leads its own session and process group


@contextmanager
def own_redis(directory: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(directory, redis_server=redis_server_binary())
    server.start()
    pid = server.pid
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            if pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# --- sampling -----------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the run was queued
    crawling: bool
    pages: int
    images: int
    hits: int
    notices: int
    rss_kib: dict[str, int]
    used_memory: int
    used_memory_rss: int
    frontier_pending: int
    frontier_in_flight: int
    frontier_seen: int


def take_sample(
    world: World, run_id: str, t: float, crawling: bool, processes: dict[str, int]
) -> Sample:
    client, keys = world.client, world.keys
    record = RunStore(client, keys).get(run_id)
    frontier = Frontier(client, keys, run_id)
    memory = client.info("memory")
    rss = {name: tree_rss_kib(pid) for name, pid in processes.items()}
    return Sample(
        t=t,
        crawling=crawling,
        pages=record.stats.pages,
        images=record.stats.images,
        hits=int(client.xlen(keys.hits)),
        notices=int(client.zcard(keys.notices)),
        rss_kib=rss,
        used_memory=int(memory["used_memory"]),
        used_memory_rss=int(memory["used_memory_rss"]),
        frontier_pending=len(frontier),
        frontier_in_flight=sum(frontier.in_flight().values()),
        frontier_seen=int(client.scard(keys.frontier_seen(run_id))),
    )


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs; None with fewer than 3 points or no spread."""
    if len(xs) < 3 or max(xs) - min(xs) <= 0:
        return None
    return float(np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)[0])


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def process_figures(samples: list[Sample], name: str, warmup: float) -> dict[str, Any]:
    crawl = [s for s in samples if s.crawling and s.t >= warmup]
    tail = [s for s in samples if not s.crawling]
    mib = [s.rss_kib[name] / KIB_PER_MIB for s in samples]

    def per_pages(rows: list[Sample]) -> float | None:
        found = slope([s.pages for s in rows], [s.rss_kib[name] / KIB_PER_MIB for s in rows])
        return None if found is None else found * 10_000

    def per_minute(rows: list[Sample]) -> float | None:
        found = slope([s.t for s in rows], [s.rss_kib[name] / KIB_PER_MIB for s in rows])
        return None if found is None else found * 60

    per_10k = per_pages(crawl)
    return {
        "peak_rss_mib": _r(max(mib)),
        "rss_at_warmup_end_mib": _r(crawl[0].rss_kib[name] / KIB_PER_MIB) if crawl else None,
        "rss_at_crawl_end_mib": _r(crawl[-1].rss_kib[name] / KIB_PER_MIB) if crawl else None,
        "end_rss_mib": _r(mib[-1]),
        "slope_mib_per_10k_pages": _r(per_10k),
        "slope_mib_per_min": _r(per_minute(crawl), 3),
        "tail_slope_mib_per_min": _r(per_minute(tail), 3),
        "flat": None if per_10k is None else per_10k < FLAT_MIB_PER_10K_PAGES,
    }


# --- Redis at the end ---------------------------------------------------------------------------

_FAMILY_PATTERNS = (
    (re.compile(r"^notice:[^:]+(:timeline|:lock)?$"), r"notice:*\1"),
    (re.compile(r"^crawl:[^:]+(:.*)?$"), r"crawl:*\1"),
    (re.compile(r"^crawl:\*:inflight:.*$"), "crawl:*:inflight:*"),
    (re.compile(r"^list:[^:]+(:v\d+|:lock)?$"), "list:*"),
    (re.compile(r"^rdap:doc:.*$"), "rdap:doc:*"),
)


def key_family(key: str, prefix: str) -> str:
    name = key.removeprefix(prefix)
    for pattern, replacement in _FAMILY_PATTERNS:
        name = pattern.sub(replacement, name)
    return name


def key_families(client: redis.Redis, prefix: str) -> tuple[dict[str, dict[str, int]], int]:
    """Bytes (``MEMORY USAGE``, every element counted) and keys per key family; and the
    number of entries of every notice timeline."""
    families: dict[str, dict[str, int]] = {}
    timeline_events = 0
    for raw in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        usage = client.memory_usage(key, samples=0) or 0
        family = key_family(key, prefix)
        row = families.setdefault(family, {"bytes": 0, "keys": 0})
        row["bytes"] += int(usage)
        row["keys"] += 1
        if family == "notice:*:timeline":
            timeline_events += int(client.xlen(key))
    return dict(sorted(families.items(), key=lambda kv: -kv[1]["bytes"])), timeline_events


def redis_figures(
    world: World, baseline: dict[str, int], samples: list[Sample], warmup: float
) -> dict[str, Any]:
    client, keys = world.client, world.keys
    memory = client.info("memory")
    end_used = int(memory["used_memory"])
    hits = int(client.xlen(keys.hits))
    notices = int(client.zcard(keys.notices))
    families, timeline_events = key_families(client, keys.prefix)

    def family_bytes(*names: str) -> int:
        return sum(families.get(n, {}).get("bytes", 0) for n in names)

    hit_bytes = family_bytes("hits", "hits:ids")
    notice_bytes = family_bytes("notice:*", "notices", "recheck") + sum(
        row["bytes"] for name, row in families.items() if name.startswith("notices:status:")
    )
    event_bytes = family_bytes("notice:*:timeline", "audit")
    audit_events = int(client.xlen(keys.audit)) if client.exists(keys.audit) else 0
    delta = end_used - baseline["used_memory"]
    crawl = [s for s in samples if s.crawling and s.t >= warmup]
    tail = [s for s in samples if not s.crawling]
    crawl_slope = slope([s.pages for s in crawl], [s.used_memory for s in crawl])
    tail_slope = slope([s.t for s in tail], [s.used_memory for s in tail])
    return {
        "baseline_used_memory": baseline["used_memory"],
        "peak_used_memory": max(s.used_memory for s in samples),
        "end_used_memory": end_used,
        "end_minus_baseline": delta,
        "delta_per_hit": round(delta / hits) if hits else None,
        "delta_per_notice": round(delta / notices) if notices else None,
        "bytes_per_hit_keys": round(hit_bytes / hits) if hits else None,
        "bytes_per_notice_keys": round(notice_bytes / notices) if notices else None,
        "bytes_per_notice_keys_with_events": (
            round((notice_bytes + event_bytes) / notices) if notices else None
        ),
        "timeline_events": timeline_events,
        "audit_events": audit_events,
        "bytes_per_timeline_event": (
            round(event_bytes / (timeline_events + audit_events))
            if timeline_events + audit_events
            else None
        ),
        "crawl_slope_bytes_per_10k_pages": (
            None if crawl_slope is None else round(crawl_slope * 10_000)
        ),
        "tail_slope_bytes_per_min": None if tail_slope is None else round(tail_slope * 60),
        "peak_used_memory_rss": max(s.used_memory_rss for s in samples),
        "families": families,
    }


# --- the run ------------------------------------------------------------------------------------


def write_config(tmp: Path, smtp: SmtpServer, recheck_after: str) -> Path:
    (tmp / "providers.yaml").write_text(
        f"""- name: Soak Hosting A
  cidrs: [{HOST_A}/32]
  abuse: abuse@soak-a.example
  language: en
- name: Soak Hosting B
  cidrs: [{HOST_B}/32]
  abuse: abuse@soak-b.example
  language: en
""",
        encoding="utf-8",
    )
    config = tmp / "hotline.toml"
    config.write_text(
        f"""[hotline]
name = "Soak Hotline"
email = "notices@soak-hotline.example"
website = "https://soak-hotline.example"
country = "NL"
legal_basis = "Benchmark only: no real legal basis"

[notices]
language = "en"
directory = "providers.yaml"
recheck_schedule = ["{recheck_after}"]
recheck_lease = "{recheck_after}"
reminder_interval = "24h"
escalate_after = "30d"

[classification]
{LIST_NAME} = "baseline"

[rdap]
url = ""

[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
timeout = "10s"
""",
        encoding="utf-8",
    )
    return config


def known_csv(site: SoakSite, every: int) -> tuple[str, int]:
    rows = ["algorithm,hash,id,category"]
    for number in range(0, site.images, every):
        digest = hashlib.sha256(image_bytes(number)).hexdigest()
        rows.append(f"sha256,{digest},soak-{number:06d},{LIST_NAME}")
    return "\n".join(rows) + "\n", len(rows) - 1


def counts(world: World, run_id: str) -> dict[str, Any]:
    client, keys = world.client, world.keys
    record = RunStore(client, keys).get(run_id)
    checks = 0
    for raw in cast("list[bytes]", client.zrange(keys.notices, 0, -1)):
        value = client.hget(keys.notice(raw.decode()), "checks")
        checks += int(value) if value else 0
    statuses = ("queued", "sent", "awaiting_manual", "failed", "unroutable", "unclassified")
    return {
        "run_status": record.status,
        "run_reason": record.reason,
        "pages": record.stats.pages,
        "images": record.stats.images,
        "hashed": record.stats.hashed,
        "confirmed": record.stats.confirmed,
        "errors": record.stats.error_count,
        "hits": int(client.xlen(keys.hits)),
        "notices": int(client.zcard(keys.notices)),
        "notices_by_status": {s: int(client.zcard(keys.notices_in(s))) for s in statuses},
        "smtp_messages": len(world.smtp.messages),
        "rechecks": checks,
        "dead_letters": int(client.hlen(keys.frontier_dead(run_id))),
    }


def pending_hits(client: redis.Redis, keys: Keys) -> int:
    try:
        return int(client.xpending(keys.hits, NOTIFIER_GROUP)["pending"])
    except redis.ResponseError:  # no group yet
        return 0


def consecutive_runs(
    world: World,
    client: redis.Redis,
    crawl_args: list[str],
    processes: dict[str, int],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """``--runs N``: after the first run, N - 1 more runs of the same site, one after the
    other, with the same daemons. Once each has ended and the daemons have idled ``--settle``
    seconds, each process's RSS: what a run leaves behind shows as a step from run to run."""
    workers = [name for name in processes if name.startswith("worker")]

    def after(run_id: str) -> dict[str, Any]:
        record = RunStore(client, world.keys).get(run_id)
        rss = {n: _r(tree_rss_kib(pid) / KIB_PER_MIB) for n, pid in processes.items()}
        return {
            "run": run_id,
            "status": record.status,
            "pages": record.stats.pages,
            "images": record.stats.images,
            "rss_mib": rss,
        }

    rows = [after(str(RunStore(client, world.keys).list(limit=1)[0].id))]
    for n in range(2, args.runs + 1):
        run_id = str(json.loads(world.cli(crawl_args).stdout)["crawl"])
        deadline = time.monotonic() + args.timeout
        while not RunStore(client, world.keys).get(run_id).ended:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"run {n} did not end within {args.timeout:g} s")
            for daemon in world.daemons:
                if daemon.proc.poll() is not None:
                    raise RuntimeError(f"{daemon.name} exited during run {n}: {daemon.tail()}")
            time.sleep(args.interval)
        time.sleep(args.settle)
        rows.append(after(run_id))
        log(
            f"run {n} of {args.runs} ({run_id}): {rows[-1]['pages']} pages; worker rss "
            + " ".join(f"{w}={rows[-1]['rss_mib'][w]}" for w in workers)
        )
    return rows


def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    started = time.monotonic()
    with ExitStack() as stack:
        linked = stack.enter_context(
            serve_linked(
                lambda a, b: SoakSite(a, b, args.pages, args.images_per_page), (HOST_A, HOST_B)
            )
        )
        site = linked.site
        smtp = stack.enter_context(SmtpServer(SMTP_HOST))
        server = stack.enter_context(own_redis(tmp / "redis"))
        config = write_config(tmp, smtp, args.recheck_after)
        (tmp / "cli-tmp").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(
            HOTLINE_REDIS_URL=server.url,
            HOTLINE_DATA_DIR=str(tmp / "data"),
            HOTLINE_CONFIG=str(config),
            HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
            TMPDIR=str(tmp / "cli-tmp"),
            COLUMNS="200",
        )
        client = redis_from_url(server.url)
        stack.callback(client.close)
        world = World(tmp, env, client, Keys(), server.pid, smtp)
        stack.callback(stop_daemons, world.daemons)

        csv_text, entries = known_csv(site, args.known_every)
        (tmp / "known.csv").write_text(csv_text, encoding="utf-8")  # hashes only
        world.cli(["hashes", "import", str(tmp / "known.csv"), "--list", LIST_NAME])
        log(
            f"list {LIST_NAME}: {entries} SHA-256 entries; site {site.pages} pages, "
            f"{site.hubs} hubs, {site.images} images on {linked.base_a} and {linked.base_b}"
        )

        for n in (1, 2):
            world.start(
                f"worker-{n}", ["worker", "--id", f"soak-{n}", "--stop-timeout", str(STOP_TIMEOUT)]
            )
        world.start("notifier", ["notifier", "--consumer", "soak"])
        world.start("recheck", ["recheck", "--consumer", "soak"])
        time.sleep(args.settle)
        for daemon in world.daemons:
            if daemon.proc.poll() is not None:
                raise RuntimeError(
                    f"{daemon.name} exited {daemon.proc.returncode}: {daemon.tail()}"
                )
        processes = {d.name: d.proc.pid for d in world.daemons}
        if world.redis_pid is not None:
            processes["redis-server"] = world.redis_pid
        processes["site"] = os.getpid()  # this process: the loopback site
        baseline_memory = client.info("memory")
        baseline = {"used_memory": int(baseline_memory["used_memory"])}
        baseline_rss = {n: tree_rss_kib(pid) for n, pid in processes.items()}

        max_pages = 1 + site.hubs + site.pages + 10
        crawl_args = [
            "crawl", site.seed_url, "--distributed", "--detach", "--json",
            "--depth", "2", "--max-pages", str(max_pages),
        ]  # fmt: skip
        for setting in (*CRAWL_SETS, *args.set):
            crawl_args += ["--set", setting]
        queued = json.loads(world.cli(crawl_args).stdout)
        run_id = str(queued["crawl"])
        queued_at = time.monotonic()
        log(f"run {run_id} queued: hotline {' '.join(crawl_args)}")

        samples: list[Sample] = []
        crawl_ended: float | None = None
        drained: float | None = None
        deadline = queued_at + args.timeout
        next_at = queued_at
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise RuntimeError(f"the soak did not end within {args.timeout:g} s")
            for daemon in world.daemons:
                if daemon.proc.poll() is not None:
                    raise RuntimeError(
                        f"{daemon.name} exited {daemon.proc.returncode} "
                        f"during the soak: {daemon.tail()}"
                    )
            record = RunStore(client, world.keys).get(run_id)
            if crawl_ended is None and record.ended:
                crawl_ended = now
                log(
                    f"run {run_id} {record.status} ({record.reason}): {record.stats.pages} "
                    f"pages, {record.stats.images} images"
                )
            sample = take_sample(world, run_id, now - queued_at, crawl_ended is None, processes)
            samples.append(sample)
            log(
                f"pages {sample.pages} images {sample.images} hits {sample.hits} notices "
                f"{sample.notices} | frontier {sample.frontier_pending}+"
                f"{sample.frontier_in_flight} seen {sample.frontier_seen} | redis "
                f"{sample.used_memory / 2**20:.1f} MiB | rss "
                + " ".join(
                    f"{n.split()[0]}={k / KIB_PER_MIB:.0f}" for n, k in sample.rss_kib.items()
                )
            )
            if crawl_ended is not None and drained is None:
                done = sample.notices >= sample.hits and not pending_hits(client, world.keys)
                if done or now - crawl_ended > DRAIN_TIMEOUT:
                    drained = now
                    log(f"notifier {'drained' if done else 'NOT drained'}; tail {args.tail:g} s")
            if drained is not None and now - drained >= args.tail:
                break
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

        assert crawl_ended is not None and drained is not None
        crawl_s = crawl_ended - queued_at
        warmup = args.warmup if args.warmup is not None else WARMUP_FRACTION * crawl_s
        final = counts(world, run_id)
        redis_out = redis_figures(world, baseline, samples, warmup)
        wall = time.monotonic() - started
        result = {
            "config": {
                "pages": args.pages,
                "images_per_page": args.images_per_page,
                "known_every": args.known_every,
                "list_entries": entries,
                "image_size": list(IMAGE_SIZE),
                "interval_s": args.interval,
                "warmup_s": round(warmup, 1),
                "tail_s": args.tail,
                "recheck_after": args.recheck_after,
                "workers": 2,
                "crawl_sets": [*CRAWL_SETS, *args.set],
                "flat_threshold_mib_per_10k_pages": FLAT_MIB_PER_10K_PAGES,
                "cpus": os.cpu_count(),
            },
            "wall_s": round(wall, 1),
            "crawl_s": round(crawl_s, 1),
            "drain_s": round(drained - crawl_ended, 1),
            "pages_per_s": round(final["pages"] / crawl_s, 1) if crawl_s else None,
            "images_per_s": round(final["images"] / crawl_s, 1) if crawl_s else None,
            "samples": len(samples),
            "counts": final,
            "served": dict(site.served),
            "processes": {
                name: {
                    "rss_before_crawl_mib": _r(baseline_rss[name] / KIB_PER_MIB),
                    **process_figures(samples, name, warmup),
                }
                for name in processes
            },
            "redis": redis_out,
            "frontier": {
                "peak_pending": max(s.frontier_pending for s in samples),
                "peak_in_flight": max(s.frontier_in_flight for s in samples),
                "peak_total": max(s.frontier_pending + s.frontier_in_flight for s in samples),
                "peak_seen": max(s.frontier_seen for s in samples),
            },
        }
        if args.runs > 1:
            result["consecutive_runs"] = consecutive_runs(
                world, client, crawl_args, processes, args
            )
        if args.series:
            result["series"] = [
                {
                    "t": round(s.t, 1),
                    "crawling": s.crawling,
                    "pages": s.pages,
                    "images": s.images,
                    "hits": s.hits,
                    "notices": s.notices,
                    "used_memory": s.used_memory,
                    "frontier": s.frontier_pending + s.frontier_in_flight,
                    "seen": s.frontier_seen,
                    "rss_mib": {n: _r(k / KIB_PER_MIB) for n, k in s.rss_kib.items()},
                }
                for s in samples
            ]
        log("stopping the daemons")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES)
    parser.add_argument("--images-per-page", type=int, default=DEFAULT_IMAGES_PER_PAGE)
    parser.add_argument(
        "--known-every",
        type=int,
        default=DEFAULT_KNOWN_EVERY,
        help="one image in this many is on the known list",
    )
    parser.add_argument(
        "--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between samples"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help=f"seconds of warm-up left out of the slopes (default: "
        f"{WARMUP_FRACTION:.0%}% of the run)",
    )
    parser.add_argument(
        "--tail",
        type=float,
        default=DEFAULT_TAIL,
        help="seconds the daemons keep running after the notifier drained",
    )
    parser.add_argument(
        "--recheck-after",
        default=DEFAULT_RECHECK_AFTER,
        help="[notices] recheck_schedule: one step, repeated",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds the daemons idle before the baseline is taken",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs of the site, one after the other (RSS after each: consecutive_runs)",
    )
    parser.add_argument("--series", action="store_true", help="include every sample")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a crawl setting for the run (hotline crawl --set), e.g. CRAWL_MAX_HELD_RESPONSES=0",
    )
    args = parser.parse_args(argv)
    if args.pages < 1 or args.images_per_page < 1 or args.known_every < 1:
        parser.error("--pages, --images-per-page and --known-every must be at least 1")
    if args.interval <= 0:
        parser.error("--interval must be positive")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        result = soak(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
