"""How the commands show things: tables, the cells every table writes alike (times, durations,
health), the table of hit and review records, and "JSON for scripts, one line for people".

Commands print through :data:`hotline.cli.app.out`; nothing here reads Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

from rich.table import Column, Table

from hotline.cli.app import out
from store.clock import format_duration, iso
from store.queue import HitRecord

__all__ = [
    "Column",
    "details_table",
    "duration_cell",
    "emit",
    "health_cell",
    "iso_cell",
    "json_or_empty",
    "minute_cell",
    "records_table",
    "summary_table",
    "table",
    "time_cell",
    "when",
]

#: What a cell without a value shows.
NONE = "-"


# -- cells ---------------------------------------------------------------------------------


def iso_cell(text: str) -> str:
    """An ISO 8601 UTC time (``2024-05-01T12:00:00Z``) as ``2024-05-01 12:00:00``."""
    return text.replace("T", " ").removesuffix("Z")


def minute_cell(text: str) -> str:
    """An ISO 8601 time to the minute: ``2024-05-01 12:00``."""
    return text.replace("T", " ")[:16]


def time_cell(ts: float | None) -> str:
    """Unix seconds as a UTC time to the second, or ``-``."""
    return NONE if ts is None else iso_cell(iso(ts))


def when(ts: float) -> str:
    """Unix seconds as a UTC time that says so: ``2024-05-01 12:00:00 UTC``."""
    return f"{time_cell(ts)} UTC"


def duration_cell(seconds: float | None) -> str:
    """A duration as :func:`store.clock.format_duration` writes it, or ``-``."""
    return NONE if seconds is None else format_duration(seconds)


def health_cell(problems: Iterable[str]) -> str:
    """A run's health problems by name, or ``ok``."""
    return ", ".join(sorted(problems)) or "ok"


# -- tables --------------------------------------------------------------------------------


def table(
    title: str | None,
    columns: Iterable[Column | str],
    rows: Iterable[Sequence[str]],
    *,
    show_header: bool = True,
) -> Table:
    """A table of ``rows`` under ``columns`` (header text, or a :class:`Column` with its
    alignment and wrapping)."""
    result = Table(*columns, title=title, show_header=show_header)
    for row in rows:
        result.add_row(*row)
    return result


def details_table(rows: Iterable[tuple[str, str]], *, title: str | None = None) -> Table:
    """One thing's fields, a name (bold) and a value (folded when long) per line, no box."""
    result = Table(
        Column(style="bold", no_wrap=True),
        Column(overflow="fold"),
        show_header=False,
        box=None,
        title=title,
    )
    for name, value in rows:
        result.add_row(name, value)
    return result


def summary_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    """A boxed summary of figures: label (bold) and value (right-aligned)."""
    result = Table(
        Column("", style="bold"), Column("", justify="right"), title=title, show_header=False
    )
    for label, value in rows:
        result.add_row(label, str(value))
    return result


def records_table(
    records: Iterable[HitRecord], *, title: str, decisions: Mapping[str, str] | None = None
) -> Table:
    """Hit or review records: image, page, list entry, match and when first seen; with
    ``decisions`` (incident id -> decision), the id and the decision of each review item."""
    columns = [
        Column("image URL", overflow="fold", ratio=3),
        Column("found on page", overflow="fold", ratio=2),
        Column("list/entry", overflow="fold"),
        Column("match", no_wrap=True),
        Column("first seen (UTC)", no_wrap=True),
    ]
    if decisions is not None:
        columns = [Column("id", no_wrap=True), *columns, Column("decision", no_wrap=True)]
    rows = []
    for r in records:
        row = [
            r.url,
            r.page,
            f"{r.list}/{r.entry}",
            f"{r.algorithm} {r.distance}"
            + ("" if r.corroborated_by is None else f" + phash {r.corroborated_by}"),
            minute_cell(r.first_seen),
        ]
        if decisions is not None:
            row = [r.incident[:12], *row, decisions.get(r.incident, NONE)]
        rows.append(row)
    return table(title, columns, rows)


# -- JSON or a line --------------------------------------------------------------------------


def json_or_empty(items: Sized, data: Any, *, empty: str, as_json: bool) -> bool:
    """For a listing: ``data`` as JSON (``--json``), or ``empty`` when there are no ``items``.
    True when that was all there is to print; False: the caller draws its table."""
    if as_json:
        out.print_json(data=data)
        return True
    if not len(items):
        out.print(empty, markup=False)
        return True
    return False


def emit(data: Any, line: str, *, as_json: bool) -> None:
    """``data`` as JSON for scripts, else ``line`` as it is (no markup) for people."""
    if as_json:
        out.print_json(data=data)
    else:
        out.print(line, markup=False)
