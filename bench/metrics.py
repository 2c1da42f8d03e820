"""Reads that grow with the store: the store metrics and the console's listings, with many
notices, hits and review items.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/metrics.py [--notices 100000] [--hits 50000] [--review 20000] \
        [--daemons 6]

Prints one JSON object on stdout; progress goes to stderr.

A private ``redis-server`` (``EmbeddedRedis`` in a temporary directory, unix socket) is filled
with N made-up notices in the statuses and channels a deployment has (a fifth queued, a third
removed with their times, the rest sent or escalated; e-mail, webhook, the outbox), each with
its hit and route as the notifier stores them, the first H of them also as confirmed hits in
the hits stream, and R review items of which a third have a decision. Data are labels'
digests and ``*.example`` names, never an image.

Timed, each three times (the best is reported), all in one process:

* ``walk``: what ``hotline_notices``, ``hotline_time_to_removal_seconds`` and the ``review``
  queue depth cost, by the tally and the pending count made inside Redis (the current path);
* ``reference``: the same figures from reading every notice and review item whole
  (``NoticeStore.iter_notices`` and ``ReviewDesk.items``: the path before), checked equal;
* ``read``: a whole read of the store metrics by one daemon (``StoreCollector``), the walk
  included;
* ``daemons``: D daemons scraped one after another within one refresh: the first walks, the
  others reuse its walk (``P metrics:walk``); total seconds, and Redis's own CPU seconds for
  it (``used_cpu_sys`` + ``used_cpu_user`` of ``INFO cpu``), next to D times one walk;
* ``console``: the first page (50 rows) of the console's hits and notices listings, each
  unfiltered and filtered by a provider (``hotline.console.data``: notices read as the few
  fields a filter needs, rows made for the page only), against ``console_reference``, the
  same pages as the console made them before (every hit and notice read whole and made into
  a row, then the page cut), checked equal;
* ``provider_stats``: the statistics of ``hotline stats`` and ``/providers`` from
  ``NoticeStore.figures()`` (a few fields per notice, read inside Redis) against the same from
  every notice read whole, checked equal.
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
from types import SimpleNamespace
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import redis  # noqa: E402

from hotline.console.data import HitFilter, Page, list_hits, notices  # noqa: E402
from hotline.console.state import ConsoleState  # noqa: E402
from hotline.metrics import StoreCollector  # noqa: E402
from hotline.redisserver import EmbeddedRedis  # noqa: E402
from hotline.services import Session  # noqa: E402
from store.connection import redis_from_url  # noqa: E402
from store.keys import Keys  # noqa: E402
from store.queue import HitQueue, HitRecord  # noqa: E402
from store.review import ReviewDesk  # noqa: E402
from takedown.model import Recipient, Route  # noqa: E402
from takedown.notice import reference_for  # noqa: E402
from takedown.notices import NoticeStore  # noqa: E402
from takedown.stats import provider_stats  # noqa: E402

DEFAULT_NOTICES = 100_000
DEFAULT_HITS = 50_000
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
        entry=f"k{n}" if verdict == "confirmed" else f"r{n}",
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


def fill(client: redis.Redis, keys: Keys, notices: int, hits: int, review: int) -> None:
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
                "route": Route(
                    host=f"img-{n % 5000}.example",
                    ip="203.0.113.7",
                    method="directory-cidr",
                    recipient=Recipient(
                        f"Provider {n % 700}", f"abuse@provider-{n % 700}.example", "smtp"
                    ),
                    provider=f"Provider {n % 700}",
                    trail=("directory: 203.0.113.0/24 is Provider's",),
                ).to_json(),
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
    for n in range(hits):
        queue.enqueue(made_up_hit(n))
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


def console_state(client: redis.Redis, url: str, keys: Keys) -> ConsoleState:
    """What the console's listings read of their state: the session and the notice store."""
    takedown = SimpleNamespace(store=NoticeStore(client, keys))
    return cast(
        "ConsoleState", SimpleNamespace(session=Session(client, url, keys), takedown=takedown)
    )


#: The console pages timed: the first page (50 rows) of each listing.
CONSOLE_PAGES = ("hits", "hits_of_a_provider", "notices", "notices_of_a_provider")


