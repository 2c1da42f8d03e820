"""``hotline check``: is this set-up ready to run the daemons? Nothing is sent, nothing written.

The checks run in this order, each a row (name, ``ok``/``warn``/``fail``, one line)::

    configuration  the environment and the TOML configuration load (errors name file and
                   field); the hotline identity and the notice templates (no identity: warn,
                   crawls work but no notice can be sent)
    providers      the provider directory and the IP-to-AS table load (how many providers)
    redis          Redis answers within seconds; AOF is on (CONFIG GET appendonly) and
                   maxmemory-policy is noeviction (an evicting Redis loses hits); a managed
                   Redis that refuses CONFIG is a warning
    lists          the stored hash lists, their versions and sizes; each known list has a
                   classification mapping (a fail when the configuration has [classification],
                   else a warning: its notices would wait as unclassified)
    smtp           the relay answers: connect, EHLO, STARTTLS when security is starttls, AUTH
                   when credentials are set, with the configured timeout; no mail is sent
    webhook        HOTLINE_WEBHOOK_SECRET is set and the default URL is usable
    outbox         the outbox directory is writable (or can be created)
    route          with ``--url``: who a notice for that image would go to, decided how, on
                   which channel (as ``hotline providers lookup`` routes it)

A check that needs an earlier one that failed is left out (no directory or lists without the
configuration; no lists or route without Redis). The exit code is that of the first failed
row: 2 for the configuration or the input (a file, a field, the outbox directory), 3 for a
service that cannot be used (Redis unreachable or misconfigured, the mail relay down);
0 when nothing failed (warnings allowed). ``--json`` prints
``{"checks": [{"name", "status", "detail"}, ...], "ok": bool}``.
"""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, cast

import redis
import typer
from rich.table import Column, Table
from rich.text import Text

from hotline.cli.app import JsonOption, open_session, out
from hotline.cli.providers import http_host
from hotline.config import Config
from hotline.errors import InputError, ServiceError, UsageError
from hotline.services import Session
from hotline.takedownrun import OUTBOX_DIR_NAME, open_router
from matchers.lists import ALLOW
from store.connection import mask_url
from store.environment import ENV_WEBHOOK_SECRET
from store.errors import InvalidRedisUrl, RedisUnavailable
from store.lists import ListInfo
from store.text import one_line
from takedown.channels.smtp import SmtpChannel, SmtpSettings
from takedown.channels.webhook import WebhookSettings, display_url
from takedown.directory import ProviderDirectory
from takedown.errors import DeliveryError, DirectoryError, NoticeError
from takedown.ip2asn import Ip2AsnError, IpToAsn
from takedown.model import Channel
from takedown.notice import NoticeRenderer
from takedown.settings import TakedownSettings

__all__ = ["CHECKS", "STATUSES", "CheckRow", "check"]

Status = Literal["ok", "warn", "fail"]
#: The statuses of a row, from good to bad.
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")
#: The checks, in the order they run and are listed.
CHECKS = (
    "configuration",
    "providers",
    "redis",
    "lists",
    "smtp",
    "webhook",
    "outbox",
    "route",
)
#: What Redis must answer to ``CONFIG GET``: hits and notices survive a restart only with AOF,
#: and a Redis that evicts keys under memory pressure silently drops them.
REQUIRED_REDIS_CONFIG = {"appendonly": "yes", "maxmemory-policy": "noeviction"}
#: Exit code of a failed check of the configuration or the input, and of a service.
CONFIG_FAILURE = InputError.exit_code
SERVICE_FAILURE = ServiceError.exit_code

_STYLES: dict[Status, str] = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One check's outcome; ``exit_code`` is what a failed one makes the command exit with."""

    name: str
    status: Status
    detail: str
    exit_code: int = 0

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(slots=True)
class _Report:
    rows: list[CheckRow] = field(default_factory=list)
    trail: tuple[str, ...] = ()  # the route's reasons, printed under the table

    def add(self, name: str, status: Status, detail: str, exit_code: int = 0) -> bool:
        """Record a row; true unless it failed."""
        self.rows.append(CheckRow(name, status, one_line(detail), exit_code))
        return status != "fail"

    def ok(self, name: str, detail: str) -> bool:
        return self.add(name, "ok", detail)

    def warn(self, name: str, detail: str) -> bool:
        return self.add(name, "warn", detail)

    def fail(self, name: str, detail: str, exit_code: int) -> bool:
        return self.add(name, "fail", detail, exit_code)

    @property
    def failed(self) -> list[CheckRow]:
        return [row for row in self.rows if row.status == "fail"]


