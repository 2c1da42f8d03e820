"""Regenerate the console screenshots of the README: ``console-overview.png``,
``console-review.png`` and ``console-providers.png``.

Run from the repository root (the test dependencies must be installed: Playwright drives
Debian's chromium, ``/usr/bin/chromium``, as ``tests/console/test_browser.py`` does)::

    .venv/bin/python docs/screenshots.py             # writes docs/console-*.png
    .venv/bin/python docs/screenshots.py --out /tmp/shots

What it does, all in a temporary directory that is removed at the end:

1. starts a private ``redis-server`` (the project's embedded one: a unix socket, no TCP port);
2. fills it with synthetic, benign data through the project's own APIs: hash lists whose
   "hashes" are digests of text labels, a provider directory of four made-up providers on
   documentation networks (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) that receive
   notices through the outbox or a web form (nothing is ever sent), thirty days of crawl runs,
   hits and near misses on ``.example`` hosts, and then the notifier, the analysts (mark-sent,
   review decisions) and the rechecks moving every notice through its states on a simulated
   clock, so times to removal spread from under an hour to more than a week;
3. serves the real console (``create_app``) with uvicorn on 127.0.0.1, logs in as the admin
   "ana" in headless chromium and screenshots the overview, the review queue (decided items
   included) and the providers page. The browser may only talk to the console: any other
   request is aborted and fails the run.

No image exists anywhere: records carry URLs and made-up hashes only, the URLs are never
fetched, and the console never shows an image. A fixed random seed makes runs reproducible
(times are relative to the moment the script runs).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import heapq
import itertools
import math
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import uvicorn
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Page, Route, ViewportSize, sync_playwright

from hotline.config import Config
from hotline.console.app import create_app
from hotline.console.charts import duration_label
from hotline.console.state import ConsoleSettings, ConsoleState
from hotline.redisserver import EmbeddedRedis
from hotline.services import Session
from hotline.takedownrun import Takedown, open_takedown
from matchers.lists import HashList, ListEntry, Thresholds
from store.accounts import Accounts
from store.clock import DAY, HOUR, MINUTE, iso, parse_iso
from store.connection import redis_from_url
from store.keys import Keys
from store.lists import EVERY_CATEGORY, ClassificationMap
from store.options import CrawlOptions
from store.queue import HitQueue, HitRecord
from store.rechecks import RecheckResult, RecheckState, RecheckTarget
from store.review import ReviewDesk
from store.runs import RunStats, RunStore, new_run_id, schedule_origin
from store.schedules import ScheduleStore, parse_trigger
from takedown.notice import NoticeFacts
from takedown.notices import CLOSED_STATUSES, Notice, NoticeStore
from takedown.notifier import NoticeSender, Notifier
from takedown.recheck import RecheckBook
from takedown.stats import nearest_rank, provider_stats

SEED: Final = 20261122
CHROMIUM: Final = "/usr/bin/chromium"
#: Flags for a headless chromium on a machine with no network but loopback (as the tests).
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Full-page shots: a low viewport makes each image as tall as its page's content.
VIEWPORT: Final[ViewportSize] = {"width": 1280, "height": 480}
UI_TIMEOUT_MS: Final = 30_000
PASSWORD: Final = "synthetic demo password"  # noqa: S105 - a throwaway user of a temporary Redis
CHEAP_HASHER: Final = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
#: The simulated history: this many days, ticking every few minutes.
HISTORY_DAYS: Final = 30
TICK: Final = 5 * MINUTE
#: The schedule's last run started this long before the simulated month ends.
LAST_RUN_AGO: Final = 2 * HOUR
SCHEDULE_NAME: Final = "daily-reports"
NOTIFIER: Final = "hotline-1"
ANALYSTS: Final = ("ana", "ben")

CONFIG_TOML: Final = """
[hotline]
name = "Example Hotline"
email = "notices@hotline.example"
website = "https://hotline.example"
country = "NL"
legal_basis = "Art. 1 of the Example Act (synthetic demonstration data)"

[notices]
directory = "providers.yaml"
recheck_schedule = ["30m", "1h", "2h", "4h", "8h", "12h"]
reminder_interval = "48h"
escalate_after = "7d"

