"""The webhook channel: a notice as a signed JSON POST to an abuse desk's endpoint.

:class:`WebhookChannel` POSTs the notice as JSON (see
:func:`~takedown.channels.base.notice_payload`) to ``recipient.webhook_url`` (or the
configured default URL), with ``Idempotency-Key: <notice_id>.<kind>.<sequence>`` so a re-sent
notice can be recognised, and a signature header (the scheme, and the receiver's check, are in
:mod:`takedown.channels.signature`). Connection errors, timeouts, 408, 429 and 5xx are retried
within one call with exponential backoff (doubling from ``backoff``, capped at
:data:`MAX_BACKOFF` seconds, with jitter); a ``Retry-After`` header (seconds or an HTTP date) is
honoured up to :data:`RETRY_AFTER_CAP` seconds. Redirects are not followed (a POST turned into
a GET would look like success). Plain ``http://`` is refused except to loopback or with
``allow_plain_http``: a notice names the URLs of reported content, which must not cross
networks in clear text.

Errors are :class:`~takedown.errors.DeliveryError`: permanent for a recipient without a usable
webhook URL, a 4xx answer other than 408/429, or a redirect; transient once the retries are
exhausted. Messages never contain the secret, nor a URL's user info or query string
(:func:`display_url`).
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import ClassVar, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from store.addresses import AddressPolicy
from takedown.channels.base import encode_payload, excerpt, is_loopback
from takedown.channels.signature import SIGNATURE_HEADER, signature_header
from takedown.errors import DeliveryError
from takedown.http import DEFAULT_HTTP_TIMEOUT, make_http_client, read_at_most
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = [
    "DEFAULT_WEBHOOK_ATTEMPTS",
    "DEFAULT_WEBHOOK_BACKOFF",
    "DEFAULT_WEBHOOK_TIMEOUT",
    "EXCERPT_BYTES",
    "IDEMPOTENCY_HEADER",
    "MAX_BACKOFF",
    "RETRY_AFTER_CAP",
    "RetryingHttpChannel",
    "WebhookChannel",
    "WebhookSettings",
    "display_url",
    "parse_retry_after",
]

DEFAULT_WEBHOOK_TIMEOUT = DEFAULT_HTTP_TIMEOUT
DEFAULT_WEBHOOK_ATTEMPTS = 4
DEFAULT_WEBHOOK_BACKOFF = 0.5
#: Longest pause between two webhook attempts computed from the backoff.
MAX_BACKOFF = 8.0
#: Longest pause a ``Retry-After`` header can impose within one ``deliver()``.
RETRY_AFTER_CAP = 60.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Bytes of an error response read for the excerpt quoted in the error message.
EXCERPT_BYTES = 1024

_RETRY_STATUSES = frozenset({408, 429})


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
    if parts.scheme == "http" and not allow_plain_http and not is_loopback(host):
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


class RetryingSettings(Protocol):
    """What :class:`RetryingHttpChannel` reads from a channel's settings."""

    @property
    def timeout(self) -> float: ...

    @property
    def backoff(self) -> float: ...


class RetryingHttpChannel:
    """What the HTTP channels (webhook, Cloudflare's API) share: an HTTP client the channel
    owns unless one is passed in (a client passed in is left open by :meth:`close`), and the
    pause between attempts (:meth:`backoff`, slept through ``sleep``: tests pass a recorder).
    """

    def __init__(
        self,
        settings: RetryingSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: AddressPolicy | None = None,
    ) -> None:
        self._owns_http = http is None
        self._http = (
            make_http_client(timeout=settings.timeout, follow_redirects=False, policy=policy)
            if http is None
            else http
        )
        self._backoff_base = settings.backoff
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """The pause after failed attempt ``attempt`` (1-based): doubling, capped, jittered."""
        ceiling = min(self._backoff_base * 2.0 ** (attempt - 1), MAX_BACKOFF)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


class WebhookChannel(RetryingHttpChannel):
    """POSTs signed notices to abuse-desk webhooks (see the module docstring).

    ``http`` defaults to a client from :func:`takedown.http.make_http_client` that this
    channel owns and :meth:`close` closes; a client passed in is left open. ``sleep`` is
    called with each pause between attempts (tests pass a recorder).
    """

    name: ClassVar[Channel] = "webhook"

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: AddressPolicy | None = None,
    ) -> None:
        super().__init__(settings, http=http, sleep=sleep, policy=policy)
        self.settings = settings

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
                return DeliveryReceipt(channel=self.name, destination=shown, detail=detail)
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
                detail = _body_excerpt(response)
                if status in _RETRY_STATUSES or status >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return _Retry(f"HTTP {status}{detail}", retry_after)
                if 300 <= status < 400:
                    location = display_url(response.headers.get("Location", ""))
                    raise DeliveryError(
                        f"webhook {shown} answered HTTP {status} redirecting to {location}; "
                        "configure the final URL",
                        permanent=True,
                    )
                raise DeliveryError(
                    f"webhook {shown} refused the notice: HTTP {status}{detail}", permanent=True
                )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise DeliveryError(
                f"webhook URL {shown} is unusable: {excerpt(str(exc))}",
                permanent=True,
            ) from exc
        except httpx.TimeoutException:
            return _Retry(f"timed out after {self.settings.timeout} s")
        except httpx.TransportError as exc:
            return _Retry(f"{type(exc).__name__}: {excerpt(str(exc))}")


@dataclass(frozen=True, slots=True)
class _Retry:
    """Why a webhook attempt failed in a way worth retrying."""

    reason: str
    retry_after: float | None = None


def _body_excerpt(response: httpx.Response) -> str:
    """``": <start of the body>"`` for error messages, reading at most EXCERPT_BYTES."""
    body = bytearray()
    # An unreadable body (reset, bad encoding) only costs the excerpt, not the status.
    with contextlib.suppress(httpx.HTTPError):
        read_at_most(response, EXCERPT_BYTES, into=body)
    text = excerpt(bytes(body[:EXCERPT_BYTES]))
    return f": {text}" if text else ""
