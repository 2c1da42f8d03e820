"""The Cloudflare channel: a notice as a report to Cloudflare's abuse-reports API.

Cloudflare answers e-mailed complaints with an auto-reply pointing to its abuse form and API.
:class:`CloudflareChannel` submits the notice as a CSAM report::

    POST {api_url}/accounts/{account_id}/abuse-reports/abuse_children
    Authorization: Bearer {api token}
    Content-Type: application/json

The body follows Cloudflare's API reference for the CSAM report type (``act:
abuse_children``): ``act``, ``email`` and ``email2`` (the hotline's address, twice as the API
asks), ``name`` (the hotline), ``urls`` (the URL to remove: the image, or for an inlined image
the page), ``justification`` (the notice text, at most :data:`JUSTIFICATION_MAX` characters),
``host_notification``, ``ncmec_notification`` and ``owner_notification`` (``[cloudflare]``
settings), and the optional ``title`` (the subject) and ``comments`` (the notice's Message-ID
and X-ARF report id, so Cloudflare's copy can be matched to the hotline's record). Nothing
else: no field is sent that the API reference does not list for this report type. The answer
is Cloudflare's usual envelope (``success``, ``errors``, ``result``); ``result`` is recorded
in the receipt (the timeline) as the report's reference.

**Idempotency.** Cloudflare documents no idempotency key for this endpoint, so the channel
keeps its own record, per message (notice id, kind, sequence), in a :class:`ReportLedger`
(in production the notice's Redis hash, :class:`RedisReportLedger`): *submitting* before the
POST, *reported* with the result after a 2xx. A message already reported is not posted again
(the receipt says so). A message found *submitting* -- the process died after posting, or the
answer was lost to a read timeout or a dropped connection -- may already be with Cloudflare:
it is not posted again automatically; the delivery fails permanently with a message saying
so and the record is cleared, so an analyst who has checked Cloudflare's dashboard can
``hotline notices resend`` it (or ``mark-sent`` nothing: the notice is then ``failed``).

**Errors** are :class:`~takedown.errors.DeliveryError`: a 4xx answer other than 408/429 is
permanent (a bad token, a refused report); 408, 429 and 5xx answers and connection failures
are retried within one call with capped, jittered backoff (``Retry-After`` honoured up to
:data:`~takedown.channels.webhook.RETRY_AFTER_CAP` seconds) and transient once the attempts
are used up. Messages are one line and never contain the token.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, cast, get_args

import httpx
import redis

from store.keys import Keys
from store.text import text
from takedown.channels.base import excerpt, is_loopback
from takedown.channels.webhook import (
    RETRY_AFTER_CAP,
    RetryingHttpChannel,
    display_url,
    parse_retry_after,
)
from takedown.errors import DeliveryError
from takedown.http import DEFAULT_HTTP_TIMEOUT, read_at_most
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = [
    "CSAM_REPORT_TYPE",
    "DEFAULT_CLOUDFLARE_API_URL",
    "DEFAULT_CLOUDFLARE_ATTEMPTS",
    "DEFAULT_CLOUDFLARE_BACKOFF",
    "DEFAULT_CLOUDFLARE_TIMEOUT",
    "DEFAULT_HOST_NOTIFICATION",
    "DEFAULT_NCMEC_NOTIFICATION",
    "DEFAULT_OWNER_NOTIFICATION",
    "JUSTIFICATION_MAX",
    "NOTIFICATIONS",
    "CloudflareChannel",
    "CloudflareSettings",
    "Notification",
    "RedisReportLedger",
    "ReportLedger",
    "report_body",
]

DEFAULT_CLOUDFLARE_API_URL = "https://api.cloudflare.com/client/v4"
#: The report type (path parameter and ``act``) of a child sexual abuse material report.
CSAM_REPORT_TYPE = "abuse_children"
DEFAULT_CLOUDFLARE_TIMEOUT = DEFAULT_HTTP_TIMEOUT
DEFAULT_CLOUDFLARE_ATTEMPTS = 4
DEFAULT_CLOUDFLARE_BACKOFF = 0.5

#: Who Cloudflare tells about the report: ``send`` (with the reporter's contact details),
#: ``send-anon`` (without them) or ``none``. The API accepts only ``send`` and ``send-anon``
#: for the host and NCMEC notifications of a CSAM report; ``none`` only for the owner's.
Notification = Literal["send", "send-anon", "none"]
NOTIFICATIONS: tuple[Notification, ...] = get_args(Notification)
#: Forward the report to the hosting provider behind Cloudflare: the point of the notice.
DEFAULT_HOST_NOTIFICATION: Notification = "send"
#: Let Cloudflare pass the report on to NCMEC, as it does for CSAM reports.
DEFAULT_NCMEC_NOTIFICATION: Notification = "send"
#: Tell the website's owner, but without the hotline's contact details.
DEFAULT_OWNER_NOTIFICATION: Notification = "send-anon"

#: The API's limits on the free-text fields (characters).
JUSTIFICATION_MAX = 5000
COMMENTS_MAX = 2000
TITLE_MAX = 255
NAME_MAX = 255
#: Bytes of an answer read (for the result, or an error's excerpt).
ANSWER_BYTES = 16 * 1024

_ACCOUNT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_RETRY_STATUSES = frozenset({408, 429})
_TRUNCATED = " [...]"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudflareSettings:
    """The account, its API token (from the environment only) and the report's options.

    ``reporter_name`` and ``reporter_email`` are the hotline's (``[hotline]``).
    """

    account_id: str
    api_token: str = field(repr=False)
    reporter_name: str
    reporter_email: str
    api_url: str = DEFAULT_CLOUDFLARE_API_URL
    host_notification: Notification = DEFAULT_HOST_NOTIFICATION
    ncmec_notification: Notification = DEFAULT_NCMEC_NOTIFICATION
    owner_notification: Notification = DEFAULT_OWNER_NOTIFICATION
    timeout: float = DEFAULT_CLOUDFLARE_TIMEOUT
    attempts: int = DEFAULT_CLOUDFLARE_ATTEMPTS
    backoff: float = DEFAULT_CLOUDFLARE_BACKOFF

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.fullmatch(self.account_id):
            raise ValueError(
                "the Cloudflare account id must be 1 to 32 letters and digits, "
                f"not {self.account_id!r}"
            )
        if not self.api_token.strip():
            raise ValueError("the Cloudflare API token is empty")
        if not self.reporter_name.strip() or "@" not in self.reporter_email:
            raise ValueError("a Cloudflare report needs the hotline's name and e-mail address")
        for name in ("host_notification", "ncmec_notification"):
            if getattr(self, name) not in ("send", "send-anon"):
                raise ValueError(
                    f"{name} must be 'send' or 'send-anon', not {getattr(self, name)!r}"
                )
        if self.owner_notification not in NOTIFICATIONS:
            raise ValueError(
                "owner_notification must be 'send', 'send-anon' or 'none', "
                f"not {self.owner_notification!r}"
            )
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        if self.backoff < 0:
            raise ValueError(f"backoff must not be negative, not {self.backoff}")
        try:
            parts = httpx.URL(self.api_url)
        except httpx.InvalidURL:
            raise ValueError(f"api_url {self.api_url!r} cannot be parsed") from None
        if parts.scheme not in ("https", "http") or not parts.host:
            raise ValueError(f"api_url {display_url(self.api_url)} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.host):
            raise ValueError(
                f"api_url {display_url(self.api_url)} is plain http: the API token and the "
                "reported URLs must not cross networks in clear text (use https)"
            )

    @property
    def endpoint(self) -> str:
        """The URL reports are POSTed to."""
        base = self.api_url.rstrip("/")
        return f"{base}/accounts/{self.account_id}/abuse-reports/{CSAM_REPORT_TYPE}"


class ReportLedger(Protocol):
    """Where the channel remembers, per message, that it is submitting or has reported it.

    ``get`` returns ``None``, ``"submitting"`` or ``"reported:<result>"``.
    """

    def get(self, notice: OutgoingNotice) -> str | None: ...

    def set(self, notice: OutgoingNotice, state: str) -> None: ...

    def clear(self, notice: OutgoingNotice) -> None: ...


class _MemoryLedger:
    """Per-process ledger: the default when no Redis ledger is given (no crash safety)."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    def get(self, notice: OutgoingNotice) -> str | None:
        return self._states.get(notice.idempotency_key)

    def set(self, notice: OutgoingNotice, state: str) -> None:
        self._states[notice.idempotency_key] = state

    def clear(self, notice: OutgoingNotice) -> None:
        self._states.pop(notice.idempotency_key, None)


