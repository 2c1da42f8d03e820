"""Crawl options as an analyst uses them with `hotline crawl`: depth, page cap, robots.txt.
(The options as one value from the command line to the run record: ``tests/store/test_options.py``;
to the crawl's settings: ``tests/crawler/test_runsettings.py``.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hotline.loopback import Exchange, RunningServer, html_page, serve
from tests.helpers import HOST_A, ok_json


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
    with serve(host=HOST_A) as server:
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


def _crawl(site: Site, env: dict[str, str], *args: str) -> dict[str, object]:
    summary: dict[str, object] = ok_json(
        ["crawl", site.server.url("/"), "--allow-private-networks", *args], env
    )
    return summary


def test_depth_limits_link_following(site: Site, env: dict[str, str]) -> None:
    summary = _crawl(site, env, "--depth", "1")
    assert sorted(site.paths) == ["/", "/one", "/private/x"]
    assert summary["pages"] == 3


def test_page_cap_per_seed(site: Site, env: dict[str, str]) -> None:
    _crawl(site, env, "--depth", "5", "--max-pages", "2")
    assert len(site.paths) == 2 and site.paths[0] == "/"


def test_robots_txt_is_ignored_by_default_and_obeyed_on_request(
    site: Site, env: dict[str, str]
) -> None:
    _crawl(site, env, "--depth", "1")
    assert "/private/x" in site.paths
    site.paths.clear()
    _crawl(site, env, "--depth", "1", "--obey-robots")
    assert "/one" in site.paths and "/private/x" not in site.paths
