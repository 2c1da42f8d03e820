"""Pytest plugin: the two-host test site, started once per session.

Register with ``pytest_plugins = ["tests.site.fixtures"]``; request the ``test_site`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hotline.loopback import serve_linked
from tests.helpers import HOST_A, HOST_B
from tests.site.builder import RunningTestSite, build_test_site


@pytest.fixture(scope="session")
def test_site() -> Iterator[RunningTestSite]:
    with serve_linked(build_test_site, (HOST_A, HOST_B)) as running:
        yield running
