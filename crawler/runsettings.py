"""The Scrapy settings of one run, crawl or recheck, built in one place.

Every run starts from the project settings (the module :mod:`crawler.settings`, as
``scrapy crawl`` reads them), takes what its kind changes on top (``base``: a recheck's
:data:`crawler.spiders.recheck.RECHECK_SETTINGS`), then the caller's overrides:
:func:`build_settings`. A crawl's overrides come from its :class:`~store.options.CrawlOptions`
(:func:`crawl_settings`): the options themselves, the run it records and, for a worker of a
distributed run, the shared frontier (:mod:`crawler.frontier`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from scrapy.settings import Settings

from store.options import CrawlOptions
from store.runs import ORIGIN_CLI

__all__ = ["FRONTIER_MIDDLEWARE_ORDER", "build_settings", "crawl_settings"]

#: The frontier's spider middleware is the outermost: it sees all a callback yields.
FRONTIER_MIDDLEWARE_ORDER: Final = 10
#: The module of the project settings (``scrapy.cfg`` names it too).
SETTINGS_MODULE: Final = "crawler.settings"


def build_settings(
    overrides: Mapping[str, Any] | None = None, *, base: Mapping[str, Any] | None = None
) -> Settings:
    """The project settings, ``base`` on top of them (project priority), then ``overrides``
    (command-line priority, as ``scrapy crawl -s NAME=VALUE``)."""
    settings = Settings()
    settings.setmodule(SETTINGS_MODULE, priority="project")
    for key, value in (base or {}).items():
        settings.set(key, value, priority="project")
    for key, value in (overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    return settings


def crawl_settings(
    options: CrawlOptions,
    crawl_id: str,
    *,
    redis_url: str,
    key_prefix: str,
    log_level: str,
    origin: str = ORIGIN_CLI,
    worker: str | None = None,
) -> Settings:
    """The Scrapy settings of the crawl ``crawl_id`` with ``options`` (their ``overrides``
    win over the options' own settings); ``worker``: this process is that worker of the
    distributed run ``crawl_id`` (its scheduler is the run's shared frontier)."""
    overrides: dict[str, Any] = {
        "CRAWL_ID": crawl_id,
        "CRAWLRECORD_ORIGIN": origin,
        "CRAWLRECORD_OPTIONS": options.as_dict(),
        "CRAWL_DEPTH": options.depth,
        "CRAWL_HIT_DEPTH": options.hit_depth,
        "CRAWL_MAX_PAGES_PER_SEED": options.max_pages,
        "STORE_REDIS_URL": redis_url,
        "STORE_KEY_PREFIX": key_prefix,
        "SAFETY_ALLOW_PRIVATE_NETWORKS": options.allow_private_networks,
        "SAFETY_ALLOWED_NETWORKS": list(options.allowed_networks),
        "ROBOTSTXT_OBEY": options.obey_robots,
        "LOG_LEVEL": log_level,
    }
    if options.lists:
        overrides["MATCHER_LISTS"] = list(options.lists)
    settings = build_settings({**overrides, **options.overrides})
    if worker is not None:  # after the overrides: a worker needs these to take part
        settings.set("SCHEDULER", "crawler.frontier.FrontierScheduler", priority="cmdline")
        middlewares = settings.getdict("SPIDER_MIDDLEWARES")
        middlewares["crawler.frontier.FrontierMiddleware"] = FRONTIER_MIDDLEWARE_ORDER
        settings.set("SPIDER_MIDDLEWARES", middlewares, priority="cmdline")
        settings.set("FRONTIER_ENABLED", True, priority="cmdline")
        settings.set("FRONTIER_WORKER", worker, priority="cmdline")
        settings.set("CRAWLRECORD_ENABLED", True, priority="cmdline")  # it joins the run
    return settings