def console_pages(state: ConsoleState, provider: str) -> dict[str, Callable[[], Any]]:
    """The first page (50) of the hits listing and of the notices listing, unfiltered and
    filtered by a provider, as the console serves them now."""
    page = Page(50, 0)
    return {
        "hits": lambda: page.take(list_hits(state, HitFilter())),
        "hits_of_a_provider": lambda: page.take(list_hits(state, HitFilter(provider=provider))),
        "notices": lambda: page.take(notices(state, status=None, provider=None)),
        "notices_of_a_provider": lambda: page.take(notices(state, status=None, provider=provider)),
    }


def console_reference(state: ConsoleState, provider: str) -> dict[str, Callable[[], Any]]:
    """The same pages as the console made them before: every hit and every notice read
    whole, every row made, then the page cut."""
    store = state.takedown.store

    def hit_rows(wanted: str | None) -> list[dict[str, Any]]:
        rows = []
        by_incident = {n.id: n for n in store.iter_notices()}
        for record in state.session.hits().iter_records("confirmed"):
            notice = by_incident.get(record.incident)
            if wanted and (notice is None or notice.provider != wanted):
                continue
            data = record.as_json()
            data["id"] = record.incident
            data["notice"] = (
                None
                if notice is None
                else {
                    "id": notice.id,
                    "reference": reference_for(notice.id),
                    "status": notice.status,
                    "provider": notice.fields.get("provider") or None,
                }
            )
            rows.append(data)
        rows.reverse()
        return rows

    def notice_rows(wanted: str | None) -> list[dict[str, Any]]:
        rows = []
        for notice in store.iter_notices():
            if wanted is not None and notice.provider != wanted:
                continue
            data = notice.as_json()
            data["reference"] = reference_for(notice.id)
            rows.append(data)
        rows.reverse()
        return rows

    page = Page(50, 0)
    return {
        "hits": lambda: page.take(hit_rows(None)),
        "hits_of_a_provider": lambda: page.take(hit_rows(provider)),
        "notices": lambda: page.take(notice_rows(None)),
        "notices_of_a_provider": lambda: page.take(notice_rows(provider)),
    }


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=DEFAULT_NOTICES)
    parser.add_argument("--hits", type=int, default=DEFAULT_HITS)
    parser.add_argument("--review", type=int, default=DEFAULT_REVIEW)
    parser.add_argument("--daemons", type=int, default=DEFAULT_DAEMONS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "data") as server:
        client = redis_from_url(server.url)
        keys = Keys("bench:")
        started = time.perf_counter()
        fill(client, keys, args.notices, args.hits, args.review)
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
        state = console_state(client, server.url, keys)
        provider = "Provider 7"
        console: dict[str, dict[str, float]] = {}
        now, before = console_pages(state, provider), console_reference(state, provider)
        for name in CONSOLE_PAGES:
            seconds, page = best(now[name])
            reference_seconds, expected_page = best(before[name])
            if page != expected_page:
                raise SystemExit(f"{name}: the console's page and the reference's disagree")
            console[name] = {
                "s": round(seconds, 3),
                "reference_s": round(reference_seconds, 3),
                "ratio": round(reference_seconds / seconds, 1),
            }
            log(f"console {name}: {seconds:.3f} s, reference {reference_seconds:.3f} s")
        store = NoticeStore(client, keys)
        providers_s, rows = best(lambda: [r.as_dict() for r in provider_stats(store.figures())])
        providers_reference_s, expected_rows = best(
            lambda: [r.as_dict() for r in provider_stats(store.iter_notices())]
        )
        if rows != expected_rows:
            raise SystemExit("provider statistics: figures and whole notices disagree")
        log(f"providers {providers_s:.3f} s, reference {providers_reference_s:.3f} s")
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
        "hits": args.hits,
        "console_first_page": console,
        "provider_stats": {
            "s": round(providers_s, 3),
            "reference_s": round(providers_reference_s, 3),
            "ratio": round(providers_reference_s / providers_s, 1),
        },
        "ratios": {
            "reference_over_walk": round(reference_s / walk_s, 1),
            "unshared_over_shared_redis_cpu": round(unshared_cpu / max(daemons_cpu, 1e-3), 1),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
