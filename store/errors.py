"""Exceptions raised by the ``store`` package.

The tree, so the crawler, takedown and the CLI's exit-code mapping can catch at the level they
need::

    StoreError               base of everything this package raises on purpose
    ├── EnvironmentVariableError  a ``HOTLINE_*`` variable's value cannot be used; the
    │                             message starts with its name (also a ``ValueError``)
    ├── RedisUnavailable     Redis cannot be reached, refused us, or its URL is unusable
    │   └── InvalidRedisUrl  the URL itself is malformed (bad input: exit 2 in the CLI)
    ├── QueueError           a stream, sorted-set or script operation failed or met bad data
    │   ├── RunNotFound      no run has that id (or the id prefix is ambiguous)
    │   ├── RunExists        a run with this id exists already
    │   └── RunStateError    the run's status does not allow the change; ``status`` says why
    ├── ListNotFound         no hash list of that name is stored
    └── ScheduleError        a schedule cannot be added or changed as asked
        ├── ScheduleNotFound no schedule has that name
        ├── ScheduleExists   a schedule of that name exists already
        └── ScheduleCorrupt  a schedule's record cannot be read (names the schedule and field)

Messages are one line and never contain secrets: Redis URLs are shown through
:func:`store.connection.mask_url`.
"""

from __future__ import annotations

__all__ = [
    "EnvironmentVariableError",
    "InvalidRedisUrl",
    "ListNotFound",
    "QueueError",
    "RedisUnavailable",
    "RunExists",
    "RunNotFound",
    "RunStateError",
    "ScheduleCorrupt",
    "ScheduleError",
    "ScheduleExists",
    "ScheduleNotFound",
    "StoreError",
]


class StoreError(Exception):
    """Base class for every error the ``store`` package raises deliberately."""


class EnvironmentVariableError(StoreError, ValueError):
    """An environment variable has a value that cannot be used; ``variable`` names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class RedisUnavailable(StoreError):
    """Redis could not be reached or refused the connection (auth, TLS, bad URL, not running)."""


class InvalidRedisUrl(RedisUnavailable, ValueError):
    """The Redis URL itself is malformed (a configuration error, not an outage)."""


class QueueError(StoreError):
    """A queue (stream, consumer group, sorted set) operation failed or returned bad data."""


class RunNotFound(QueueError):
    """No run has the given id (or id prefix), or the prefix is ambiguous."""


class RunExists(QueueError):
    """A run with this id exists already."""


class RunStateError(QueueError):
    """The run's status does not allow the change (e.g. starting a cancelled run)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class ListNotFound(StoreError):
    """No list of that name is stored."""


class ScheduleError(StoreError):
    """A schedule cannot be added or changed as asked (the CLI exits 2)."""


class ScheduleNotFound(ScheduleError):
    """No schedule has the given name."""


class ScheduleExists(ScheduleError):
    """A schedule of that name already exists."""


class ScheduleCorrupt(ScheduleError):
    """A schedule's record in Redis cannot be read (names the schedule and the field)."""
