"""Distributed crawls from the command line: ``hotline worker``, and what ``hotline crawl
--distributed`` does once it queued the run (wait for the workers, show progress, report)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from crawler.settings import WORKER_STOP_TIMEOUT
from hotline.cli.app import (
    AllowNetworkOption,
    AllowPrivateNetworksOption,
    JsonOption,
    VerboseOption,
    check_networks,
    err,
    load_config,
    open_session,
    out,
    stop_on_signals,
)
from hotline.cli.observe import (
    LogFormatOption,
    MetricsHostOption,
    MetricsPortOption,
    chosen_log_format,
    observed,
)
from hotline.cli.render import health_cell, records_table, summary_table
from hotline.errors import HotlineError
from hotline.metrics import DaemonMetrics
from hotline.services import Session
from store.frontier import Frontier
from store.options import CrawlOptions
from store.queue import HitRecord
from store.runs import ORIGIN_CLI, RunRecord

__all__ = ["crawl_distributed", "run_summary", "wait_for_run", "worker"]

#: Seconds between looks at a distributed run's record while waiting for it.
WAIT_POLL = 0.5
#: Seconds between progress lines when standard error is not a terminal.
PLAIN_PROGRESS_INTERVAL = 10.0


if TYPE_CHECKING:
    from hotline.worker import WorkerResult

logger = logging.getLogger("hotline.daemon")


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Crawl one distributed run (wait for one), then exit.")
    ] = False,
    allow_private_networks: AllowPrivateNetworksOption = False,
    allow_network: AllowNetworkOption = None,
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="NAME",
            help="This worker's name in the run records (default host:pid; unique).",
        ),
    ] = None,
    stop_timeout: Annotated[
        float,
        typer.Option(
            "--stop-timeout",
            metavar="SECONDS",
            min=0.0,
            help="On Ctrl-C or SIGTERM, wait this long for the requests in flight, then hand "
            "them back to the run and exit.",
        ),
    ] = WORKER_STOP_TIMEOUT,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    log_format: LogFormatOption = None,
    metrics_port: MetricsPortOption = 0,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Crawl distributed runs together with the other workers on this Redis.

    Waits for a run started with `hotline crawl --distributed` (or a schedule added with
    --distributed), crawls from its shared frontier until it is done, then waits for the
    next. Start any number, on any machine that reaches the Redis URL. Ctrl-C or SIGTERM
    stops it within --stop-timeout; the requests it was working on go back to the run. A
    worker that is killed loses nothing either: the others crawl its requests again after
    FRONTIER_LEASE (30 s); a request whose lease expired FRONTIER_MAX_ATTEMPTS (3) times is
    given up, listed by `hotline runs show` as a dead letter. The worker's own network
    policy applies to every run it crawls. With --once it exits 1
    when its share of the run ended otherwise (Redis failed, the run's options were unusable).
    """
    from hotline.worker import Worker, WorkerOptions  # noqa: PLC0415 - loads Scrapy

    fmt = chosen_log_format(log_format)
    config = load_config()
    check_networks(allow_network or [])
    options = WorkerOptions(
        allow_private_networks=allow_private_networks or config.allow_private_networks,
        allowed_networks=list(allow_network or []),
        once=once,
        stop_timeout=stop_timeout,
        log_level="INFO" if verbose or fmt == "json" else "WARNING",
        worker_id=worker_id or "",
        log_format=fmt,
    )
    with (
        open_session(config) as session,
        observed(
            "worker",
            session,
            log_format=fmt,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            logs=False,  # the worker logs through its crawls' handler (WorkerOptions)
        ) as metrics,
    ):
        daemon = Worker(session, options, err, on_result=_reporter(fmt, as_json, metrics))
        if metrics is not None:
            metrics.index_bytes.set_function(daemon.index_bytes)
            metrics.count_worker(daemon.crawled)
        if not as_json and fmt == "text":
            err.print(
                f"worker {daemon.id}: waiting for distributed runs"
                + (" (one run)" if once else " (Ctrl-C to stop)"),
                markup=False,
            )
        results = daemon.run()
    if as_json:
        out.print_json(data=[r.as_json() for r in results])
    if once and not all(r.ok for r in results):
        raise typer.Exit(1)


def _reporter(
    log_format: str, as_json: bool, metrics: DaemonMetrics | None
) -> Callable[[WorkerResult], None]:
    """What the worker does when its share of a run ends: count it, and say it (a line on
    standard error, or a log event in json)."""

    def report(result: WorkerResult) -> None:
        line = result.as_json()
        if metrics is not None:
            metrics.worker_runs.labels(result.reason).inc()
        if log_format == "json":
            logger.info(
                "run %s: %s", result.run_id, result.reason, extra={"event": "worker_run", **line}
            )
        elif not as_json:
            err.print(
                f"run {line['run']}: {line['reason']}; this worker crawled {line['pages']} "
                f"pages, {line['images']} images, {line['confirmed_new']} new hits"
                + (f", {line['reclaimed']} requests taken over" if line["reclaimed"] else ""),
                markup=False,
            )

    return report


# -- crawl --distributed -----------------------------------------------------------------


