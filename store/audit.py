"""The audit event: one state change of one incident, as the ``audit`` stream and each
notice's ``timeline`` stream hold it.

Notices (:mod:`takedown.notices`) and analysts' review decisions (:mod:`store.review`) write
the same fields, so ``hotline notices show`` and the audit trail read every event alike:
``notice`` (the incident id), ``event``, ``status``, ``actor`` (``notifier@host``,
``recheck@host``, ``analyst@name``), ``time`` (ISO 8601 UTC), ``ts`` (unix seconds) and
``detail`` (at most :data:`MAX_DETAIL` characters). URLs and hashes only, never content.
"""

from __future__ import annotations

import time
from typing import Final

import redis

from store.clock import iso
from store.keys import Keys
from store.text import text

__all__ = ["MAX_DETAIL", "append_event", "event_fields"]

#: The longest ``detail`` kept in an event.
MAX_DETAIL: Final = 2000


def event_fields(
    incident: str, event: str, status: str, actor: str, now: float, detail: str
) -> dict[str, str]:
    """The stream fields of one event at unix time ``now``."""
    return {
        "notice": incident,
        "event": event,
        "status": status,
        "actor": actor,
        "time": iso(now),
        "ts": repr(now),
        "detail": detail[:MAX_DETAIL],
    }


def append_event(
    client: redis.Redis,
    keys: Keys,
    *,
    incident: str,
    event: str,
    actor: str,
    detail: str = "",
    status: str = "",
    now: float | None = None,
) -> str:
    """Append one event to the ``audit`` stream (an action that changes no notice: a login, a
    user added, a report submitted, a schedule paused); returns the stream entry id.

    ``incident`` names what the action was about (``user:NAME``, ``run:ID``, ``list:NAME``)."""
    when = time.time() if now is None else now
    entry = client.xadd(
        keys.audit,
        event_fields(incident, event, status, actor, when, detail),  # type: ignore[arg-type]
    )
    return text(entry)
