"""``hotline hits list`` and ``hotline review list``: the records crawls queued, confirmed hits
for notice and takedown, near misses for an analyst."""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.cli.app import JsonOption, open_session, out
from hotline.cli.render import json_or_empty, records_table

__all__ = ["hits_app", "review_app"]

hits_app = typer.Typer(help="Confirmed hits queued for notice and takedown.", no_args_is_help=True)
review_app = typer.Typer(help="Near misses queued for an analyst's review.", no_args_is_help=True)

CrawlFilter = Annotated[str | None, typer.Option("--crawl", help="Only this crawl's records.")]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the newest N records.")]


def _list_records(
    verdict: str, *, as_json: bool, crawl_id: str | None, limit: int | None, title: str
) -> None:
    with open_session() as session:
        records = [
            r
            for r in session.hits().iter_records(verdict)
            if crawl_id is None or r.crawl == crawl_id
        ]
    if limit is not None:
        records = records[-limit:]
    data = [r.as_json() for r in records]
    if json_or_empty(records, data, empty=f"no {title}", as_json=as_json):
        return
    out.print(records_table(records, title=title))


@hits_app.command("list")
def hits_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List confirmed hits, oldest first."""
    _list_records(
        "confirmed", as_json=as_json, crawl_id=crawl_id, limit=limit, title="confirmed hits"
    )


@review_app.command("list")
def review_list(
    as_json: JsonOption = False, crawl_id: CrawlFilter = None, limit: LimitOption = None
) -> None:
    """List near misses waiting for an analyst, oldest first."""
    _list_records("review", as_json=as_json, crawl_id=crawl_id, limit=limit, title="review items")
