"""The private-network guard, end to end: refused hosts never see a single request.

The reported site is 127.0.0.2, opened with ``--allow-network 127.0.0.2/32`` the way a hotline
would open its own lab. 127.0.0.3 stands for the hotline's internal network: reached by an IP
literal, by a redirect, and by a hostname (``localhost``) whose DNS answer is private. None of
these may reach it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from hotline.imagegen import encode, textured_image
from hotline.loopback import (
    Exchange,
    RunningServer,
    html_page,
    image_response,
    redirect,
    serve,
)
from matchers.digest import digest_bytes
from tests.helpers import HOST_A, HOST_B, HOTLINE, hotline_env, listening_sockets, run_cli


class Recorder:
    """A route that records each request and answers with an image."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.paths: list[str] = []

    def __call__(self, exchange: Exchange) -> None:
        self.paths.append(exchange.path)
        exchange.start(200, {"Content-Type": "image/png", "Content-Length": str(len(self.body))})
        exchange.write(self.body)


@contextlib.contextmanager
def three_hosts(
    other: Recorder, local: Recorder
) -> Iterator[tuple[RunningServer, RunningServer, str]]:
    """The reported site on 127.0.0.2 (routes mounted by the test), ``other`` answering
    everything on 127.0.0.3, and ``local`` on 127.0.0.1, reached by the name ``localhost``:
    ``(site, other's server, local's base URL by name)``."""
    with (
        serve(host=HOST_A) as site,
        serve({"/*": other}, host=HOST_B) as second,
        serve({"/*": local}, host="127.0.0.1") as third,
    ):
        yield site, second, third.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture
def own_redis_env(tmp_path: Path) -> dict[str, str]:
    """No Redis URL: a crawl starts the CLI's own redis-server under the data directory, so a
    test can tell that a refused crawl stopped before that."""
    return hotline_env(HOTLINE_DATA_DIR=str(tmp_path / "data"))


def test_private_targets_are_never_contacted(own_redis_env: dict[str, str], tmp_path: Path) -> None:
    allowed_png = encode(textured_image(501), "PNG")
    internal_png = encode(textured_image(502), "PNG")
    internal = Recorder(internal_png)
    via_name = Recorder(internal_png)
    with three_hosts(internal, via_name) as (site, lab, local_by_name):
        site.mount(
            {
                "/": html_page(
                    f"<img src='/ok.png'>"
                    f"<img src='{lab.url('/literal.png')}'>"
                    f"<img src='/to-lab.png'>"
                    f"<img src='{local_by_name}/by-name.png'>"
                    f"<a href='/next'>next</a>"
                ),
                "/next": redirect(lab.url("/after-redirect")),
                "/to-lab.png": redirect(lab.url("/redirected.png")),
                "/ok.png": image_response(allowed_png, "image/png"),
            }
        )
        known = tmp_path / "known.csv"
        sha = digest_bytes(allowed_png).sha256
        lab_sha = digest_bytes(internal_png).sha256
        known.write_text(f"algorithm,hash,id\nsha256,{sha},ok\nsha256,{lab_sha},lab\n")
        assert (
            run_cli(["hashes", "import", str(known), "--list", "k"], own_redis_env).returncode == 0
        )
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-network",
                f"{HOST_A}/32",
                "--json",
                "--set",
                "AUTOTHROTTLE_ENABLED=false",
            ],
            own_redis_env,
        )
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert internal.paths == []
    assert via_name.paths == []
    assert summary["refused_private"] >= 3  # literal, redirect to image, redirect to page
    assert "refused non-public address(es) 127.0.0.1 for host localhost" in crawl.stderr
    hits = json.loads(run_cli(["hits", "list", "--json"], own_redis_env).stdout)
    assert [(h["url"], h["entry"]) for h in hits] == [(site.url("/ok.png"), "ok")]


def test_without_the_flag_a_loopback_seed_is_refused(own_redis_env: dict[str, str]) -> None:
    seen = Recorder(b"")
    with serve({"/*": seen}, host=HOST_A) as site:
        crawl = run_cli(["crawl", site.url("/"), "--json"], own_redis_env)
    assert crawl.returncode == 0, crawl.stderr
    assert seen.paths == []
    assert json.loads(crawl.stdout)["refused_private"] == 1
    assert "is not a public address" in crawl.stderr


@pytest.mark.parametrize("value", ["1", " Yes"])
def test_the_environment_variable_lifts_the_guard(
    own_redis_env: dict[str, str], value: str
) -> None:
    page = html_page("<p>nothing here</p>")
    with serve({"/": page}, host=HOST_A) as site:
        crawl = run_cli(
            ["crawl", site.url("/"), "--json"],
            {**own_redis_env, "HOTLINE_ALLOW_PRIVATE_NETWORKS": value},
        )
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert summary["pages"] == 1 and summary["refused_private"] == 0


def test_bad_network_is_a_usage_error(own_redis_env: dict[str, str]) -> None:
    crawl = run_cli(
        ["crawl", f"http://{HOST_A}/", "--allow-network", "10.0.0.300/8"], own_redis_env
    )
    assert crawl.returncode == 2
    last_line = crawl.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: --allow-network: '10.0.0.300/8'")
    assert not (Path(own_redis_env["HOTLINE_DATA_DIR"]) / "redis").exists()


