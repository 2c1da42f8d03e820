"""``hotline notices``: list the takedown notices, show one with its whole timeline, resend
one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column

from hotline.cli.app import JsonOption, check_status, open_takedown_session, out
from hotline.cli.render import (
    details_table,
    duration_cell,
    iso_cell,
    json_or_empty,
    minute_cell,
    table,
)
from hotline.errors import UsageError
from store.clock import iso
from takedown.notice import reference_for
from takedown.notices import STATUSES, Notice, NoticeNotFound, NoticeStore

__all__ = ["notices_app"]

notices_app = typer.Typer(
    help="Takedown notices: list them, show one's whole timeline, resend.",
    no_args_is_help=True,
)

NoticeIdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="Notice id, prefix or HL- ref.")
]

StatusOption = Annotated[
    str | None,
    typer.Option("--status", help=f"Only notices in this status ({', '.join(STATUSES)})."),
]


@notices_app.command("list")
def notices_list(
    status: StatusOption = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's notices.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the newest N notices.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List notices, oldest first."""
    check_status(status, STATUSES)
    with open_takedown_session(need_sender=False) as takedown:
        notices = [
            n
            for n in takedown.store.iter_notices(status)
            if provider is None or n.provider == provider
        ]
    if limit is not None:
        notices = notices[-limit:]
    empty = "no notices" + (f" in status {status}" if status else "")
    if json_or_empty(notices, [n.as_json() for n in notices], empty=empty, as_json=as_json):
        return
    columns = [
        Column("reference", no_wrap=True),
        Column("status", no_wrap=True),
        Column("provider", overflow="fold"),
        Column("image URL", overflow="fold", ratio=3),
        Column("sent (UTC)", no_wrap=True),
        Column("reminders", justify="right"),
        Column("removed after", no_wrap=True),
    ]
    out.print(table("notices", columns, (_notice_row(n) for n in notices)))


def _notice_row(notice: Notice) -> tuple[str, ...]:
    sent = notice.time("sent_at")
    _, upper = notice.time_to_removal()
    return (
        reference_for(notice.id),
        notice.status,
        notice.provider,
        notice.hit.url,
        "-" if sent is None else minute_cell(iso(sent)),
        str(notice.count("reminders")),
        duration_cell(upper),
    )


@notices_app.command("show")
def notices_show(
    notice_id: NoticeIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Show one notice: the hit, where it was routed, and its whole timeline."""
    with open_takedown_session(need_sender=False) as takedown:
        notice = _find(takedown.store, notice_id)
        timeline = takedown.store.timeline(notice.id)
    if as_json:
        data = notice.as_json()
        data["hit"] = notice.hit.as_json()
        data["timeline"] = [event.to_dict() for event in timeline]
        out.print_json(data=data)
        return
    hit = notice.hit
    route = notice.route
    rows: list[tuple[str, str]] = [
        ("status", notice.status),
        ("image URL", hit.url),
        ("found on", hit.page),
        ("match", f"list {hit.list}, entry {hit.entry}: {hit.algorithm} distance {hit.distance}"),
        ("sha256", hit.sha256),
        ("first seen", hit.first_seen),
        ("IP", hit.ip or "-"),
        ("provider", notice.provider),
        ("recipient", notice.fields.get("recipient") or "-"),
        ("channel", notice.fields.get("channel") or "-"),
        ("routed by", route.method if route else "-"),
        ("reminders", str(notice.count("reminders"))),
    ]
    lower, upper = notice.time_to_removal()
    if upper is not None and lower is not None:
        rows.append(
            ("time to removal", f"between {duration_cell(lower)} and {duration_cell(upper)}")
        )
    if notice.fields.get("last_error"):
        rows.append(("last error", notice.fields["last_error"]))
    if route is not None and route.suggested is not None and notice.status == "unroutable":
        rows.append(
            (
                "suggested route",
                f"{route.suggested.address} (RFC 2142 abuse mailbox of {route.suggested.provider});"
                f" send with: hotline notices approve-route {reference_for(notice.id)}",
            )
        )
    out.print(details_table(rows, title=f"notice {reference_for(notice.id)} ({notice.id})"))
    columns = [
        Column("time (UTC)", no_wrap=True),
        Column("event", no_wrap=True),
        Column("status", no_wrap=True),
        Column("actor", no_wrap=True),
        Column("detail", overflow="fold"),
    ]
    events = [(iso_cell(e.time), e.event, e.status, e.actor, e.detail) for e in timeline]
    out.print(table("timeline", columns, events))


@notices_app.command("resend")
def notices_resend(
    notice_id: NoticeIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Route a notice again and send it (same reference and Message-ID)."""
    with open_takedown_session() as takedown:
        notice = _find(takedown.store, notice_id)
        worker = takedown.notifier()
        outcome = worker.resend(notice.id, actor=f"analyst@{worker.consumer}")
        after = takedown.store.get(notice.id)
    error = after.fields.get("last_error") or None
    if as_json:
        out.print_json(
            data={"id": notice.id, "outcome": outcome, "status": after.status, "error": error}
        )
    elif outcome == "retrying":
        out.print(
            f"notice {reference_for(notice.id)}: not delivered for now ({error}); "
            "the notifier will try again",
            markup=False,
        )
    else:
        out.print(
            f"notice {reference_for(notice.id)}: {outcome} (status {after.status})", markup=False
        )
    if outcome not in {"sent", "resent"}:
        raise typer.Exit(1)


def _find(store: NoticeStore, notice_id: str) -> Notice:
    try:
        return store.find(notice_id)
    except NoticeNotFound as exc:
        raise UsageError(str(exc)) from None


@notices_app.command("approve-route")
def notices_approve_route(
    notice_id: NoticeIdArgument,
    as_json: JsonOption = False,
) -> None:
    """Approve the suggested recipient of an unroutable notice and send it.

    When no directory entry, CDN range or RDAP record names a recipient, the notice waits as
    unroutable with a suggestion: abuse@ the host's registrable domain (RFC 2142), shown by
    'notices show'. It is never sent on its own; this command records your approval in the
    notice's timeline and sends the notice like a routed one.
    """
    with open_takedown_session() as takedown:
        notice = _find(takedown.store, notice_id)
        route = notice.route
        if notice.status != "unroutable":
            raise UsageError(
                f"notice {reference_for(notice.id)} is {notice.status}, not unroutable: "
                "there is no suggested route to approve"
            )
        if route is None or route.suggested is None:
            raise UsageError(
                f"notice {reference_for(notice.id)} has no suggested route (its host has no "
                "registrable domain); add the provider to the directory and resend"
            )
        worker = takedown.notifier()
        outcome = worker.approve_route(notice.id, actor=f"analyst@{worker.consumer}")
        after = takedown.store.get(notice.id)
    error = after.fields.get("last_error") or None
    if as_json:
        out.print_json(
            data={
                "id": notice.id,
                "outcome": outcome,
                "status": after.status,
                "recipient": route.suggested.address,
                "error": error,
            }
        )
    else:
        out.print(
            f"notice {reference_for(notice.id)}: route to {route.suggested.address} approved; "
            f"{outcome} (status {after.status})"
            + (f": {error}" if error and outcome != "sent" else ""),
            markup=False,
        )
    if outcome != "sent":
        raise typer.Exit(1)
