"""Delivery channels: how a rendered notice leaves the hotline.

Three channels, one interface (``deliver(notice) -> DeliveryReceipt``), and a dispatcher:

``SmtpChannel``
    Sends ``notice.email`` (a complete RFC 5322 message) through the hotline's mail relay with
    :mod:`smtplib`: envelope sender ``notice.sender``, one recipient
    ``notice.recipient.address``. ``security`` is ``"starttls"`` (default: STARTTLS is
    required, never skipped), ``"tls"`` (TLS from the first byte, port 465) or ``"none"``.
    Certificates are always verified (system CAs plus ``ca_file``). **Credentials never
    travel unencrypted**: a ``username`` with ``security="none"`` is accepted only when the
    relay is on loopback (``127.0.0.0/8``, ``::1``, ``localhost`` -- a local relay or a test
    server) and the settings refuse it otherwise. Line endings are normalised to CRLF (bare
    LFs are a protocol violation that strict relays reject); nothing else is changed. Each
    :meth:`SmtpChannel.deliver` uses its own connection; ``with channel.session() as s``
    keeps one connection for a batch (checked with NOOP before each reuse, re-opened if the
    relay closed it).

``WebhookChannel``
    POSTs the notice as JSON (see :func:`notice_payload`) to ``recipient.webhook_url`` (or
    the configured default URL), with ``Idempotency-Key: <notice_id>.<kind>.<sequence>`` so
    a re-sent notice can be recognised, and a signature header. Connection errors,
    timeouts, 408, 429 and 5xx are retried within one call with exponential backoff (doubling
    from ``backoff``, capped at :data:`MAX_BACKOFF` seconds, with jitter); a ``Retry-After``
    header (seconds or an HTTP date) is honoured up to :data:`RETRY_AFTER_CAP` seconds.
    Redirects are not followed (a POST turned into a GET would look like success). Plain
    ``http://`` is refused except to loopback or with ``allow_plain_http``: a notice names
    the URLs of reported content, which must not cross networks in clear text.

``OutboxChannel``
    Writes ``<notice_id>.<kind>.<sequence>.json`` (the webhook payload, indented) and then
    ``.eml`` (the email bytes as rendered) into a directory, for hotlines that send by hand.
    Each file is written atomically (hidden temporary file in the same directory, fsync,
    rename), mode 0600; a directory the channel creates gets mode 0700 (an existing one keeps
    its mode). Writing the same notice again replaces the files with identical ones.

``Deliverer``
    Picks the channel ``notice.recipient.channel`` names. If that channel is not configured
    the notice fails with a *transient* :class:`~takedown.errors.DeliveryError` (once an
    operator configures the channel the notice goes out), unless ``fallback_to_outbox`` is
    set: then such notices are written to the outbox instead (the embedded set-up's default).

Errors are :class:`~takedown.errors.DeliveryError` with ``permanent`` set when sending the
same message again cannot succeed: an SMTP 5xx reply (also to AUTH), a recipient without an
address or a usable webhook URL, a webhook 4xx other than 408/429, a redirect. SMTP 4xx replies,
connection failures, TLS failures, timeouts and exhausted webhook retries are transient.
Messages are one line and never contain the SMTP password, the webhook secret, or a
webhook URL's user info or query string.

Webhook signature scheme
------------------------
Every POST carries::

    X-Hotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

To check it, a receiver:

1. splits the header on ``,`` into ``key=value`` pairs, takes ``t`` and every ``v1``;
2. computes ``HMAC-SHA256(key=secret as UTF-8, message=ASCII "<t>." followed by the raw
   request body bytes exactly as received)`` -- before any JSON parsing -- as lowercase hex;
3. accepts if it equals one of the ``v1`` values (compare in constant time) and ``t`` is
   within 300 seconds of its own clock (this bounds replays; the ``Idempotency-Key`` header
   detects re-sends of the same notice, which carry a fresh ``t``).

:func:`verify_signature` does exactly this. In shell, for a body saved to ``body.json``::

    printf '%s.' "$t" | cat - body.json | openssl dgst -sha256 -hmac "$SECRET"
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import hmac
import ipaddress
import json
import os
import random
import re
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from store.text import one_line
from takedown.errors import DeliveryError
from takedown.http import make_http_client
from takedown.model import CHANNELS, DeliveryReceipt, OutgoingNotice

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_BACKOFF",
    "RETRY_AFTER_CAP",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE",
    "Deliverer",
    "DeliveryChannel",
    "OutboxChannel",
    "OutboxSettings",
    "SmtpChannel",
    "SmtpSecurity",
    "SmtpSession",
    "SmtpSettings",
    "WebhookChannel",
    "WebhookSettings",
    "display_url",
    "encode_payload",
    "notice_payload",
    "parse_retry_after",
    "sign",
    "signature_header",
    "verify_signature",
]

SmtpSecurity = Literal["none", "starttls", "tls"]
SMTP_SECURITY: tuple[SmtpSecurity, ...] = ("none", "starttls", "tls")

SMTP_PORT = 25
DEFAULT_SMTP_TIMEOUT = 30.0
DEFAULT_WEBHOOK_TIMEOUT = 10.0
DEFAULT_WEBHOOK_ATTEMPTS = 4
DEFAULT_WEBHOOK_BACKOFF = 0.5
#: Longest pause between two webhook attempts computed from the backoff.
MAX_BACKOFF = 8.0
#: Longest pause a ``Retry-After`` header can impose within one ``deliver()``.
RETRY_AFTER_CAP = 60.0
#: Seconds a signature's timestamp may differ from the receiver's clock.
SIGNATURE_TOLERANCE = 300
SIGNATURE_HEADER = "X-Hotline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Characters of a server's reply or a response body quoted in an error message.
EXCERPT_CHARS = 200
#: Bytes of a webhook error response read for that excerpt.
EXCERPT_BYTES = 1024
OUTBOX_DIR_MODE = 0o700
OUTBOX_FILE_MODE = 0o600

_RETRY_STATUSES = frozenset({408, 429})
_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
#: local@domain without whitespace, control characters or angle brackets.
_MAILBOX = re.compile(r"[^\s<>@\x00-\x1f\x7f]+@[^\s<>@\x00-\x1f\x7f]+")


class DeliveryChannel(Protocol):
    """Anything that can deliver a notice (the three channels, the dispatcher, test fakes)."""

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt: ...


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- payload ------------------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot put a {type(value).__name__} into a notice payload")


def notice_payload(notice: OutgoingNotice) -> dict[str, Any]:
    """The JSON object a webhook receives (and the outbox writes next to the ``.eml``)."""
    return {
        "notice_id": notice.notice_id,
        "kind": notice.kind,
        "sequence": notice.sequence,
        "message_id": notice.message_id,
        "subject": notice.subject,
        "text": notice.text,
        "xarf": notice.xarf,
        "recipient": notice.recipient.to_dict(),
    }


def encode_payload(notice: OutgoingNotice) -> bytes:
    """The webhook body: compact, key-sorted UTF-8 JSON, identical for every re-send."""
    return json.dumps(
        notice_payload(notice),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=_jsonable,
    ).encode("utf-8")


# -- signatures ---------------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Hotline-Signature`` value for ``body``, timestamped now unless given."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify_signature(
    secret: str | bytes,
    header: str,
    body: bytes,
    *,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` is a valid, fresh signature of the raw ``body`` under ``secret``.

    For receivers. Several ``v1`` values are allowed (a sender rotating secrets may sign with
    both); the comparison is constant-time. A malformed header is simply invalid.
    """
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            candidates.append(value.lower())
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    valid = False
    for candidate in candidates:
        if _HEX_SHA256.fullmatch(candidate):
            valid |= hmac.compare_digest(expected, candidate)
    return valid


