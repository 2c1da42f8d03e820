"""A real SMTP server for tests: aiosmtpd on a loopback address, port 0.

It records every accepted message (envelope plus the parsed message), can require STARTTLS
or speak implicit TLS with a certificate made by :func:`make_tls_files`, can require AUTH
LOGIN/PLAIN with one fixed user, and has two hooks for failure tests:

* :meth:`SmtpServer.refuse` answers a chosen stage (``mail``, ``rcpt`` or ``data``) with a
  given code for the next *n* messages (``550``, ``451``, ...).
* :meth:`SmtpServer.drop_connections` aborts every open client connection.
* :meth:`SmtpServer.hold` makes messages block in DATA after the whole message has arrived
  and before the server replies; :meth:`SmtpServer.wait_held` waits for that to happen and
  :meth:`SmtpServer.release` lets them through. This is the window in which a client that
  crashes leaves a message whose fate it does not know.

Its fixtures (``smtp_server``, ``smtp_tls_files``) are registered for every test in
``tests/conftest.py``; a test can also start servers itself::

    with SmtpServer("127.0.0.2", tls="starttls", tls_files=files, auth=("user", "pw")) as srv:
        ...  # deliver to srv.host, srv.port, trusting files.ca_file
        [msg] = srv.wait_for_messages(1)
        assert msg.message["Message-ID"] == ...

Readiness and every wait use events with a deadline, never sleeps.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import ssl
import subprocess
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "AuthAttempt",
    "ReceivedMessage",
    "SmtpServer",
    "TlsFiles",
    "make_tls_files",
    "serve_smtp",
    "smtp_server",
    "smtp_tls_files",
]

Stage = Literal["mail", "rcpt", "data"]
TlsMode = Literal["none", "starttls", "implicit"]

#: Seconds any wait in this module allows before it gives up.
DEFAULT_WAIT = 10.0
#: The server's EHLO name; never socket.getfqdn(), which may ask a resolver.
SERVER_HOSTNAME = "smtp.test"
#: The addresses the ``smtp_tls_files`` certificate is valid for.
TLS_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


class _WithoutLoginDataNotice(logging.Filter):
    """Drop aiosmtpd 1.4's log line about ``Session.login_data``: its own AUTH code sets it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_WithoutLoginDataNotice())


