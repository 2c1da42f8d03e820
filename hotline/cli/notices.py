"""``hotline notices``: list the takedown notices, show one with its whole timeline, resend
one, reopen a closed one whose content is back, classify one that waits for its X-ARF
classification, mark one prepared for sending by hand as sent."""

from __future__ import annotations

import getpass
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
from store.lists import CLASSIFICATIONS, normalise_classification
from takedown.notice import reference_for
from takedown.notices import (
    STATUSES,
    LockBusy,
    NotAwaitingManual,
    Notice,
    NoticeNotFound,
    NoticeStore,
)

__all__ = ["notices_app"]

notices_app = typer.Typer(
    help="Takedown notices: list them, show one's whole timeline, resend, reopen, classify, "
    "mark sent by hand.",
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
        ids = takedown.store.ids(status, provider=provider)
        notices = takedown.store.get_many(ids if limit is None else ids[-limit:])
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
        data.update(_manual_json(notice))
        data["hit"] = notice.hit.as_json()
        data["classification"] = notice.fields.get("classification") or None
        data["timeline"] = [event.to_dict() for event in timeline]
        out.print_json(data=data)
        return
    hit = notice.hit
    route = notice.route
    rows: list[tuple[str, str]] = [
        ("status", notice.status),
        ("image URL", hit.url),
        ("found on", hit.page),
        ("match", f"list {hit.list}, entry {hit.entry}: {hit.match_text}"),
        ("sha256", hit.sha256),
        ("classification", notice.fields.get("classification") or "-"),
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
    rows.extend(_manual_rows(notice))
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


@notices_app.command("reopen")
def notices_reopen(
    notice_id: NoticeIdArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="Why: e.g. where the content was seen again.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Reopen a closed notice whose content is online again, and send a new numbered notice
    (same reference; the removal clock restarts)."""
    with open_takedown_session() as takedown:
        notice = _find(takedown.store, notice_id)
        worker = takedown.notifier()
        outcome = worker.reopen(notice.id, actor=f"analyst@{worker.consumer}", reason=reason)
        after = takedown.store.get(notice.id)
    if as_json:
        out.print_json(data={"id": notice.id, "outcome": outcome, "status": after.status})
    else:
        out.print(
            f"notice {reference_for(notice.id)}: reopened, {outcome} (status {after.status})",
            markup=False,
        )
    if outcome not in {"sent", "awaiting_manual"}:
        raise typer.Exit(1)


def _analyst_name() -> str:
    """The login name, as the analyst recorded when ``--analyst`` is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@notices_app.command("classify")
def notices_classify(
    notice_id: NoticeIdArgument,
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help=f"X-ARF classification: {', '.join(CLASSIFICATIONS)}.",
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (kept in the timeline and the audit).")
    ] = "",
    analyst: Annotated[
        str | None,
        typer.Option("--analyst", help="Who decides (default: the login name)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Classify a notice not sent yet (typically one waiting as unclassified, whose list
    category maps to no X-ARF classification), then send it like a new hit: routed and
    delivered, its X-ARF report carrying VALUE. The decision, the analyst and the reason go
    to the notice's timeline and the audit stream. Exits 2 for a bad VALUE or a notice that
    was already sent."""
    try:
        chosen = normalise_classification(value)
    except ValueError as exc:
        raise UsageError(f"VALUE: {exc}") from None
    name = (analyst if analyst is not None else _analyst_name()).strip()
    if not name or any(c.isspace() for c in name):
        raise UsageError(f"--analyst {analyst!r}: give a name without spaces")
    with open_takedown_session() as takedown:
        notice = _find(takedown.store, notice_id)
        worker = takedown.notifier()
        outcome = worker.classify(notice.id, chosen, actor=f"analyst@{name}", reason=reason)
        after = takedown.store.get(notice.id)
    error = after.fields.get("last_error") or None
    if as_json:
        out.print_json(
            data={
                "id": notice.id,
                "classification": chosen,
                "outcome": outcome,
                "status": after.status,
                "error": error,
            }
        )
    else:
        out.print(
            f"notice {reference_for(notice.id)}: classified {chosen}; {outcome} "
            f"(status {after.status})" + (f": {error}" if error and outcome != "sent" else ""),
            markup=False,
        )
    if outcome not in {"sent", "awaiting_manual"}:
        raise typer.Exit(1)


# -- sending by hand -----------------------------------------------------------------------


def _form_url(notice: Notice) -> str | None:
    route = notice.route
    recipient = None if route is None else route.recipient
    return None if recipient is None else recipient.form_url


def _manual_json(notice: Notice) -> dict[str, str | None]:
    """The form URL and where a prepared notice waits, for ``notices show --json``."""
    return {
        "form_url": _form_url(notice) if notice.fields.get("channel") == "form" else None,
        "prepared_at": iso(float(notice.fields["prepared_at"]))
        if notice.fields.get("prepared_at")
        else None,
        "manual_destination": notice.fields.get("manual_destination") or None,
        "marked_sent_by": notice.fields.get("marked_sent_by") or None,
    }


def _manual_rows(notice: Notice) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    form_url = _form_url(notice)
    if notice.fields.get("channel") == "form" and form_url:
        rows.append(("abuse form", form_url))
    if notice.status == "awaiting_manual":
        where = notice.fields.get("manual_destination") or "-"
        rows.append(
            (
                "to do",
                f"send it by hand ({where}), then: hotline notices mark-sent "
                f"{reference_for(notice.id)}",
            )
        )
    if notice.fields.get("marked_sent_by"):
        rows.append(("sent by hand", notice.fields["marked_sent_by"]))
    return rows


@notices_app.command("mark-sent")
def notices_mark_sent(
    notice_id: NoticeIdArgument,
    note: Annotated[
        str | None,
        typer.Option("--note", help="What was done, for the timeline (e.g. the form's ticket)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record that a notice prepared for sending by hand (outbox or web form) was sent.

    The notice must be awaiting_manual. It becomes sent, with your name and the time in its
    timeline, and its rechecks (and later reminders) start as for a notice the notifier sent.
    """
    with open_takedown_session(need_sender=False) as takedown:
        notice = _find(takedown.store, notice_id)
        actor = f"analyst@{takedown.consumer}"
        recheck_at = takedown.store.clock() + takedown.settings.recheck_delay(0)
        try:
            after = takedown.store.mark_sent(
                notice.id, actor=actor, recheck_at=recheck_at, note=(note or "").strip()
            )
        except NotAwaitingManual as exc:
            raise UsageError(str(exc)) from None
        except LockBusy as exc:
            raise UsageError(f"{exc}; try again in a moment") from None
    sent_at = after.time("sent_at")
    data = {
        "id": after.id,
        "status": after.status,
        "sent_at": None if sent_at is None else iso(sent_at),
        "marked_sent_by": actor,
        "first_recheck": iso(recheck_at),
    }
    if as_json:
        out.print_json(data=data)
        return
    out.print(
        f"notice {reference_for(after.id)}: marked sent by {actor}; first recheck at "
        f"{iso(recheck_at)}",
        markup=False,
    )


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
    if outcome not in {"sent", "awaiting_manual"}:
        raise typer.Exit(1)