def _progress(record: RunRecord, workers: int, started: float) -> Text:
    s = record.stats
    return Text.assemble(
        (f"{record.status} ", "bold"),
        f"{time.monotonic() - started:6.1f}s  ",
        ("workers ", "dim"),
        f"{workers}  ",
        ("pages ", "dim"),
        f"{s.pages}  ",
        ("images ", "dim"),
        f"{s.images}  ",
        ("hits ", "dim"),
        (f"{s.confirmed}", "bold red" if s.confirmed else ""),
        "  ",
        ("review ", "dim"),
        f"{s.review}  ",
        ("errors ", "dim"),
        f"{s.error_count}",
    )


def wait_for_run(
    session: Session, run_id: str, *, show_progress: bool, stop: threading.Event
) -> RunRecord | None:
    """Follow a distributed run until it ended (its record), or None when ``stop`` was set."""
    store = session.runs()
    frontier = Frontier(session.client, session.keys, run_id)
    started = time.monotonic()
    warned = False
    live: Live | None = None
    if show_progress and err.is_terminal:
        live = Live(console=err, transient=True, auto_refresh=False)
        live.start()
    last_line = started
    try:
        while not stop.is_set():
            record = store.get(run_id)
            if record.ended:
                return record
            workers = len(frontier.in_flight())
            if not warned and workers == 0 and time.monotonic() - started > 5 * WAIT_POLL:
                warned = True
                err.print(
                    f"run {run_id}: no worker has joined yet; start `hotline worker`",
                    markup=False,
                )
            if live is not None:
                live.update(_progress(record, workers, started), refresh=True)
            elif show_progress and time.monotonic() - last_line >= PLAIN_PROGRESS_INTERVAL:
                last_line = time.monotonic()
                err.print(_progress(record, workers, started))
            stop.wait(WAIT_POLL)
    finally:
        if live is not None:
            live.stop()
    return None


def run_summary(record: RunRecord, hits: list[HitRecord], review: int) -> dict[str, Any]:
    s = record.stats
    return {
        "crawl": record.id,
        "distributed": True,
        "status": record.status,
        "finish_reason": record.reason,
        "seeds": len(record.seeds),
        "pages": s.pages,
        "images": s.images,
        "files": s.files,
        "hashed": s.hashed,
        "confirmed_new": len(hits),
        "review_new": review,
        "errors": s.error_count,
        "workers": len(record.workers),
        "elapsed_s": round(record.duration() or 0.0, 2),
        "health": sorted(record.health),
    }


def crawl_distributed(
    session: Session,
    seeds: list[str],
    options: CrawlOptions,
    *,
    detach: bool,
    as_json: bool,
    rejected: int,
) -> None:
    """Queue a distributed run for the workers; unless ``detach``, wait and report on it."""
    store = session.runs()
    # Ctrl-C stops the waiting from the moment the run exists (it is taken before the run is
    # created, so a signal that comes right after cannot skip the message below).
    with stop_on_signals() as stop:
        run_id = store.create(seeds=seeds, options=options, origin=ORIGIN_CLI, distributed=True)
        if detach:
            if as_json:
                out.print_json(data={"crawl": run_id, "status": "queued", "distributed": True})
            else:
                out.print(f"run {run_id} queued for the workers (`hotline runs show {run_id}`)")
            return
        if not as_json:
            err.print(f"run {run_id} queued for the workers; waiting (Ctrl-C stops waiting)")
        record = wait_for_run(session, run_id, show_progress=not as_json, stop=stop)
    if record is None:
        err.print(
            f"run {run_id} goes on without this command; `hotline runs cancel {run_id}` stops it",
            markup=False,
        )
        raise typer.Exit(130)
    queue = session.hits()
    hits = [r for r in queue.iter_records("confirmed") if r.crawl == run_id]
    review = sum(1 for r in queue.iter_records("review") if r.crawl == run_id)
    summary = run_summary(store.get(run_id), hits, review)
    summary["seeds_rejected"] = rejected
    if as_json:
        out.print_json(data=summary)
    else:
        _print_summary(summary, hits)
    if record.status != "finished":
        raise HotlineError(f"run {run_id} did not finish: {record.status} ({record.reason})")


def _print_summary(summary: Mapping[str, Any], hits: list[HitRecord]) -> None:
    rows = [
        ("status (reason)", f"{summary['status']} ({summary['finish_reason']})"),
        ("workers", summary["workers"]),
        ("seeds (rejected)", f"{summary['seeds']} ({summary['seeds_rejected']})"),
        ("pages crawled", summary["pages"]),
        ("images hashed", summary["hashed"]),
        ("files hashed (videos, archives, others)", summary["files"]),
        ("confirmed hits, new", summary["confirmed_new"]),
        ("review items, new", summary["review_new"]),
        ("request errors", summary["errors"]),
        ("elapsed", f"{summary['elapsed_s']} s"),
        ("health", health_cell(summary["health"])),
    ]
    out.print(summary_table(f"distributed run {summary['crawl']}", rows))
    if hits:
        out.print(records_table(hits, title="confirmed hits of this run"))