def test_a_bad_environment_value_is_a_usage_error(own_redis_env: dict[str, str]) -> None:
    seen = Recorder(b"")
    with serve({"/*": seen}, host=HOST_A) as site:
        crawl = run_cli(
            ["crawl", site.url("/")], {**own_redis_env, "HOTLINE_ALLOW_PRIVATE_NETWORKS": "maybe"}
        )
    assert crawl.returncode == 2, crawl.stderr
    last_line = crawl.stderr.strip().splitlines()[-1]
    assert last_line == "error: HOTLINE_ALLOW_PRIVATE_NETWORKS: expected 1 or 0, got 'maybe'"
    assert seen.paths == []
    assert not (Path(own_redis_env["HOTLINE_DATA_DIR"]) / "redis").exists()


def test_proxies_from_the_environment_are_ignored(own_redis_env: dict[str, str]) -> None:
    """A proxy exported by the shell would see the target hosts instead of the resolver: a
    private host by name went through it (and was fetched). The crawl never uses one."""
    png = encode(textured_image(503), "PNG")
    proxy = Recorder(png)
    via_name = Recorder(png)
    with three_hosts(proxy, via_name) as (site, relay, local_by_name):
        site.mount(
            {
                "/": html_page(f"<img src='/ok.png'><img src='{local_by_name}/by-name.png'>"),
                "/ok.png": image_response(png, "image/png"),
            }
        )
        env = dict(own_redis_env)
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
            env[name] = relay.base_url
        env.pop("no_proxy", None)
        env.pop("NO_PROXY", None)
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-network",
                f"{HOST_A}/32",
                "--allow-network",
                f"{HOST_B}/32",  # the proxy itself is reachable: only the policy may stop it
                "--json",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    assert proxy.paths == []
    assert via_name.paths == []
    summary = json.loads(crawl.stdout)
    assert (summary["pages"], summary["images"]) == (1, 1)  # fetched directly


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy on loopback that answers for the reported site itself: it records the
    absolute URL of every request it gets and serves the site's page and image."""

    site_host = HOST_A
    seen: ClassVar[list[str]] = []
    page = b""
    image = b""

    def do_GET(self) -> None:
        self.seen.append(self.path)
        parts = urlsplit(self.path)
        if parts.hostname != self.site_host:
            body, status, kind = b"no", 502, "text/plain"
        elif parts.path == "/":
            body, status, kind = self.page, 200, "text/html"
        else:
            body, status, kind = self.image, 200, "image/png"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_configured_proxy_gets_only_hosts_checked_first(
    own_redis_env: dict[str, str], tmp_path: Path
) -> None:
    """With CRAWL_PROXY the proxy resolves the targets, so each host is resolved and checked
    here first: a private host by name or literal never reaches the proxy."""
    png = encode(textured_image(504), "PNG")
    _ForwardProxy.seen = []
    _ForwardProxy.image = png
    _ForwardProxy.page = (
        b"<img src='/ok.png'><img src='http://localhost:9/by-name.png'>"
        b"<img src='http://127.0.0.1:9/literal.png'><a href='http://localhost:9/next'>n</a>"
    )
    proxy = http.server.ThreadingHTTPServer((HOST_B, 0), _ForwardProxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        known = tmp_path / "known.csv"
        known.write_text(f"algorithm,hash,id\nsha256,{digest_bytes(png).sha256},ok\n")
        imported = run_cli(["hashes", "import", str(known), "--list", "k"], own_redis_env)
        assert imported.returncode == 0, imported.stderr
        crawl = run_cli(
            [
                "crawl",
                f"http://{HOST_A}:9/",
                "--allow-network",
                f"{HOST_A}/32",
                "--json",
                "--set",
                f"CRAWL_PROXY=http://{HOST_B}:{proxy.server_address[1]}",
            ],
            own_redis_env,
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert crawl.returncode == 0, crawl.stderr
    assert sorted(_ForwardProxy.seen) == [f"http://{HOST_A}:9/", f"http://{HOST_A}:9/ok.png"]
    assert "localhost resolves to non-public address(es) 127.0.0.1" in crawl.stderr
    summary = json.loads(crawl.stdout)
    assert summary["refused_private"] == 3  # by name (an image, a page), by literal
    hits = json.loads(run_cli(["hits", "list", "--json"], own_redis_env).stdout)
    assert [(h["url"], h["entry"]) for h in hits] == [(f"http://{HOST_A}:9/ok.png", "ok")]


def test_a_crawl_opens_no_listening_socket(own_redis_env: dict[str, str], tmp_path: Path) -> None:
    """Scrapy 2.19 starts an HTTP server that runs Python (RemoteControl) in every crawl, with
    token files under the home directory; no process of a crawl (the crawl, its hash workers)
    may listen on any TCP port, nor write outside the data directory."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**own_redis_env, "HOME": str(home)}
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    entered, release = threading.Event(), threading.Event()

    def held(exchange: Exchange) -> None:
        entered.set()
        release.wait(60)
        body = b"<html><p>done</p></html>"
        exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(body))})
        exchange.write(body)

    with serve({"/": html_page("<a href='/held'>x</a>"), "/held": held}, host=HOST_A) as site:
        crawl = subprocess.Popen(
            [*HOTLINE, "crawl", site.url("/"), "--allow-network", f"{HOST_A}/32", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert entered.wait(60), "the crawl never reached /held"
            found = listening_sockets(crawl.pid)
        finally:
            release.set()
            _, err = crawl.communicate(timeout=120)
    assert crawl.returncode == 0, err
    assert found == []
    assert [p.relative_to(home) for p in home.rglob("*")] == []
