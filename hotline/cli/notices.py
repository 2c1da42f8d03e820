"""Notice and takedown on the command line (registered on the app by :mod:`hotline.cli`).

``hotline notifier``         turn confirmed hits into delivered notices (``--once``: drain, exit)
``hotline recheck``          re-fetch noticed images; removed, reminders, escalation
``hotline providers lookup`` who would receive a notice for a URL or IP, and why
``hotline notices ...``      list, show (the whole timeline), resend
``hotline stats``            per provider: notices, removed, time to removal, still online
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from ipaddress import ip_address
from typing import Annotated, Any

import typer
from rich.table import Table

from hotline.cliapp import JsonOption, err, load_config, out, stop_on_signals
from hotline.errors import UsageError
from hotline.services import redis_session
from hotline.takedownrun import open_router, open_takedown
from store.clock import format_duration, iso
from store.rechecks import RecheckResult, RecheckTarget
from takedown.notice import reference_for
from takedown.notices import STATUSES, Notice, NoticeNotFound
from takedown.notifier import NotifierStats
from takedown.stats import provider_stats

notices_app = typer.Typer(
    help="Takedown notices: list them, show one's whole timeline, resend.",
    no_args_is_help=True,
)
providers_app = typer.Typer(
    help="Who receives notices: look up the provider of a URL or IP.", no_args_is_help=True
)

ConsumerOption = Annotated[
    str | None,
    typer.Option(
        "--consumer",
        help="Name of this process in the consumer group (default: the host name). Give each "
        "notifier on one host its own name.",
    ),
]


# -- notifier ------------------------------------------------------------------------------


def notifier(
    once: Annotated[
        bool, typer.Option("--once", help="Handle what is queued now, then exit.")
    ] = False,
    consumer: ConsumerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a takedown notice for every confirmed hit, exactly once per incident.

    Runs until stopped (Ctrl-C or SIGTERM) unless --once is given. Notices go to the provider
    the directory or RDAP names, by SMTP, webhook or into the outbox directory.
    """
    config = load_config()
    with (
        redis_session(config) as session,
        open_takedown(session, config, consumer=consumer) as takedown,
    ):
        worker = takedown.notifier()
        if not as_json:
            err.print(
                f"notifier {worker.consumer}: "
                + ("draining the queue" if once else "waiting for hits (Ctrl-C to stop)"),
                markup=False,
            )

        def progress(stats: NotifierStats) -> None:
            if not as_json:
                err.print(_stats_line(stats), markup=False)

        with stop_on_signals() as stop:
            stats = worker.run(once=once, stop=stop, on_batch=progress)
    if as_json:
        out.print_json(data=stats.as_dict())
    else:
        out.print(_stats_line(stats), markup=False)


def _stats_line(stats: NotifierStats) -> str:
    parts = [
        f"sent {stats.sent}",
        f"already sent {stats.already_sent}",
        f"unroutable {stats.unroutable}",
        f"retrying {stats.retrying}",
        f"dead-lettered {stats.dead_lettered}",
    ]
    if stats.resumed:
        parts.append(f"resumed {stats.resumed}")
    return ", ".join(parts)


# -- providers -----------------------------------------------------------------------------


