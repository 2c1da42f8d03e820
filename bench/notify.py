"""Notifier benchmark: time from a queued hit to its notice accepted by the mail relay.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/notify.py [--hits 200] [--interval-ms 50] [--burst 1000] [--poll-s 1]

Prints one JSON object on stdout; progress goes to stderr. Target: with the notifier running,
a hit's notice is delivered within a second (median).

Set-up, all in one run: a private ``redis-server`` (``EmbeddedRedis`` in a temp directory, unix
socket only), a minimal aiosmtpd receiver on 127.0.0.1 in a child process (the relay is another
process in real life, so it does not share this interpreter's lock) that records, for each
message it accepts, the time of acceptance and the notice id (the ``Message-ID`` up to its
first dot), and the project's own pipeline wired as ``hotline notifier`` wires it: NoticeStore,
Router (a directory YAML routing 127.0.0.2/32 and 127.0.0.3/32 to two made-up providers, the
built-in CDN ranges, RDAP off), NoticeRenderer, Deliverer(SmtpChannel(security="none")),
NoticeSender with NoticeFacts, Notifier.

1. Daemon latency: ``Notifier.run(once=False, stop=event)`` in a background thread, as the
   daemon runs. N hits are enqueued one by one with ``HitQueue.enqueue`` at a steady rate;
   latency = acceptance time at the relay - time the enqueue call began. The default rate
   (one hit every 50 ms) is about half of what one notifier sends per second on two cores, so
   the figure is the latency of a notifier that keeps up; ``offered_load`` (paced rate / burst
   rate) says how close to saturation it ran. Above 1 the backlog, not the notifier's reaction
   time, makes the latency, and it grows with ``--hits``.
2. Burst: M hits enqueued back to back into the same running daemon; notices/s from the first
   enqueue to the last acceptance.
3. Reference, the cron way: a loop that every P seconds runs ``Notifier.run(once=True)`` on a
   fresh Notifier (same consumer name each time, as a cron job on one host would), on its own
   key prefix; the same paced hits, the same latency. ``ratios`` gives reference / daemon.

Each phase first sends one warm-up notice that is not counted (template compilation, schema
loading). The reference reuses the warmed renderer and Redis connection, which a cron job
starting a new process would not: its figures are a lower bound for real cron latency.

Data are made up: hex digests of labels (never of an image), ``*.example`` names. Nothing
listens on or connects to a non-loopback address.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import redis  # noqa: E402

from hotline.redisserver import EmbeddedRedis  # noqa: E402
from store.connection import redis_from_url  # noqa: E402
from store.keys import Keys  # noqa: E402
from store.queue import HitQueue, HitRecord  # noqa: E402
from takedown.cdn import load_builtin_cdns  # noqa: E402
from takedown.channels.dispatch import Deliverer  # noqa: E402
from takedown.channels.smtp import SmtpChannel, SmtpSettings  # noqa: E402
from takedown.directory import ProviderDirectory  # noqa: E402
from takedown.model import HotlineIdentity  # noqa: E402
from takedown.notice import NoticeFacts, NoticeRenderer  # noqa: E402
from takedown.notices import NoticeStore  # noqa: E402
from takedown.notifier import BLOCK_MS, NoticeSender, Notifier, NotifierStats  # noqa: E402
from takedown.routing import Router  # noqa: E402
from takedown.settings import TakedownSettings  # noqa: E402

SMTP_HOST = "127.0.0.1"
SMTP_SERVER_NAME = "relay.bench.example"
#: The two made-up hosting providers and the loopback addresses the directory gives them.
PROVIDERS = (
    ("Alpha Hosting", "127.0.0.2", "alpha-hosting.example"),
    ("Beta Hosting", "127.0.0.3", "beta-hosting.example"),
)
IDENTITY = HotlineIdentity(
    name="Example Hotline",
    email="notices@hotline.example",
    website="https://hotline.example",
    country="NL",
    legal_basis="Art. 1 of the Example Act (benchmark configuration)",
)
TARGET_MEDIAN_MS = 1000.0
DEFAULT_HITS = 200
DEFAULT_INTERVAL_MS = 50.0
DEFAULT_BURST = 1000
DEFAULT_POLL_S = 1.0
QUICK = {"hits": 40, "burst": 100}
#: Offered load above which the paced phases measure queueing more than the notifier.
SATURATED = 0.8
#: Seconds allowed for the last notice of a phase after its last enqueue.
DRAIN_TIMEOUT = 60.0
#: Seconds allowed for the SMTP child process to start or stop.
CHILD_TIMEOUT = 15.0
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)
START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- the relay (child process) -------------------------------------------------------------------


def _relay_main(records: Any, ready: Any, stop: Any) -> None:
    """A minimal aiosmtpd receiver: every accepted message -> (notice id, time, recipient)."""
    import asyncio  # noqa: PLC0415 - child process only

    from aiosmtpd.controller import Controller  # noqa: PLC0415

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            accepted = time.monotonic()
            found = _MESSAGE_ID.search(envelope.original_content or b"")
            message_id = found.group(1).decode("ascii", "replace") if found else ""
            records.put((message_id.partition(".")[0], accepted, ",".join(envelope.rcpt_tos)))
            return "250 2.0.0 OK"

    class PortZeroController(Controller):
        def _trigger_server(self) -> None:
            # Bound to port 0: learn the real port before the controller's readiness probe.
            if not isinstance(self.server, asyncio.Server):
                raise RuntimeError("the SMTP server did not start")
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    controller = PortZeroController(
        Handler(), hostname=SMTP_HOST, port=0, server_hostname=SMTP_SERVER_NAME
    )
    controller.start()
    ready.put(controller.port)
    stop.wait()
    controller.stop()


class Relay:
    """The receiver in a child process and a thread here collecting what it accepted."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._records = context.Queue()
        ready = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(
            target=_relay_main, args=(self._records, ready, self._stop), daemon=True
        )
        self._process.start()
        self.port: int = ready.get(timeout=CHILD_TIMEOUT)
        self.accepted: dict[str, float] = {}
        self.recipients: dict[str, int] = {}
        self._changed = threading.Condition()
        self._collector = threading.Thread(target=self._collect, name="relay-records", daemon=True)
        self._collector.start()

    def _collect(self) -> None:
        while True:
            item = self._records.get()
            if item is None:
                return
            notice_id, accepted, rcpt = item
            with self._changed:
                # A re-sent notice keeps its first acceptance: that is when it was delivered.
                self.accepted.setdefault(notice_id, accepted)
                self.recipients[rcpt] = self.recipients.get(rcpt, 0) + 1
                self._changed.notify_all()

    def wait_for(self, ids: Iterable[str], timeout: float) -> dict[str, float]:
        """Acceptance times of ``ids`` (those that arrived within ``timeout``)."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not wanted <= self.accepted.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return {i: self.accepted[i] for i in wanted if i in self.accepted}

    def close(self) -> None:
        self._stop.set()
        self._process.join(CHILD_TIMEOUT)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(CHILD_TIMEOUT)
        self._records.put(None)
        self._collector.join(CHILD_TIMEOUT)


# -- the pipeline --------------------------------------------------------------------------------


def directory_yaml() -> str:
    return "".join(
        f"- name: {name}\n  cidrs: [{ip}/32]\n  abuse: abuse@{domain}\n"
        for name, ip, domain in PROVIDERS
    )


class Pipeline:
    """The objects ``hotline notifier`` builds, pointed at the bench's Redis and relay."""

    def __init__(self, client: redis.Redis, directory_path: Path, relay_port: int) -> None:
        self.client = client
        self.settings = TakedownSettings(directory_path=directory_path, rdap_url=None)
        self.router = Router(ProviderDirectory.load(directory_path), load_builtin_cdns(), None)
        self.renderer = NoticeRenderer(IDENTITY)
        self.deliverer = Deliverer(
            SmtpChannel(SmtpSettings(SMTP_HOST, relay_port, security="none"))
        )

    def notifier(self, keys: Keys, consumer: str) -> Notifier:
        store = NoticeStore(self.client, keys)
        sender = NoticeSender(store, self.renderer, self.deliverer, NoticeFacts)
        return Notifier(
            self.client,
            keys,
            router=self.router,
            sender=sender,
            settings=self.settings,
            consumer=consumer,
        )