[rdap]
url = ""
"""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    network: str
    hosts: tuple[str, ...]
    yaml: str


PROVIDERS: Final = (
    Provider(
        "Alpha Hosting",
        "192.0.2.",
        ("img.photo-share.example", "cdn.snapboard.example"),
        "- name: Alpha Hosting\n  cidrs: [192.0.2.0/26]\n"
        "  abuse: abuse@alpha-hosting.example\n  channel: outbox\n",
    ),
    Provider(
        "Bravo Cloud",
        "192.0.2.",
        ("media.pinwall.example", "files.quickupload.example"),
        "- name: Bravo Cloud\n  cidrs: [192.0.2.64/26]\n  channel: form\n"
        "  form_url: https://abuse.bravo-cloud.example/report\n",
    ),
    Provider(
        "Charlie Networks",
        "198.51.100.",
        ("static.forum-hub.example", "i.imgdrop.example"),
        "- name: Charlie Networks\n  cidrs: [198.51.100.0/24]\n"
        "  abuse: abuse@charlie-networks.example\n  channel: outbox\n",
    ),
    Provider(
        "Delta Webspace",
        "203.0.113.",
        ("uploads.freegallery.example", "pics.hostbox.example"),
        "- name: Delta Webspace\n  cidrs: [203.0.113.0/25]\n  channel: form\n"
        "  form_url: https://delta-webspace.example/abuse/form\n"
        "  upstream: abuse@transit.example\n",
    ),
)
#: The last byte of each provider's addresses: inside its network in the directory.
HOST_BYTES: Final = {
    "Alpha Hosting": (10, 40),
    "Bravo Cloud": (70, 120),
    "Charlie Networks": (5, 250),
    "Delta Webspace": (10, 120),
}
#: Hosts on an address no provider announces (and RDAP is off): their notices are unroutable.
UNLISTED: Final = (("img.nowhere-host.example", "203.0.113.201"),)

#: Per provider: how its notices end. (fate, count, median seconds to removal or failure).
Fate = tuple[str, int, float]
FATES: Final[dict[str, tuple[Fate, ...]]] = {
    "Alpha Hosting": (("removed", 9, 2.5 * HOUR), ("sent", 2, 0.0), ("awaiting", 1, 0.0)),
    "Bravo Cloud": (
        ("removed", 7, 12 * HOUR),
        ("reappear", 1, 8 * HOUR),
        ("sent", 1, 0.0),
        ("awaiting", 2, 0.0),
    ),
    "Charlie Networks": (
        ("removed", 6, 40 * HOUR),
        ("unreachable", 2, 30 * HOUR),
        ("online", 1, 0.0),
        ("sent", 1, 0.0),
    ),
    "Delta Webspace": (
        ("removed", 5, 4.5 * DAY),
        ("online", 2, 0.0),
        ("unreachable", 1, 2 * DAY),
        ("sent", 1, 0.0),
        ("awaiting", 1, 0.0),
    ),
}


def label_hex(label: str, algorithm: str, length: int | None = None) -> str:
    """Made-up hex of the right length: a digest of a text label, not of any image."""
    digest = hashlib.new(algorithm, label.encode()).hexdigest()
    return digest if length is None else digest[:length]


class SimClock:
    """The simulated time every store, the notifier and the rechecks read."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class Plan:
    """How one incident's story goes."""

    fate: str  # removed, reappear, unreachable, online, sent, awaiting, unroutable, ...
    delay: float = 0.0  # seconds from the notice being sent to the content going away
    delay_again: float = 0.0  # the same after a reappearance
    send_after: float = 0.0  # seconds an analyst takes to send a prepared notice by hand
    sender: str = "ana"

    @property
    def sends(self) -> bool:
        return self.fate not in {"awaiting", "unroutable", "unclassified"}


@dataclass(slots=True)
class Events:
    """A time-ordered queue of things to do on the simulated clock."""

    heap: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    order: Iterator[int] = field(default_factory=itertools.count)

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.heap, (when, next(self.order), action))