# -- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate for some loopback addresses."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls_files(directory: Path, *hosts: str) -> TlsFiles:
    """Make a throwaway CA and a server certificate for ``hosts`` (IP SANs; default 127.0.0.1).

    Two certificates rather than one self-signed leaf, so strict X.509 checking (the default
    in newer Pythons) accepts the chain. Valid for two days.
    """
    names = hosts or ("127.0.0.1",)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", "/CN=hotline-crawler test mail CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    ext.write_text(
        f"subjectAltName={','.join(f'IP:{name}' for name in names)}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(ca_file=ca_crt, cert_file=crt, key_file=key)


# -- what the server saw -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (replied 250 to, or kept after a client left)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the DATA payload exactly as received, dot-unstuffed
    message: EmailMessage  # ``data`` parsed with ``email.policy.default``
    mail_options: tuple[str, ...]
    tls: bool
    authenticated_as: str | None
    peer: str  # "ip:port" of the client connection


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    success: bool
    tls: bool


@dataclass
class _Refusal:
    stage: Stage
    code: int
    text: str
    remaining: int | None  # None: until clear_refusals()


@dataclass
class _State:
    """Everything the handler (server thread) and the test (main thread) share, under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    messages: list[ReceivedMessage] = field(default_factory=list)
    auth_attempts: list[AuthAttempt] = field(default_factory=list)
    refusals: deque[_Refusal] = field(default_factory=deque)
    holding: bool = False
    keep_if_client_leaves: bool = False
    held: int = 0  # messages waiting in DATA right now
    held_total: int = 0
    left_while_held: int = 0
    gate: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def _is_tls(server: SMTP, session: Session) -> bool:
    if session.ssl is not None:
        return True
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class _Handler:
    """aiosmtpd handler hooks; all run on the server's event loop."""

    def __init__(self, state: _State, credentials: tuple[str, str] | None) -> None:
        self._state = state
        self._credentials = credentials

    def _take_refusal(self, stage: Stage) -> _Refusal | None:
        with self._state.lock:
            for refusal in self._state.refusals:
                if refusal.stage != stage:
                    continue
                if refusal.remaining is not None:
                    refusal.remaining -= 1
                    if refusal.remaining <= 0:
                        self._state.refusals.remove(refusal)
                return refusal
        return None

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self._credentials is None:
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        ok = (login, password) == self._credentials
        with self._state.changed:
            self._state.auth_attempts.append(
                AuthAttempt(mechanism, login, ok, _is_tls(server, session))
            )
            self._state.changed.notify_all()
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = self._take_refusal("mail")
        if refusal is not None:
            return f"{refusal.code} {refusal.text}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._take_refusal("rcpt")
        if refusal is not None:
            return f"{refusal.code} {refusal.text}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._take_refusal("data")
        received = self._received(server, session, envelope)
        state = self._state
        with state.changed:
            gate = state.gate if state.holding else None
            keep = state.keep_if_client_leaves
            if gate is not None:
                state.held += 1
                state.held_total += 1
                state.changed.notify_all()
        if gate is not None:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                # The client went away (or the server is stopping) while the message was held.
                with state.changed:
                    state.held -= 1
                    state.left_while_held += 1
                    if keep and refusal is None:
                        state.messages.append(received)
                    state.changed.notify_all()
                raise
            with state.changed:
                state.held -= 1
                state.changed.notify_all()
        if refusal is not None:
            return f"{refusal.code} {refusal.text}"
        with state.changed:
            state.messages.append(received)
            number = len(state.messages)
            state.changed.notify_all()
        return f"250 2.0.0 OK queued as test-{number}"

    @staticmethod
    def _received(server: SMTP, session: Session, envelope: Envelope) -> ReceivedMessage:
        data = envelope.original_content or b""
        message = email.message_from_bytes(data, policy=email.policy.default)
        return ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message=message,
            mail_options=tuple(envelope.mail_options),
            tls=_is_tls(server, session),
            authenticated_as=session.auth_data if session.authenticated else None,
            peer=f"{session.peer[0]}:{session.peer[1]}" if session.peer else "",
        )