# -- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the hotline's mail relay.

    Raises :class:`ValueError` for settings that cannot work or are unsafe: an unknown
    ``security``, a username without a password (or the reverse), or credentials with
    ``security="none"`` for a relay that is not on loopback.
    """

    host: str
    port: int = SMTP_PORT
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_SMTP_TIMEOUT
    ca_file: str | None = None  # an extra CA to trust (private relays, tests)
    local_hostname: str | None = None  # the EHLO name; smtplib's default is the local FQDN

    def __post_init__(self) -> None:
        if self.security not in SMTP_SECURITY:
            raise ValueError(
                f"SMTP security must be one of {', '.join(SMTP_SECURITY)}, not {self.security!r}"
            )
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port {self.port} is out of range")
        if self.timeout <= 0:
            raise ValueError(f"SMTP timeout must be positive, not {self.timeout}")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password must be given together")
        if self.has_credentials and self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                f"refusing to send SMTP credentials unencrypted to {self.host}: use "
                "security 'starttls' or 'tls' (plaintext AUTH is allowed only on loopback)"
            )

    @property
    def has_credentials(self) -> bool:
        return self.username is not None


def _smtp_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load SMTP ca_file {ca_file}: {exc}") from exc
    return context


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return one_line(text, EXCERPT_CHARS)


def _crlf(data: bytes) -> bytes:
    return _LINE_ENDINGS.sub(b"\r\n", data)


class SmtpChannel:
    """Delivers notices through an SMTP relay (see the module docstring)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._context = _smtp_context(settings.ca_file)

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        """Send one notice over a connection of its own."""
        with self.session() as session:
            return session.deliver(notice)

    def session(self) -> SmtpSession:
        """A context manager that keeps one connection for several notices."""
        return SmtpSession(self.settings, self._context)


