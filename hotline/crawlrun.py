"""Running the hotline spider in-process, with live progress and a summary.

``hotline crawl`` and ``scrapy crawl hotline`` run the same spider with the same settings
module; this module only adds the analyst's view: a live line of counts while the crawl runs
and the figures at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from twisted.internet.task import LoopingCall

from crawler.settings import CRAWL_DEPTH, CRAWL_MAX_PAGES_PER_SEED
from crawler.spiders.hotline import HotlineSpider
from hotline.errors import HotlineError
from store.runs import ORIGIN_CLI, new_run_id

#: The frontier's spider middleware is the outermost: it sees all a callback yields.
FRONTIER_MIDDLEWARE_ORDER = 10
PROGRESS_INTERVAL = 0.25  # seconds between redraws on a terminal
PLAIN_PROGRESS_INTERVAL = 10.0  # seconds between progress lines when not on a terminal
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class CrawlOptions:
    seeds: list[str]
    redis_url: str
    key_prefix: str
    depth: int
    max_pages: int
    allow_private_networks: bool
    allowed_networks: list[str] = field(default_factory=list)
    obey_robots: bool = False
    lists: list[str] = field(default_factory=list)
    overrides: Mapping[str, str] = field(default_factory=dict)
    log_level: str = "WARNING"
    distributed: bool = False  # crawled by `hotline worker` processes, not in this one

    def record_options(self) -> dict[str, Any]:
        """The options a run records (and ``hotline crawl --run`` reads back)."""
        return {
            "depth": self.depth,
            "max_pages": self.max_pages,
            "allow_private_networks": self.allow_private_networks,
            "allowed_networks": list(self.allowed_networks),
            "obey_robots": self.obey_robots,
            "lists": list(self.lists),
            "overrides": dict(self.overrides),
            "distributed": self.distributed,
        }

    @classmethod
    def from_run(
        cls,
        seeds: list[str],
        recorded: Mapping[str, Any],
        *,
        redis_url: str,
        key_prefix: str,
        allow_private_networks: bool = False,
        log_level: str = "WARNING",
    ) -> CrawlOptions:
        """The options of a queued run: ``recorded`` holds :meth:`record_options` keys (any
        may be missing: the defaults apply); ``allow_private_networks`` adds to the record's."""
        unknown = sorted(set(recorded) - set(RUN_OPTION_DEFAULTS))
        if unknown:
            raise HotlineError(f"run options: unknown {', '.join(unknown)}")
        values = {**RUN_OPTION_DEFAULTS, **recorded}
        try:
            return cls(
                seeds=list(seeds),
                redis_url=redis_url,
                key_prefix=key_prefix,
                depth=int(values["depth"]),
                max_pages=int(values["max_pages"]),
                allow_private_networks=bool(values["allow_private_networks"])
                or allow_private_networks,
                allowed_networks=[str(n) for n in values["allowed_networks"]],
                obey_robots=bool(values["obey_robots"]),
                lists=[str(n) for n in values["lists"]],
                overrides={str(k): str(v) for k, v in dict(values["overrides"]).items()},
                log_level=log_level,
                distributed=bool(values["distributed"]),
            )
        except (TypeError, ValueError) as exc:
            raise HotlineError(f"run options: {exc}") from None


#: The crawl options a run records, with the values a missing one takes.
RUN_OPTION_DEFAULTS: Mapping[str, Any] = {
    "depth": CRAWL_DEPTH,
    "max_pages": CRAWL_MAX_PAGES_PER_SEED,
    "allow_private_networks": False,
    "allowed_networks": [],
    "obey_robots": False,
    "lists": [],
    "overrides": {},
    "distributed": False,
}


@dataclass
class CrawlResult:
    crawl_id: str
    reason: str
    stats: dict[str, Any]
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.reason == "finished"

    def figure(self, key: str) -> int:
        value = self.stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    def summary(self) -> dict[str, Any]:
        errors = sum(v for k, v in self.stats.items() if k.startswith("crawl/errors/"))
        images = self.figure("crawl/images")
        return {
            "crawl": self.crawl_id,
            "finish_reason": self.reason,
            "seeds": self.figure("seeds/accepted"),
            "pages": self.figure("crawl/pages"),
            "images": images,
            "hashed": self.figure("matcher/hashed"),
            "confirmed_new": self.figure("hits/new"),
            "confirmed_duplicate": self.figure("hits/duplicate"),
            "review_new": self.figure("review/new"),
            "review_duplicate": self.figure("review/duplicate"),
            "undecodable": self.figure("matcher/decode_error"),
            "refused_private": self.figure("safety/refused_private"),
            "errors": int(errors),
            "lists": self.figure("matcher/lists"),
            "elapsed_s": round(self.elapsed, 2),
            "images_per_s": round(images / self.elapsed, 1) if self.elapsed > 0 else 0.0,
        }


