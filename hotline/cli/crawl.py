"""``hotline crawl`` (here, or queued for the workers with ``--distributed``, or a queued run
with ``--run``) and ``hotline demo``: start a crawl, wait for it, report what it found."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import redis
import typer

from hotline.cli.app import (
    CRAWL_DEPTH,
    CRAWL_MAX_PAGES_PER_SEED,
    AllowNetworkOption,
    AllowPrivateNetworksOption,
    DepthOption,
    HitDepthOption,
    JsonOption,
    ListsOption,
    MaxPagesOption,
    ObeyRobotsOption,
    SetsOption,
    VerboseOption,
    check_networks,
    err,
    load_config,
    open_session,
    out,
    parse_sets,
    read_seeds,
    report_seeds,
)
from hotline.cli.render import health_cell, records_table, summary_table
from hotline.cli.worker import crawl_distributed
from hotline.errors import HotlineError, InputError, UsageError
from matchers.lists import KNOWN
from store.addresses import parse_networks
from store.errors import RunNotFound, RunStateError
from store.options import DEFAULT_HIT_DEPTH, CrawlOptions
from store.queue import HitRecord
from store.runs import ORIGIN_CLI, REASON_CANCELLED, RunRecord

if TYPE_CHECKING:
    from hotline.config import Config
    from hotline.crawlrun import CrawlResult
    from hotline.services import Session

__all__ = ["crawl", "demo"]


# -- crawl ---------------------------------------------------------------------------------


def crawl(
    urls: Annotated[list[str] | None, typer.Argument(help="Reported URLs to crawl.")] = None,
    seeds: Annotated[
        Path | None, typer.Option("--seeds", help="File of URLs, one per line, # comments.")
    ] = None,
    depth: DepthOption = CRAWL_DEPTH,
    hit_depth: HitDepthOption = DEFAULT_HIT_DEPTH,
    max_pages: MaxPagesOption = CRAWL_MAX_PAGES_PER_SEED,
    allow_private_networks: AllowPrivateNetworksOption = False,
    allow_network: AllowNetworkOption = None,
    obey_robots: ObeyRobotsOption = False,
    lists: ListsOption = None,
    sets: SetsOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="ID",
            help="Crawl this queued run, with the seeds and options of its record "
            "(how schedules start runs; see `hotline runs`).",
        ),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Queue the run for `hotline worker` processes (any number, on any machine "
            "that reaches Redis) instead of crawling here; wait for it and report.",
        ),
    ] = False,
    detach: Annotated[
        bool,
        typer.Option("--detach", help="With --distributed: queue the run and return at once."),
    ] = False,
) -> None:
    """Crawl reported URLs and queue every image that matches a known list."""
    config = load_config()
    log_level = "INFO" if verbose else "WARNING"
    if detach and not distributed:
        raise UsageError("--detach goes with --distributed")
    if run_id is not None:
        if urls or seeds or distributed:
            raise UsageError(
                "--run crawls the run's own seeds: give no URLs, --seeds or --distributed"
            )
        with open_session(config) as session:
            _crawl_run(session, config, run_id, log_level=log_level, as_json=as_json)
        return
    seed_urls, problems = read_seeds(urls or [], seeds)
    check_networks(allow_network or [])
    report_seeds(seed_urls, problems, what="crawl")
    options = CrawlOptions(
        depth=depth,
        hit_depth=hit_depth,
        max_pages=max_pages,
        allow_private_networks=allow_private_networks or config.allow_private_networks,
        allowed_networks=tuple(allow_network or ()),
        obey_robots=obey_robots,
        lists=tuple(lists or ()),
        overrides=parse_sets(sets or []),
        distributed=distributed,
    )
    with open_session(config) as session:
        if distributed:
            _warn_without_lists(session)
            crawl_distributed(
                session,
                seed_urls,
                options,
                detach=detach,
                as_json=as_json,
                rejected=len(problems),
            )
            return
        _run_and_report(
            session,
            config,
            seed_urls,
            options,
            log_level=log_level,
            as_json=as_json,
            rejected=len(problems),
        )


def _crawl_run(
    session: Session, config: Config, run_id: str, *, log_level: str, as_json: bool
) -> None:
    """``hotline crawl --run ID``: crawl a queued run with its recorded seeds and options."""
    store = session.runs()
    try:
        record = store.get(run_id)
    except RunNotFound as exc:
        raise UsageError(str(exc)) from None
    if record.status != "queued":
        raise _not_queued(record.id, record.status)
    if record.distributed:
        raise UsageError(f"run {record.id} is distributed: `hotline worker` crawls it")
    try:
        try:
            recorded = record.crawl_options()
        except ValueError as exc:
            raise HotlineError(f"run options: {exc}") from None
        # The configuration may open private networks; it never closes what the run opened.
        options = dataclasses.replace(
            recorded,
            allow_private_networks=recorded.allow_private_networks or config.allow_private_networks,
        )
        parse_networks(list(options.allowed_networks))
        if not record.seeds:
            raise HotlineError("it has no seeds")
    except (HotlineError, ValueError) as exc:
        reason = f"run {record.id} cannot be crawled: {exc}"
        with contextlib.suppress(RunStateError):  # cancelled meanwhile
            store.finish(record.id, "failed", "bad_run_options", record.stats)
        raise InputError(reason) from None
    _run_and_report(
        session,
        config,
        record.seeds,
        options,
        log_level=log_level,
        as_json=as_json,
        rejected=0,
        run=record,
    )


def _not_queued(run_id: str, status: str) -> UsageError:
    return UsageError(f"run {run_id} is {status}, not queued: nothing to crawl")


def _warn_without_lists(session: Session) -> None:
    if not any(i.kind == KNOWN for i in session.lists().info()):
        err.print(
            "warning: no known-hash list is loaded, nothing can match "
            "(import one with `hotline hashes import`)"
        )


def _run_and_report(
    session: Session,
    config: Config,
    seeds: list[str],
    options: CrawlOptions,
    *,
    log_level: str,
    as_json: bool,
    rejected: int,
    run: RunRecord | None = None,
) -> None:
    from crawler.extensions import RUN_NOT_STARTABLE  # noqa: PLC0415 - loads Scrapy
    from hotline.crawlrun import run_crawl  # noqa: PLC0415 - loads Scrapy

    _warn_without_lists(session)
    result = run_crawl(
        seeds,
        options,
        err,
        redis_url=session.url,
        key_prefix=config.key_prefix,
        log_level=log_level,
        show_progress=not as_json,
        run_id=None if run is None else run.id,
        origin=ORIGIN_CLI if run is None else run.origin,
    )
    if run is not None and result.reason in (RUN_NOT_STARTABLE, REASON_CANCELLED):
        # Between our check and our start, another crawl of the run started it (a
        # scheduler's launch repeated after a crash) or an analyst cancelled it: the same
        # refusal as the check's, nothing crawled. A run cancelled once started is reported.
        now = session.runs().get(run.id)
        if result.reason == RUN_NOT_STARTABLE or now.started is None:
            raise _not_queued(run.id, now.status)
    health: Mapping[str, str] = {}
    # No record with CRAWLRECORD_ENABLED=0; no Redis after it failed the crawl (queue_failed).
    with contextlib.suppress(RunNotFound, redis.RedisError):
        health = session.runs().get(result.crawl_id).health
    if not result.ok:
        _print_crawl_result(result, [], as_json=as_json, rejected=rejected, health=health)
        raise HotlineError(f"crawl {result.crawl_id} did not finish: {result.reason}")
    hits = [r for r in session.hits().iter_records("confirmed") if r.crawl == result.crawl_id]
    _print_crawl_result(result, hits, as_json=as_json, rejected=rejected, health=health)


def _print_crawl_result(
    result: CrawlResult,
    hits: list[HitRecord],
    *,
    as_json: bool,
    rejected: int,
    health: Mapping[str, str] | None = None,
) -> None:
    summary = result.summary()
    summary["seeds_rejected"] = rejected
    summary["health"] = sorted(health or {})
    if as_json:
        out.print_json(data=summary)
        return
    rows = [
        ("finish reason", summary["finish_reason"]),
        ("seeds (rejected)", f"{summary['seeds']} ({rejected})"),
        ("pages crawled", summary["pages"]),
        ("images hashed", summary["hashed"]),
        ("files hashed (videos, archives, others)", summary["files"]),
        ("confirmed hits, new", summary["confirmed_new"]),
        ("confirmed hits, already queued", summary["confirmed_duplicate"]),
        ("review items, new", summary["review_new"]),
        ("undecodable images", summary["undecodable"]),
        ("refused private addresses", summary["refused_private"]),
        ("request errors", summary["errors"]),
        ("trap pages skipped", _top_cell(summary["trap_pages_skipped"], summary["trap_templates"])),
        (
            "confirmed hits by section",
            _top_cell(sum(summary["hit_sections"].values()), summary["hit_sections"]),
        ),
        ("elapsed", f"{summary['elapsed_s']} s"),
        ("images per second", summary["images_per_s"]),
        ("health", health_cell(summary["health"])),
    ]
    out.print(summary_table(f"crawl {result.crawl_id}", rows))
    if hits:
        out.print(records_table(hits, title="confirmed hits of this crawl"))


def _top_cell(total: int, counts: Mapping[str, int]) -> str:
    """A total and the three largest of its parts (``10: a (6), b (3), c (1)``)."""
    top = ", ".join(f"{name} ({n})" for name, n in list(counts.items())[:3])
    return f"{total}" + (f": {top}" if top else "")


def demo(as_json: JsonOption = False) -> None:
    """Crawl a generated benign demo site on 127.0.0.2 and print what matched its known list."""
    from hotline.demo import run_demo  # noqa: PLC0415 - loads Scrapy

    result, hits, expected, notices = run_demo(load_config(), err, show_progress=not as_json)
    found = {(r.url, r.entry) for r in hits}
    missed = sorted(url for url, entry in expected.items() if (url, entry) not in found)
    if as_json:
        out.print_json(
            data={
                "summary": result.summary(),
                "hits": [r.as_json() for r in hits],
                "missed": missed,
                "notices": {**notices.stats.as_dict(), "outbox": str(notices.outbox)},
            }
        )
    else:
        _print_crawl_result(result, hits, as_json=False, rejected=0)
        out.print(
            f"{len(expected) - len(missed)} of {len(expected)} planted copies of known "
            "images found" + (f"; missed: {', '.join(missed)}" if missed else "")
        )
        out.print(
            f"takedown notices: {len(notices.stats.awaiting_manual)} written to "
            f"{notices.outbox} (one .eml and one .json each, to send by hand; "
            f"{notices.stats.already_sent} already written before)",
            markup=False,
        )
    if not result.ok or missed:
        raise typer.Exit(1)