@providers_app.command("lookup")
def providers_lookup(
    target: Annotated[str, typer.Argument(help="An image URL, a host name or an IP address.")],
    as_json: JsonOption = False,
) -> None:
    """Show who would receive a notice for TARGET, and how that was decided."""
    url, ip = _lookup_target(target)
    config = load_config()
    with (
        redis_session(config) as session,
        open_router(session, config.takedown_settings()) as router,
    ):
        route = router.route(url, ip)
    if as_json:
        out.print_json(data=route.to_dict())
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    recipient = route.recipient
    rows = [
        ("host", route.host),
        ("IP", route.ip or "-"),
        ("ASN", f"AS{route.asn}" if route.asn else "-"),
        ("network", route.network or "-"),
        ("provider", route.provider or "-"),
        ("decided by", route.method),
        ("CDN", route.cdn or "-"),
        (
            "recipient",
            "none: the notice would wait as unroutable"
            if recipient is None
            else f"{recipient.provider} <{recipient.address or recipient.webhook_url or '-'}>",
        ),
        ("channel", "-" if recipient is None else recipient.channel),
        ("language", "-" if recipient is None else recipient.language),
        ("registrar", _with_address(route.registrar, route.registrar_abuse)),
        ("upstream", route.upstream_abuse or "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    for step in route.trail:
        out.print(f"  - {step}", markup=False)


def _with_address(name: str | None, address: str | None) -> str:
    if not name and not address:
        return "-"
    return f"{name or '?'} <{address or 'no abuse address'}>"


def _lookup_target(target: str) -> tuple[str, str | None]:
    text = target.strip()
    try:
        address = ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{host}/", str(address)
    if "://" not in text:
        text = f"http://{text}/"
    if not text.startswith(("http://", "https://")):
        raise UsageError(f"{target!r}: expected an http(s) URL, a host name or an IP address")
    return text, None


# -- notices -------------------------------------------------------------------------------

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
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    config = load_config()
    with (
        redis_session(config) as session,
        open_takedown(session, config, need_sender=False) as takedown,
    ):
        notices = [
            n
            for n in takedown.store.iter_notices(status)
            if provider is None or n.provider == provider
        ]
    if limit is not None:
        notices = notices[-limit:]
    if as_json:
        out.print_json(data=[n.as_json() for n in notices])
        return
    if not notices:
        out.print("no notices" + (f" in status {status}" if status else ""))
        return
    table = Table(title="notices")
    table.add_column("reference", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("provider", overflow="fold")
    table.add_column("image URL", overflow="fold", ratio=3)
    table.add_column("sent (UTC)", no_wrap=True)
    table.add_column("reminders", justify="right")
    table.add_column("removed after", no_wrap=True)
    for n in notices:
        sent = n.time("sent_at")
        _, upper = n.time_to_removal()
        table.add_row(
            reference_for(n.id),
            n.status,
            n.provider,
            n.hit.url,
            "-" if sent is None else iso(sent).replace("T", " ")[:16],
            str(n.count("reminders")),
            "-" if upper is None else format_duration(upper),
        )
    out.print(table)


@notices_app.command("show")
def notices_show(
    notice_id: Annotated[str, typer.Argument(metavar="ID", help="Notice id, prefix or HL- ref.")],
    as_json: JsonOption = False,
) -> None:
    """Show one notice: the hit, where it was routed, and its whole timeline."""
    config = load_config()
    with (
        redis_session(config) as session,
        open_takedown(session, config, need_sender=False) as takedown,
    ):
        notice = _find(takedown.store, notice_id)
        timeline = takedown.store.timeline(notice.id)
    if as_json:
        data = notice.as_json()
        data["hit"] = notice.hit.as_json()
        data["timeline"] = [event.to_dict() for event in timeline]
        out.print_json(data=data)
        return
    hit = notice.hit
    table = Table(
        show_header=False, box=None, title=f"notice {reference_for(notice.id)} ({notice.id})"
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
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
            ("time to removal", f"between {format_duration(lower)} and {format_duration(upper)}")
        )
    if notice.fields.get("last_error"):
        rows.append(("last error", notice.fields["last_error"]))
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    events = Table(title="timeline")
    events.add_column("time (UTC)", no_wrap=True)
    events.add_column("event", no_wrap=True)
    events.add_column("status", no_wrap=True)
    events.add_column("actor", no_wrap=True)
    events.add_column("detail", overflow="fold")
    for event in timeline:
        events.add_row(
            event.time.replace("T", " ").rstrip("Z"),
            event.event,
            event.status,
            event.actor,
            event.detail,
        )
    out.print(events)


@notices_app.command("resend")
def notices_resend(
    notice_id: Annotated[str, typer.Argument(metavar="ID", help="Notice id, prefix or HL- ref.")],
    as_json: JsonOption = False,
) -> None:
    """Route a notice again and send it (same reference and Message-ID)."""
    config = load_config()
    with redis_session(config) as session, open_takedown(session, config) as takedown:
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


def _find(store: Any, notice_id: str) -> Notice:
    try:
        notice: Notice = store.find(notice_id)
    except NoticeNotFound as exc:
        raise UsageError(str(exc)) from None
    return notice


# -- recheck -------------------------------------------------------------------------------


def recheck(
    once: Annotated[bool, typer.Option("--once", help="Check what is due now, then exit.")] = False,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Check every open notice now, whether due or not."),
    ] = False,
    consumer: ConsumerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-fetch noticed images to verify removal; send reminders and escalate.

    Fetches go through the crawler's safety rules and hashing. 404, 410, 451 or bytes that
    no longer match mean removed; repeated network errors count only after several in a row.
    """
    from crawler.spiders.recheck import run_rechecks  # noqa: PLC0415 - loads Scrapy

    config = load_config()
    outcomes: dict[str, int] = {}
    with (
        redis_session(config) as session,
        open_takedown(session, config, consumer=consumer, need_sender=False) as takedown,
    ):
        book = takedown.recheck_book()
        first_pass = [everything]

        def invalid(notice_id: str, exc: ValueError) -> None:
            err.print(f"{reference_for(notice_id)}: cannot recheck: {exc}", markup=False)

        def poll() -> Sequence[RecheckTarget]:
            take_all = first_pass[0]
            first_pass[0] = False
            return book.claim_due(everything=take_all, on_invalid=invalid)

        def report(result: RecheckResult) -> None:
            outcome = book.apply(result)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if not as_json:
                err.print(
                    f"{reference_for(result.notice_id)} {result.state}: "
                    f"{result.reason} -> {outcome}",
                    markup=False,
                )

        started = time.monotonic()
        run_rechecks(
            poll,
            report,
            once=once or everything,
            settings={"SAFETY_ALLOW_PRIVATE_NETWORKS": config.allow_private_networks},
        )
        summary = {
            "outcomes": outcomes,
            "checked": sum(outcomes.values()),
            "scheduled": book.scheduled_count(),
            "seconds": round(time.monotonic() - started, 1),
        }
    if as_json:
        out.print_json(data=summary)
    else:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing due"
        out.print(f"rechecked {summary['checked']}: {parts}; {summary['scheduled']} scheduled")


# -- stats ---------------------------------------------------------------------------------


def stats(as_json: JsonOption = False) -> None:
    """Per provider: notices sent, removed, median and 90th-percentile time to removal, still
    online. Time to removal runs from the notice to the first check that found it gone."""
    config = load_config()
    with (
        redis_session(config) as session,
        open_takedown(session, config, need_sender=False) as takedown,
    ):
        rows = provider_stats(takedown.store.iter_notices())
        counts = takedown.store.counts()
    if as_json:
        out.print_json(data={"providers": [r.as_dict() for r in rows], "statuses": counts})
        return
    if not rows:
        out.print("no notices yet")
        return
    table = Table(title="time to removal by provider")
    for name, justify in (
        ("provider", "left"),
        ("notices", "right"),
        ("removed", "right"),
        ("median", "right"),
        ("90th pct", "right"),
        ("still online", "right"),
        ("escalated", "right"),
        ("unroutable", "right"),
        ("failed", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        data = r.as_dict()["time_to_removal_s"]
        table.add_row(
            r.provider,
            str(r.notices),
            str(r.removed),
            "-" if data["median"] is None else format_duration(data["median"]),
            "-" if data["p90"] is None else format_duration(data["p90"]),
            str(r.still_online),
            str(r.escalated),
            str(r.unroutable),
            str(r.failed),
        )
    out.print(table)
    out.print(", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)
