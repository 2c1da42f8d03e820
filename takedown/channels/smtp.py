"""The SMTP channel: a notice as an e-mail through the hotline's mail relay.

:class:`SmtpChannel` sends ``notice.email`` (a complete RFC 5322 message) with :mod:`smtplib`:
envelope sender ``notice.sender``, one recipient ``notice.recipient.address``. ``security`` is
``"starttls"`` (default: STARTTLS is required, never skipped), ``"tls"`` (TLS from the first
byte, port 465) or ``"none"``. Certificates are always verified (system CAs plus ``ca_file``).
**Credentials never travel unencrypted**: a ``username`` with ``security="none"`` is accepted
only when the relay is on loopback (``127.0.0.0/8``, ``::1``, ``localhost`` -- a local relay or
a test server) and the settings refuse it otherwise. Line endings are normalised to CRLF (bare
LFs are a protocol violation that strict relays reject); nothing else is changed. Each
:meth:`SmtpChannel.deliver` uses its own connection; ``with channel.session() as s`` keeps one
connection for a batch (checked with NOOP before each reuse, re-opened if the relay closed it).

Errors are :class:`~takedown.errors.DeliveryError`: permanent for a 5xx reply (also to AUTH),
a recipient without an address, an address that is not a mailbox, or content the server cannot
carry (8-bit without 8BITMIME, non-ASCII addresses without SMTPUTF8); transient for 4xx
replies, connection, TLS and timeout failures. Messages never contain the password.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, field
from typing import ClassVar, Literal, get_args

from store.text import one_line
from takedown.channels.base import EXCERPT_CHARS, excerpt, is_loopback
from takedown.errors import DeliveryError
from takedown.model import Channel, DeliveryReceipt, OutgoingNotice

__all__ = [
    "DEFAULT_SMTP_SECURITY",
    "DEFAULT_SMTP_TIMEOUT",
    "SMTP_PORT",
    "SMTP_SECURITY",
    "SmtpChannel",
    "SmtpSecurity",
    "SmtpSession",
    "SmtpSettings",
]

SmtpSecurity = Literal["none", "starttls", "tls"]
SMTP_SECURITY: tuple[SmtpSecurity, ...] = get_args(SmtpSecurity)

DEFAULT_SMTP_SECURITY: SmtpSecurity = "starttls"
SMTP_PORT = 25
DEFAULT_SMTP_TIMEOUT = 30.0

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
#: local@domain without whitespace, control characters or angle brackets.
_MAILBOX = re.compile(r"[^\s<>@\x00-\x1f\x7f]+@[^\s<>@\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """How to reach the hotline's mail relay.

    Raises :class:`ValueError` for settings that cannot work or are unsafe: an unknown
    ``security``, a username without a password (or the reverse), or credentials with
    ``security="none"`` for a relay that is not on loopback.
    """

    host: str
    port: int = SMTP_PORT
    security: SmtpSecurity = DEFAULT_SMTP_SECURITY
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
        if self.has_credentials and self.security == "none" and not is_loopback(self.host):
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


def _crlf(data: bytes) -> bytes:
    return _LINE_ENDINGS.sub(b"\r\n", data)


class SmtpChannel:
    """Delivers notices through an SMTP relay (see the module docstring)."""

    name: ClassVar[Channel] = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._context = _smtp_context(settings.ca_file)

    def close(self) -> None:
        """Nothing to release: each delivery and each session has a connection of its own."""

    def deliver(self, notice: OutgoingNotice) -> DeliveryReceipt:
        """Send one notice over a connection of its own."""
        with self.session() as session:
            return session.deliver(notice)

    def session(self) -> SmtpSession:
        """A context manager that keeps one connection for several notices."""
        return SmtpSession(self.settings, self._context)

    def probe(self) -> None:
        """Do what a delivery does before its message (connect, EHLO, STARTTLS, AUTH), then
        QUIT; nothing is sent. :class:`DeliveryError` as :meth:`deliver` raises it."""
        with self.session() as session:
            session.open()


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
        return self._error(f"{stage} refused: {code} {excerpt(reply)}", permanent=500 <= code < 600)

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
        smtp = self.open()
        try:
            code, reply = self._send(smtp, notice, address)
        except DeliveryError:
            self._drop()
            raise
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise self._reply_error("send", exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise self._error(f"send failed: {excerpt(exc)}", permanent=False) from exc
        return DeliveryReceipt(
            channel=SmtpChannel.name, destination=address, detail=f"{code} {excerpt(reply)}"
        )

    def open(self) -> smtplib.SMTP:
        """The session's connection, made now if it has none (or the relay closed it):
        connect, EHLO, STARTTLS and AUTH as configured. :class:`DeliveryError` if a step
        fails (the password masked), with no connection kept."""
        if self._smtp is not None and not self._alive(self._smtp):
            self._drop()  # the relay closed an idle connection between two messages
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except smtplib.SMTPResponseException as exc:
                raise self._reply_error("connect", exc.smtp_code, exc.smtp_error) from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise self._error(f"connect failed: {excerpt(exc)}", permanent=False) from exc
        return self._smtp

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
        if not encrypted and not (s.security == "none" and is_loopback(s.host)):
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
