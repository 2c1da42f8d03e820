"""A real RDAP server on loopback for tests, and the ``rdap_server`` pytest fixture.

It answers RFC 9082 paths from documents the test registers::

    server.add_network("127.0.0.0/24", doc)   # GET /ip/<any address in it>: most specific wins
    server.add_domain("example.net", doc)     # GET /domain/example.net
    server.add("/ip/127.0.0.9", doc)          # one exact path
    server.redirect("/ip/127.0.0.9", other.url + "/ip/127.0.0.9")   # a bootstrap redirector
    server.fail("/ip/127.0.0.9", 500)         # an error status (RFC 9083 error document)
    server.raw("/ip/127.0.0.9", b"{not json")  # any body
    server.hits("/ip/127.0.0.9")              # how many requests that path received

Anything unregistered gets 404 with an RFC 9083 error document, as real registries answer.
Documents are served with ``Content-Type: application/rdap+json``. ``url`` is the base URL
(``http://127.0.0.1:<port>``) to give :class:`takedown.rdap.RdapClient`.

Fixture documents modelled on real registry answers live in ``tests/servers/rdap_docs``;
:func:`load_doc` reads one.

Tests use its ``rdap_server`` fixture (registered in ``tests/conftest.py``) or
``with RdapServer("127.0.0.5") as server:`` for a second registry.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

__all__ = ["DOCS_DIR", "RDAP_MEDIA_TYPE", "RdapServer", "load_doc", "rdap_server"]

DOCS_DIR = Path(__file__).parent / "rdap_docs"
RDAP_MEDIA_TYPE = "application/rdap+json"
DEFAULT_HOST = "127.0.0.1"
POLL_INTERVAL = 0.05


def load_doc(name: str) -> dict[str, Any]:
    """One fixture document from ``rdap_docs`` (``name`` without ``.json``)."""
    doc = json.loads((DOCS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def error_doc(status: int, title: str) -> dict[str, Any]:
    """An RFC 9083 section 6 error response."""
    return {
        "rdapConformance": ["rdap_level_0"],
        "errorCode": status,
        "title": title,
        "description": [f"{title} (test registry)"],
    }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = RDAP_MEDIA_TYPE
    location: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RdapServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests count requests with ``hits``."""

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        answer = self.server.owner._answer(path)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.location is not None:
            self.send_header("Location", answer.location)
        self.end_headers()
        self.wfile.write(answer.body)


class RdapServer:
    """An RDAP registry on ``host`` (loopback), port 0. Start with ``with`` or :meth:`start`."""

    def __init__(self, host: str = DEFAULT_HOST) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"test servers bind loopback only, not {host}")
        self.host = host
        self._lock = threading.Lock()
        self._paths: dict[str, _Answer] = {}
        self._networks: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, _Answer] = {}
        self._hits: Counter[str] = Counter()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> RdapServer:
        httpd = _Server((self.host, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> RdapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the RDAP test server was never started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash (still known after :meth:`stop`: a dead server)."""
        return f"http://{self.host}:{self.port}"

    # --- registering answers ------------------------------------------------------------------

    def add(self, path: str, doc: Mapping[str, Any], status: int = 200) -> None:
        """Serve ``doc`` as JSON at exactly ``path``."""
        self._set(path, _Answer(status, _json(doc)))

    def add_network(self, cidr: str, doc: Mapping[str, Any]) -> None:
        """Serve ``doc`` for ``/ip/<address>`` of every address in ``cidr`` (longest prefix)."""
        with self._lock:
            self._networks[ipaddress.ip_network(cidr)] = _Answer(200, _json(doc))

    def add_domain(self, name: str, doc: Mapping[str, Any]) -> None:
        self.add(f"/domain/{name}", doc)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer ``path`` with a redirect, as rdap.org and RIR mirrors do."""
        self._set(path, _Answer(status, b"", "text/plain", location))

    def fail(self, path: str, status: int, title: str = "Internal Server Error") -> None:
        """Answer ``path`` with ``status`` and an RFC 9083 error document."""
        self._set(path, _Answer(status, _json(error_doc(status, title))))

    def raw(self, path: str, body: bytes, content_type: str = RDAP_MEDIA_TYPE) -> None:
        """Answer ``path`` with ``body`` as is (for malformed documents)."""
        self._set(path, _Answer(200, body, content_type))

    def hits(self, path: str) -> int:
        """Requests received for ``path`` so far."""
        with self._lock:
            return self._hits[path]

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self._hits.values())

    def _set(self, path: str, answer: _Answer) -> None:
        with self._lock:
            self._paths[path] = answer

    def _answer(self, path: str) -> _Answer:
        with self._lock:
            self._hits[path] += 1
            exact = self._paths.get(path)
            if exact is not None:
                return exact
            if path.startswith("/ip/"):
                found = self._network_answer(path.removeprefix("/ip/"))
                if found is not None:
                    return found
        return _Answer(404, _json(error_doc(404, "Not Found")))

    def _network_answer(self, query: str) -> _Answer | None:
        try:
            address = ipaddress.ip_address(query)
        except ValueError:
            return None
        best: tuple[int, _Answer] | None = None
        for network, answer in self._networks.items():
            inside = address.version == network.version and address in network
            if inside and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, answer)
        return None if best is None else best[1]


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=1).encode("utf-8")


@pytest.fixture
def rdap_server() -> Iterator[RdapServer]:
    """A fresh RDAP registry on 127.0.0.1 for one test."""
    with RdapServer() as server:
        yield server