def build_settings(
    options: CrawlOptions, crawl_id: str, *, origin: str = ORIGIN_CLI, worker: str | None = None
) -> Settings:
    """The Scrapy settings of one crawl; ``worker``: this process is that worker of the
    distributed run ``crawl_id`` (its scheduler is the run's shared frontier)."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("CRAWL_ID", crawl_id, priority="cmdline")
    settings.set("CRAWLRECORD_ORIGIN", origin, priority="cmdline")
    settings.set("CRAWLRECORD_OPTIONS", options.record_options(), priority="cmdline")
    settings.set("CRAWL_DEPTH", options.depth, priority="cmdline")
    settings.set("CRAWL_MAX_PAGES_PER_SEED", options.max_pages, priority="cmdline")
    settings.set("STORE_REDIS_URL", options.redis_url, priority="cmdline")
    settings.set("STORE_KEY_PREFIX", options.key_prefix, priority="cmdline")
    settings.set(
        "SAFETY_ALLOW_PRIVATE_NETWORKS", options.allow_private_networks, priority="cmdline"
    )
    settings.set("SAFETY_ALLOWED_NETWORKS", options.allowed_networks, priority="cmdline")
    settings.set("ROBOTSTXT_OBEY", options.obey_robots, priority="cmdline")
    settings.set("LOG_LEVEL", options.log_level, priority="cmdline")
    if options.lists:
        settings.set("MATCHER_LISTS", options.lists, priority="cmdline")
    for key, value in options.overrides.items():
        settings.set(key, value, priority="cmdline")
    if worker is not None:  # after the overrides: a worker needs these to take part
        settings.set("SCHEDULER", "crawler.frontier.FrontierScheduler", priority="cmdline")
        middlewares = settings.getdict("SPIDER_MIDDLEWARES")
        middlewares["crawler.frontier.FrontierMiddleware"] = FRONTIER_MIDDLEWARE_ORDER
        settings.set("SPIDER_MIDDLEWARES", middlewares, priority="cmdline")
        settings.set("FRONTIER_ENABLED", True, priority="cmdline")
        settings.set("FRONTIER_WORKER", worker, priority="cmdline")
        settings.set("CRAWLRECORD_ENABLED", True, priority="cmdline")  # it joins the run
    return settings


def log_to(console: Console, level: str) -> logging.Handler:
    """Send log records at ``level`` and above to ``console`` (rich on a terminal, one plain
    line each otherwise); returns the handler, for the caller to remove."""
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(console=console, show_path=False, markup=False)
    else:  # one plain line per record, for log files and scripts
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def _progress_text(stats: Mapping[str, Any], started: float) -> Text:
    def n(key: str) -> int:
        value = stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    errors = sum(int(v) for k, v in stats.items() if k.startswith("crawl/errors/"))
    return Text.assemble(
        ("crawling ", "bold"),
        f"{time.monotonic() - started:6.1f}s  ",
        ("pages ", "dim"),
        f"{n('crawl/pages')}  ",
        ("images ", "dim"),
        f"{n('crawl/images')}  ",
        ("hits ", "dim"),
        (f"{n('hits/new')}", "bold red" if n("hits/new") else ""),
        "  ",
        ("review ", "dim"),
        f"{n('review/new')}  ",
        ("errors ", "dim"),
        f"{errors}",
    )


def run_crawl(
    options: CrawlOptions,
    console: Console,
    *,
    show_progress: bool,
    run_id: str | None = None,
    origin: str = ORIGIN_CLI,
) -> CrawlResult:
    """Run one crawl to its end in this process (a process can run one crawl: Twisted's
    reactor cannot be restarted). The crawl is run ``run_id`` (a run queued beforehand) or a
    new one, recorded with ``origin``."""
    crawl_id = run_id or new_run_id()
    settings = build_settings(options, crawl_id, origin=origin)
    handler = log_to(console, options.log_level)
    root = logging.getLogger()
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(HotlineSpider)
    failures: list[str] = []
    started = time.monotonic()

    def stats_now() -> dict[str, Any]:
        return crawler.stats.get_stats() if crawler.stats is not None else {}

    deferred = process.crawl(crawler, urls=options.seeds, crawl_id=crawl_id)
    deferred.addErrback(lambda failure: failures.append(failure.getErrorMessage()))

    live: Live | None = None
    if show_progress and console.is_terminal:
        live = Live(
            get_renderable=lambda: _progress_text(stats_now(), started),
            console=console,
            refresh_per_second=1 / PROGRESS_INTERVAL,
            transient=True,
        )
    elif show_progress:
        ticker = LoopingCall(lambda: console.print(_progress_text(stats_now(), started)))
        ticker.start(PLAIN_PROGRESS_INTERVAL, now=False)

        def _stop_ticker() -> None:
            if ticker.running:
                ticker.stop()

        crawler.signals.connect(_stop_ticker, signal=signals.engine_stopped)
    try:
        if live is not None:
            with live:
                process.start()
        else:
            process.start()
    finally:
        root.removeHandler(handler)
    stats = stats_now()
    reason = str(stats.get("finish_reason", "failed"))
    if failures:
        raise HotlineError(f"crawl failed: {failures[0]}")
    return CrawlResult(crawl_id, reason, stats, time.monotonic() - started)
