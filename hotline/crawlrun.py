"""Running the hotline spider in-process, with live progress and a summary.

``hotline crawl`` and ``scrapy crawl hotline`` run the same spider with the same settings
module (:func:`crawler.runsettings.crawl_settings` turns the run's
:class:`~store.options.CrawlOptions` into them); this module only adds the analyst's view: a
live line of counts while the crawl runs, the figures at the end (:class:`CrawlResult`), and
the log handler the crawl and ``hotline worker`` write to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.text import Text
from scrapy import signals
from scrapy.crawler import CrawlerProcess
from twisted.internet.task import LoopingCall

from crawler.runsettings import crawl_settings
from crawler.spiders.hotline import HotlineSpider
from hotline.errors import HotlineError
from hotline.logs import formatter
from store.options import CrawlOptions
from store.runs import ORIGIN_CLI, new_run_id

PROGRESS_INTERVAL = 0.25  # seconds between redraws on a terminal
PLAIN_PROGRESS_INTERVAL = 10.0  # seconds between progress lines when not on a terminal


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

    def trap_templates(self) -> dict[str, int]:
        """Path templates cut as traps (``crawl/trap_template/<template>``), most pages first."""
        return self.counted("crawl/trap_template/")

    def counted(self, prefix: str) -> dict[str, int]:
        """The stats under ``prefix`` (what follows it: its count), largest first; zeros left
        out. ``crawl/hit_section/``: the sections (host and first path segment) with hits."""
        found = {k[len(prefix) :]: self.figure(k) for k in self.stats if k.startswith(prefix)}
        found = {name: count for name, count in found.items() if count > 0}
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    def summary(self) -> dict[str, Any]:
        errors = sum(v for k, v in self.stats.items() if k.startswith("crawl/errors/"))
        images = self.figure("crawl/images")
        return {
            "crawl": self.crawl_id,
            "finish_reason": self.reason,
            "seeds": self.figure("seeds/accepted"),
            "pages": self.figure("crawl/pages"),
            "images": images,
            "files": self.figure("crawl/files"),
            "hashed": self.figure("matcher/hashed"),
            "confirmed_new": self.figure("hits/new"),
            "confirmed_duplicate": self.figure("hits/duplicate"),
            "review_new": self.figure("review/new"),
            "review_duplicate": self.figure("review/duplicate"),
            "undecodable": self.figure("matcher/decode_error"),
            "refused_private": self.figure("safety/refused_private"),
            "errors": int(errors),
            "lists": self.figure("matcher/lists"),
            "pages_capped": self.figure("crawl/pages_capped"),
            "parse_timeouts": self.figure("crawl/parse_timeout"),
            "trap_pages_skipped": self.figure("crawl/trap_pages_skipped"),
            "trap_templates": self.trap_templates(),
            "hit_sections": self.counted("crawl/hit_section/"),
            "elapsed_s": round(self.elapsed, 2),
            "images_per_s": round(images / self.elapsed, 1) if self.elapsed > 0 else 0.0,
        }


def log_to(console: Console, level: str, log_format: str = "text") -> logging.Handler:
    """Send log records at ``level`` and above to ``console`` (rich on a terminal, one plain
    line each otherwise; one JSON object each with ``log_format="json"``, see
    :mod:`hotline.logs`); returns the handler, for the caller to remove."""
    handler: logging.Handler
    if console.is_terminal and log_format == "text":
        handler = RichHandler(console=console, show_path=False, markup=False)
    else:  # one line per record, for log files, scripts and log shippers
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(formatter(log_format))
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
        ("files ", "dim"),
        f"{n('crawl/files')}  ",
        ("hits ", "dim"),
        (f"{n('hits/new')}", "bold red" if n("hits/new") else ""),
        "  ",
        ("review ", "dim"),
        f"{n('review/new')}  ",
        ("errors ", "dim"),
        f"{errors}",
    )


def run_crawl(
    seeds: Sequence[str],
    options: CrawlOptions,
    console: Console,
    *,
    redis_url: str,
    key_prefix: str,
    log_level: str = "WARNING",
    show_progress: bool,
    run_id: str | None = None,
    origin: str = ORIGIN_CLI,
) -> CrawlResult:
    """Crawl ``seeds`` with ``options`` to the end in this process (a process can run one
    crawl: Twisted's reactor cannot be restarted), queueing hits in the Redis at ``redis_url``
    under ``key_prefix``. The crawl is run ``run_id`` (a run queued beforehand) or a new one,
    recorded with ``origin``."""
    crawl_id = run_id or new_run_id()
    settings = crawl_settings(
        options,
        crawl_id,
        redis_url=redis_url,
        key_prefix=key_prefix,
        log_level=log_level,
        origin=origin,
    )
    handler = log_to(console, log_level)
    root = logging.getLogger()
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(HotlineSpider)
    failures: list[str] = []
    started = time.monotonic()

    def stats_now() -> dict[str, Any]:
        return crawler.stats.get_stats() if crawler.stats is not None else {}

    deferred = process.crawl(crawler, urls=list(seeds), crawl_id=crawl_id)
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