class RedisReportLedger:
    """The ledger in the notice's own Redis hash: field ``cloudflare:<kind>.<sequence>``."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    @staticmethod
    def field_name(notice: OutgoingNotice) -> str:
        return f"cloudflare:{notice.kind}.{notice.sequence}"

    def get(self, notice: OutgoingNotice) -> str | None:
        raw = self.client.hget(self.keys.notice(notice.notice_id), self.field_name(notice))
        return None if raw is None else text(cast("bytes", raw))

    def set(self, notice: OutgoingNotice, state: str) -> None:
        self.client.hset(self.keys.notice(notice.notice_id), self.field_name(notice), state)

    def clear(self, notice: OutgoingNotice) -> None:
        self.client.hdel(self.keys.notice(notice.notice_id), self.field_name(notice))


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - len(_TRUNCATED)] + _TRUNCATED


def report_body(notice: OutgoingNotice, settings: CloudflareSettings) -> dict[str, Any]:
    """The JSON object POSTed for ``notice`` (see the module docstring for each field)."""
    url = notice.xarf.get("url")
    if not isinstance(url, str) or not url:
        raise DeliveryError(
            f"notice {notice.idempotency_key} names no URL to report", permanent=True
        )
    report_id = notice.xarf.get("report_id")
    comments = f"Message-ID {notice.message_id}" + (
        f"; X-ARF report_id {report_id}" if report_id else ""
    )
    return {
        "act": CSAM_REPORT_TYPE,
        "email": settings.reporter_email,
        "email2": settings.reporter_email,
        "name": _cut(settings.reporter_name, NAME_MAX),
        "urls": url,
        "justification": _cut(notice.text, JUSTIFICATION_MAX),
        "host_notification": settings.host_notification,
        "ncmec_notification": settings.ncmec_notification,
        "owner_notification": settings.owner_notification,
        "title": _cut(notice.subject, TITLE_MAX),
        "comments": _cut(comments, COMMENTS_MAX),
    }


@dataclass(frozen=True, slots=True)
class _Retry:
    reason: str
    retry_after: float | None = None


class _Ambiguous(Exception):
    """The request may have reached Cloudflare but no answer came back."""


class CloudflareChannel(RetryingHttpChannel):
    """Submits notices to Cloudflare's abuse-reports API (see the module docstring).

    ``http`` defaults to a client this channel owns and :meth:`close` closes; ``ledger``
    defaults to a per-process one (pass a :class:`RedisReportLedger` for crash safety);
    ``sleep`` is called with each pause between attempts.
    """

    name: ClassVar[Channel] = "cloudflare"

    def __init__(
        self,
        settings: CloudflareSettings,
        *,
        ledger: ReportLedger | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(settings, http=http, sleep=sleep)
        self.settings = settings
        self.ledger: ReportLedger = ledger if ledger is not None else _MemoryLedger()

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        endpoint = self.settings.endpoint
        shown = display_url(endpoint)
        state = self.ledger.get(notice)
        if state is not None and state.startswith("reported:"):
            return DeliveryReceipt(
                channel=self.name,
                destination=shown,
                detail=f"report accepted earlier (result: {state.removeprefix('reported:')}); "
                "not posted again",
            )
        if state is not None:
            self.ledger.clear(notice)
            raise DeliveryError(
                f"an earlier submission of {notice.idempotency_key} to Cloudflare was "
                "interrupted and may have been received; not posting it again automatically: "
                "check the account's abuse reports, then `hotline notices resend` if it is "
                "not there",
                permanent=True,
            )
        body = json.dumps(report_body(notice, self.settings), ensure_ascii=False).encode()
        attempts = self.settings.attempts
        last = ""
        for attempt in range(1, attempts + 1):
            self.ledger.set(notice, "submitting")
            try:
                outcome = self._attempt(endpoint, shown, body)
            except _Ambiguous as exc:
                # Keep "submitting": the next try must not post blindly.
                raise DeliveryError(
                    f"Cloudflare {shown}: {exc}; the report may have been received",
                    permanent=False,
                ) from None
            except DeliveryError:
                self.ledger.clear(notice)
                raise
            if isinstance(outcome, str):
                self.ledger.set(notice, f"reported:{outcome}")
                detail = f"report accepted (result: {outcome})" + (
                    f" after {attempt} attempts" if attempt > 1 else ""
                )
                return DeliveryReceipt(channel=self.name, destination=shown, detail=detail)
            self.ledger.clear(notice)
            last = outcome.reason
            if attempt < attempts:
                pause = self.backoff(attempt)
                if outcome.retry_after is not None:
                    pause = max(pause, min(outcome.retry_after, RETRY_AFTER_CAP))
                self._sleep(pause)
        raise DeliveryError(
            f"Cloudflare {shown}: gave up after {attempts} attempts; last: {last}",
            permanent=False,
        )

    def _attempt(self, endpoint: str, shown: str, body: bytes) -> str | _Retry:
        """One POST: the report's reference if accepted, a :class:`_Retry` if worth retrying.

        Raises :class:`DeliveryError` (permanent) when retrying cannot help and
        :class:`_Ambiguous` when the request may have arrived but no answer did.
        """
        headers = {
            "Authorization": f"Bearer {self.settings.api_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            with self._http.stream(
                "POST",
                endpoint,
                content=body,
                headers=headers,
                timeout=self.settings.timeout,
                follow_redirects=False,
            ) as response:
                status = response.status_code
                answer = bytearray()
                read_at_most(response, ANSWER_BYTES, into=answer)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return _Retry(f"{type(exc).__name__}: {excerpt(str(exc))}")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise DeliveryError(
                f"Cloudflare API URL {shown} is unusable: {excerpt(str(exc))}", permanent=True
            ) from exc
        except httpx.TimeoutException:
            raise _Ambiguous(f"no answer within {self.settings.timeout} s") from None
        except httpx.TransportError as exc:
            raise _Ambiguous(f"{type(exc).__name__}: {excerpt(str(exc))}") from None
        envelope = _envelope(bytes(answer))
        if 200 <= status < 300:
            if envelope.get("success") is False:
                raise DeliveryError(
                    f"Cloudflare {shown} answered HTTP {status} but refused the report: "
                    f"{_errors(envelope, answer)}",
                    permanent=True,
                )
            return _reference(envelope)
        if status in _RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return _Retry(f"HTTP {status}: {_errors(envelope, answer)}", retry_after)
        if 300 <= status < 400:
            raise DeliveryError(
                f"Cloudflare {shown} answered HTTP {status} (a redirect); configure the final "
                "[cloudflare] api_url",
                permanent=True,
            )
        raise DeliveryError(
            f"Cloudflare {shown} refused the report: HTTP {status}: {_errors(envelope, answer)}",
            permanent=True,
        )


def _envelope(answer: bytes) -> Mapping[str, Any]:
    """The API's JSON envelope, or an empty mapping for anything else."""
    with contextlib.suppress(ValueError):
        data = json.loads(answer)
        if isinstance(data, dict):
            return data
    return {}


def _errors(envelope: Mapping[str, Any], answer: bytes | bytearray) -> str:
    """The envelope's ``errors`` as ``code message; ...``, else the start of the body."""
    errors = envelope.get("errors")
    if isinstance(errors, list) and errors:
        parts = []
        for error in errors:
            if isinstance(error, Mapping):
                code = error.get("code")
                message = str(error.get("message") or "")
                parts.append(f"{code} {message}".strip() if code is not None else message)
            else:
                parts.append(str(error))
        return excerpt("; ".join(parts))
    return excerpt(bytes(answer)) or "(empty answer)"


def _reference(envelope: Mapping[str, Any]) -> str:
    """What identifies the report in Cloudflare's answer: its ``result`` (a string)."""
    result = envelope.get("result")
    if isinstance(result, str) and result.strip():
        return excerpt(result)
    if isinstance(result, Mapping) and result.get("id"):
        return excerpt(str(result["id"]))
    return "accepted"
