"""``hotline demo``: the whole loop on a benign generated site, nothing to configure.

It generates a small site of textured images, makes a known list from four of them, serves the
site on 127.0.0.2, crawls it and prints the confirmed hits. Everything lives under the key
prefix ``<prefix>demo:`` so a demo never mixes with a hotline's real queue.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console

from hotline.config import Config
from hotline.crawlrun import CrawlOptions, CrawlResult, run_crawl
from hotline.demosite import build_demo_site, serve
from hotline.services import redis_session
from matchers.lists import HashList, parse_csv_text
from takedown.lists import ListStore
from takedown.queue import HitQueue, HitRecord

DEMO_HOST = "127.0.0.2"
DEMO_LIST = "demo"


def run_demo(
    config: Config, console: Console, *, show_progress: bool = True
) -> tuple[CrawlResult, list[HitRecord], dict[str, str]]:
    """Run the demo; return the crawl result, its confirmed hits, and the expected
    image URL -> entry id of the planted known images."""
    config = replace(config, key_prefix=f"{config.key_prefix}demo:")
    site = build_demo_site()
    entries = parse_csv_text(site.known_csv, source="demo list")
    with serve(site.pages, host=DEMO_HOST) as server, redis_session(config) as session:
        info = ListStore(session.client, session.keys).save(
            HashList(name=DEMO_LIST, entries=entries)
        )
        console.print(
            f"demo site on {server.url('/')}: {len(site.pages)} routes; "
            f"known list {info.name!r} has {info.total} hashes of "
            f"{len(set(site.known_urls.values()))} images"
        )
        options = CrawlOptions(
            seeds=[server.url("/")],
            redis_url=session.url,
            key_prefix=session.keys.prefix,
            depth=2,
            max_pages=50,
            allow_private_networks=True,
            lists=[DEMO_LIST],
        )
        result = run_crawl(options, console, show_progress=show_progress)
        hits = [
            r
            for r in HitQueue(session.client, session.keys).iter_records("confirmed")
            if r.crawl == result.crawl_id
        ]
        expected = {server.url(path): entry for path, entry in site.known_urls.items()}
    return result, hits, expected