def check(
    as_json: JsonOption = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Also show what a notice for the image at this URL would do (who receives "
            "it, decided how, on which channel); nothing is sent.",
        ),
    ] = None,
) -> None:
    """Check the configuration, the provider directory, Redis, the hash lists and the
    delivery channels before starting the daemons; exit 0 (warnings allowed), 2 (the
    configuration or input) or 3 (Redis or the mail relay cannot be used)."""
    target = None if url is None else _image_url(url)
    report = _Report()
    _run(report, target)
    if as_json:
        out.print_json(data={"checks": [r.as_dict() for r in report.rows], "ok": not report.failed})
    else:
        out.print(_table(report.rows))
        for step in report.trail:
            out.print(f"  - {step}", markup=False)
    failed = report.failed
    if not failed:
        return
    first = failed[0]
    more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
    message = f"check {first.name} failed: {first.detail}{more}"
    if first.exit_code == SERVICE_FAILURE:
        raise ServiceError(message)
    raise UsageError(message)


def _run(report: _Report, target: str | None) -> None:
    try:
        config = Config.from_env()
    except UsageError as exc:
        report.fail("configuration", str(exc), CONFIG_FAILURE)
        return
    settings = _configuration(report, config)
    directory_ok = settings is not None and _providers(report, settings)
    with ExitStack() as stack:
        session = _redis(report, config, stack)
        if settings is None:
            return
        if session is not None:
            _lists(report, session, settings)
        _smtp(report, settings)
        _webhook(report, settings)
        _outbox(report, settings.outbox_dir or config.data_dir / OUTBOX_DIR_NAME)
        if target is not None and session is not None and directory_ok:
            _route(report, session, settings, config, target)


# -- the checks --------------------------------------------------------------------------


def _configuration(report: _Report, config: Config) -> TakedownSettings | None:
    try:
        settings = config.takedown_settings()
    except UsageError as exc:
        report.fail("configuration", str(exc), CONFIG_FAILURE)
        return None
    identity = settings.identity
    if identity is None:
        report.warn(
            "configuration",
            f"{settings.source}: no [hotline] table: crawls work, but no notice can be sent "
            "(the notifier refuses to start)",
        )
        return settings
    try:
        NoticeRenderer(
            identity, templates_dir=settings.templates_dir, default_language=settings.language
        )
    except NoticeError as exc:  # a broken template, or no such language
        report.fail("configuration", f"{settings.source}: {exc}", CONFIG_FAILURE)
        return None
    report.ok(
        "configuration", f"{settings.source}: notices from {identity.name} <{identity.email}>"
    )
    return settings


def _providers(report: _Report, settings: TakedownSettings) -> bool:
    parts = []
    if settings.directory_path is None:
        if settings.rdap_url is None:
            return report.warn(
                "providers",
                "no provider directory and RDAP is off: only images on the built-in CDN "
                "ranges can be routed; every other notice waits as unroutable",
            )
        parts.append("no provider directory: routed by the built-in CDN ranges and RDAP")
    else:
        try:
            directory = ProviderDirectory.load(settings.directory_path)
        except DirectoryError as exc:
            return report.fail("providers", str(exc), CONFIG_FAILURE)
        parts.append(f"{settings.directory_path}: {len(directory)} providers")
    if settings.ip_to_asn:
        try:
            table = IpToAsn.load(settings.ip_to_asn)
        except Ip2AsnError as exc:
            return report.fail("providers", str(exc), CONFIG_FAILURE)
        parts.append(f"IP-to-AS table: {len(table)} ranges")
    return report.ok("providers", "; ".join(parts))


