"""Exceptions raised by the ``takedown`` package.

The tree, so callers (and the CLI's exit-code mapping) can catch at the level they need::

    TakedownError            base of everything this package raises on purpose
    ├── RedisUnavailable     Redis cannot be reached, refused us, or its URL is unusable
    └── QueueError           a stream / consumer-group operation failed or met bad data

Messages are one line and never contain secrets: Redis URLs are shown through
:func:`takedown.connection.mask_url`.
"""

from __future__ import annotations

__all__ = ["QueueError", "RedisUnavailable", "TakedownError"]


class TakedownError(Exception):
    """Base class for every error the ``takedown`` package raises deliberately."""


class RedisUnavailable(TakedownError):
    """Redis could not be reached or refused the connection (auth, TLS, bad URL, not running)."""


class QueueError(TakedownError):
    """A queue (stream, consumer group, sorted set) operation failed or returned bad data."""
