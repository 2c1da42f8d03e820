"""The analyst's command line: ``hotline crawl``, ``hits``, ``review``, ``demo``; with the
``hashes`` commands (:mod:`hotline.cli_hashes`), ``runs`` (:mod:`hotline.cli_runs`),
``schedule`` and ``scheduler`` (:mod:`hotline.cli_schedule`) and notice and takedown —
``notifier``, ``recheck``, ``providers``, ``notices``, ``stats`` (:mod:`hotline.cli_takedown`).

Every command explains itself (``--help``), prints tables for people and JSON for scripts
(``--json``), and fails with one line on standard error and a non-zero exit code:
2 for bad input, 3 when Redis cannot be reached, 1 for a crawl that did not finish.
No command ever shows an image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import redis
import typer
from rich.table import Table

from crawler.settings import CRAWL_DEPTH, CRAWL_MAX_PAGES_PER_SEED
from hotline import cli_schedule, cli_takedown, cli_worker
from hotline.cli_hashes import hashes_app
from hotline.cli_runs import runs_app
from hotline.cliapp import JsonOption, app, err, load_config, out, parse_sets
from hotline.errors import HotlineError, InputError, ServiceError, UsageError
from hotline.services import redis_session
from matchers.errors import MatcherError
from matchers.lists import KNOWN
from store.errors import RunNotFound, RunStateError, ScheduleError, StoreError
from store.lists import ListStore
from store.options import CrawlOptions
from store.queue import HitQueue, HitRecord
from store.runs import ORIGIN_CLI, RunRecord, RunStore
from takedown.errors import DirectoryError, NoticeError, TakedownError
from takedown.notices import NoticeNotFound
from takedown.settings import SettingsError

if TYPE_CHECKING:
    from hotline.config import Config
    from hotline.crawlrun import CrawlResult
    from hotline.services import Session

hits_app = typer.Typer(help="Confirmed hits queued for notice and takedown.", no_args_is_help=True)
review_app = typer.Typer(help="Near misses queued for an analyst's review.", no_args_is_help=True)

_config = load_config


# -- crawl ---------------------------------------------------------------------------------


@app.command()
def crawl(
    urls: Annotated[list[str] | None, typer.Argument(help="Reported URLs to crawl.")] = None,
    seeds: Annotated[
        Path | None, typer.Option("--seeds", help="File of URLs, one per line, # comments.")
    ] = None,
    depth: Annotated[
        int, typer.Option(min=0, help="Link depth to follow within each seed's site.")
    ] = CRAWL_DEPTH,
    max_pages: Annotated[
        int, typer.Option(min=1, help="Page cap per seed.")
    ] = CRAWL_MAX_PAGES_PER_SEED,
    allow_private_networks: Annotated[
        bool,
        typer.Option(
            help="Let the crawl reach private, loopback and link-local addresses "
            "(tests, demos). Also HOTLINE_ALLOW_PRIVATE_NETWORKS=1."
        ),
    ] = False,
    allow_network: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-network",
            help="A private network (CIDR) the crawl may reach, e.g. a lab (repeatable).",
        ),
    ] = None,
    obey_robots: Annotated[bool, typer.Option(help="Obey robots.txt (off by default).")] = False,
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="Match only these lists (repeatable).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a Scrapy setting, NAME=VALUE (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each request.")] = False,
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
    # Scrapy is imported by the commands that crawl, so the others start without it.
    from crawler.safety import parse_networks  # noqa: PLC0415
    from crawler.seeds import SeedFileError, collect_seeds  # noqa: PLC0415

    config = _config()
    log_level = "INFO" if verbose else "WARNING"
    if detach and not distributed:
        raise UsageError("--detach goes with --distributed")
    if run_id is not None:
        if urls or seeds or distributed:
            raise UsageError(
                "--run crawls the run's own seeds: give no URLs, --seeds or --distributed"
            )
        with redis_session(config) as session:
            _crawl_run(session, config, run_id, log_level=log_level, as_json=as_json)
        return
    try:
        good, problems = collect_seeds(urls or [], [seeds] if seeds else [])
    except SeedFileError as exc:
        raise InputError(str(exc)) from None
    try:
        parse_networks(allow_network or [])
    except ValueError as exc:
        raise UsageError(str(exc).replace("SAFETY_ALLOWED_NETWORKS", "--allow-network")) from None
    for problem in problems:
        err.print(f"skipped seed {problem}")
    if not good:
        raise UsageError("no valid seed URL to crawl (give URLs or --seeds FILE)")
    seed_urls = [s.url for s in good]
    options = CrawlOptions(
        depth=depth,
        max_pages=max_pages,
        allow_private_networks=allow_private_networks or config.allow_private_networks,
        allowed_networks=tuple(allow_network or ()),
        obey_robots=obey_robots,
        lists=tuple(lists or ()),
        overrides=parse_sets(sets or []),
        distributed=distributed,
    )
    with redis_session(config) as session:
        if distributed:
            _warn_without_lists(session)
            cli_worker.crawl_distributed(
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
    from crawler.safety import parse_networks  # noqa: PLC0415

    store = RunStore(session.client, session.keys)
    try:
        record = store.get(run_id)
    except RunNotFound as exc:
        raise UsageError(str(exc)) from None
    if record.status != "queued":
        raise UsageError(f"run {record.id} is {record.status}, not queued: nothing to crawl")
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


def _warn_without_lists(session: Session) -> None:
    if not any(i.kind == KNOWN for i in ListStore(session.client, session.keys).info()):
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
    from hotline.crawlrun import run_crawl  # noqa: PLC0415

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
    health: Mapping[str, str] = {}
    # No record with CRAWLRECORD_ENABLED=0; no Redis after it failed the crawl (queue_failed).
    with contextlib.suppress(RunNotFound, redis.RedisError):
        health = RunStore(session.client, session.keys).get(result.crawl_id).health
    if not result.ok:
        _print_crawl_result(result, [], as_json=as_json, rejected=rejected, health=health)
        raise HotlineError(f"crawl {result.crawl_id} did not finish: {result.reason}")
    hits = [
        r
        for r in HitQueue(session.client, session.keys).iter_records("confirmed")
        if r.crawl == result.crawl_id
    ]
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
    table = Table(title=f"crawl {result.crawl_id}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("finish reason", summary["finish_reason"]),
        ("seeds (rejected)", f"{summary['seeds']} ({rejected})"),
        ("pages crawled", summary["pages"]),
        ("images hashed", summary["hashed"]),
        ("confirmed hits, new", summary["confirmed_new"]),
        ("confirmed hits, already queued", summary["confirmed_duplicate"]),
        ("review items, new", summary["review_new"]),
        ("undecodable images", summary["undecodable"]),
        ("refused private addresses", summary["refused_private"]),
        ("request errors", summary["errors"]),
        ("elapsed", f"{summary['elapsed_s']} s"),
        ("images per second", summary["images_per_s"]),
        ("health", ", ".join(summary["health"]) or "ok"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    out.print(table)
    if hits:
        out.print(records_table(hits, title="confirmed hits of this crawl"))


@app.command()
def demo(as_json: JsonOption = False) -> None:
    """Crawl a generated benign demo site on 127.0.0.2 and print what matched its known list."""
    from hotline.demo import run_demo  # noqa: PLC0415 - loads Scrapy

    result, hits, expected, notices = run_demo(_config(), err, show_progress=not as_json)
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
            f"takedown notices: {notices.stats.sent} written to {notices.outbox} "
            f"(one .eml and one .json each; {notices.stats.already_sent} already sent before)",
            markup=False,
        )
    if not result.ok or missed:
        raise typer.Exit(1)


# -- hits and review -----------------------------------------------------------------------


def records_table(records: list[HitRecord], *, title: str) -> Table:
    table = Table(title=title)
    table.add_column("image URL", overflow="fold", ratio=3)
    table.add_column("found on page", overflow="fold", ratio=2)
    table.add_column("list/entry", overflow="fold")
    table.add_column("match", no_wrap=True)
    table.add_column("first seen (UTC)", no_wrap=True)
    for r in records:
        table.add_row(
            r.url,
            r.page,
            f"{r.list}/{r.entry}",
            f"{r.algorithm} {r.distance}",
            r.first_seen.replace("T", " ")[:16],
        )
    return table


def _list_records(
    verdict: str, *, as_json: bool, crawl_id: str | None, limit: int | None, title: str
) -> None:
    with redis_session(_config()) as session:
        records = [
            r
            for r in HitQueue(session.client, session.keys).iter_records(verdict)
            if crawl_id is None or r.crawl == crawl_id
        ]
    if limit is not None:
        records = records[-limit:]
    if as_json:
        out.print_json(data=[r.as_json() for r in records])
        return
    if not records:
        out.print(f"no {title}")
        return
    out.print(records_table(records, title=title))


CrawlFilter = Annotated[str | None, typer.Option("--crawl", help="Only this crawl's records.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the newest N records.")]


@hits_app.command("list")
def hits_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List confirmed hits, oldest first."""
    _list_records(
        "confirmed", as_json=as_json, crawl_id=crawl_id, limit=limit, title="confirmed hits"
    )