def make_hit(phase: str, number: int) -> HitRecord:
    """A confirmed hit of a made-up image: the hashes are digests of a label, not of an image."""
    _name, ip, domain = PROVIDERS[number % len(PROVIDERS)]
    label = f"bench-notify-{phase}-{number}".encode()
    return HitRecord(
        url=f"http://img.{domain}/{phase}/{number:05d}.jpg",
        page=f"http://www.{domain}/{phase}/gallery-{number // 20:04d}.html",
        seed=f"http://www.{domain}/",
        sha256=hashlib.sha256(label).hexdigest(),
        md5=hashlib.md5(label).hexdigest(),
        sha1=hashlib.sha1(label).hexdigest(),
        pdq=None,
        pdq_quality=None,
        phash=None,
        list="bench-known",
        entry=f"{phase}-{number:05d}",
        category="bench",
        algorithm="sha256",
        distance=0,
        verdict="confirmed",
        first_seen="2026-01-01T00:00:00+00:00",
        ip=ip,
        status=200,
        content_type="image/jpeg",
        content_length=4096,
        server="BenchServer",
        crawl="bench-crawl",
    )


def enqueue_paced(hit_queue: HitQueue, hits: list[HitRecord], interval: float) -> dict[str, float]:
    """Enqueue one hit every ``interval`` seconds on a fixed schedule; incident -> start time."""
    enqueued: dict[str, float] = {}
    began = time.monotonic()
    for number, hit in enumerate(hits):
        delay = began + number * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        enqueued[hit.incident] = time.monotonic()
        if hit_queue.enqueue(hit) is None:
            raise RuntimeError(f"hit {hit.incident} was already queued")
    return enqueued


