"""Crawl options: as an analyst uses them with `hotline crawl` (depth, page cap, robots.txt),
and as one value from the command line to the run record and the crawl's settings."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.runsettings import build_settings, crawl_settings
from crawler.spiders.recheck import RECHECK_SETTINGS
from hotline.loopback import Exchange, RunningServer, html_page, serve
from store.options import DEFAULT_DEPTH, DEFAULT_MAX_PAGES_PER_SEED, OPTION_KEYS, CrawlOptions

HOTLINE = [sys.executable, "-m", "hotline.cli"]


class Site:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.paths: list[str] = []

    def page(self, body: str) -> Callable[[Exchange], None]:
        def handler(exchange: Exchange) -> None:
            self.paths.append(exchange.path)
            data = f"<html><body>{body}</body></html>".encode()
            exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(data))})
            exchange.write(data)

        return handler


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(host="127.0.0.2") as server:
        s = Site(server)
        server.mount(
            {
                "/": s.page("<a href='/one'>1</a><a href='/private/x'>x</a>"),
                "/one": s.page("<a href='/two'>2</a>"),
                "/two": s.page("<a href='/three'>3</a>"),
                "/three": s.page("end"),
                "/private/x": s.page("hidden"),
                "/robots.txt": html_page("User-agent: *\nDisallow: /private/\n"),
            }
        )
        yield s


def _crawl(site: Site, tmp_path: Path, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [*HOTLINE, "crawl", site.server.url("/"), "--allow-private-networks", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_depth_limits_link_following(site: Site, tmp_path: Path) -> None:
    summary = _crawl(site, tmp_path, "--depth", "1")
    assert sorted(site.paths) == ["/", "/one", "/private/x"]
    assert summary["pages"] == 3


def test_page_cap_per_seed(site: Site, tmp_path: Path) -> None:
    _crawl(site, tmp_path, "--depth", "5", "--max-pages", "2")
    assert len(site.paths) == 2 and site.paths[0] == "/"


def test_robots_txt_is_ignored_by_default_and_obeyed_on_request(site: Site, tmp_path: Path) -> None:
    _crawl(site, tmp_path, "--depth", "1")
    assert "/private/x" in site.paths
    site.paths.clear()
    _crawl(site, tmp_path, "--depth", "1", "--obey-robots")
    assert "/one" in site.paths and "/private/x" not in site.paths


# -- one shape from the CLI to the spider (offline) ------------------------------------------

#: A run record's options as `hotline crawl` has always written them.
RECORDED = {
    "depth": 3,
    "max_pages": 7,
    "allow_private_networks": True,
    "allowed_networks": ["10.1.0.0/16"],
    "obey_robots": True,
    "lists": ["known"],
    "overrides": {"DOWNLOAD_DELAY": "0.5"},
    "distributed": False,
}


def test_options_round_trip_through_the_stored_object() -> None:
    options = CrawlOptions.from_dict(RECORDED)
    assert options.as_dict() == RECORDED
    assert list(options.as_dict()) == list(OPTION_KEYS)
    assert CrawlOptions.from_dict(json.loads(json.dumps(options.as_dict()))) == options


def test_older_and_scrapy_records_read_with_defaults() -> None:
    assert CrawlOptions.from_dict({}) == CrawlOptions()
    # `scrapy crawl` records the subset of the keys its settings tell.
    scrapy = {k: RECORDED[k] for k in list(OPTION_KEYS)[:6]}
    options = CrawlOptions.from_dict(scrapy)
    assert (options.depth, options.lists, options.overrides) == (3, ("known",), {})
    assert (options.depth, options.max_pages) == (3, 7)
    assert CrawlOptions().as_dict()["depth"] == DEFAULT_DEPTH
    assert CrawlOptions().as_dict()["max_pages"] == DEFAULT_MAX_PAGES_PER_SEED


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"depth": "deep"}, "depth"),
        ({"speed": 1}, "unknown speed"),
        ({"lists": "known"}, "lists"),
        ({"overrides": ["A=1"]}, "overrides"),
        ({"obey_robots": "yes"}, "obey_robots"),
    ],
)
def test_bad_stored_options_are_refused_with_the_key(stored: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrawlOptions.from_dict(stored)


def test_options_cannot_change_once_built() -> None:
    options = CrawlOptions(overrides={"A": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.depth = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.overrides["A"] = "2"  # type: ignore[index]


def test_crawl_settings_are_the_options_with_their_overrides_on_top() -> None:
    options = CrawlOptions.from_dict({**RECORDED, "overrides": {"CRAWL_DEPTH": "9"}})
    settings = crawl_settings(
        options, "run-1", redis_url="redis://h/0", key_prefix="p:", log_level="INFO"
    )
    assert settings.getint("CRAWL_DEPTH") == 9  # an override wins over the option
    assert settings.getint("CRAWL_MAX_PAGES_PER_SEED") == 7
    assert settings.getbool("SAFETY_ALLOW_PRIVATE_NETWORKS") is True
    assert settings.getlist("SAFETY_ALLOWED_NETWORKS") == ["10.1.0.0/16"]
    assert settings.getbool("ROBOTSTXT_OBEY") is True
    assert settings.getlist("MATCHER_LISTS") == ["known"]
    assert settings.getdict("CRAWLRECORD_OPTIONS") == options.as_dict()
    assert (settings["CRAWL_ID"], settings["CRAWLRECORD_ORIGIN"]) == ("run-1", "cli")
    assert settings.getbool("FRONTIER_ENABLED") is False
    worker = crawl_settings(
        options, "run-1", redis_url="redis://h/0", key_prefix="p:", log_level="INFO", worker="w1"
    )
    assert worker["FRONTIER_WORKER"] == "w1" and worker.getbool("FRONTIER_ENABLED") is True
    assert "crawler.frontier.FrontierMiddleware" in worker.getdict("SPIDER_MIDDLEWARES")


def test_crawls_and_rechecks_share_the_project_settings() -> None:
    crawl = build_settings()
    recheck = build_settings({"DOWNLOAD_TIMEOUT": 3}, base=RECHECK_SETTINGS)
    assert crawl["TWISTED_DNS_RESOLVER"] == recheck["TWISTED_DNS_RESOLVER"]
    assert crawl.getint("DOWNLOAD_MAXSIZE") == recheck.getint("DOWNLOAD_MAXSIZE")
    assert recheck.getdict("ITEM_PIPELINES") == {} and crawl.getdict("ITEM_PIPELINES")
    assert recheck.getint("DOWNLOAD_TIMEOUT") == 3
