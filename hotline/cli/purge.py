"""``hotline purge``: delete the records whose retention period (``[retention]``) is over."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table

from hotline.cli.app import JsonOption, err, load_config, open_session, out
from hotline.cli.render import table, when
from takedown.notifier import default_consumer_name
from takedown.retention import KINDS, Purger, PurgeReport

__all__ = ["purge", "report_table"]

#: How each kind of record is named in the table.
_LABELS = {
    "notices": "closed notices",
    "hits": "hits",
    "review": "review items",
    "dead_letters": "dead letters",
    "audit": "audit entries",
    "index_entries": "index entries",
}
#: The ``[retention]`` setting whose cutoff applies to each kind.
_SETTING = {
    "notices": "closed_notices",
    "hits": "hits",
    "review": "review",
    "dead_letters": "dead_letters",
    "audit": "audit",
}


def purge(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Count what would be deleted; delete nothing."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete closed notices, hits, review items, dead letters and audit entries older than
    the [retention] periods of the configuration, with every index entry naming them.

    Open notices (queued, waiting for an analyst, sent, escalated) and their hits are never
    deleted, nor hits the notifier has not handled yet. The audit stream gets one event with
    the counts, never a URL. The notifier daemon runs this once a day.
    """
    config = load_config()
    settings = config.takedown_settings()
    with open_session(config) as session:
        purger = Purger(
            session.client,
            session.keys,
            settings.retention,
            actor=f"analyst@{default_consumer_name()}",
        )
        report = purger.purge(dry_run=dry_run)
    if as_json:
        out.print_json(data=report.as_dict())
        return
    out.print(report_table(report))
    if report.changed:
        err.print(
            f"{report.changed} notices changed while the purge ran; the next purge decides",
            markup=False,
        )


def report_table(report: PurgeReport) -> Table:
    """The counts per kind, with the cutoff each kind was measured against."""
    title = "would be purged (dry run)" if report.dry_run else "purged"
    rows = []
    for kind in KINDS:
        setting = _SETTING.get(kind)
        cutoff = None if setting is None else report.cutoffs.get(setting)
        if setting is None:
            limit = "naming no notice"
        elif cutoff is None:
            limit = "kept forever"
        else:
            limit = f"up to {when(cutoff)}"
        rows.append((_LABELS[kind], str(report.counts[kind]), limit))
    return table(
        title,
        [Column("records"), Column("count", justify="right"), Column("expired")],
        rows,
    )
