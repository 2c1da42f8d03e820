"""The audit event: one state change of one incident, as the ``audit`` stream and each
notice's ``timeline`` stream hold it.

Notices (:mod:`takedown.notices`) and analysts' review decisions (:mod:`store.review`) write
the same fields, so ``hotline notices show`` and the audit trail read every event alike:
``notice`` (the incident id), ``event``, ``status``, ``actor`` (``notifier@host``,
``recheck@host``, ``analyst@name``), ``time`` (ISO 8601 UTC), ``ts`` (unix seconds) and
``detail`` (at most :data:`MAX_DETAIL` characters). URLs and hashes only, never content.
"""

from __future__ import annotations

from typing import Final

from store.clock import iso

__all__ = ["MAX_DETAIL", "event_fields"]

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
