"""A tiny in-memory web server and the benign demo site that ``hotline demo`` crawls.

The server (:func:`serve`) binds a loopback address only, on port 0, and serves a route table
from memory: nothing it serves is ever read from or written to disk. A route is either a
static :class:`Response` or a :data:`Handler` callable for special behaviour (redirects,
streaming, stalling). Handlers get an :class:`Exchange` whose ``stop`` event is set when the
server stops, so a handler that streams forever or stalls ends promptly.

Sites spanning two hosts are cross-linked by starting the servers first with no routes, then
rendering the routes with both base URLs and mounting them::

    with serve(host="127.0.0.2") as a, serve(host="127.0.0.3") as b:
        routes_a, routes_b = render(a.base_url, b.base_url)
        a.mount(routes_a)
        b.mount(routes_b)

Route keys are paths without the query string. A key ending in ``*`` matches every path with
that prefix (the longest such prefix wins); an exact key always wins over a prefix.

The demo site (:func:`build_demo_site`) is a handful of pages with about a dozen generated
textures embedded in the usual ways; four of them are "known" reference images whose hashes
make up the demo's known list.
"""

from __future__ import annotations

import html
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from hotline import imagegen
from matchers.digest import digest_bytes

DEFAULT_HOST = "127.0.0.2"
#: Seconds a connection may sit idle (or a client may refuse to read) before the server gives up.
SOCKET_TIMEOUT = 15.0
#: How often the accept loop checks for shutdown; bounds how long :meth:`RunningServer.stop` takes.
POLL_INTERVAL = 0.05
STOP_JOIN_TIMEOUT = 5.0

KNOWN_LIST_HEADER = "algorithm,hash,id,category"
DEMO_CATEGORY = "demo"
DEMO_KNOWN_COUNT = 4


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


@contextmanager
def serve_linked(
    render: Callable[[str, str], tuple[Mapping[str, Route], Mapping[str, Route]]],
    hosts: tuple[str, str] = ("127.0.0.2", "127.0.0.3"),
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Start two servers, render their routes from both base URLs, mount them, stop on exit."""
    with serve(host=hosts[0]) as first, serve(host=hosts[1]) as second:
        routes_first, routes_second = render(first.base_url, second.base_url)
        first.mount(routes_first)
        second.mount(routes_second)
        yield first, second


# --- the demo site --------------------------------------------------------------------------


@dataclass
class DemoSite:
    """The demo's pages (path -> response), known list CSV, and which paths serve known images."""

    pages: dict[str, Response]
    known_csv: str
    known_urls: dict[str, str]


def _page(title: str, body: str, head: str = "") -> Response:
    return html_page(
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{head}</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def build_demo_site(seed: int = 7) -> DemoSite:
    """A small benign site: 4 pages, 12 textures, 4 of them known (plus one resized copy)."""
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in rng.choice(1_000_000, size=12, replace=False)]
    jpeg = [
        imagegen.encode(imagegen.textured_image(s, 480, 360), "JPEG", quality=88) for s in seeds
    ]
    pages: dict[str, Response] = {}
    for index, body in enumerate(jpeg, start=1):
        pages[f"/images/photo-{index:02d}.jpg"] = image_response(body, "image/jpeg")

    # Images 1, 4, 7 and 10 are the known reference images; the rest are ordinary content.
    known_indexes = (1, 4, 7, 10)
    rows = [KNOWN_LIST_HEADER]
    known_urls: dict[str, str] = {}
    for number, index in enumerate(known_indexes, start=1):
        entry_id = f"demo-{number:03d}"
        digest = digest_bytes(jpeg[index - 1])
        rows.extend(
            f"{algorithm},{value},{entry_id},{DEMO_CATEGORY}"
            for algorithm, value in digest.hashes().items()
        )
        known_urls[f"/images/photo-{index:02d}.jpg"] = entry_id
    # A smaller, re-encoded copy of the first known image: found by perceptual matching only.
    copy = imagegen.resized(imagegen.decode(jpeg[0]), 0.75)
    pages["/media/thumb-a.webp"] = image_response(
        imagegen.encode(copy, "WEBP", quality=75), "image/webp"
    )
    known_urls["/media/thumb-a.webp"] = known_urls["/images/photo-01.jpg"]

    pages["/"] = _page(
        "Demo gallery",
        "<p>Benign generated textures for trying out the crawler.</p>\n"
        "<ul><li><a href='/gallery.html'>Gallery</a></li>"
        "<li><a href='/lazy.html'>Lazy-loaded</a></li>"
        "<li><a href='/styled.html'>Styled</a></li></ul>\n"
        "<img src='/images/photo-01.jpg' alt='texture 1'>\n"
        "<img src='/images/photo-02.jpg' alt='texture 2'>",
        head="<meta property='og:image' content='/images/photo-03.jpg'>",
    )
    pages["/gallery.html"] = _page(
        "Gallery",
        "<img src='/images/photo-05.jpg' "
        "srcset='/images/photo-05.jpg 1x, /images/photo-04.jpg 2x' alt='texture 4'>\n"
        "<picture><source srcset='/media/thumb-a.webp' type='image/webp'>"
        "<img src='/images/photo-06.jpg' alt='texture 6'></picture>\n"
        "<p><a href='/'>Home</a></p>",
    )
    pages["/lazy.html"] = _page(
        "Lazy-loaded",
        "<img data-src='/images/photo-07.jpg' src='/images/photo-08.jpg' alt='texture 7'>\n"
        "<img data-src='/images/photo-09.jpg' alt='texture 9'>\n"
        "<p><a href='/'>Home</a></p>",
    )
    pages["/styled.html"] = _page(
        "Styled",
        "<div style=\"background-image:url('/images/photo-10.jpg')\">banner</div>\n"
        "<div class='hero'>hero</div>\n"
        "<img src='/images/photo-12.jpg' alt='texture 12'>\n"
        "<p><a href='/'>Home</a></p>",
        head="<style>.hero { background: url(/images/photo-11.jpg) no-repeat; }</style>",
    )
    return DemoSite(pages=pages, known_csv="\n".join(rows) + "\n", known_urls=known_urls)