def latency_summary(enqueued: dict[str, float], accepted: dict[str, float]) -> dict[str, Any]:
    ms = np.array([(accepted[i] - t) * 1e3 for i, t in enqueued.items() if i in accepted])
    out: dict[str, Any] = {"hits": len(enqueued), "delivered": len(ms)}
    if len(ms):
        out.update(
            {
                "median_ms": round(float(np.median(ms)), 2),
                "p90_ms": round(float(np.percentile(ms, 90)), 2),
                "p99_ms": round(float(np.percentile(ms, 99)), 2),
                "max_ms": round(float(ms.max()), 2),
                "min_ms": round(float(ms.min()), 2),
                "mean_ms": round(float(ms.mean()), 2),
                "under_1s": round(float((ms < TARGET_MEDIAN_MS).mean()), 4),
            }
        )
    return out


def warm_up(relay: Relay, hit_queue: HitQueue, phase: str) -> None:
    hit = make_hit(f"{phase}-warmup", 0)
    hit_queue.enqueue(hit)
    if not relay.wait_for([hit.incident], DRAIN_TIMEOUT):
        raise RuntimeError(f"{phase}: the warm-up notice was not delivered")


class Background:
    """Runs ``target(stop)`` in a thread; re-raises its exception on ``join``."""

    def __init__(self, name: str, target: Callable[[threading.Event], Any]) -> None:
        self.stop = threading.Event()
        self.result: Any = None
        self._error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._target(self.stop)
        except BaseException as exc:  # handed to the main thread in join()
            self._error = exc

    def join(self) -> Any:
        self.stop.set()
        self._thread.join(BLOCK_MS / 1000 + DRAIN_TIMEOUT)
        if self._error is not None:
            raise self._error
        return self.result


