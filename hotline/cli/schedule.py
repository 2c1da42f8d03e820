"""Scheduled crawls on the command line (registered on the app by :mod:`hotline.cli`).

``hotline schedule add NAME``     a crawl every DURATION or on a cron expression (UTC)
``hotline schedule list``         every schedule: trigger, next run, last run, paused
``hotline schedule pause|resume|remove NAME``
``hotline schedule run NAME``     start a run now, whatever the schedule's timing
``hotline scheduler``             the daemon that starts due runs (``--once``: one pass)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawler.settings import CRAWL_DEPTH, CRAWL_MAX_PAGES_PER_SEED
from hotline.cliapp import JsonOption, err, load_config, out, parse_sets, stop_on_signals
from hotline.config import Config
from hotline.errors import InputError, UsageError
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
from hotline.services import Session, redis_session
from matchers.lists import validate_list_name
from store.clock import iso, parse_duration
from store.environment import ENV_SCHEDULE_MIN_INTERVAL as ENV_MIN_INTERVAL
from store.options import CrawlOptions
from store.schedules import (
    MIN_INTERVAL,
    Schedule,
    ScheduleStore,
    parse_trigger,
    validate_schedule_name,
)

__all__ = ["ENV_MIN_INTERVAL", "schedule_app", "scheduler"]

schedule_app = typer.Typer(
    help="Scheduled crawls: add, list, pause, resume, remove, or run one now.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]


def _min_interval(config: Config) -> float:
    raw = (config.env if config.env is not None else os.environ).get(ENV_MIN_INTERVAL, "")
    if not raw.strip():
        return MIN_INTERVAL
    try:
        return parse_duration(raw.strip())
    except ValueError as exc:
        raise UsageError(f"{ENV_MIN_INTERVAL}: {exc}") from None


def _networks(values: Iterable[str]) -> list[str]:
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise UsageError(f"--allow-network {value!r} is not a network ({exc})") from None
    return networks


def _store(session: Session) -> ScheduleStore:
    return ScheduleStore(session.client, session.keys)


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
    depth: Annotated[
        int, typer.Option(min=0, help="Link depth to follow within each seed's site.")
    ] = CRAWL_DEPTH,
    max_pages: Annotated[
        int, typer.Option(min=1, help="Page cap per seed.")
    ] = CRAWL_MAX_PAGES_PER_SEED,
    allow_private_networks: Annotated[
        bool,
        typer.Option(help="Let the crawl reach private, loopback and link-local addresses."),
    ] = False,
    allow_network: Annotated[
        list[str] | None,
        typer.Option("--allow-network", help="A private network (CIDR) the crawl may reach."),
    ] = None,
    obey_robots: Annotated[bool, typer.Option(help="Obey robots.txt (off by default).")] = False,
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="Match only these lists (repeatable).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a Scrapy setting, NAME=VALUE (repeatable)."),
    ] = None,
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
    from crawler.seeds import SeedFileError, collect_seeds  # noqa: PLC0415

    config = load_config()
    validate_schedule_name(name)
    trigger = parse_trigger(every, cron, min_interval=_min_interval(config))
    options = CrawlOptions(
        depth=depth,
        max_pages=max_pages,
        allow_private_networks=allow_private_networks,
        allowed_networks=tuple(_networks(allow_network or [])),
        obey_robots=obey_robots,
        lists=tuple(validate_list_name(x) for x in lists or []),
        overrides=parse_sets(sets or []),
        distributed=distributed,
    )
    try:
        good, problems = collect_seeds(urls or [], [seeds] if seeds else [])
    except SeedFileError as exc:
        raise InputError(str(exc)) from None
    for problem in problems:
        err.print(f"skipped seed {problem}", markup=False)
    if not good:
        raise UsageError("no valid seed URL to schedule (give URLs or --seeds FILE)")
    with redis_session(config) as session:
        schedule = _store(session).add(name, trigger, [s.url for s in good], options)
    if as_json:
        out.print_json(data={**schedule.as_json(), "seeds_rejected": len(problems)})
        return
    out.print(
        f"schedule {name} added: {trigger.describe()}, {len(good)} seeds"
        + (f" ({len(problems)} rejected)" if problems else "")
        + f", next run {_when(schedule.next_due)}",
        markup=False,
    )


def _when(ts: float) -> str:
    return iso(ts).replace("T", " ").replace("Z", " UTC")


# -- list ----------------------------------------------------------------------------------


@schedule_app.command("list")
def schedule_list(as_json: JsonOption = False) -> None:
    """List the schedules: trigger, next run (UTC), last run and its status, paused."""
    with redis_session(load_config()) as session:
        schedules = _store(session).all()
        statuses = {s.name: _last_status(session, s) for s in schedules}
    if as_json:
        out.print_json(
            data=[{**s.as_json(), "last_run_status": statuses[s.name]} for s in schedules]
        )
        return
    if not schedules:
        out.print("no schedules")
        return
    table = Table(title="schedules")
    table.add_column("name", no_wrap=True)
    table.add_column("trigger", no_wrap=True)
    table.add_column("next run (UTC)", no_wrap=True)
    table.add_column("last run", overflow="fold")
    table.add_column("status", overflow="fold")
    table.add_column("runs", justify="right")
    table.add_column("seeds", justify="right")
    table.add_column("paused", no_wrap=True)
    for s in schedules:
        table.add_row(
            s.name,
            s.trigger.describe(),
            "-" if s.paused else _when(s.next_due).removesuffix(" UTC"),
            s.last_run_id or "-",
            statuses[s.name] or "-",
            str(s.runs_started),
            str(len(s.seeds)),
            "yes" if s.paused else "no",
        )
    out.print(table)


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
    with redis_session(load_config()) as session:
        schedule = _store(session).pause(name)
    _print_state(schedule, as_json, f"schedule {name} paused")


@schedule_app.command("resume")
def schedule_resume(name: NameArgument, as_json: JsonOption = False) -> None:
    """Start runs for NAME again, from its next time after now (missed runs are skipped)."""
    with redis_session(load_config()) as session:
        schedule = _store(session).resume(name)
    _print_state(schedule, as_json, f"schedule {name} active, next run {_when(schedule.next_due)}")


@schedule_app.command("remove")
def schedule_remove(name: NameArgument, as_json: JsonOption = False) -> None:
    """Delete NAME (runs already started are not touched)."""
    with redis_session(load_config()) as session:
        _store(session).remove(name)
    if as_json:
        out.print_json(data={"name": name, "removed": True})
    else:
        out.print(f"schedule {name} removed", markup=False)


@schedule_app.command("run")
def schedule_run(name: NameArgument, as_json: JsonOption = False) -> None:
    """Start a run of NAME now (paused or not); its next scheduled run stays as it is."""
    config = load_config()
    with redis_session(config) as session:
        store = _store(session)
        store.get(name)  # an unknown name fails before anything else
        starter = RunStarter(StoreRunCreator(session), CrawlLauncher(config.data_dir / RUN_LOG_DIR))
        run_id = start_now(store, name, starter)
    if as_json:
        out.print_json(data={"schedule": name, "run_id": run_id})
    else:
        out.print(f"schedule {name}: started run {run_id}", markup=False)


def _print_state(schedule: Schedule, as_json: bool, line: str) -> None:
    if as_json:
        out.print_json(data=schedule.as_json())
    else:
        out.print(line, markup=False)


# -- the daemon ----------------------------------------------------------------------------


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="Start what is due now, then exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Start scheduled crawls when they are due, one run per due time.

    Runs until stopped (Ctrl-C or SIGTERM) unless --once is given. Any number of schedulers
    may run against one Redis: each due run is started by exactly one of them. A scheduler
    that was down starts a missed run once, not once per missed time.
    """
    config = load_config()
    with redis_session(config) as session:
        store = _store(session)
        starter = RunStarter(StoreRunCreator(session), CrawlLauncher(config.data_dir / RUN_LOG_DIR))
        daemon = Scheduler(store, starter)
        if not as_json:
            err.print(
                f"{daemon.identity}: "
                + (
                    "starting what is due" if once else "waiting for due schedules (Ctrl-C to stop)"
                ),
                markup=False,
            )

        def report(result: StartResult) -> None:
            if not as_json:
                err.print(_result_line(result), markup=False)

        with stop_on_signals() as stop:
            stats = daemon.run(stop, once=once, on_result=report)
    if as_json:
        out.print_json(data=stats.as_dict())
    else:
        out.print(f"started {stats.started}, failed {stats.failed}", markup=False)
    if stats.failed:
        raise typer.Exit(1)


def _result_line(result: StartResult) -> str:
    if not result.ok:
        return f"schedule {result.name} ({iso(result.slot)}): not started: {result.error}"
    folded = f", standing in for {result.skipped} missed" if result.skipped else ""
    return f"schedule {result.name} ({iso(result.slot)}{folded}): started run {result.run_id}"
