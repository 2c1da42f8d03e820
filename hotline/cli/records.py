"""``hotline hits list`` and ``hotline review``: the records crawls queued, confirmed hits for
notice and takedown, near misses for an analyst, and the analyst's decisions on them
(``review show|confirm|dismiss``, through :class:`store.review.ReviewDesk`)."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from hotline.cli.app import JsonOption, open_session, out
from hotline.cli.render import details_table, iso_cell, json_or_empty, records_table, table
from hotline.errors import UsageError
from store.review import (
    Outcome,
    ReviewConflict,
    ReviewDesk,
    ReviewItem,
    ReviewNotFound,
    ReviewReasonError,
)

__all__ = ["hits_app", "review_app"]

hits_app = typer.Typer(help="Confirmed hits queued for notice and takedown.", no_args_is_help=True)
review_app = typer.Typer(
    help="Near misses queued for an analyst: list, show, confirm or dismiss them.",
    no_args_is_help=True,
)

CrawlFilter = Annotated[str | None, typer.Option("--crawl", help="Only this crawl's records.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the newest N records.")]


def _list_records(
    verdict: str, *, as_json: bool, crawl_id: str | None, limit: int | None, title: str
) -> None:
    with open_session() as session:
        queue = session.hits()
        entries = [e.id for e in queue.select(verdict, crawl=crawl_id or "")]
        records = [r for _, r in queue.records(verdict, entries[-limit:] if limit else entries)]
    data = [r.as_json() for r in records]
    if json_or_empty(records, data, empty=f"no {title}", as_json=as_json):
        return
    out.print(records_table(records, title=title))


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
    as_json: JsonOption = False,
    crawl_id: CrawlFilter = None,
    limit: LimitOption = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only items nobody has decided on yet.")
    ] = False,
) -> None:
    """List near misses, oldest first, with the decision on each (confirmed, dismissed, or
    '-' while pending). The "id" in --json is what show, confirm and dismiss take."""
    with open_session() as session:
        items = [
            item
            for item in ReviewDesk(session.client, session.keys).items()
            if (crawl_id is None or item.record.crawl == crawl_id)
            and not (pending and item.decision is not None)
        ]
    if limit is not None:
        items = items[-limit:]
    data = [item.as_json() for item in items]
    empty = "no pending review items" if pending else "no review items"
    if json_or_empty(items, data, empty=empty, as_json=as_json):
        return
    decisions = {
        item.id: "-" if item.decision is None else item.decision.decision for item in items
    }
    out.print(
        records_table([item.record for item in items], title="review items", decisions=decisions)
    )


# -- decisions on review items ----------------------------------------------------------------

ReviewIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID", help="The item's id (from 'review list --json'), or 6+ of its hex digits."
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why: kept with the decision and in the audit trail.")
]
AnalystOption = Annotated[
    str | None,
    typer.Option(
        "--analyst",
        help="Who decides (recorded as analyst@NAME); default: the user running the command.",
    ),
]
_ANALYST_RE = re.compile(r"[\w.@+ -]{1,64}")


def _actor(analyst: str | None) -> str:
    """``analyst@<name>``: the actor of a decision in the audit trail."""
    if analyst is None:
        try:
            analyst = getpass.getuser()
        except (KeyError, OSError):
            raise UsageError("cannot tell who you are: give --analyst NAME") from None
    name = analyst.strip()
    if not _ANALYST_RE.fullmatch(name):
        raise UsageError(f"--analyst {analyst!r}: use 1-64 letters, digits, spaces or . @ + _ -")
    return f"analyst@{name}"


@contextmanager
def _desk() -> Iterator[ReviewDesk]:
    """The review desk on the configured Redis; its refusals are bad input (exit 2)."""
    with open_session() as session:
        try:
            yield ReviewDesk(session.client, session.keys)
        except (ReviewNotFound, ReviewConflict, ReviewReasonError) as exc:
            raise UsageError(str(exc)) from None


def _item_rows(item: ReviewItem) -> list[tuple[str, str]]:
    r = item.record
    rows = [
        ("image URL", r.url),
        ("found on", r.page),
        ("match", f"list {r.list}, entry {r.entry}: {r.match_text}"),
        ("category", r.category or "-"),
        ("sha256", r.sha256),
        ("pdq", r.pdq or "-"),
        ("phash", r.phash or "-"),
        ("first seen", r.first_seen),
        ("IP", r.ip or "-"),
        ("crawl", r.crawl or "-"),
    ]
    d = item.decision
    if d is None:
        rows.append(("decision", "pending"))
    else:
        rows.append(("decision", f"{d.decision} by {d.actor} at {iso_cell(d.time)} UTC"))
        rows.append(("reason", d.reason))
        if d.hit_entry:
            rows.append(("hits entry", d.hit_entry))
    return rows


@review_app.command("show")
def review_show(review_id: ReviewIdArgument, as_json: JsonOption = False) -> None:
    """Show one review item: the record, the decision on it (if any) and its events."""
    with _desk() as desk:
        item = desk.find(review_id)
        events = desk.timeline(item.id)
    if as_json:
        data = item.as_json()
        data["timeline"] = events
        out.print_json(data=data)
        return
    out.print(details_table(_item_rows(item), title=f"review item {item.id}"))
    if events:
        events = [{**e, "time": iso_cell(e.get("time", ""))} for e in events]
        rows = (
            tuple(e.get(name, "") for name in ("time", "event", "actor", "detail")) for e in events
        )
        out.print(table("timeline", ["time (UTC)", "event", "actor", "detail"], rows))


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    allowed = outcome.allow_listed
    data: dict[str, Any] = {"id": outcome.item.id, "new": outcome.new}
    data.update(outcome.decision.as_json())
    data["allow_list"] = (
        None
        if allowed is None
        else {
            "name": allowed.list,
            "version": allowed.version,
            "created": allowed.created,
            "added": [e.algorithm for e in allowed.added],
        }
    )
    return data


def _outcome_line(outcome: Outcome) -> str:
    d = outcome.decision
    if not outcome.new:
        return (
            f"review item {outcome.item.id}: already {d.decision} by {d.actor} "
            f"at {iso_cell(d.time)} UTC; nothing changed"
        )
    line = f"review item {outcome.item.id}: {d.decision} by {d.actor}"
    if d.decision == "confirmed":
        line += f"; queued for notice as hits entry {d.hit_entry}"
    return line


@review_app.command("confirm")
def review_confirm(
    review_id: ReviewIdArgument,
    reason: ReasonOption,
    analyst: AnalystOption = None,
    as_json: JsonOption = False,
) -> None:
    """Confirm a near miss: it becomes a confirmed hit that the notifier notices like any
    other. Once only: confirming again changes nothing and says who confirmed it (exit 0); an
    item that was dismissed cannot be confirmed (exit 2)."""
    actor = _actor(analyst)
    with _desk() as desk:
        outcome = desk.confirm(review_id, actor=actor, reason=reason)
    if as_json:
        out.print_json(data=_outcome_json(outcome))
    else:
        out.print(_outcome_line(outcome), markup=False)


@review_app.command("dismiss")
def review_dismiss(
    review_id: ReviewIdArgument,
    reason: ReasonOption,
    allow_list: Annotated[
        str | None,
        typer.Option(
            "--allow-list",
            metavar="NAME",
            help="Also add the image's hashes (sha256; pdq, phash when known) to this "
            "allow-list (created if missing), so no crawl matches the image at any URL.",
        ),
    ] = None,
    analyst: AnalystOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dismiss a near miss: no crawl reports this image URL for this list entry again, as a
    hit or for review. Dismissing again changes nothing (exit 0); an item that was confirmed
    cannot be dismissed (exit 2)."""
    actor = _actor(analyst)
    with _desk() as desk:
        outcome = desk.dismiss(review_id, actor=actor, reason=reason, allow_list=allow_list)
    allowed = outcome.allow_listed
    if as_json:
        out.print_json(data=_outcome_json(outcome))
        return
    out.print(_outcome_line(outcome), markup=False)
    if allowed is not None:
        if allowed.added:
            what = ", ".join(e.algorithm for e in allowed.added)
            state = "created" if allowed.created else "updated"
            out.print(
                f"allow-list {allowed.list} {state} (version {allowed.version}): added {what}",
                markup=False,
            )
        else:
            out.print(f"allow-list {allowed.list} has these hashes already", markup=False)
