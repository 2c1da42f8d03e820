"""A tiny HTTP server on a loopback address, serving a route table from memory.

It serves the demo site (:mod:`hotline.demosite`), the test sites and the benchmarks' sites.
:func:`serve` binds a loopback address only, on port 0, and serves routes from memory:
nothing it serves is ever read from or written to disk. A route is either a static
:class:`Response` (:func:`html_page`, :func:`image_response`, :func:`redirect` build the usual
ones) or a :data:`Handler` callable for special behaviour (redirects, streaming, stalling).
Handlers get an :class:`Exchange` whose ``stop`` event is set when the server stops, so a
handler that streams forever or stalls ends promptly.

Sites spanning two hosts are cross-linked by :func:`serve_linked`: it starts both servers with
no routes, builds the site from both base URLs and mounts each host's routes::

    with serve_linked(build_site) as linked:  # build_site(base_a, base_b) has routes_a, routes_b
        crawl(linked.site.seed_url)

Route keys are paths without the query string. A key ending in ``*`` matches every path with
that prefix (the longest such prefix wins); an exact key always wins over a prefix.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

#: The hosts of a two-host site (on Linux, two distinct "hosting providers" with no set-up).
DEFAULT_HOST = "127.0.0.2"
SECOND_HOST = "127.0.0.3"
#: Seconds a connection may sit idle (or a client may refuse to read) before the server gives up.
SOCKET_TIMEOUT = 15.0
#: How often the accept loop checks for shutdown; bounds how long :meth:`RunningServer.stop` takes.
POLL_INTERVAL = 0.05
STOP_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class Response:
    """A static response served from memory."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


def html_page(text: str, status: int = 200) -> Response:
    return Response(status, {"Content-Type": "text/html; charset=utf-8"}, text.encode())


def image_response(body: bytes, content_type: str) -> Response:
    return Response(200, {"Content-Type": content_type}, body)


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, {"Location": location, "Content-Type": "text/plain"}, b"moved\n")