def _redis(report: _Report, config: Config, stack: ExitStack) -> Session | None:
    """Open Redis for the checks that need it (closed with ``stack``), or None."""
    try:
        session = stack.enter_context(open_session(config))
    except InvalidRedisUrl as exc:
        report.fail("redis", str(exc), CONFIG_FAILURE)
        return None
    except RedisUnavailable as exc:
        report.fail("redis", str(exc), SERVICE_FAILURE)
        return None
    where = mask_url(session.url) if config.redis_url else f"the embedded server {session.url}"
    try:
        version = session.client.info("server").get("redis_version", "?")
        try:
            values = {name: _config_value(session.client, name) for name in REQUIRED_REDIS_CONFIG}
        except redis.ResponseError as exc:  # a managed Redis that does not allow CONFIG
            report.warn(
                "redis",
                f"Redis {version} at {where} answers, but refused CONFIG GET ({one_line(exc)}): "
                "make sure AOF is on and maxmemory-policy is noeviction",
            )
            return session
    except redis.RedisError as exc:
        report.fail("redis", f"Redis at {where} failed: {one_line(exc)}", SERVICE_FAILURE)
        return None
    problems = []
    if values["appendonly"] != "yes":
        problems.append(
            f"appendonly is {values['appendonly'] or 'unset'}: hits and notices written since "
            "the last snapshot are lost when Redis stops (set appendonly yes)"
        )
    policy = values["maxmemory-policy"]
    if policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy or 'unset'}: Redis evicts keys when memory runs "
            "short, and evicted hits are lost (set maxmemory-policy noeviction)"
        )
    if problems:
        report.fail("redis", f"Redis {version} at {where}: {'; '.join(problems)}", SERVICE_FAILURE)
    else:
        report.ok(
            "redis", f"Redis {version} at {where}: appendonly yes, maxmemory-policy noeviction"
        )
    return session


def _lists(report: _Report, session: Session, settings: TakedownSettings) -> None:
    try:
        infos = session.lists().info()
    except redis.RedisError as exc:
        report.fail("lists", f"cannot read the hash lists: {one_line(exc)}", SERVICE_FAILURE)
        return
    if not infos:
        report.warn("lists", "no hash list is stored: crawls match nothing (hotline hashes import)")
        return
    shown = "; ".join(_describe_list(info) for info in infos)
    configured = settings.classification
    unmapped = [
        info.name
        for info in infos
        if info.kind != ALLOW and not configured.get(info.name) and not info.classification
    ]
    unknown = sorted(set(configured) - {info.name for info in infos})
    if unmapped and configured:
        report.fail(
            "lists",
            f"{shown}; no classification for {', '.join(unmapped)}: add it to [classification] "
            f"in {settings.source} (notices would wait as unclassified)",
            CONFIG_FAILURE,
        )
    elif unmapped:
        report.warn(
            "lists",
            f"{shown}; no classification for {', '.join(unmapped)}: notices wait as "
            "unclassified (map it under [classification] or import with --classification)",
        )
    elif unknown:
        report.warn("lists", f"{shown}; [classification] names no stored list {', '.join(unknown)}")
    else:
        report.ok("lists", shown)


def _describe_list(info: ListInfo) -> str:
    kind = ", allow-list" if info.kind == ALLOW else ""
    return f"{info.name} v{info.version} ({info.total} hashes{kind})"


def _smtp(report: _Report, settings: TakedownSettings) -> None:
    if not settings.smtp:
        report.ok("smtp", "not configured: notices to e-mail recipients go to the outbox")
        return
    try:
        options = SmtpSettings(**settings.smtp)
        channel = SmtpChannel(options)  # reads ca_file
    except ValueError as exc:
        report.fail("smtp", f"{settings.source}: [smtp] {exc}", CONFIG_FAILURE)
        return
    relay = f"relay {options.host}:{options.port} ({options.security})"
    try:
        channel.probe()
    except DeliveryError as exc:
        report.fail("smtp", str(exc), SERVICE_FAILURE)
        return
    done = ["connect with TLS" if options.security == "tls" else "connect", "EHLO"]
    if options.security == "starttls":
        done.append("STARTTLS")
    if options.has_credentials:
        done.append(f"AUTH as {options.username}")
    report.ok("smtp", f"{relay}: {', '.join(done)} ok (no mail sent)")


