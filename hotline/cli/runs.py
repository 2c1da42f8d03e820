"""Crawl runs on the command line (registered on the app by :mod:`hotline.cli`).

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
from rich.table import Table

from hotline.cliapp import JsonOption, err, load_config, out
from hotline.errors import UsageError
from hotline.services import redis_session
from store.clock import format_duration, iso
from store.errors import RunNotFound
from store.runs import STATUSES, RunRecord, RunStore

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


def _time(ts: float | None) -> str:
    return "-" if ts is None else iso(ts).replace("T", " ").removesuffix("Z")


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _health(run: RunRecord) -> str:
    return ", ".join(sorted(run.health)) or "ok"


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
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    with redis_session(load_config()) as session:
        runs = RunStore(session.client, session.keys).list(limit=limit, status=status)
    now = time.time()
    if as_json:
        out.print_json(data=[r.as_json(now=now) for r in runs])
        return
    if not runs:
        out.print("no runs" + (f" in status {status}" if status else ""))
        return
    table = Table(title="crawl runs")
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("origin", overflow="fold")
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    for name in ("pages", "images", "confirmed", "review", "errors"):
        table.add_column(name, justify="right")
    table.add_column("health", overflow="fold")
    for r in runs:
        s = r.stats
        table.add_row(
            r.id,
            _status(r),
            (r.origin or "-") + (" (distributed)" if r.distributed else ""),
            _time(r.started),
            _duration(r.duration(now)),
            str(s.pages),
            str(s.images),
            str(s.confirmed),
            str(s.review),
            str(s.error_count),
            _health(r),
        )
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: RunIdArgument, as_json: JsonOption = False) -> None:
    """Show one run: seeds, options, times, counts, errors by kind, health."""
    with redis_session(load_config()) as session:
        run = _find(RunStore(session.client, session.keys), run_id)
    now = time.time()
    if as_json:
        out.print_json(data=run.as_json(full=True, now=now))
        return
    table = Table(show_header=False, box=None, title=f"run {run.id}")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    s = run.stats
    rows: list[tuple[str, str]] = [
        ("status", _status(run)),
        ("finish reason", run.reason or "-"),
        ("origin", run.origin or "-"),
        ("created (UTC)", _time(run.created)),
        ("started (UTC)", _time(run.started)),
        ("finished (UTC)", _time(run.finished)),
        ("duration", _duration(run.duration(now))),
        ("seeds", "\n".join(run.seeds) or "-"),
        ("options", _options(run.options)),
        ("requests (retries)", f"{s.requests} ({s.retries})"),
        ("responses", str(s.responses)),
        ("pages", str(s.pages)),
        ("images", str(s.images)),
        ("hashed", str(s.hashed)),
        ("confirmed", str(s.confirmed)),
        ("review", str(s.review)),
        ("errors", _errors(s.errors)),
        ("health", "\n".join(f"{k}: {v}" for k, v in sorted(run.health.items())) or "ok"),
    ]
    if run.cancel_requested is not None:
        rows.append(("cancel requested (UTC)", _time(run.cancel_requested)))
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
    for label, value in rows:
        table.add_row(label, value)
    out.print(table)
    stats = {k: v for k, v in sorted(run.crawl_stats.items()) if k.startswith(SHOWN_STATS_PREFIXES)}
    if stats:
        detail = Table(title="crawl stats", show_header=False)
        detail.add_column(overflow="fold")
        detail.add_column(justify="right")
        for key, value in stats.items():
            detail.add_row(key, str(value))
        out.print(detail)


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
    with redis_session(load_config()) as session:
        store = RunStore(session.client, session.keys)
        run = _find(store, run_id)
        if not store.request_cancel(run.id):
            after = store.get(run.id)
            raise UsageError(f"run {run.id} already ended: {after.status}")
        after = store.get(run.id)
    if as_json:
        out.print_json(data={"id": after.id, "status": after.status, "cancel_requested": True})
    elif after.status == "cancelled":
        out.print(f"run {after.id}: cancelled", markup=False)
    else:
        out.print(f"run {after.id}: cancel requested; the crawl stops within seconds", markup=False)
    if after.status not in {"cancelled", "running"}:  # it ended by itself meanwhile
        err.print(f"run {after.id} is {after.status}", markup=False)
