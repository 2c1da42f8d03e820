"""What the console's requests share: its settings, Redis, the accounts, the notice system,
the way it starts crawls, and who is asking (:class:`Principal`).

One :class:`ConsoleState` lives for the whole process (``app.state.console``); request
handlers reach it through :func:`hotline.console.security.state_of`. Every piece is safe to
use from the worker threads FastAPI runs plain ``def`` handlers in: redis-py clients share a
connection pool, the stores hold no per-request state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from hotline.config import Config
from hotline.services import Session
from hotline.takedownrun import Takedown
from store.accounts import Accounts, role_allows
from store.options import CrawlOptions

__all__ = [
    "ABSOLUTE_TIMEOUT",
    "IDLE_TIMEOUT",
    "ConsoleSettings",
    "ConsoleState",
    "Principal",
]

#: A session ends after this many seconds without a request...
IDLE_TIMEOUT: Final = 30 * 60.0
#: ... and this many seconds after login, whatever happens.
ABSOLUTE_TIMEOUT: Final = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How ``hotline serve`` was started."""

    idle_timeout: float = IDLE_TIMEOUT
    absolute_timeout: float = ABSOLUTE_TIMEOUT
    #: ``None``: mark cookies ``Secure`` when the request came over HTTPS (directly, or as a
    #: trusted reverse proxy says); True/False force it.
    secure_cookies: bool | None = None
    #: Crawl options of the runs analysts start from the console (``POST /reports``).
    crawl_options: CrawlOptions = field(default_factory=CrawlOptions)
    #: Writes the access log (one line per request); None: no access log.
    access_log: Callable[[str], None] | None = None


@dataclass(slots=True)
class ConsoleState:
    config: Config
    settings: ConsoleSettings
    session: Session
    accounts: Accounts
    takedown: Takedown
    #: Starts the crawl of a queued (not distributed) run, given its id.
    launch: Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a logged-in user (``kind`` session, with the session's CSRF token) or
    an API token (``kind`` token, ``name`` the token's name)."""

    name: str
    role: str
    kind: str  # "session" | "token"
    csrf: str = ""

    @property
    def actor(self) -> str:
        """How the audit trail names this principal: ``analyst@<user>`` for a person (as the
        CLI names analysts), ``token@<name>`` for a script."""
        return f"analyst@{self.name}" if self.kind == "session" else f"token@{self.name}"

    def may(self, role: str) -> bool:
        return role_allows(self.role, role)