def _webhook(report: _Report, settings: TakedownSettings) -> None:
    if not settings.webhook:
        report.ok(
            "webhook",
            f"not configured ({ENV_WEBHOOK_SECRET} is not set): notices to webhook recipients "
            "go to the outbox",
        )
        return
    try:
        options = WebhookSettings(**settings.webhook)
    except ValueError as exc:
        report.fail("webhook", f"{settings.source}: [webhook] {exc}", CONFIG_FAILURE)
        return
    where = (
        f"default URL {display_url(options.url)}"
        if options.url
        else "no default URL: only providers with their own webhook_url get webhooks"
    )
    report.ok("webhook", f"{ENV_WEBHOOK_SECRET} is set; {where}")


def _outbox(report: _Report, directory: Path) -> None:
    if directory.exists():
        if not directory.is_dir():
            report.fail("outbox", f"{directory}: not a directory", CONFIG_FAILURE)
            return
        probe = directory / f".hotline-check-{secrets.token_hex(8)}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
        except OSError as exc:
            report.fail(
                "outbox", f"{directory}: not writable: {exc.strerror or exc}", CONFIG_FAILURE
            )
            return
        report.ok("outbox", f"{directory}: writable")
        return
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        report.ok("outbox", f"{directory}: created with the first notice ({parent} is writable)")
    else:
        report.fail(
            "outbox", f"{directory}: cannot be created ({parent} is not writable)", CONFIG_FAILURE
        )


def _route(
    report: _Report, session: Session, settings: TakedownSettings, config: Config, target: str
) -> None:
    try:
        with open_router(session, settings, data_dir=config.data_dir) as router:
            route = router.route(target)
    except UsageError as exc:
        report.fail("route", str(exc), CONFIG_FAILURE)
        return
    except redis.RedisError as exc:
        report.fail("route", f"Redis failed: {one_line(exc)}", SERVICE_FAILURE)
        return
    report.trail = route.trail
    recipient = route.recipient
    if recipient is None:
        suggested = (
            f"; suggested {route.suggested.address} (sent only once an analyst approves it)"
            if route.suggested is not None
            else ""
        )
        report.warn(
            "route",
            f"{target}: no recipient found ({route.method}): the notice would wait as "
            f"unroutable{suggested}",
        )
        return
    address = recipient.address or recipient.webhook_url or recipient.form_url or "-"
    report.ok(
        "route",
        f"{target}: to {recipient.provider} <{address}>, decided by {route.method}, "
        f"channel {recipient.channel}{_channel_note(recipient.channel, settings)}",
    )


def _channel_note(channel: Channel, settings: TakedownSettings) -> str:
    """What becomes of a notice on ``channel`` with this configuration."""
    if channel in ("outbox", "form"):
        return " (prepared in the outbox for an analyst to send)"
    configured = {"smtp": settings.smtp, "webhook": settings.webhook}
    if channel in configured and not configured[channel]:
        return f" (no {channel} channel configured: it goes to the outbox instead)"
    return ""


# -- input and output --------------------------------------------------------------------


def _image_url(url: str) -> str:
    """``--url``: an http(s) URL with a host name or IP address."""
    text = url.strip()
    http_host(text, f"--url {url!r}: expected the http(s) URL of an image")
    return text


def _config_value(client: redis.Redis, name: str) -> str:
    """``CONFIG GET name`` as text ("" when the server has no such parameter)."""
    answer = cast("dict[bytes | str, bytes | str]", client.config_get(name))
    value = answer.get(name.encode(), answer.get(name, ""))
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _table(rows: list[CheckRow]) -> Table:
    result = Table(Column("check"), Column("status"), Column("detail", overflow="fold"))
    for row in rows:
        result.add_row(row.name, Text(row.status, style=_STYLES[row.status]), Text(row.detail))
    return result
