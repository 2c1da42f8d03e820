"""Scheduled crawls on the command line.

``hotline schedule add NAME``     a crawl every DURATION or on a cron expression (UTC)
``hotline schedule list``         every schedule: trigger, next run, last run, paused
``hotline schedule pause|resume|remove NAME``
``hotline schedule run NAME``     start a run now, whatever the schedule's timing
``hotline scheduler``             the daemon that starts due runs (``--once``: one pass)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column

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
    load_config,
    open_session,
    out,
    parse_sets,
    read_seeds,
    report_seeds,
    stop_on_signals,
)
from hotline.cli.observe import (
    LogFormatOption,
    MetricsHostOption,
    MetricsPortOption,
    chosen_log_format,
    observed,
    say,
)
from hotline.cli.render import emit, json_or_empty, table, time_cell, when
from hotline.errors import UsageError
from hotline.scheduler import (
    RUN_LOG_DIR,
    CrawlLauncher,
    RunStarter,
    Scheduler,
    StartResult,
    StoreRunCreator,
    run_status,
    start_now,
)
from hotline.services import Session
from matchers.lists import validate_list_name
from store.clock import iso
from store.options import DEFAULT_HIT_DEPTH, CrawlOptions
from store.schedules import Schedule, parse_trigger, validate_schedule_name

__all__ = ["schedule_app", "scheduler"]

schedule_app = typer.Typer(
    help="Scheduled crawls: add, list, pause, resume, remove, or run one now.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]


def _networks(values: Iterable[str]) -> list[str]:
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise UsageError(f"--allow-network {value!r} is not a network ({exc})") from None
    return networks


# -- add -----------------------------------------------------------------------------------


@schedule_app.command("add")
def schedule_add(
    name: NameArgument,
    urls: Annotated[list[str] | None, typer.Argument(help="Seed URLs to crawl.")] = None,
    seeds: Annotated[
        Path | None,
        typer.Option("--seeds", help="File of URLs, one per line, # comments (read now)."),
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="Interval between runs, e.g. 6h, 1d.")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option("--cron", help='Cron expression in UTC, e.g. "0 */6 * * *".'),
    ] = None,
    depth: DepthOption = CRAWL_DEPTH,
    hit_depth: HitDepthOption = DEFAULT_HIT_DEPTH,
    max_pages: MaxPagesOption = CRAWL_MAX_PAGES_PER_SEED,
    allow_private_networks: AllowPrivateNetworksOption = False,
    allow_network: AllowNetworkOption = None,
    obey_robots: ObeyRobotsOption = False,
    lists: ListsOption = None,
    sets: SetsOption = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed", help="Have `hotline worker` processes crawl each run together."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a schedule: crawl these seeds every DURATION or on a cron expression (UTC).

    The seeds are read and checked now and stored as URLs; a later change to the file does
    not change the schedule. The first run is one interval from now (or the cron
    expression's next time); `hotline schedule run NAME` starts one at once.
    """
    config = load_config()
    validate_schedule_name(name)
    trigger = parse_trigger(every, cron, min_interval=config.schedule_min_interval())
    options = CrawlOptions(
        depth=depth,
        hit_depth=hit_depth,
        max_pages=max_pages,
        allow_private_networks=allow_private_networks,
        allowed_networks=tuple(_networks(allow_network or [])),
        obey_robots=obey_robots,
        lists=tuple(validate_list_name(x) for x in lists or []),
        overrides=parse_sets(sets or []),
        distributed=distributed,
    )
    seed_urls, problems = read_seeds(urls or [], seeds)
    report_seeds(seed_urls, problems, what="schedule")
    with open_session(config) as session:
        schedule = session.schedules().add(name, trigger, seed_urls, options)
    if as_json:
        out.print_json(data={**schedule.as_json(), "seeds_rejected": len(problems)})
        return
    out.print(
        f"schedule {name} added: {trigger.describe()}, {len(seed_urls)} seeds"
        + (f" ({len(problems)} rejected)" if problems else "")
        + f", next run {when(schedule.next_due)}",
        markup=False,
    )


# -- list ----------------------------------------------------------------------------------


