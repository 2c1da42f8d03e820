"""Exceptions raised by the ``takedown`` package.

The tree, so callers (and the CLI's exit-code mapping) can catch at the level they need. Most
classes live here; the four defined next to the code that raises them say where::

    TakedownError            base of everything this package raises on purpose
    ├── SettingsError        the TOML settings are unreadable or wrong (file, table, field);
    │                        defined in takedown.settings
    ├── DirectoryError       the provider directory file is malformed (file, line, field)
    ├── RdapError            an RDAP lookup failed or returned a document we cannot read
    │   └── RdapNotFound     the RDAP server has no record (HTTP 404); takedown.rdap
    ├── NoticeError          a notice cannot be rendered, or its X-ARF report is invalid
    │   └── TemplateError    a notice template is missing or broken (names the file)
    └── DeliveryError        a channel did not accept a message; ``permanent`` says whether
                             retrying the same message can help (a 550 cannot, a 451 can)

The notice store's errors belong to the Redis-backed state, so they extend
:class:`store.errors.QueueError` (and with it :class:`store.errors.StoreError`, where every
Redis, stream and queue error lives) rather than ``TakedownError``; catch them by name or as
``StoreError``::

    store.errors.QueueError
    ├── NoticeNotFound       no notice has that id, id prefix or reference; takedown.notices
    ├── LockBusy             another live process holds the notice's lock; takedown.notices
    └── PurgeBusy            another process is purging expired records; takedown.retention

Messages are one line and never contain secrets: Redis URLs are shown through
:func:`store.connection.mask_url`.
"""

from __future__ import annotations

import httpx

__all__ = [
    "DeliveryError",
    "DirectoryError",
    "NoticeError",
    "RdapError",
    "RdapUrlError",
    "TakedownError",
    "TemplateError",
    "http_base_url",
]


class TakedownError(Exception):
    """Base class for every error the ``takedown`` package raises deliberately."""


class DirectoryError(TakedownError):
    """The provider directory is malformed; the message names the file, line and field."""


class RdapError(TakedownError):
    """An RDAP server could not be reached, answered with an error, or sent a bad document."""


class RdapRefused(RdapError):
    """The address policy refused the registry's host (or where it redirected): the
    configuration's verdict, so never cached; ``allowed_networks`` changes it at once."""


class RdapUrlError(RdapError):
    """An RDAP or bootstrap base URL given by the hotline is not a usable http(s) URL (bad
    input: exit 2 in the CLI)."""


def http_base_url(value: str, what: str) -> httpx.URL:
    """``value`` as an http(s) URL with a host, or :class:`RdapUrlError` naming ``what``."""
    try:
        parts = httpx.URL(value.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.host:
        raise RdapUrlError(f"{what} {value!r} is not an http(s) URL")
    return parts


class NoticeError(TakedownError):
    """A notice could not be built, or its X-ARF report does not validate against the schema."""


class TemplateError(NoticeError):
    """A notice template is missing or cannot be rendered; the message names the template."""


class DeliveryError(TakedownError):
    """A channel did not accept a message.

    ``permanent`` is true when sending the same message again cannot succeed (a 5xx SMTP
    reply, a 4xx webhook answer other than 408/429, a recipient without an address); the
    notifier then stops retrying at once instead of spending its attempts.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