class Exchange:
    """One request, as seen by a :data:`Handler`."""

    def __init__(self, handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        self._handler = handler
        self.stop = stop
        self.method: str = handler.command
        self.target: str = handler.path
        self.path: str = urlsplit(handler.path).path
        self.query: str = urlsplit(handler.path).query
        self.headers: Mapping[str, str] = dict(handler.headers.items())

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        """Send the status line and headers."""
        self._handler.send_response(status)
        for name, value in headers.items():
            self._handler.send_header(name, value)
        self._handler.end_headers()

    def write(self, data: bytes) -> bool:
        """Send part of the body; False when the client is gone, the server stops, or for HEAD."""
        if self.method == "HEAD" or self.stop.is_set():
            return False
        try:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()
        except OSError:  # client disconnected or stopped reading (socket timeout)
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Stall for up to ``seconds``; True if the server is stopping (then return at once)."""
        return self.stop.wait(seconds)


Handler = Callable[[Exchange], None]
Route = Response | Handler


def _send_static(exchange: Exchange, response: Response) -> None:
    headers = dict(response.headers)
    headers.setdefault("Content-Length", str(len(response.body)))
    exchange.start(response.status, headers)
    exchange.write(response.body)


class _RouteTable:
    """Thread-safe route lookup: exact path first, then the longest ``prefix*`` key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []

    def mount(self, routes: Mapping[str, Route]) -> None:
        exact: dict[str, Route] = {}
        prefixes: list[tuple[str, Route]] = []
        for key, route in routes.items():
            if not key.startswith("/"):
                raise ValueError(f"route key must start with '/': {key!r}")
            if key.endswith("*"):
                prefixes.append((key[:-1], route))
            else:
                exact[key] = route
        with self._lock:
            self._exact.update(exact)
            merged = dict(self._prefixes)
            merged.update(prefixes)
            self._prefixes = sorted(merged.items(), key=lambda item: len(item[0]), reverse=True)

    def lookup(self, path: str) -> Route | None:
        with self._lock:
            route = self._exact.get(path)
            if route is not None:
                return route
            for prefix, candidate in self._prefixes:
                if path.startswith(prefix):
                    return candidate
        return None


NOT_FOUND = Response(404, {"Content-Type": "text/plain"}, b"not found\n")
METHOD_NOT_ALLOWED = Response(
    405, {"Content-Type": "text/plain", "Allow": "GET, HEAD"}, b"method not allowed\n"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers stuck on a silent client
    # Every response closes its connection (HTTP/1.0), so a crawl opens one per request: with
    # socketserver's backlog of 5, a burst of connects overflows the accept queue and the
    # kernel drops the SYN, which the client only resends after a second.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, host: str, routes: _RouteTable, stop: threading.Event) -> None:
        self.routes = routes
        self.stop_event = stop
        super().__init__((host, 0), _RequestHandler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A client that hangs up mid-response is normal here (size limits, timeouts)."""
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    timeout = SOCKET_TIMEOUT
    server_version = "hotline-testsite/1"
    sys_version = ""

    def _dispatch(self) -> None:
        exchange = Exchange(self, self.server.stop_event)
        if self.command not in ("GET", "HEAD"):
            _send_static(exchange, METHOD_NOT_ALLOWED)
            return
        route = self.server.routes.lookup(exchange.path)
        if route is None:
            _send_static(exchange, NOT_FOUND)
        elif isinstance(route, Response):
            _send_static(exchange, route)
        else:
            route(exchange)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request log on stderr."""


class RunningServer:
    """A started server; stop it with :meth:`stop` or by leaving its ``with`` block."""

    def __init__(self, host: str) -> None:
        self.stop_event = threading.Event()
        self._routes = _RouteTable()
        self._server = _Server(host, self._routes, self.stop_event)
        self.host: str = host
        self.port: int = int(self._server.server_address[1])
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"serve-{host}:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def mount(self, routes: Mapping[str, Route]) -> None:
        """Add (or replace) routes; safe while the server runs."""
        self._routes.mount(routes)

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        """Stop accepting, release stalled and streaming handlers, close the socket."""
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_JOIN_TIMEOUT)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(routes: Mapping[str, Route] | None = None, host: str = DEFAULT_HOST) -> RunningServer:
    """Start a threaded HTTP server on ``host`` (loopback only), port 0, serving ``routes``."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing to bind a non-loopback address: {host}")
    server = RunningServer(host)
    if routes:
        server.mount(routes)
    return server


class TwoHostRoutes(Protocol):
    """What :func:`serve_linked` mounts: the routes of the first host and of the second."""

    @property
    def routes_a(self) -> Mapping[str, Route]: ...

    @property
    def routes_b(self) -> Mapping[str, Route]: ...


SiteT = TypeVar("SiteT", bound=TwoHostRoutes)


@dataclass(frozen=True)
class LinkedSite(Generic[SiteT]):
    """A site spanning two hosts, and the two servers serving it."""

    site: SiteT
    server_a: RunningServer
    server_b: RunningServer

    @property
    def base_a(self) -> str:
        return self.server_a.base_url

    @property
    def base_b(self) -> str:
        return self.server_b.base_url


@contextmanager
def serve_linked(
    build: Callable[[str, str], SiteT], hosts: tuple[str, str] = (DEFAULT_HOST, SECOND_HOST)
) -> Iterator[LinkedSite[SiteT]]:
    """Serve a site that spans two hosts until the block ends.

    Starts a server on each of ``hosts`` with no routes, builds the site from both base URLs
    (``build(base_a, base_b)``, so each host's pages can link to the other's), then mounts
    ``site.routes_a`` on the first and ``site.routes_b`` on the second.
    """
    with serve(host=hosts[0]) as server_a, serve(host=hosts[1]) as server_b:
        site = build(server_a.base_url, server_b.base_url)
        server_a.mount(site.routes_a)
        server_b.mount(site.routes_b)
        yield LinkedSite(site, server_a, server_b)