@schedule_app.command("list")
def schedule_list(as_json: JsonOption = False) -> None:
    """List the schedules: trigger, next run (UTC), last run and its status, paused."""
    with open_session() as session:
        schedules = session.schedules().all()
        statuses = {s.name: _last_status(session, s) for s in schedules}
    data = [{**s.as_json(), "last_run_status": statuses[s.name]} for s in schedules]
    if json_or_empty(schedules, data, empty="no schedules", as_json=as_json):
        return
    columns = [
        Column("name", no_wrap=True),
        Column("trigger", no_wrap=True),
        Column("next run (UTC)", no_wrap=True),
        Column("last run", overflow="fold"),
        Column("status", overflow="fold"),
        Column("runs", justify="right"),
        Column("seeds", justify="right"),
        Column("paused", no_wrap=True),
    ]
    rows = [
        (
            s.name,
            s.trigger.describe(),
            "-" if s.paused else time_cell(s.next_due),
            s.last_run_id or "-",
            statuses[s.name] or "-",
            str(s.runs_started),
            str(len(s.seeds)),
            "yes" if s.paused else "no",
        )
        for s in schedules
    ]
    out.print(table("schedules", columns, rows))


def _last_status(session: Session, schedule: Schedule) -> str | None:
    if schedule.last_start_failed:
        return f"failed to start: {schedule.last_error}"
    if not schedule.last_run_id:
        return None
    return run_status(session, schedule.last_run_id) or "started"


# -- pause, resume, remove, run ------------------------------------------------------------


@schedule_app.command("pause")
def schedule_pause(name: NameArgument, as_json: JsonOption = False) -> None:
    """Stop starting runs for NAME until it is resumed."""
    with open_session() as session:
        schedule = session.schedules().pause(name)
    emit(schedule.as_json(), f"schedule {name} paused", as_json=as_json)


@schedule_app.command("resume")
def schedule_resume(name: NameArgument, as_json: JsonOption = False) -> None:
    """Start runs for NAME again, from its next time after now (missed runs are skipped)."""
    with open_session() as session:
        schedule = session.schedules().resume(name)
    emit(
        schedule.as_json(),
        f"schedule {name} active, next run {when(schedule.next_due)}",
        as_json=as_json,
    )


@schedule_app.command("remove")
def schedule_remove(name: NameArgument, as_json: JsonOption = False) -> None:
    """Delete NAME (runs already started are not touched)."""
    with open_session() as session:
        session.schedules().remove(name)
    emit({"name": name, "removed": True}, f"schedule {name} removed", as_json=as_json)


@schedule_app.command("run")
def schedule_run(name: NameArgument, as_json: JsonOption = False) -> None:
    """Start a run of NAME now (paused or not); its next scheduled run stays as it is."""
    config = load_config()
    with open_session(config) as session:
        store = session.schedules()
        store.get(name)  # an unknown name fails before anything else
        starter = RunStarter(StoreRunCreator(session), CrawlLauncher(config.data_dir / RUN_LOG_DIR))
        run_id = start_now(store, name, starter)
    emit(
        {"schedule": name, "run_id": run_id},
        f"schedule {name}: started run {run_id}",
        as_json=as_json,
    )


# -- the daemon ----------------------------------------------------------------------------


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Start what is due now, then exit.")] = False,
    as_json: JsonOption = False,
    log_format: LogFormatOption = None,
    metrics_port: MetricsPortOption = 0,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Start scheduled crawls when they are due, one run per due time.

    Runs until stopped (Ctrl-C or SIGTERM) unless --once is given. Any number of schedulers
    may run against one Redis: each due run is started by exactly one of them. A scheduler
    that was down starts a missed run once, not once per missed time.
    """
    fmt = chosen_log_format(log_format)
    config = load_config()
    with (
        open_session(config) as session,
        observed(
            "scheduler",
            session,
            log_format=fmt,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        ) as metrics,
    ):
        store = session.schedules()
        starter = RunStarter(StoreRunCreator(session), CrawlLauncher(config.data_dir / RUN_LOG_DIR))
        daemon = Scheduler(store, starter)
        say(
            fmt,
            f"{daemon.identity}: "
            + ("starting what is due" if once else "waiting for due schedules (Ctrl-C to stop)"),
            quiet=as_json,
        )

        def report(result: StartResult) -> None:
            if metrics is not None:
                metrics.scheduler_starts.labels("started" if result.ok else "failed").inc()
            say(fmt, _result_line(result), quiet=as_json, event="schedule_start")

        with stop_on_signals() as stop:
            stats = daemon.run(stop, once=once, on_result=report)
    emit(stats.as_dict(), f"started {stats.started}, failed {stats.failed}", as_json=as_json)
    if stats.failed:
        raise typer.Exit(1)


def _result_line(result: StartResult) -> str:
    if not result.ok:
        return f"schedule {result.name} ({iso(result.slot)}): not started: {result.error}"
    folded = f", standing in for {result.skipped} missed" if result.skipped else ""
    return f"schedule {result.name} ({iso(result.slot)}{folded}): started run {result.run_id}"
