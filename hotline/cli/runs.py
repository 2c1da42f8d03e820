"""Crawl runs on the command line.

``hotline runs list``     runs newest first: status, origin, times, counts, health
``hotline runs show ID``  one run: seeds, options, counts, errors by kind, health, Scrapy stats
``hotline runs cancel ID``  stop a run: a queued one at once, a running one within seconds

An ID is a run id, its beginning, or its random suffix (the part after the last ``-``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.table import Column

from crawler.settings import FRONTIER_LEASE
from hotline.cli.app import JsonOption, check_status, err, open_session, out
from hotline.cli.render import (
    details_table,
    duration_cell,
    emit,
    health_cell,
    json_or_empty,
    table,
    time_cell,
)
from hotline.errors import UsageError
from store.errors import RunNotFound
from store.frontier import DeadLetter, Frontier, end_abandoned_cancel, recorded_lease
from store.runs import STATUSES, RunRecord, RunStore

__all__ = ["runs_app"]

runs_app = typer.Typer(help="Crawl runs: list them, show one, cancel one.", no_args_is_help=True)

#: Runs ``runs list`` shows unless told otherwise.
DEFAULT_LIST_LIMIT = 20
#: Scrapy stats ``runs show`` leaves out of its table (``--json`` has them all).
SHOWN_STATS_PREFIXES = ("crawl/", "matcher/", "hits/", "review/", "downloader/", "retry/")

RunIdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="Run id, its beginning, or its random suffix.")
]


def _find(store: RunStore, run_id: str) -> RunRecord:
    try:
        return store.get(run_id)
    except RunNotFound as exc:
        raise UsageError(str(exc)) from None


def _status(run: RunRecord) -> str:
    if run.status == "running" and run.stopping:
        return f"running ({run.stopping})"
    if run.status == "running" and run.cancel_requested is not None:
        return "running (cancel requested)"
    return run.status


@runs_app.command("list")
def runs_list(
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only runs in this status: {', '.join(STATUSES)}."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N runs.")] = DEFAULT_LIST_LIMIT,
    as_json: JsonOption = False,
) -> None:
    """List crawl runs, newest first."""
    check_status(status, STATUSES)
    with open_session() as session:
        runs = session.runs().list(limit=limit, status=status)
    now = time.time()
    empty = "no runs" + (f" in status {status}" if status else "")
    if json_or_empty(runs, [r.as_json(now=now) for r in runs], empty=empty, as_json=as_json):
        return
    columns = [
        Column("id", no_wrap=True),
        Column("status", no_wrap=True),
        Column("origin", overflow="fold"),
        Column("started (UTC)", no_wrap=True),
        Column("duration", no_wrap=True, justify="right"),
        *(
            Column(name, justify="right")
            for name in ("pages", "images", "confirmed", "review", "errors")
        ),
        Column("health", overflow="fold"),
    ]
    rows = [
        (
            r.id,
            _status(r),
            (r.origin or "-") + (" (distributed)" if r.distributed else ""),
            time_cell(r.started),
            duration_cell(r.duration(now)),
            str(r.stats.pages),
            str(r.stats.images),
            str(r.stats.confirmed),
            str(r.stats.review),
            str(r.stats.error_count),
            health_cell(r.health),
        )
        for r in runs
    ]
    out.print(table("crawl runs", columns, rows))


@runs_app.command("show")
def runs_show(run_id: RunIdArgument, as_json: JsonOption = False) -> None:
    """Show one run: seeds, options, times, counts, errors by kind, health."""
    with open_session() as session:
        run = _find(session.runs(), run_id)
        dead = Frontier(session.client, session.keys, run.id).dead_letters()
    now = time.time()
    if as_json:
        data = run.as_json(full=True, now=now)
        if run.distributed:
            data["dead_letters"] = [_dead_letter_json(letter) for letter in dead]
        out.print_json(data=data)
        return
    s = run.stats
    rows: list[tuple[str, str]] = [
        ("status", _status(run)),
        ("finish reason", run.reason or "-"),
        ("origin", run.origin or "-"),
        ("created (UTC)", time_cell(run.created)),
        ("started (UTC)", time_cell(run.started)),
        ("finished (UTC)", time_cell(run.finished)),
        ("duration", duration_cell(run.duration(now))),
        ("seeds", "\n".join(run.seeds) or "-"),
        ("options", _options(run.options)),
        ("requests (retries)", f"{s.requests} ({s.retries})"),
        ("responses", str(s.responses)),
        ("pages", str(s.pages)),
        ("images", str(s.images)),
        ("files", str(s.files)),
        ("hashed", str(s.hashed)),
        ("confirmed", str(s.confirmed)),
        ("review", str(s.review)),
        ("errors", _errors(s.errors)),
        ("health", "\n".join(f"{k}: {v}" for k, v in sorted(run.health.items())) or "ok"),
    ]
    if run.cancel_requested is not None:
        rows.append(("cancel requested (UTC)", time_cell(run.cancel_requested)))
    if run.distributed:
        rows.append(
            (
                "workers",
                "\n".join(
                    f"{name}: {w.pages} pages, {w.images} images, {w.confirmed} confirmed"
                    for name, w in run.workers.items()
                )
                or "none yet",
            )
        )
        if dead:
            rows.append(("dead letters", "\n".join(_dead_letter_line(d) for d in dead)))
    out.print(details_table(rows, title=f"run {run.id}"))
    stats = [
        (key, str(value))
        for key, value in sorted(run.crawl_stats.items())
        if key.startswith(SHOWN_STATS_PREFIXES)
    ]
    if stats:
        columns = [Column(overflow="fold"), Column(justify="right")]
        out.print(table("crawl stats", columns, stats, show_header=False))


def _dead_letter_line(letter: DeadLetter) -> str:
    reason = "lease expired" if letter.reason == "lease_expired" else letter.reason
    return f"{letter.url} ({reason} {letter.attempts} times, last worker {letter.worker})"


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "url": letter.url,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "worker": letter.worker,
        "at": letter.at,
    }


def _options(options: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in sorted(options.items())) or "-"


def _errors(errors: Mapping[str, int]) -> str:
    total = sum(errors.values())
    if not total:
        return "0"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items()))
    return f"{total} ({kinds})"


@runs_app.command("cancel")
def runs_cancel(run_id: RunIdArgument, as_json: JsonOption = False) -> None:
    """Cancel a run: a queued run at once; a running crawl stops within seconds (its
    in-flight requests end first)."""
    with open_session() as session:
        store = session.runs()
        run = _find(store, run_id)
        if not store.request_cancel(run.id):
            after = store.get(run.id)
            raise UsageError(f"run {run.id} already ended: {after.status}")
        # A distributed run whose workers all died has no one to stop it: it ends now.
        end_abandoned_cancel(store, run.id, recorded_lease(run, FRONTIER_LEASE))
        after = store.get(run.id)
    emit(
        {"id": after.id, "status": after.status, "cancel_requested": True},
        f"run {after.id}: cancelled"
        if after.status == "cancelled"
        else f"run {after.id}: cancel requested; the crawl stops within seconds",
        as_json=as_json,
    )
    if after.status not in {"cancelled", "running"}:  # it ended by itself meanwhile
        err.print(f"run {after.id} is {after.status}", markup=False)
