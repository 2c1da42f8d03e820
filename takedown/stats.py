"""The figures hotlines publish: per provider, how many notices, how many removed, how fast.

Time to removal is measured from the moment the notice was sent to the first recheck that found
the content gone (the upper end of the interval [last seen online, first seen gone]): the
conservative figure, the one a provider cannot dispute. The lower end is reported beside it.
Percentiles use the nearest-rank method, so every figure is a time that actually occurred.

Only confirmed removals count towards time to removal. A notice closed because its URL stayed
unreachable (``gone_unreachable``) is counted apart: the content may be gone, or the site may
be blocking the hotline. A reappearance (content found online again after its notice closed)
is counted per provider; the reopened notice's current cycle is what the other figures show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from takedown.notices import CLOSED_STATUSES, OPEN_STATUSES, NoticeFields

__all__ = ["ProviderStats", "nearest_rank", "provider_stats"]


def nearest_rank(values: list[float], percentile: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class ProviderStats:
    provider: str
    notices: int = 0  # notices that went out (sent, escalated, removed or gone_unreachable)
    removed: int = 0
    gone_unreachable: int = 0
    reappeared: int = 0
    still_online: int = 0
    escalated: int = 0
    reminders: int = 0
    unroutable: int = 0
    failed: int = 0
    pending: int = 0
    removal_upper: list[float] = field(default_factory=list)
    removal_lower: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "notices": self.notices,
            "removed": self.removed,
            "gone_unreachable": self.gone_unreachable,
            "reappeared": self.reappeared,
            "still_online": self.still_online,
            "escalated": self.escalated,
            "reminders": self.reminders,
            "unroutable": self.unroutable,
            "failed": self.failed,
            "pending": self.pending,
            "time_to_removal_s": {
                "median": nearest_rank(self.removal_upper, 50),
                "p90": nearest_rank(self.removal_upper, 90),
                "median_lower_bound": nearest_rank(self.removal_lower, 50),
            },
        }


def provider_stats(notices: Iterable[NoticeFields]) -> list[ProviderStats]:
    """Per-provider figures, busiest provider first: from notices read whole, or from
    ``NoticeStore.figures()``, which reads only what is needed here."""
    by_provider: dict[str, ProviderStats] = {}
    for notice in notices:
        stats = by_provider.setdefault(notice.provider, ProviderStats(notice.provider))
        stats.reappeared += notice.count("reopens")
        if notice.status == "unroutable":
            stats.unroutable += 1
            continue
        if notice.status == "failed":
            stats.failed += 1
            continue
        if notice.status not in OPEN_STATUSES and notice.status not in CLOSED_STATUSES:
            stats.pending += 1  # queued, or waiting for an analyst
            continue
        stats.notices += 1
        stats.reminders += notice.count("reminders")
        if notice.count("escalations") or notice.status == "escalated":
            stats.escalated += 1
        if notice.status in OPEN_STATUSES:
            stats.still_online += 1
        elif notice.status == "gone_unreachable":
            stats.gone_unreachable += 1
        elif notice.status == "removed":
            stats.removed += 1
            lower, upper = notice.time_to_removal()
            if upper is not None and lower is not None:
                stats.removal_upper.append(upper)
                stats.removal_lower.append(lower)
    return sorted(by_provider.values(), key=lambda s: (-s.notices, s.provider))
