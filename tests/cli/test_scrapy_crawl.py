"""`scrapy crawl hotline` from the project root runs the same spider as `hotline crawl`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, html_page, image_response, serve
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry
from store.keys import Keys
from store.lists import ListStore
from store.queue import HitQueue
from tests.helpers import HOST_A, ROOT, hotline_env


def _scrapy_crawl(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "hotline", *args, "-s", "AUTOTHROTTLE_ENABLED=0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _env(redis_url: str, allow_private: str) -> dict[str, str]:
    return hotline_env(HOTLINE_REDIS_URL=redis_url, HOTLINE_ALLOW_PRIVATE_NETWORKS=allow_private)


def test_scrapy_crawl_from_the_root(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    known = encode(textured_image(77), "JPEG", quality=90)
    other = encode(textured_image(78), "JPEG", quality=90)
    keys = Keys(redis_prefix)
    digest = digest_bytes(known)
    ListStore(redis_client, keys).save(
        HashList(name="k", entries=[ListEntry("sha256", digest.sha256, "e1", "test")])
    )
    seeds = tmp_path / "seeds.txt"
    env = _env(redis_url, "1")
    pages = {
        "/": html_page("<img src='/a.jpg'><a href='/two'>two</a>"),
        "/two": html_page("<img src='/b.jpg'>"),
        "/a.jpg": image_response(other, "image/jpeg"),
        "/b.jpg": image_response(known, "image/jpeg"),
    }
    with serve(pages, host=HOST_A) as site:
        seeds.write_text(f"{site.url('/')}\nnot-a-url\n")
        result = _scrapy_crawl(
            ["-a", f"seeds={seeds}", "-s", f"STORE_KEY_PREFIX={redis_prefix}"], env
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipped seed {seeds}:2:" in result.stderr
    records = list(HitQueue(redis_client, keys).iter_records("confirmed"))
    assert [(r.url, r.page, r.entry) for r in records] == [
        (site.url("/b.jpg"), site.url("/two"), "e1")
    ]
    assert "'finish_reason': 'finished'" in result.stderr


class _Counter:
    """A route that counts its requests and answers with an empty page."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, exchange: Exchange) -> None:
        self.requests += 1
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": "0"})


def test_scrapy_crawl_reads_the_environment_like_the_cli(redis_url: str, redis_prefix: str) -> None:
    counter = _Counter()
    with serve({"/*": counter}, host=HOST_A) as site:
        args = ["-a", f"urls={site.url('/')}", "-s", f"STORE_KEY_PREFIX={redis_prefix}"]
        refused = _scrapy_crawl(args, _env(redis_url, "0"))
        assert counter.requests == 0
        lifted = _scrapy_crawl(args, _env(redis_url, " Yes"))
        assert counter.requests == 1
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert "'safety/refused_private': 1" in refused.stderr
    assert lifted.returncode == 0, lifted.stderr[-3000:]
    assert "safety/refused_private" not in lifted.stderr


def test_scrapy_crawl_refuses_a_bad_environment_value(redis_url: str, redis_prefix: str) -> None:
    counter = _Counter()
    with serve({"/*": counter}, host=HOST_A) as site:
        result = _scrapy_crawl(
            ["-a", f"urls={site.url('/')}", "-s", f"STORE_KEY_PREFIX={redis_prefix}"],
            _env(redis_url, "maybe"),
        )
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("HOTLINE_ALLOW_PRIVATE_NETWORKS: expected 1 or 0, got 'maybe'")
    )
    assert counter.requests == 0


def test_scrapy_crawl_recheck_says_what_runs_it(redis_url: str) -> None:
    """The recheck spider is listed by `scrapy list` but is driven by `hotline recheck`:
    run on its own it stops with that advice instead of a TypeError."""
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "recheck"],
        cwd=ROOT,
        env=_env(redis_url, "0"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "run `hotline recheck`" in result.stderr
    assert "TypeError" not in result.stderr