class _Controller(Controller):
    """aiosmtpd's threaded controller, on port 0, with the loop passed to the protocol."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        #: One protocol object per client connection (used on the loop thread only).
        self.connections: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)
        self.connections.add(smtp)
        return smtp

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before the controller's readiness probe.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A real SMTP server on ``host`` (a loopback address), port chosen by the kernel.

    ``tls``: ``"none"``, ``"starttls"`` (offered; required for everything but EHLO/QUIT
    when ``require_starttls``) or ``"implicit"`` (TLS from the first byte, as on port 465);
    the last two need ``tls_files``. ``auth=(user, password)`` offers AUTH LOGIN and PLAIN
    with that one user; ``auth_required`` refuses MAIL before AUTH; aiosmtpd refuses AUTH
    without TLS unless ``auth_require_tls=False``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        tls: TlsMode = "none",
        tls_files: TlsFiles | None = None,
        require_starttls: bool = False,
        auth: tuple[str, str] | None = None,
        auth_required: bool = False,
        auth_require_tls: bool = True,
    ) -> None:
        if tls != "none" and tls_files is None:
            raise ValueError(f"tls={tls!r} needs tls_files (see make_tls_files)")
        self.host = host
        self.tls: TlsMode = tls
        self.tls_files = tls_files
        self._state = _State()
        self._handler = _Handler(self._state, auth)
        context: ssl.SSLContext | None = None
        if tls_files is not None and tls != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
        smtp_kwargs: dict[str, Any] = {
            # aiosmtpd only counts STARTTLS as TLS; with implicit TLS every byte is encrypted.
            "auth_require_tls": auth_require_tls and tls != "implicit",
            "auth_required": auth_required,
        }
        if auth is not None:
            smtp_kwargs["authenticator"] = self._handler.authenticate
        if tls == "starttls":
            smtp_kwargs["tls_context"] = context
            smtp_kwargs["require_starttls"] = require_starttls
        self._controller = _Controller(
            self._handler,
            hostname=host,
            port=0,
            server_hostname=SERVER_HOSTNAME,
            ssl_context=context if tls == "implicit" else None,
            ready_timeout=DEFAULT_WAIT,
            **smtp_kwargs,
        )
        self._running = False

    # -- lifecycle

    def start(self) -> SmtpServer:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self.release()
        self._controller.stop()
        self._running = False

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    # -- what arrived

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the accepted messages, oldest first."""
        with self._state.lock:
            return list(self._state.messages)

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        with self._state.lock:
            return list(self._state.auth_attempts)

    def wait_for_messages(self, count: int, timeout: float = DEFAULT_WAIT) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages were accepted; raise TimeoutError if not."""
        with self._state.changed:
            if not self._state.changed.wait_for(
                lambda: len(self._state.messages) >= count, timeout
            ):
                got = len(self._state.messages)
                raise TimeoutError(f"{got} of {count} messages arrived within {timeout} s")
            return list(self._state.messages)

    # -- failure hooks

    def refuse(
        self, code: int, text: str = "refused by test", *, at: Stage = "data", times: int | None = 1
    ) -> None:
        """Answer stage ``at`` of the next ``times`` messages (``None``: all) with ``code``."""
        with self._state.lock:
            self._state.refusals.append(_Refusal(at, code, text, times))

    def clear_refusals(self) -> None:
        with self._state.lock:
            self._state.refusals.clear()

    def hold(self, *, keep_if_client_leaves: bool = False) -> None:
        """Block messages in DATA (fully received, no reply yet) until :meth:`release`.

        If the client disconnects while its message is held, the message is recorded when
        ``keep_if_client_leaves`` (an MTA that had already queued it: the client will send a
        duplicate) and dropped otherwise (one that had not).
        """
        with self._state.lock:
            self._state.holding = True
            self._state.keep_if_client_leaves = keep_if_client_leaves
            self._state.gate = asyncio.Event()

    def wait_held(self, count: int = 1, timeout: float = DEFAULT_WAIT) -> None:
        """Wait until ``count`` messages in total have been held; raise TimeoutError if not."""
        with self._state.changed:
            if not self._state.changed.wait_for(lambda: self._state.held_total >= count, timeout):
                raise TimeoutError(f"no {count} held message(s) within {timeout} s")

    def wait_client_left(self, count: int = 1, timeout: float = DEFAULT_WAIT) -> None:
        """Wait until ``count`` clients have disconnected while their message was held."""
        with self._state.changed:
            if not self._state.changed.wait_for(
                lambda: self._state.left_while_held >= count, timeout
            ):
                raise TimeoutError(f"no {count} client(s) left while held within {timeout} s")

    @property
    def held(self) -> int:
        """Messages blocked in DATA right now."""
        with self._state.lock:
            return self._state.held

    def drop_connections(self, timeout: float = DEFAULT_WAIT) -> None:
        """Abort every open client connection, as a relay that restarts or drops idle clients.

        Returns once the sockets are closed on the server side.
        """
        loop = self._controller.loop
        done = threading.Event()

        def abort_all() -> None:
            for smtp in list(self._controller.connections):
                if isinstance(smtp.transport, asyncio.Transport):
                    smtp.transport.abort()
            loop.call_soon(done.set)  # runs after the transports' own close callbacks

        loop.call_soon_threadsafe(abort_all)
        if not done.wait(timeout):
            raise TimeoutError(f"connections not dropped within {timeout} s")

    def release(self) -> None:
        """Let held messages through (each gets its normal reply) and stop holding."""
        with self._state.lock:
            gate, self._state.gate = self._state.gate, None
            self._state.holding = False
        if gate is not None and self._running:
            self._controller.loop.call_soon_threadsafe(gate.set)


@contextmanager
def serve_smtp(host: str = "127.0.0.1", **options: Any) -> Iterator[SmtpServer]:
    """``with serve_smtp("127.0.0.2", tls="starttls", tls_files=f) as server: ...``"""
    with SmtpServer(host, **options) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate valid for 127.0.0.1, 127.0.0.2 and 127.0.0.3."""
    return make_tls_files(tmp_path_factory.mktemp("smtp-pki"), *TLS_HOSTS)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no AUTH) on 127.0.0.1 for one test."""
    with SmtpServer("127.0.0.1") as server:
        yield server
