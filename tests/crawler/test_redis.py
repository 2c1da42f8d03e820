"""The crawl's Redis settings (crawler.redis) and its settings module (crawler.settings): the
former ``HITS_*`` names as aliases, every component reading the same server and prefix, the
defaults that belong to matchers and store, and a settings module light enough for the CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import redis
from scrapy.crawler import Crawler
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

import crawler.settings as project_settings
from crawler.extensions import CrawlRecord
from crawler.frontier import FrontierScheduler
from crawler.hashing import ImageHasher
from crawler.pipelines import MatchPipeline, QueuePipeline
from crawler.redis import ALIASES, client_from, keys_from, redis_url_from
from matchers.algorithms import MAX_IMAGE_PIXELS
from matchers.guards import FLOOD_LIMIT
from store.connection import default_url
from store.environment import ENV_REDIS_URL
from store.keys import DEFAULT_PREFIX

NEW_URL = "redis://127.0.0.1:1/0"
OLD_URL = "redis://127.0.0.1:2/0"
#: Modules importing ``crawler.settings`` (or running ``hotline --help``) must not load.
HEAVY = ("scrapy", "scrapy_redis", "redis", "twisted")


def _project(**overrides: Any) -> dict[str, Any]:
    """The project's own settings (``crawler.settings``) with ``overrides`` on top."""
    own = {name: getattr(project_settings, name) for name in dir(project_settings)}
    return {**{k: v for k, v in own.items() if k.isupper()}, **overrides}


def _crawler(**overrides: Any) -> Crawler:
    return get_crawler(settings_dict=_project(**overrides))


def test_store_settings_are_read() -> None:
    settings = Settings(_project(STORE_REDIS_URL=NEW_URL, STORE_KEY_PREFIX="new:"))
    assert redis_url_from(settings) == NEW_URL
    assert keys_from(settings).prefix == "new:"


def test_former_hits_names_are_aliases() -> None:
    assert ALIASES == {"STORE_REDIS_URL": "HITS_REDIS_URL", "STORE_KEY_PREFIX": "HITS_KEY_PREFIX"}
    settings = Settings(_project(HITS_REDIS_URL=OLD_URL, HITS_KEY_PREFIX="old:"))
    assert redis_url_from(settings) == OLD_URL
    assert keys_from(settings).prefix == "old:"


def test_new_name_wins_over_its_alias() -> None:
    settings = Settings()
    settings.setdict({"STORE_REDIS_URL": NEW_URL, "STORE_KEY_PREFIX": "new:"}, priority="project")
    # The alias wins nothing, whatever its priority.
    settings.setdict({"HITS_REDIS_URL": OLD_URL, "HITS_KEY_PREFIX": "old:"}, priority="cmdline")
    assert redis_url_from(settings) == NEW_URL
    assert keys_from(settings).prefix == "new:"


def test_unset_means_environment_then_embedded_server_and_default_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(_project())
    monkeypatch.setenv(ENV_REDIS_URL, NEW_URL)
    assert redis_url_from(settings) == NEW_URL
    monkeypatch.delenv(ENV_REDIS_URL)
    assert redis_url_from(settings) == default_url()
    assert keys_from(settings).prefix == DEFAULT_PREFIX


@pytest.mark.parametrize(
    "names", [("STORE_REDIS_URL", "STORE_KEY_PREFIX"), ("HITS_REDIS_URL", "HITS_KEY_PREFIX")]
)
def test_every_component_of_a_crawl_reads_the_same_redis(
    names: tuple[str, str], redis_url: str, redis_prefix: str
) -> None:
    url_name, prefix_name = names
    crawler = _crawler(**{url_name: redis_url, prefix_name: redis_prefix, "CRAWL_ID": "r1"})
    for component in (
        MatchPipeline.from_crawler(crawler),
        QueuePipeline.from_crawler(crawler),
        CrawlRecord.from_crawler(crawler),
    ):
        assert (component.redis_url, component.keys.prefix) == (redis_url, redis_prefix)
    scheduler = FrontierScheduler.from_crawler(crawler)
    try:
        assert scheduler.frontier.keys.prefix == redis_prefix
        assert scheduler.client.ping()
    finally:
        scheduler.client.close()


def test_client_from_settings_reaches_the_crawls_redis(redis_url: str) -> None:
    client: redis.Redis = client_from(Settings(_project(STORE_REDIS_URL=redis_url)))
    try:
        assert client.ping()
    finally:
        client.close()


def test_matcher_defaults_are_the_matchers_own() -> None:
    """``MATCHER_FLOOD_LIMIT`` and ``MATCHER_MAX_PIXELS`` are unset in the project's settings:
    the values are written once, in matchers; a setting still overrides them."""
    crawler = _crawler()
    assert MatchPipeline.from_crawler(crawler).flood_limit == FLOOD_LIMIT
    assert ImageHasher.from_crawler(crawler).max_pixels == MAX_IMAGE_PIXELS
    crawler = _crawler(MATCHER_FLOOD_LIMIT="2", MATCHER_MAX_PIXELS="1000")
    assert MatchPipeline.from_crawler(crawler).flood_limit == 2
    assert ImageHasher.from_crawler(crawler).max_pixels == 1000


def _loaded_packages(*args: str) -> set[str]:
    """Top-level packages ``python -X importtime ARGS`` imported (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    packages = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            packages.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "crawler" in packages or "hotline" in packages  # the output was read
    return packages


def test_settings_module_imports_nothing_heavy() -> None:
    assert _loaded_packages("-c", "import crawler.settings") & set(HEAVY) == set()


def test_cli_help_does_not_load_scrapy() -> None:
    assert _loaded_packages("-m", "hotline.cli", "--help") & {"scrapy", "scrapy_redis"} == set()
