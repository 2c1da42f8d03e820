"""``hotline stats``: per provider, how many notices went out, how many images were removed
and how fast, and how many are still online."""

from __future__ import annotations

from rich.table import Column

from hotline.cli.app import JsonOption, open_takedown_session, out
from hotline.cli.render import duration_cell, json_or_empty, table
from takedown.stats import ProviderStats, provider_stats

__all__ = ["stats"]


def stats(as_json: JsonOption = False) -> None:
    """Per provider: notices sent, removed, median and 90th-percentile time to removal, gone
    while unreachable, reappeared, still online. Time to removal runs from the notice to the
    first check that found it gone (a removal is confirmed by a second check)."""
    with open_takedown_session(need_sender=False) as takedown:
        rows = provider_stats(takedown.store.figures())
        counts = takedown.store.counts()
    data = {"providers": [r.as_dict() for r in rows], "statuses": counts}
    if json_or_empty(rows, data, empty="no notices yet", as_json=as_json):
        return
    columns = [
        Column("provider"),
        *(
            Column(name, justify="right")
            for name in (
                "notices",
                "removed",
                "median",
                "90th pct",
                "gone (unreachable)",
                "reappeared",
                "still online",
                "escalated",
                "unroutable",
                "failed",
            )
        ),
    ]
    out.print(table("time to removal by provider", columns, (_row(r) for r in rows)))
    out.print(", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)


def _row(row: ProviderStats) -> tuple[str, ...]:
    removal = row.as_dict()["time_to_removal_s"]
    return (
        row.provider,
        str(row.notices),
        str(row.removed),
        duration_cell(removal["median"]),
        duration_cell(removal["p90"]),
        str(row.gone_unreachable),
        str(row.reappeared),
        str(row.still_online),
        str(row.escalated),
        str(row.unroutable),
        str(row.failed),
    )