@review_app.command("list")
def review_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List near misses waiting for an analyst, oldest first."""
    _list_records("review", as_json=as_json, crawl_id=crawl_id, limit=limit, title="review items")


# -- registration, in the order --help lists them -----------------------------------------

app.add_typer(hashes_app, name="hashes")
app.add_typer(hits_app, name="hits")
app.add_typer(review_app, name="review")
app.add_typer(runs_app, name="runs")
app.add_typer(cli_schedule.schedule_app, name="schedule")
app.command()(cli_schedule.scheduler)
app.command()(cli_worker.worker)
app.command()(cli_takedown.notifier)
app.command()(cli_takedown.recheck)
app.add_typer(cli_takedown.providers_app, name="providers")
app.add_typer(cli_takedown.notices_app, name="notices")
app.command()(cli_takedown.stats)


# -- entry point ---------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    err.print(f"error: {message}", markup=False)
    return code


def main(argv: list[str] | None = None) -> None:
    """Console script ``hotline``: run the app, map errors to one line and an exit code."""
    code: Any = 0
    try:
        # Standalone mode: usage errors print themselves and exit 2, --help exits 0.
        app(args=argv)
    except HotlineError as exc:
        code = _fail(str(exc), exc.exit_code)
    except MatcherError as exc:
        code = _fail(str(exc), InputError.exit_code)
    except (SettingsError, DirectoryError, NoticeError, NoticeNotFound, ScheduleError) as exc:
        code = _fail(str(exc), InputError.exit_code)  # the configuration or the input is wrong
    except (TakedownError, StoreError) as exc:
        code = _fail(str(exc), ServiceError.exit_code)
    except redis.RedisError as exc:  # Redis went away in the middle of a command
        code = _fail(f"Redis failed: {' '.join(str(exc).split())}", ServiceError.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
