"""Pytest plugin: the two-host test site, started once per session.

Register with ``pytest_plugins = ["tests.site.fixtures"]``; request the ``test_site`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from hotline.demosite import RunningServer, serve
from tests.site.builder import TestSite, build_test_site

HOST_A = "127.0.0.2"  # the reported site
HOST_B = "127.0.0.3"  # another provider: an image host


@dataclass
class RunningTestSite:
    """The manifest plus the servers that serve it."""

    site: TestSite
    server_a: RunningServer
    server_b: RunningServer

    @property
    def base_a(self) -> str:
        return self.server_a.base_url

    @property
    def base_b(self) -> str:
        return self.server_b.base_url


@pytest.fixture(scope="session")
def test_site() -> Iterator[RunningTestSite]:
    with serve(host=HOST_A) as server_a, serve(host=HOST_B) as server_b:
        site = build_test_site(server_a.base_url, server_b.base_url)
        server_a.mount(site.routes_a)
        server_b.mount(site.routes_b)
        yield RunningTestSite(site=site, server_a=server_a, server_b=server_b)