# -- phases --------------------------------------------------------------------------------------


def bench_daemon(
    pipeline: Pipeline, relay: Relay, client: redis.Redis, args: argparse.Namespace
) -> dict[str, Any]:
    keys = Keys("bench-notify:daemon:")
    hit_queue = HitQueue(client, keys)
    notifier = pipeline.notifier(keys, "bench-daemon")
    daemon = Background("notifier-daemon", lambda stop: notifier.run(once=False, stop=stop))
    try:
        warm_up(relay, hit_queue, "daemon")
        log(f"daemon: {args.hits} hits, one every {args.interval_ms} ms")
        hits = [make_hit("daemon", n) for n in range(args.hits)]
        enqueued = enqueue_paced(hit_queue, hits, args.interval_ms / 1000)
        accepted = relay.wait_for(enqueued, DRAIN_TIMEOUT)
        latency = latency_summary(enqueued, accepted)
        log(f"daemon: median {latency.get('median_ms')} ms, p99 {latency.get('p99_ms')} ms")

        log(f"daemon: burst of {args.burst} hits")
        burst_hits = [make_hit("burst", n) for n in range(args.burst)]
        burst_enqueued: dict[str, float] = {}
        began = time.monotonic()
        for hit in burst_hits:
            burst_enqueued[hit.incident] = time.monotonic()
            hit_queue.enqueue(hit)
        enqueue_s = time.monotonic() - began
        burst_accepted = relay.wait_for(burst_enqueued, DRAIN_TIMEOUT + args.burst * 0.1)
        last = max(burst_accepted.values(), default=began)
        drain_s = last - began
        burst = {
            "hits": args.burst,
            "delivered": len(burst_accepted),
            "enqueue_s": round(enqueue_s, 3),
            "enqueue_to_last_accepted_s": round(drain_s, 3),
            "notices_per_s": round(len(burst_accepted) / drain_s, 1) if drain_s > 0 else None,
            "latency": latency_summary(burst_enqueued, burst_accepted),
        }
        log(f"daemon: burst {burst['notices_per_s']} notices/s")
    finally:
        stats: NotifierStats = daemon.join()
    return {
        "latency": latency,
        "burst": burst,
        "notifier_stats": stats.as_dict(),
        "notice_counts": NoticeStore(client, keys).counts(),
    }


