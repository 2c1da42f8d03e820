"""A real HTTP server for webhook tests: records POSTs, answers a scripted sequence of statuses.

Its ``webhook_server`` fixture is registered for every test in ``tests/conftest.py``; a test
can also start one itself::

    with WebhookServer("127.0.0.2") as server:
        server.script(503, Reply(429, headers={"Retry-After": "3"}), 200)
        ...  # POST to server.url("/hook")
        [first, second, third] = server.requests

Each request takes the next scripted reply; when the script runs out the server answers
``default`` (200). :class:`Hang` makes the server keep the request open without answering
until the server stops (or :meth:`WebhookServer.release_hangs`), for client timeout tests.
The server speaks HTTP/1.0 (one request per connection) and binds a loopback address on
port 0.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

__all__ = ["Hang", "RecordedRequest", "Reply", "WebhookServer", "webhook_server"]

DEFAULT_WAIT = 10.0


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Hang:
    """Read the request, then answer nothing until the server is released or stopped."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes  # the raw body, exactly as received


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WebhookServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read ``requests`` instead."""

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        reply = self.server.owner._record(request)
        if isinstance(reply, Hang):
            self.server.owner._released.wait()
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)


class WebhookServer:
    """A recording HTTP server on ``host`` (loopback), port 0."""

    def __init__(self, host: str = "127.0.0.1", *, default: int = 200) -> None:
        self.host = host
        self.default = Reply(default)
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._script: deque[Reply | Hang] = deque()
        self._released = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookServer:
        httpd = _Server((self.host, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(DEFAULT_WAIT)
            self._thread = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def script(self, *replies: int | Reply | Hang) -> None:
        """Queue the replies for the next requests (an int is a status with an empty body)."""
        with self._lock:
            for reply in replies:
                self._script.append(Reply(reply) if isinstance(reply, int) else reply)

    def release_hangs(self) -> None:
        self._released.set()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = DEFAULT_WAIT) -> list[RecordedRequest]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                got = len(self._requests)
                raise TimeoutError(f"{got} of {count} requests arrived within {timeout} s")
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> Reply | Hang:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            return self._script.popleft() if self._script else self.default


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    """A recording webhook receiver on 127.0.0.1 for one test."""
    with WebhookServer() as server:
        yield server