class SmtpSession:
    """One SMTP connection, opened on first use and re-opened after a failure.

    After any failed message the connection is dropped (so no half-finished transaction
    leaks into the next one); the next :meth:`deliver` connects again.
    """

    def __init__(self, settings: SmtpSettings, context: ssl.SSLContext) -> None:
        self.settings = settings
        self._context = context
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _where(self) -> str:
        return f"SMTP {self.settings.host}:{self.settings.port}"

    def _error(self, message: str, *, permanent: bool) -> DeliveryError:
        text = f"{self._where()}: {message}"
        password = self.settings.password
        if password:
            text = text.replace(password, "***")
        return DeliveryError(one_line(text, 2 * EXCERPT_CHARS), permanent=permanent)

    def _reply_error(self, stage: str, code: int, reply: bytes | str) -> DeliveryError:
        return self._error(
            f"{stage} refused: {code} {_reply_text(reply)}", permanent=500 <= code < 600
        )

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        address = notice.recipient.address
        if not address:
            raise DeliveryError(
                f"recipient {notice.recipient.provider} has no email address for notice "
                f"{notice.idempotency_key}",
                permanent=True,
            )
        for role, value in (("recipient", address), ("sender", notice.sender)):
            # Addresses may come from RDAP: never let one smuggle a line into the SMTP dialogue.
            if not _MAILBOX.fullmatch(value):
                raise DeliveryError(
                    f"{role} address {value!r} of notice {notice.idempotency_key} is not a mailbox",
                    permanent=True,
                )
        stage = "connect"
        try:
            if self._smtp is not None and not self._alive(self._smtp):
                self._drop()  # the relay closed an idle connection between two messages
            if self._smtp is None:
                self._smtp = self._connect()
            smtp = self._smtp
            stage = "send"
            code, reply = self._send(smtp, notice, address)
        except DeliveryError:
            self._drop()
            raise
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise self._reply_error(stage, exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            what = one_line(exc, EXCERPT_CHARS)
            raise self._error(f"{stage} failed: {what}", permanent=False) from exc
        return DeliveryReceipt(
            channel="smtp", destination=address, detail=f"{code} {_reply_text(reply)}"
        )

    @staticmethod
    def _alive(smtp: smtplib.SMTP) -> bool:
        """A NOOP round trip on a connection kept from an earlier message."""
        try:
            code, _ = smtp.noop()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(
                s.host,
                s.port,
                local_hostname=s.local_hostname,
                timeout=s.timeout,
                context=self._context,
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout)
        try:
            self._prepare(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _prepare(self, smtp: smtplib.SMTP) -> None:
        s = self.settings
        try:
            smtp.ehlo_or_helo_if_needed()
        except smtplib.SMTPResponseException as exc:
            raise self._reply_error("EHLO", exc.smtp_code, exc.smtp_error) from exc
        if s.security == "starttls":
            if not smtp.has_extn("starttls"):
                # Never fall back to plaintext: this is a misconfigured relay or a downgrade.
                raise self._error("the server does not offer STARTTLS", permanent=False)
            code, reply = smtp.starttls(context=self._context)
            if code != 220:
                raise self._reply_error("STARTTLS", code, reply)
            smtp.ehlo()
        if s.username is None or s.password is None:
            return
        encrypted = isinstance(smtp.sock, ssl.SSLSocket)
        if not encrypted and not (s.security == "none" and _is_loopback(s.host)):
            raise self._error(
                "refusing to send credentials over an unencrypted connection", permanent=False
            )
        if not smtp.has_extn("auth"):
            raise self._error(
                "credentials are configured but the server offers no AUTH", permanent=False
            )
        try:
            smtp.login(s.username, s.password)
        except smtplib.SMTPResponseException as exc:
            raise self._reply_error(f"AUTH as {s.username}", exc.smtp_code, exc.smtp_error) from exc

    def _send(self, smtp: smtplib.SMTP, notice: OutgoingNotice, address: str) -> tuple[int, bytes]:
        data = _crlf(notice.email)
        options: list[str] = []
        if not data.isascii():
            if not smtp.has_extn("8bitmime"):
                raise self._error(
                    "the message has 8-bit content and the server does not offer 8BITMIME",
                    permanent=True,
                )
            options.append("BODY=8BITMIME")
        if not (notice.sender + address).isascii():
            if not smtp.has_extn("smtputf8"):
                raise self._error(
                    "an address is not ASCII and the server does not offer SMTPUTF8",
                    permanent=True,
                )
            options.append("SMTPUTF8")
        code, reply = smtp.mail(notice.sender, options)
        if code != 250:
            raise self._reply_error(f"MAIL FROM <{notice.sender}>", code, reply)
        code, reply = smtp.rcpt(address)
        if code not in (250, 251):
            raise self._reply_error(f"RCPT TO <{address}>", code, reply)
        code, reply = smtp.data(data)
        if code != 250:
            raise self._reply_error("DATA", code, reply)
        return code, reply


# -- webhook ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """Webhook defaults. ``url`` is used for recipients without their own ``webhook_url``."""

    url: str | None = None
    secret: str = field(repr=False)
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    attempts: int = DEFAULT_WEBHOOK_ATTEMPTS
    backoff: float = DEFAULT_WEBHOOK_BACKOFF
    #: Allow ``http://`` URLs to hosts other than loopback (notices name the URLs of reported
    #: content; in clear text anyone on the path learns them). Off by default.
    allow_plain_http: bool = False

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("the webhook secret is empty")
        if self.attempts < 1:
            raise ValueError(f"webhook attempts must be at least 1, not {self.attempts}")
        if self.timeout <= 0:
            raise ValueError(f"webhook timeout must be positive, not {self.timeout}")
        if self.backoff < 0:
            raise ValueError(f"webhook backoff must not be negative, not {self.backoff}")
        if self.url is not None:
            problem = _webhook_url_problem(self.url, allow_plain_http=self.allow_plain_http)
            if problem:
                raise ValueError(problem)


def _webhook_url_problem(url: str, *, allow_plain_http: bool) -> str | None:
    """Why ``url`` cannot receive notices, or None when it can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"webhook URL {display_url(url)} cannot be parsed"
    if parts.scheme not in ("https", "http") or not host:
        return f"webhook URL {display_url(url)} is not an http(s) URL with a host"
    if parts.scheme == "http" and not allow_plain_http and not _is_loopback(host):
        return (
            f"refusing to send notices over plain http to {display_url(url)}: use https "
            "(plain http is allowed on loopback, or with allow_plain_http)"
        )
    return None


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe for logs, errors and receipts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class WebhookChannel:
    """POSTs signed notices to abuse-desk webhooks (see the module docstring).

    ``http`` defaults to a client from :func:`takedown.http.make_http_client` that this
    channel owns and :meth:`close` closes; a client passed in is left open. ``sleep`` is
    called with each pause between attempts (tests pass a recorder).
    """

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._owns_http = http is None
        self._http = (
            make_http_client(timeout=settings.timeout, follow_redirects=False)
            if http is None
            else http
        )
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WebhookChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """The pause after failed attempt ``attempt`` (1-based): doubling, capped, jittered."""
        ceiling = min(self.settings.backoff * 2.0 ** (attempt - 1), MAX_BACKOFF)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        url = notice.recipient.webhook_url or self.settings.url
        if not url:
            raise DeliveryError(
                f"recipient {notice.recipient.provider} has no webhook URL and no default "
                "webhook URL is configured",
                permanent=True,
            )
        shown = display_url(url)
        problem = _webhook_url_problem(url, allow_plain_http=self.settings.allow_plain_http)
        if problem:
            raise DeliveryError(f"recipient {notice.recipient.provider}: {problem}", permanent=True)
        body = encode_payload(notice)
        attempts = self.settings.attempts
        last = ""
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(url, shown, notice, body)
            if isinstance(outcome, int):
                detail = f"HTTP {outcome}" + (f" after {attempt} attempts" if attempt > 1 else "")
                return DeliveryReceipt(channel="webhook", destination=shown, detail=detail)
            last = outcome.reason
            if attempt < attempts:
                pause = self.backoff(attempt)
                if outcome.retry_after is not None:
                    pause = max(pause, min(outcome.retry_after, RETRY_AFTER_CAP))
                self._sleep(pause)
        raise DeliveryError(
            f"webhook {shown}: gave up after {attempts} attempts; last: {last}", permanent=False
        )

    def _attempt(self, url: str, shown: str, notice: OutgoingNotice, body: bytes) -> int | _Retry:
        """One signed POST: the status if accepted, a :class:`_Retry` if worth retrying.

        Raises :class:`DeliveryError` (permanent) when retrying cannot help.
        """
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: notice.idempotency_key,
            SIGNATURE_HEADER: signature_header(self.settings.secret, body),
        }
        try:
            with self._http.stream(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=self.settings.timeout,
                follow_redirects=False,
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return status
                excerpt = _excerpt(response)
                if status in _RETRY_STATUSES or status >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return _Retry(f"HTTP {status}{excerpt}", retry_after)
                if 300 <= status < 400:
                    location = display_url(response.headers.get("Location", ""))
                    raise DeliveryError(
                        f"webhook {shown} answered HTTP {status} redirecting to {location}; "
                        "configure the final URL",
                        permanent=True,
                    )
                raise DeliveryError(
                    f"webhook {shown} refused the notice: HTTP {status}{excerpt}", permanent=True
                )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise DeliveryError(
                f"webhook URL {shown} is unusable: {one_line(str(exc), EXCERPT_CHARS)}",
                permanent=True,
            ) from exc
        except httpx.TimeoutException:
            return _Retry(f"timed out after {self.settings.timeout} s")
        except httpx.TransportError as exc:
            return _Retry(f"{type(exc).__name__}: {one_line(str(exc), EXCERPT_CHARS)}")


@dataclass(frozen=True, slots=True)
class _Retry:
    """Why a webhook attempt failed in a way worth retrying."""

    reason: str
    retry_after: float | None = None


def _excerpt(response: httpx.Response) -> str:
    """``": <start of the body>"`` for error messages, reading at most EXCERPT_BYTES."""
    chunk = b""
    # An unreadable body (reset, bad encoding) only costs the excerpt, not the status.
    with contextlib.suppress(httpx.HTTPError):
        for piece in response.iter_bytes():
            chunk += piece
            if len(chunk) >= EXCERPT_BYTES:
                break
    text = one_line(chunk[:EXCERPT_BYTES].decode("utf-8", "replace"), EXCERPT_CHARS)
    return f": {text}" if text else ""


# -- outbox -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    directory: Path


class OutboxChannel:
    """Writes notices as files for sending by hand (see the module docstring)."""

    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings

    def paths(self, notice: OutgoingNotice) -> tuple[Path, Path]:
        """The ``(.eml, .json)`` paths for ``notice``."""
        stem = f"{notice.notice_id}.{notice.kind}.{notice.sequence}"
        if not _SAFE_STEM.fullmatch(stem) or ".." in stem:
            raise DeliveryError(
                f"notice id {notice.notice_id!r} cannot be used as a file name", permanent=True
            )
        directory = self.settings.directory
        return directory / f"{stem}.eml", directory / f"{stem}.json"

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        eml, meta = self.paths(notice)
        payload = json.dumps(
            notice_payload(notice), sort_keys=True, ensure_ascii=False, indent=2, default=_jsonable
        )
        try:
            self.settings.directory.mkdir(mode=OUTBOX_DIR_MODE, parents=True, exist_ok=True)
            # The .eml goes last: whoever watches for it finds the .json already there.
            _write_atomic(meta, (payload + "\n").encode("utf-8"))
            _write_atomic(eml, notice.email)
            _fsync_directory(self.settings.directory)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write notice {notice.idempotency_key} to outbox "
                f"{self.settings.directory}: {one_line(exc.strerror or str(exc), EXCERPT_CHARS)}",
                permanent=False,
            ) from exc
        return DeliveryReceipt(
            channel="outbox", destination=str(eml), detail=f"wrote {eml.name} and {meta.name}"
        )


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file in the same directory."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, OUTBOX_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable (on POSIX a directory is synced through a read-only fd)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- dispatch -----------------------------------------------------------------------------------


class Deliverer:
    """Sends each notice through the channel its recipient asks for.

    A channel that is not configured makes :meth:`deliver` raise a transient
    :class:`DeliveryError` -- once an operator configures it, the retried notice goes out --
    unless ``fallback_to_outbox`` is set, in which case the notice is written to the outbox
    (this needs an outbox; the embedded set-up uses it so nothing is lost before mail is set
    up). An unknown channel name is a permanent error.
    """

    def __init__(
        self,
        smtp: SmtpChannel | None = None,
        webhook: WebhookChannel | None = None,
        outbox: OutboxChannel | None = None,
        *,
        fallback_to_outbox: bool = False,
    ) -> None:
        if fallback_to_outbox and outbox is None:
            raise ValueError("fallback_to_outbox needs an outbox channel")
        self.smtp = smtp
        self.webhook = webhook
        self.outbox = outbox
        self.fallback_to_outbox = fallback_to_outbox

    def _channels(self) -> dict[str, DeliveryChannel | None]:
        return {"smtp": self.smtp, "webhook": self.webhook, "outbox": self.outbox}

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        wanted = notice.recipient.channel
        if wanted not in CHANNELS:
            raise DeliveryError(
                f"recipient {notice.recipient.provider} wants unknown channel {wanted!r}",
                permanent=True,
            )
        channel = self._channels()[wanted]
        if channel is not None:
            return channel.deliver(notice)
        if self.fallback_to_outbox and self.outbox is not None:
            receipt = self.outbox.deliver(notice)
            return replace(receipt, detail=f"{receipt.detail} (no {wanted} channel configured)")
        raise DeliveryError(
            f"recipient {notice.recipient.provider} wants channel {wanted!r} but no {wanted} "
            "is configured",
            permanent=False,
        )

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
