"""Store metrics benchmark: one read of the store metrics with many notices and review items.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/metrics.py [--notices 100000] [--review 20000] [--daemons 6]

Prints one JSON object on stdout; progress goes to stderr.

A private ``redis-server`` (``EmbeddedRedis`` in a temporary directory, unix socket) is filled
with N made-up notices in the statuses and channels a deployment has (a fifth queued, a third
removed with their times, the rest sent or escalated; e-mail, webhook, the outbox), each with
its hit as the notifier stores it, and R review items of which a third have a decision. Data
are labels' digests and ``*.example`` names, never an image.

Timed, each three times (the best is reported), all in one process:

* ``walk``: what ``hotline_notices``, ``hotline_time_to_removal_seconds`` and the ``review``
  queue depth cost, by the tally and the pending count made inside Redis (the current path);
* ``reference``: the same figures from reading every notice and review item whole
  (``NoticeStore.iter_notices`` and ``ReviewDesk.items``: the path before), checked equal;
* ``read``: a whole read of the store metrics by one daemon (``StoreCollector``), the walk
  included;
* ``daemons``: D daemons scraped one after another within one refresh: the first walks, the
  others reuse its walk (``P metrics:walk``); total seconds, and Redis's own CPU seconds for
  it (``used_cpu_sys`` + ``used_cpu_user`` of ``INFO cpu``), next to D times one walk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import redis  # noqa: E402

from hotline.metrics import StoreCollector  # noqa: E402
from hotline.redisserver import EmbeddedRedis  # noqa: E402
from hotline.services import Session  # noqa: E402
from store.connection import redis_from_url  # noqa: E402
from store.keys import Keys  # noqa: E402
from store.queue import HitQueue, HitRecord  # noqa: E402
from store.review import ReviewDesk  # noqa: E402
from takedown.notices import NoticeStore  # noqa: E402

DEFAULT_NOTICES = 100_000
DEFAULT_REVIEW = 20_000
DEFAULT_DAEMONS = 6
REPEATS = 3
BATCH = 1000
CHANNELS = ("email", "email", "email", "webhook", "outbox")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def digest(label: str, algorithm: str) -> str:
    return hashlib.new(algorithm, label.encode()).hexdigest()


def made_up_hit(n: int, verdict: str = "confirmed") -> HitRecord:
    label = f"benign-bench-{verdict}-{n}"
    return HitRecord(
        url=f"http://img-{n % 5000}.example/i/{n}.jpg",
        page=f"http://site-{n % 5000}.example/p/{n // 10}.html",
        seed=f"http://site-{n % 5000}.example/",
        sha256=digest(label, "sha256"),
        md5=digest(label, "md5"),
        sha1=digest(label, "sha1"),
        pdq=digest(label, "sha256") if verdict == "review" else None,
        pdq_quality=90 if verdict == "review" else None,
        phash=None,
        list="known",
        entry=f"k{n}",
        category="A1",
        algorithm="pdq" if verdict == "review" else "sha256",
        verdict=verdict,
        distance=40 if verdict == "review" else 0,
        first_seen="2026-11-01T00:00:00+00:00",
        ip="203.0.113.7",
        status=200,
        content_type="image/jpeg",
        content_length=48_213,
        server="nginx",
        crawl="bench",
    )


def fill(client: redis.Redis, keys: Keys, notices: int, review: int) -> None:
    """Notices written as the store writes them (one hash and its two index entries), in
    pipelines: creating them one by one through every state change would take an hour."""
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    for n in range(notices):
        hit = made_up_hit(n)
        created = 1_790_000_000.0 + n
        roll = rng.random()
        status = (
            "queued"
            if roll < 0.2
            else "removed"
            if roll < 0.53
            else "escalated"
            if roll < 0.6
            else "sent"
        )
        fields: dict[Any, Any] = {
            "id": hit.incident,
            "hit": json.dumps(hit.as_json(), sort_keys=True),
            "status": status,
            "created": repr(created),
            "updated": repr(created + 60),
            "last_seen_online": repr(created),
        }
        if status != "queued":
            channel = rng.choice(CHANNELS)
            fields |= {
                "channel": channel,
                "delivered_via": channel,
                "provider": f"Provider {n % 700}",
                "recipient": f"abuse@provider-{n % 700}.example",
                "route": json.dumps({"method": "directory", "provider": f"Provider {n % 700}"}),
                "sent_at": repr(created + 30),
                "message_id": f"<{hit.incident}@hotline.example>",
            }
        if status == "removed":
            gone = created + 30 + rng.expovariate(1 / 86_400)
            fields |= {"first_seen_gone": repr(gone), "closed_at": repr(gone + 3600)}
        pipe.hset(keys.notice(hit.incident), mapping=fields)
        pipe.zadd(keys.notices, {hit.incident: created})
        pipe.zadd(keys.notices_in(status), {hit.incident: created})
        if n % BATCH == BATCH - 1:
            pipe.execute()
    pipe.execute()
    queue = HitQueue(client, keys)
    for n in range(review):
        queue.enqueue(made_up_hit(n, "review"))
    desk = ReviewDesk(client, keys)
    for n in range(0, review, 3):
        desk.dismiss(made_up_hit(n, "review").incident, actor="bench@host", reason="benchmark")


def best(run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def walk(client: redis.Redis, keys: Keys) -> tuple[Counter[tuple[str, str]], int, int]:
    tally = NoticeStore(client, keys).tally()
    return tally.by_state, len(tally.removal_seconds), ReviewDesk(client, keys).pending()


def reference(client: redis.Redis, keys: Keys) -> tuple[Counter[tuple[str, str]], int, int]:
    by_state: Counter[tuple[str, str]] = Counter()
    removed = 0
    for notice in NoticeStore(client, keys).iter_notices():
        channel = notice.fields.get("delivered_via") or notice.fields.get("channel", "")
        by_state[(notice.status, channel)] += 1
        if notice.status == "removed" and notice.time_to_removal()[1] is not None:
            removed += 1
    desk = ReviewDesk(client, keys)
    return by_state, removed, sum(1 for item in desk.items() if item.decision is None)


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=DEFAULT_NOTICES)
    parser.add_argument("--review", type=int, default=DEFAULT_REVIEW)
    parser.add_argument("--daemons", type=int, default=DEFAULT_DAEMONS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "data") as server:
        client = redis_from_url(server.url)
        keys = Keys("bench:")
        started = time.perf_counter()
        fill(client, keys, args.notices, args.review)
        log(f"filled in {time.perf_counter() - started:.1f} s")
        walk_s, walked = best(lambda: walk(client, keys))
        log(f"walk {walk_s:.3f} s")
        reference_s, expected = best(lambda: reference(client, keys))
        log(f"reference {reference_s:.3f} s")
        if walked != expected:
            raise SystemExit(f"the walk and the reference disagree: {walked} != {expected}")
        session = Session(client, server.url, keys)

        def read() -> None:
            client.delete(keys.metrics_walk)
            list(StoreCollector(session).collect())

        read_s, _ = best(read)

        def daemons() -> float:
            client.delete(keys.metrics_walk)
            cpu = redis_cpu(client)
            for _ in range(args.daemons):
                list(StoreCollector(session).collect())
            return redis_cpu(client) - cpu

        daemons_s, daemons_cpu = best(daemons)
        client.delete(keys.metrics_walk)
        cpu = redis_cpu(client)
        for _ in range(args.daemons):
            walk(client, keys)
        unshared_cpu = redis_cpu(client) - cpu
        memory = client.info("memory")["used_memory"]
        client.close()
    result = {
        "benchmark": "metrics",
        "python": platform.python_version(),
        "notices": args.notices,
        "review_items": args.review,
        "redis_used_memory_bytes": memory,
        "walk_s": round(walk_s, 3),
        "reference_s": round(reference_s, 3),
        "read_s": round(read_s, 3),
        "daemons": args.daemons,
        "daemons_s": round(daemons_s, 3),
        "daemons_redis_cpu_s": round(daemons_cpu, 3),
        "unshared_redis_cpu_s": round(unshared_cpu, 3),
        "ratios": {
            "reference_over_walk": round(reference_s / walk_s, 1),
            "unshared_over_shared_redis_cpu": round(unshared_cpu / max(daemons_cpu, 1e-3), 1),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
