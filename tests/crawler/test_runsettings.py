"""The crawl's Scrapy settings built from its options (crawler.runsettings): the options with
their overrides on top, for one process or a distributed worker; one base for crawls and
rechecks."""

from __future__ import annotations

from crawler.runsettings import build_settings, crawl_settings
from crawler.spiders.recheck import RECHECK_SETTINGS
from store.options import CrawlOptions

#: Options as `hotline crawl --depth 3 --max-pages 7 --allow-private-networks ...` gives them.
OPTIONS = CrawlOptions(
    depth=3,
    max_pages=7,
    allow_private_networks=True,
    allowed_networks=("10.1.0.0/16",),
    obey_robots=True,
    lists=("known",),
    overrides={"CRAWL_DEPTH": "9"},
)


def test_crawl_settings_are_the_options_with_their_overrides_on_top() -> None:
    options = OPTIONS
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