@dataclass(slots=True)
class World:
    rng: random.Random
    clock: SimClock
    session: Session
    takedown: Takedown
    start: float
    end: float
    events: Events = field(default_factory=Events)
    plans: dict[str, Plan] = field(default_factory=dict)
    runs: dict[str, tuple[float, list[HitRecord]]] = field(default_factory=dict)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))


# -- the synthetic data -------------------------------------------------------------------------


def run_slots(world: World) -> list[tuple[float, str]]:
    """The daily scheduled runs of the simulated month (time, run id), oldest first: the last
    one :data:`LAST_RUN_AGO` before the end, so every time is the end plus a fixed offset."""
    slots = []
    for days_ago in range(HISTORY_DAYS - 1, -1, -1):
        at = world.end - LAST_RUN_AGO - days_ago * DAY
        slots.append((at, new_run_id(at, f"{world.rng.randrange(16**6):06x}")))
    return slots


def slot_before(slots: list[tuple[float, str]], when: float) -> tuple[float, str]:
    earlier = [slot for slot in slots if slot[0] <= when]
    return earlier[-1] if earlier else slots[0]


def make_record(
    world: World,
    *,
    host: str,
    ip: str,
    run: str,
    seen: float,
    verdict: str,
    list_name: str = "known",
) -> HitRecord:
    """One synthetic record: URLs on an ``.example`` host, hashes of a text label."""
    rng = world.rng
    number = next(world.numbers)
    label = f"synthetic-demo-image-{number}"
    album = rng.randrange(1000, 9999)
    suffix = rng.choice(("jpg", "jpg", "jpg", "png", "webp"))
    pdq = label_hex(label, "sha256")
    phash = label_hex(label, "md5", 16)
    if verdict == "review":
        algorithm = rng.choice(("pdq", "pdq", "phash"))
        distance = rng.randint(34, 48) if algorithm == "pdq" else rng.randint(7, 10)
    else:
        algorithm = rng.choice(("sha256", "sha256", "sha256", "pdq", "phash"))
        distance = {"sha256": 0, "pdq": rng.randint(2, 24), "phash": rng.randint(1, 5)}[algorithm]
    entry = rng.randrange(1, 600 if list_name == "known" else 150)
    return HitRecord(
        url=f"http://{host}/i/{album}/{number:04d}.{suffix}",
        page=f"http://{host}/album/{album}.html",
        seed=f"http://{host}/album/{album}.html",
        sha256=label_hex(label + "-bytes", "sha256"),
        md5=label_hex(label, "md5"),
        sha1=label_hex(label, "sha1"),
        pdq=pdq,
        pdq_quality=rng.randint(70, 100),
        phash=phash,
        list=list_name,
        entry=f"{list_name[0]}{entry:04d}",
        category=rng.choice(("A1", "A1", "B1", "other")),
        algorithm=algorithm,
        distance=distance,
        verdict=verdict,
        first_seen=iso(seen),
        ip=ip,
        status=200,
        content_type={"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[suffix],
        content_length=rng.randint(24_000, 900_000),
        server=rng.choice(("nginx", "Apache", "openresty", "LiteSpeed")),
        crawl=run,
    )


def store_lists(world: World) -> None:
    """Two known lists (one without a classification) of made-up hashes."""
    lists = world.session.lists()
    known = []
    for n in range(1, 600):
        entry_id = f"k{n:04d}"
        category = ("A1", "B1", "other")[n % 3]
        known.append(
            ListEntry("sha256", label_hex(f"list-entry-{n}", "sha256"), entry_id, category)
        )
        if n % 2 == 0:
            known.append(ListEntry("pdq", label_hex(f"list-pdq-{n}", "sha256"), entry_id, category))
        if n % 3 == 0:
            known.append(
                ListEntry("phash", label_hex(f"list-phash-{n}", "md5", 16), entry_id, category)
            )
    lists.save(
        HashList("known", known, Thresholds()),
        classification=ClassificationMap({"A1": "A1", "B1": "B1", EVERY_CATEGORY: "baseline"}),
    )
    partner = [
        ListEntry("sha256", label_hex(f"partner-entry-{n}", "sha256"), f"p{n:04d}", "unsorted")
        for n in range(1, 150)
    ]
    lists.save(HashList("partner-feed", partner, Thresholds(pdq_confirm=24, pdq_review=40)))


def lognormal(rng: random.Random, median: float, sigma: float = 0.55) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def plan_hits(world: World, slots: list[tuple[float, str]]) -> None:
    """Decide every confirmed hit's story and put its crawl on the calendar."""
    rng, start, end = world.rng, world.start, world.end
    for provider in PROVIDERS:
        low, high = HOST_BYTES[provider.name]
        for fate, count, median in FATES[provider.name]:
            for _ in range(count):
                delay = lognormal(rng, median) if median else 0.0
                if fate == "removed":
                    window = (start + DAY, end - delay - 2 * DAY)
                elif fate == "reappear":
                    window = (start + DAY, end - 16 * DAY)
                elif fate == "unreachable":
                    window = (start + DAY, end - delay - 5 * DAY)
                elif fate == "online":
                    window = (start + DAY, end - 10 * DAY)
                elif fate == "sent":
                    window = (end - 4 * DAY, end - 18 * HOUR)
                else:  # awaiting: found lately, not sent by hand yet
                    window = (end - 2 * DAY, end - 6 * HOUR)
                when = rng.uniform(*window) if window[0] < window[1] else window[0]
                host = rng.choice(provider.hosts)
                ip = f"{provider.network}{rng.randint(low, high)}"
                plan = Plan(
                    fate=fate,
                    delay=delay,
                    delay_again=lognormal(rng, 6 * HOUR),
                    send_after=rng.uniform(20 * MINUTE, 5 * HOUR),
                    sender=rng.choice(ANALYSTS),
                )
                add_hit(world, slots, when, host, ip, plan)
    for host, ip in UNLISTED:
        for _ in range(2):
            add_hit(
                world, slots, rng.uniform(end - 9 * DAY, end - DAY), host, ip, Plan("unroutable")
            )
    partner_provider = PROVIDERS[2]
    add_hit(
        world,
        slots,
        rng.uniform(end - 6 * DAY, end - DAY),
        partner_provider.hosts[1],
        f"{partner_provider.network}77",
        Plan("unclassified"),
        list_name="partner-feed",
    )


def add_hit(
    world: World,
    slots: list[tuple[float, str]],
    when: float,
    host: str,
    ip: str,
    plan: Plan,
    *,
    list_name: str = "known",
    verdict: str = "confirmed",
) -> HitRecord:
    run_at, run_id = slot_before(slots, when)
    seen = run_at + world.rng.uniform(4 * MINUTE, 40 * MINUTE)
    record = make_record(
        world, host=host, ip=ip, run=run_id, seen=seen, verdict=verdict, list_name=list_name
    )
    world.plans[record.incident] = plan
    world.runs.setdefault(run_id, (run_at, []))[1].append(record)
    return record


def plan_review(world: World, slots: list[tuple[float, str]]) -> None:
    """Near misses of the last two weeks, from different crawls: the older ones confirmed or
    dismissed (one of them into an allow-list), the newest still pending."""
    rng, end = world.rng, world.end
    decisions = (
        ("confirm", "ana", "the same picture, cropped and with a caption added"),
        ("dismiss", "ben", "a different picture with a similar layout", "allow-local"),
        ("confirm", "ben", "same scene, re-encoded at a lower quality"),
        ("dismiss", "ana", "unrelated image: a product photo on a plain background"),
        None,
        None,
        None,
    )
    decided = sum(d is not None for d in decisions)
    days_ago = [  # one item a crawl (a day)
        *sorted(rng.sample(range(4, 15), decided), reverse=True),
        *sorted(rng.sample(range(4), len(decisions) - decided), reverse=True),
    ]
    times = [end - days * DAY for days in days_ago]
    for when, decision in zip(times, decisions, strict=True):
        provider = rng.choice(PROVIDERS[:3])
        low, high = HOST_BYTES[provider.name]
        ip = f"{provider.network}{rng.randint(low, high)}"
        plan = Plan(
            "removed", delay=lognormal(rng, 10 * HOUR), send_after=rng.uniform(0.5, 3) * HOUR
        )
        record = add_hit(world, slots, when, rng.choice(provider.hosts), ip, plan, verdict="review")
        if decision is None:
            continue
        decided_at = parse_seen(record) + rng.uniform(2 * HOUR, 20 * HOUR)
        world.events.at(decided_at, decide(world, record, *decision))


def parse_seen(record: HitRecord) -> float:
    return parse_iso(record.first_seen)


def decide(
    world: World, record: HitRecord, decision: str, analyst: str, reason: str, allow: str = ""
) -> Callable[[], None]:
    def action() -> None:
        desk = ReviewDesk(world.session.client, world.session.keys, clock=world.clock)
        actor = f"analyst@{analyst}"
        if decision == "confirm":
            desk.confirm(record.incident, actor=actor, reason=reason)
        else:
            desk.dismiss(record.incident, actor=actor, reason=reason, allow_list=allow or None)

    return action


def schedule_runs(world: World, slots: list[tuple[float, str]]) -> None:
    """Every daily run: created and started at its time, its hits queued while it runs,
    finished with counts; one run of the last week has a health flag."""
    runs = RunStore(world.session.client, world.session.keys, clock=world.clock)
    queue = world.session.hits()
    flagged = slots[-4][1]
    for at, run_id in slots:
        records = sorted(world.runs.get(run_id, (at, []))[1], key=lambda r: r.first_seen)
        seeds = sorted({r.seed for r in records}) or [f"http://reports.example/daily/{run_id}"]

        def begin(run_id: str = run_id, seeds: list[str] = seeds) -> None:
            runs.create(
                seeds=seeds,
                options=CrawlOptions(depth=2, max_pages=200),
                origin=schedule_origin(SCHEDULE_NAME),
                run_id=run_id,
            )
            runs.start(run_id)

        world.events.at(at, begin)
        for record in records:
            world.events.at(parse_seen(record), enqueue_later(queue, record))
        rng = world.rng
        pages = rng.randint(40, 260)
        images = pages * rng.randint(4, 11)
        errors = {"http_404": rng.randint(0, 9), "timeout": rng.randint(0, 3)}
        if run_id == flagged:
            errors = {"connection_refused": 61, "timeout": 22}
            pages, images = 24, 0
        stats = RunStats(
            requests=pages + images + sum(errors.values()),
            retries=rng.randint(0, 6),
            responses=pages + images,
            pages=pages,
            images=images,
            hashed=images,
            confirmed=sum(r.verdict == "confirmed" for r in records),
            review=sum(r.verdict == "review" for r in records),
            errors=errors,
        )
        health = (
            {
                "error_rate": "83 of 107 requests failed (78% > 50%): "
                "connection_refused 61, timeout 22"
            }
            if run_id == flagged
            else {}
        )

        def finish(
            run_id: str = run_id, stats: RunStats = stats, health: dict[str, str] = health
        ) -> None:
            runs.finish(run_id, "finished", "finished", stats, health)

        world.events.at(at + rng.uniform(45 * MINUTE, 80 * MINUTE), finish)


def enqueue_later(queue: HitQueue, record: HitRecord) -> Callable[[], None]:
    def action() -> None:
        queue.enqueue(record)

    return action


def running_crawl(world: World) -> None:
    """A report an analyst made a few minutes ago, still being crawled."""
    runs = RunStore(world.session.client, world.session.keys, clock=world.clock)
    at = world.end - 12 * MINUTE
    run_id = new_run_id(at, "4f1c2a")

    def begin() -> None:
        runs.create(
            seeds=[
                "http://board.reported-site.example/t/88213",
                "http://cdn.reported-site.example/",
            ],
            options=CrawlOptions(depth=2, max_pages=200),
            origin="console:ana",
            run_id=run_id,
        )
        runs.start(run_id)
        runs.update_stats(
            run_id,
            RunStats(
                requests=412,
                responses=398,
                pages=57,
                images=341,
                hashed=338,
                errors={"http_404": 6},
            ),
        )

    world.events.at(at, begin)


# -- the simulation -----------------------------------------------------------------------------


#: What a recheck reports for content that is gone, or for a site that does not answer.
REMOVED_ANSWERS: Final[tuple[tuple[str, int | None], ...]] = (
    ("http 404", 404),
    ("http 410", 410),
    ("http 404", 404),
)
UNREACHABLE_ANSWERS: Final[tuple[tuple[str, int | None], ...]] = (
    ("timeout", None),
    ("dns lookup failed", None),
    ("http 503", 503),
)


def recheck_outcome(world: World, notice: Notice, target: RecheckTarget) -> RecheckResult:
    """What the recheck would find for this notice now, by its plan."""
    plan = world.plans.get(notice.id, Plan("online"))
    now = world.clock()
    reopens = notice.count("reopens")
    state: RecheckState = "online"
    if notice.status in CLOSED_STATUSES:
        back = plan.fate == "reappear" and reopens == 0
        state = "online" if back else ("removed" if notice.status == "removed" else "unreachable")
    else:
        sent = notice.time("sent_at") or now
        gone_after = plan.delay if reopens == 0 else plan.delay_again
        if now - sent >= gone_after:
            if plan.fate in {"removed", "reappear"}:
                state = "removed"
            elif plan.fate == "unreachable":
                state = "unreachable"
    second_look = bool(notice.fields.get("removal_seen_at")) or notice.count("unreachable_streak")
    digest: str | None = None
    status: int | None
    if state == "online":
        reason, status, digest = "same bytes", 200, target.sha256
    elif state == "removed":
        reason, status = world.rng.choice(REMOVED_ANSWERS)
    else:
        reason, status = world.rng.choice(UNREACHABLE_ANSWERS)
    return RecheckResult(
        notice_id=notice.id,
        url=target.url,
        state=state,
        reason=reason,
        http_status=status,
        checked_at=iso(now),
        sha256=digest,
        profile="browser" if second_look and state != "online" else "crawl",
    )


def simulate(world: World) -> None:
    """Run the month: crawls, the notifier, analysts sending by hand, and the rechecks."""
    clock, takedown = world.clock, world.takedown
    store = NoticeStore(world.session.client, world.session.keys, clock=clock)
    real_sender = takedown.require_sender()
    sender = NoticeSender(store, real_sender.renderer, real_sender.deliverer, NoticeFacts)
    notifier = Notifier(
        store.client,
        store.keys,
        router=takedown.router,
        sender=sender,
        settings=takedown.settings,
        consumer=NOTIFIER,
        clock=clock,
    )
    book = RecheckBook(
        store,
        takedown.settings,
        sender=sender,
        router=takedown.router,
        actor=f"recheck@{NOTIFIER}",
        clock=clock,
    )
    handled: set[tuple[str, int]] = set()

    def mark_sent(notice_id: str) -> None:
        notice = store.get(notice_id)
        if notice.status != "awaiting_manual":
            return
        plan = world.plans[notice_id]
        how = (
            "submitted through the provider's web form"
            if notice.fields.get("channel") == "form"
            else "mailed from notices@hotline.example"
        )
        store.mark_sent(
            notice_id,
            actor=f"analyst@{plan.sender}",
            recheck_at=clock() + takedown.settings.recheck_delay(0),
            note=how,
        )

    def tick() -> None:
        notifier.run(once=True)
        for notice_id in store.ids("awaiting_manual"):
            key = (notice_id, store.get(notice_id).count("reopens"))
            plan = world.plans.get(notice_id)
            if key in handled or plan is None or not plan.sends:
                continue
            handled.add(key)
            world.events.at(clock() + plan.send_after, functools.partial(mark_sent, notice_id))
        for target in book.claim_due(limit=500):
            book.apply(recheck_outcome(world, store.get(target.notice_id), target))
        if clock() + TICK <= world.end:
            world.events.at(clock() + TICK, tick)

    world.events.at(world.start, tick)
    while world.events.heap:
        when, _, action = heapq.heappop(world.events.heap)
        if when > world.end:
            break
        clock.now = when
        action()


def populate(world: World) -> None:
    session = world.session
    accounts = Accounts(session.client, session.keys, hasher=CHEAP_HASHER)
    accounts.add_user("ana", "admin", PASSWORD, actor="admin@setup")
    accounts.add_user("ben", "analyst", PASSWORD, actor="admin@setup")
    accounts.add_user("vic", "viewer", PASSWORD, actor="admin@setup")
    store_lists(world)
    ScheduleStore(session.client, session.keys).add(
        SCHEDULE_NAME,
        parse_trigger("1d", None),
        ["http://reports.example/daily/seeds.txt"],
        CrawlOptions(depth=2, max_pages=200),
    )
    slots = run_slots(world)
    plan_hits(world, slots)
    plan_review(world, slots)
    schedule_runs(world, slots)
    running_crawl(world)
    simulate(world)


# -- serving and screenshots --------------------------------------------------------------------


@contextmanager
def serve(state: ConsoleState) -> Iterator[str]:
    """The console on 127.0.0.1 (a port the system picks), in a thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def screenshots(base: str, out: Path) -> list[Path]:
    foreign: list[str] = []

    def only_console(route: Route) -> None:
        url = route.request.url
        if url == base or url.startswith(base + "/"):
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    shots = []
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.route("**/*", only_console)
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            log_in(page, base)
            for name, path, heading in (
                ("overview", "/", "Overview"),
                ("review", "/review?show=all", "Review queue"),
                ("providers", "/providers", "Providers"),
            ):
                page.goto(base + path)
                page.get_by_role("heading", name=heading, exact=True).wait_for()
                page.wait_for_load_state("networkidle")
                target = out / f"console-{name}.png"
                page.screenshot(path=str(target), full_page=True)
                shots.append(target)
            context.close()
        finally:
            browser.close()
    if foreign:
        raise RuntimeError(f"the browser tried to reach beyond the console: {foreign}")
    return shots


def log_in(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate the README's console screenshots from synthetic data."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="directory the PNG files go to (default: docs/)",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is not installed (apt-get install chromium)")
    began = time.monotonic()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hl-shots-")))
        data_dir = work / "data"
        (work / "hotline.toml").write_text(CONFIG_TOML, encoding="utf-8")
        (work / "providers.yaml").write_text("".join(p.yaml for p in PROVIDERS), encoding="utf-8")
        server = stack.enter_context(EmbeddedRedis(data_dir))
        config = Config.from_env(
            {
                "HOTLINE_REDIS_URL": server.url,
                "HOTLINE_DATA_DIR": str(data_dir),
                "HOTLINE_CONFIG": str(work / "hotline.toml"),
            }
        )
        client = redis_from_url(server.url)
        stack.callback(client.close)
        session = Session(client, server.url, Keys(config.key_prefix))
        takedown = stack.enter_context(open_takedown(session, config, consumer=NOTIFIER))
        end = math.floor(time.time() / MINUTE) * MINUTE - 3 * MINUTE
        start = end - HISTORY_DAYS * DAY
        world = World(random.Random(SEED), SimClock(start), session, takedown, start, end)  # noqa: S311
        populate(world)
        print(f"populated in {time.monotonic() - began:.1f}s\n{summary(takedown.store)}")
        state = ConsoleState(
            config=config,
            settings=ConsoleSettings(),
            session=session,
            accounts=Accounts(client, session.keys, hasher=CHEAP_HASHER),
            takedown=takedown,
            launch=refuse_crawl,
        )
        with serve(state) as base:
            for shot in screenshots(base, out):
                print(f"{shot} ({shot.stat().st_size // 1024} KB)")
    return 0


def refuse_crawl(run_id: str) -> None:
    """The console of the screenshots never starts a crawl."""
    raise RuntimeError(f"not crawling {run_id}: the screenshot console crawls nothing")


def summary(store: NoticeStore) -> str:
    """Notices by state, and each provider's median and p90 time to removal."""
    counts = ", ".join(f"{status} {n}" for status, n in store.counts().items() if n)
    removal = "; ".join(
        f"{row.provider} {duration_label(median)} / {duration_label(p90)}"
        for row in provider_stats(store.iter_notices())
        if (median := nearest_rank(row.removal_upper, 50)) is not None
        and (p90 := nearest_rank(row.removal_upper, 90)) is not None
    )
    return f"notices: {counts}\ntime to removal (median / p90): {removal}"


if __name__ == "__main__":
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    sys.exit(main())
