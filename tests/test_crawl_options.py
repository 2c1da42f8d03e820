"""`hotline crawl` options as an analyst uses them: depth, page cap, robots.txt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotline.loopback import Exchange, RunningServer, html_page, serve

HOTLINE = [sys.executable, "-m", "hotline.cli"]


class Site:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.paths: list[str] = []

    def page(self, body: str) -> Callable[[Exchange], None]:
        def handler(exchange: Exchange) -> None:
            self.paths.append(exchange.path)
            data = f"<html><body>{body}</body></html>".encode()
            exchange.start(200, {"Content-Type": "text/html", "Content-Length": str(len(data))})
            exchange.write(data)

        return handler


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(host="127.0.0.2") as server:
        s = Site(server)
        server.mount(
            {
                "/": s.page("<a href='/one'>1</a><a href='/private/x'>x</a>"),
                "/one": s.page("<a href='/two'>2</a>"),
                "/two": s.page("<a href='/three'>3</a>"),
                "/three": s.page("end"),
                "/private/x": s.page("hidden"),
                "/robots.txt": html_page("User-agent: *\nDisallow: /private/\n"),
            }
        )
        yield s


def _crawl(site: Site, tmp_path: Path, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [*HOTLINE, "crawl", site.server.url("/"), "--allow-private-networks", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_depth_limits_link_following(site: Site, tmp_path: Path) -> None:
    summary = _crawl(site, tmp_path, "--depth", "1")
    assert sorted(site.paths) == ["/", "/one", "/private/x"]
    assert summary["pages"] == 3


def test_page_cap_per_seed(site: Site, tmp_path: Path) -> None:
    _crawl(site, tmp_path, "--depth", "5", "--max-pages", "2")
    assert len(site.paths) == 2 and site.paths[0] == "/"


def test_robots_txt_is_ignored_by_default_and_obeyed_on_request(site: Site, tmp_path: Path) -> None:
    _crawl(site, tmp_path, "--depth", "1")
    assert "/private/x" in site.paths
    site.paths.clear()
    _crawl(site, tmp_path, "--depth", "1", "--obey-robots")
    assert "/one" in site.paths and "/private/x" not in site.paths
