"""``hotline demo``: the whole loop on a benign generated site, nothing to configure.

It generates a small site of textured images, makes a known list from four of them (mapped
explicitly to the X-ARF classification :data:`DEMO_CLASSIFICATION`), serves the site on
127.0.0.2, crawls it, prints the confirmed hits, and runs the notifier once: each hit's
takedown notice (plain text + X-ARF) is written to the outbox ``<data dir>/demo-outbox`` for
a made-up provider, as a hotline without SMTP would send it by hand. Everything lives under
the key prefix ``<prefix>demo:`` so a demo never mixes with a hotline's real queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from hotline.config import Config
from hotline.crawlrun import CrawlResult, run_crawl
from hotline.demosite import build_demo_site
from hotline.loopback import serve
from hotline.services import Session, redis_session
from matchers.lists import HashList, parse_csv_text
from store.lists import EVERY_CATEGORY, ClassificationMap, ListStore
from store.options import CrawlOptions
from store.queue import HitQueue, HitRecord
from takedown.channels.dispatch import Deliverer
from takedown.channels.outbox import OutboxChannel, OutboxSettings
from takedown.directory import ProviderDirectory
from takedown.model import HotlineIdentity
from takedown.notice import NoticeFacts, NoticeRenderer
from takedown.notices import NoticeStore
from takedown.notifier import NoticeSender, Notifier, NotifierStats
from takedown.routing import Router
from takedown.settings import TakedownSettings

DEMO_HOST = "127.0.0.2"
DEMO_LIST = "demo"
DEMO_OUTBOX = "demo-outbox"
#: The demo list's X-ARF classification, given explicitly as a hotline gives its lists' (the
#: images are benign; the value only lets the demo's notices carry a valid X-ARF report).
DEMO_CLASSIFICATION = "baseline"
DEMO_IDENTITY = HotlineIdentity(
    name="Demo Hotline",
    email="notices@hotline.example",
    website="https://hotline.example",
    country="NL",
    legal_basis="(demo) the law the reported content violates",
)
DEMO_DIRECTORY = f"""
- name: Demo Hosting
  cidrs: [{DEMO_HOST}/32]
  abuse: abuse@hosting.example
  channel: outbox
"""


@dataclass(frozen=True, slots=True)
class DemoNotices:
    stats: NotifierStats
    outbox: Path


def _notify(config: Config, session: Session) -> DemoNotices:
    """Run the notifier once over the demo's hits, delivering to the demo outbox only."""
    outbox = config.data_dir / DEMO_OUTBOX
    store = NoticeStore(session.client, session.keys)
    deliverer = Deliverer(outbox=OutboxChannel(OutboxSettings(directory=outbox)))
    directory = ProviderDirectory.from_yaml(DEMO_DIRECTORY, source="demo directory")
    notifier = Notifier(
        session.client,
        session.keys,
        router=Router(directory, ProviderDirectory.empty(), None),
        sender=NoticeSender(store, NoticeRenderer(DEMO_IDENTITY), deliverer, NoticeFacts),
        settings=TakedownSettings(identity=DEMO_IDENTITY, rdap_url=None),
        consumer="demo",
    )
    return DemoNotices(notifier.run(once=True), outbox)


def run_demo(
    config: Config, console: Console, *, show_progress: bool = True
) -> tuple[CrawlResult, list[HitRecord], dict[str, str], DemoNotices]:
    """Run the demo; return the crawl result, its confirmed hits, the expected image URL ->
    entry id of the planted known images, and what the notifier wrote."""
    config = replace(config, key_prefix=f"{config.key_prefix}demo:")
    site = build_demo_site()
    entries = parse_csv_text(site.known_csv, source="demo list")
    with serve(site.pages, host=DEMO_HOST) as server, redis_session(config) as session:
        info = ListStore(session.client, session.keys).save(
            HashList(name=DEMO_LIST, entries=entries),
            classification=ClassificationMap({EVERY_CATEGORY: DEMO_CLASSIFICATION}),
        )
        console.print(
            f"demo site on {server.url('/')}: {len(site.pages)} routes; "
            f"known list {info.name!r} has {info.total} hashes of "
            f"{len(set(site.known_urls.values()))} images"
        )
        options = CrawlOptions(
            depth=2, max_pages=50, allow_private_networks=True, lists=(DEMO_LIST,)
        )
        result = run_crawl(
            [server.url("/")],
            options,
            console,
            redis_url=session.url,
            key_prefix=session.keys.prefix,
            show_progress=show_progress,
        )
        hits = [
            r
            for r in HitQueue(session.client, session.keys).iter_records("confirmed")
            if r.crawl == result.crawl_id
        ]
        expected = {server.url(path): entry for path, entry in site.known_urls.items()}
        notices = _notify(config, session)
    return result, hits, expected, notices
