"""The two notice-and-takedown daemons: ``hotline notifier`` turns confirmed hits into
delivered notices, ``hotline recheck`` re-fetches noticed images to see whether they are gone
(and sends reminders, escalates). Both run until stopped, or once with ``--once``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

import typer

from hotline.cli.app import (
    AllowNetworkOption,
    AllowPrivateNetworksOption,
    JsonOption,
    check_networks,
    err,
    load_config,
    open_session,
    out,
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
from hotline.cli.render import emit
from hotline.takedownrun import Takedown, open_takedown
from store.rechecks import RecheckResult, RecheckTarget
from takedown.notice import reference_for
from takedown.notifier import NotifierStats
from takedown.retention import Purger, PurgeReport, run_daily

__all__ = ["notifier", "recheck"]

ConsumerOption = Annotated[
    str | None,
    typer.Option(
        "--consumer",
        help="Name of this process in the consumer group (default: the host name). Give each "
        "notifier on one host its own name.",
    ),
]


def notifier(
    once: Annotated[
        bool, typer.Option("--once", help="Handle what is queued now, then exit.")
    ] = False,
    consumer: ConsumerOption = None,
    as_json: JsonOption = False,
    log_format: LogFormatOption = None,
    metrics_port: MetricsPortOption = 0,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Send a takedown notice for every confirmed hit, exactly once per incident.

    Runs until stopped (Ctrl-C or SIGTERM) unless --once is given. Notices go to the provider
    the directory or RDAP names, by SMTP, webhook or Cloudflare's abuse API; those written to
    the outbox directory or prepared for a web form wait (awaiting_manual) until sent by hand
    and marked with `hotline notices mark-sent`. Running, it also purges expired records once
    a day, as `hotline purge` does (one notifier at a time).
    """
    fmt = chosen_log_format(log_format)
    config = load_config()
    with (
        open_session(config) as session,
        open_takedown(session, config, consumer=consumer) as takedown,
        observed(
            "notifier",
            session,
            log_format=fmt,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        ) as metrics,
    ):
        worker = takedown.notifier()
        say(
            fmt,
            f"notifier {worker.consumer}: "
            + ("draining the queue" if once else "waiting for hits (Ctrl-C to stop)"),
            quiet=as_json,
        )

        def progress(stats: NotifierStats) -> None:
            if metrics is not None:
                metrics.count_notifier(stats)
            say(fmt, _stats_line(stats), quiet=as_json, event="notifier_batch")

        with stop_on_signals() as stop:
            if once:
                stats = worker.run(once=once, stop=stop, on_batch=progress)
            else:
                with _daily_purge(takedown, f"notifier@{worker.consumer}", stop, quiet=as_json):
                    stats = worker.run(once=once, stop=stop, on_batch=progress)
            if metrics is not None:
                metrics.count_notifier(stats)
    emit(stats.as_dict(), _stats_line(stats), as_json=as_json)
    if not as_json:
        for notice_id, where in stats.awaiting_manual.items():
            ref = reference_for(notice_id)
            out.print(
                f"{ref}: prepared for sending by hand ({where}); once sent: "
                f"hotline notices mark-sent {ref}",
                markup=False,
            )


@contextmanager
def _daily_purge(
    takedown: Takedown, actor: str, stop: threading.Event, *, quiet: bool
) -> Iterator[None]:
    """Purge expired records now and once a day in a thread, until the block ends."""
    purger = Purger(
        takedown.store.client,
        takedown.store.keys,
        takedown.settings.retention,
        actor=actor,
        stop=stop,
    )

    def reported(report: PurgeReport) -> None:
        if not quiet:
            err.print(f"retention: {report.summary()}", markup=False)

    def failed(exc: Exception) -> None:
        err.print(f"retention: purge failed, retried later: {exc}", markup=False)

    thread = threading.Thread(
        target=run_daily,
        args=(purger, stop),
        kwargs={"on_report": reported, "on_error": failed},
        name="daily-purge",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _stats_line(stats: NotifierStats) -> str:
    parts = [
        f"sent {stats.sent}",
        f"awaiting manual sending {len(stats.awaiting_manual)}",
        f"already sent {stats.already_sent}",
        f"unroutable {stats.unroutable}",
        f"retrying {stats.retrying}",
        f"dead-lettered {stats.dead_lettered}",
    ]
    if stats.resumed:
        parts.append(f"resumed {stats.resumed}")
    if stats.unclassified:
        parts.append(f"unclassified {stats.unclassified} (hotline notices classify)")
    return ", ".join(parts)


# -- recheck -------------------------------------------------------------------------------


def recheck(
    once: Annotated[bool, typer.Option("--once", help="Check what is due now, then exit.")] = False,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Check every open notice now, whether due or not."),
    ] = False,
    allow_private_networks: AllowPrivateNetworksOption = False,
    allow_network: AllowNetworkOption = None,
    user_agent: Annotated[
        str | None,
        typer.Option(
            "--user-agent",
            help="User-Agent of the fetch (default: [notices] user_agent, else the crawl's).",
        ),
    ] = None,
    consumer: ConsumerOption = None,
    as_json: JsonOption = False,
    log_format: LogFormatOption = None,
    metrics_port: MetricsPortOption = 0,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Re-fetch noticed images to verify removal; send reminders and escalate.

    Fetches go through the crawler's safety rules and hashing, as a browser would fetch them.
    A removal (404, 410, 451 or bytes that no longer match) is confirmed by a second check an
    hour later; unreachable only closes a notice after several checks over 72 h. A fetch the
    address policy refuses changes nothing and makes the command exit 1.
    """
    from crawler.spiders.recheck import run_rechecks  # noqa: PLC0415 - loads Scrapy

    fmt = chosen_log_format(log_format)
    config = load_config()
    check_networks(allow_network or [])
    outcomes: dict[str, int] = {}
    with (
        open_session(config) as session,
        open_takedown(session, config, consumer=consumer, need_sender=False) as takedown,
        observed(
            "recheck", session, log_format=fmt, metrics_port=metrics_port, metrics_host=metrics_host
        ) as metrics,
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
            if metrics is not None:
                metrics.recheck_outcomes.labels(outcome).inc()
            say(
                fmt,
                f"{reference_for(result.notice_id)} {result.state}: {result.reason} -> {outcome}",
                quiet=as_json,
                event="recheck",
            )

        started = time.monotonic()
        settings: dict[str, object] = {
            "SAFETY_ALLOW_PRIVATE_NETWORKS": allow_private_networks
            or config.allow_private_networks,
            "SAFETY_ALLOWED_NETWORKS": list(allow_network or ()),
            "LOG_INSTALL_ROOT_HANDLER": False,  # the daemon's own handler (--log-format)
        }
        agent = user_agent or takedown.settings.user_agent
        if agent:
            settings["USER_AGENT"] = agent
        run_rechecks(poll, report, once=once or everything, settings=settings)
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
    refused = outcomes.get("refused", 0)
    if refused:
        err.print(
            f"{refused} fetch(es) refused by the recheck's address policy: a configuration "
            "error, those notices are unchanged (--allow-private-networks or --allow-network)",
            markup=False,
        )
        raise typer.Exit(1)
