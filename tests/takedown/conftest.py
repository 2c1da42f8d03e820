"""The takedown tests talk to RDAP, webhook and SMTP servers on loopback: the hotline's own
calls may reach private networks here (``test_http.py`` tests the policy itself)."""

from __future__ import annotations

import pytest

from store.environment import ENV_ALLOW_PRIVATE


@pytest.fixture(autouse=True)
def _loopback_servers_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_ALLOW_PRIVATE, "1")