def bench_poll(
    pipeline: Pipeline, relay: Relay, client: redis.Redis, args: argparse.Namespace
) -> dict[str, Any]:
    keys = Keys("bench-notify:poll:")
    hit_queue = HitQueue(client, keys)
    runs: list[float] = []

    def poll(stop: threading.Event) -> NotifierStats:
        total = NotifierStats()
        next_tick = time.monotonic()
        while not stop.is_set():
            began = time.monotonic()
            stats = pipeline.notifier(keys, "bench-cron").run(once=True)
            runs.append(time.monotonic() - began)
            total.sent += stats.sent
            total.retrying += stats.retrying
            total.dead_lettered += stats.dead_lettered
            # A run that overran its period skips the missed ticks (as `flock -n` under cron).
            now = time.monotonic()
            next_tick += args.poll_s * max(1, int((now - next_tick) // args.poll_s) + 1)
            stop.wait(next_tick - now)
        return total

    poller = Background("notifier-poll", poll)
    try:
        warm_up(relay, hit_queue, "poll")
        log(f"poll: {args.hits} hits, one every {args.interval_ms} ms, run every {args.poll_s} s")
        hits = [make_hit("poll", n) for n in range(args.hits)]
        enqueued = enqueue_paced(hit_queue, hits, args.interval_ms / 1000)
        accepted = relay.wait_for(enqueued, DRAIN_TIMEOUT + args.poll_s)
    finally:
        stats: NotifierStats = poller.join()
    latency = latency_summary(enqueued, accepted)
    log(f"poll: median {latency.get('median_ms')} ms, p99 {latency.get('p99_ms')} ms")
    run_ms = np.array(runs) * 1e3
    return {
        "period_s": args.poll_s,
        "latency": latency,
        "runs": len(runs),
        "run_ms_median": round(float(np.median(run_ms)), 2) if runs else None,
        "run_ms_max": round(float(run_ms.max()), 2) if runs else None,
        "sent": stats.sent,
        "notice_counts": NoticeStore(client, keys).counts(),
    }


# -- report --------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    began = time.perf_counter()
    socket.getfqdn()  # what smtplib calls on every connection when no EHLO name is configured
    fqdn_ms = (time.perf_counter() - began) * 1e3
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "redis_server": next((w[2:] for w in version if w.startswith("v=")), None),
        "getfqdn_ms": round(fqdn_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=DEFAULT_HITS, help="paced hits per phase")
    parser.add_argument(
        "--interval-ms", type=float, default=DEFAULT_INTERVAL_MS, help="ms between paced hits"
    )
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, help="hits enqueued at once")
    parser.add_argument(
        "--poll-s", type=float, default=DEFAULT_POLL_S, help="period of the cron-style reference"
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    args = parser.parse_args()
    if args.quick:
        args.hits, args.burst = QUICK["hits"], QUICK["burst"]
    if args.hits < 1 or args.burst < 1 or args.interval_ms < 0 or args.poll_s <= 0:
        parser.error("--hits and --burst must be positive, --interval-ms >= 0, --poll-s > 0")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    report: dict[str, Any] = {
        "parameters": {
            "hits": args.hits,
            "interval_ms": args.interval_ms,
            "burst": args.burst,
            "poll_s": args.poll_s,
            "notifier_block_ms": BLOCK_MS,
            "target_median_ms": TARGET_MEDIAN_MS,
        },
        "machine": machine_info(),
    }
    relay = Relay()  # started before any thread of this process
    log(f"relay on {SMTP_HOST}:{relay.port}")
    try:
        with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
            directory_path = Path(tmp) / "providers.yaml"
            directory_path.write_text(directory_yaml(), encoding="utf-8")
            with EmbeddedRedis(Path(tmp) / "data") as server:
                log("redis-server started")
                notifier_client = redis_from_url(server.url)
                enqueue_client = redis_from_url(server.url)
                try:
                    pipeline = Pipeline(notifier_client, directory_path, relay.port)
                    report["daemon"] = bench_daemon(pipeline, relay, enqueue_client, args)
                    report["poll_reference"] = bench_poll(pipeline, relay, enqueue_client, args)
                finally:
                    notifier_client.close()
                    enqueue_client.close()
    finally:
        relay.close()
    report["relay_recipients"] = relay.recipients
    daemon_median = report["daemon"]["latency"].get("median_ms")
    poll_median = report["poll_reference"]["latency"].get("median_ms")
    report["ratios"] = {
        "poll_median_over_daemon_median": round(poll_median / daemon_median, 1)
        if daemon_median and poll_median
        else None,
    }
    burst_rate = report["daemon"]["burst"]["notices_per_s"]
    paced_rate = 1000 / args.interval_ms if args.interval_ms else None
    report["offered_load"] = (
        round(paced_rate / burst_rate, 2) if paced_rate and burst_rate else None
    )
    if report["offered_load"] is not None and report["offered_load"] > SATURATED:
        log(
            f"warning: paced rate {paced_rate:.0f}/s is {report['offered_load']}x the burst rate: "
            "the paced latencies measure a growing backlog"
        )
    report["target_met"] = daemon_median is not None and daemon_median < TARGET_MEDIAN_MS
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report["elapsed_s"] = round(time.perf_counter() - START, 1)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
