"""The HTTP API under ``/api/v1``, for partner systems, intake forms and scripts.

Authenticate with ``Authorization: Bearer <token>`` (``hotline tokens create``) or the
console's session cookie (then state-changing calls carry ``X-CSRF-Token``). Listings take
``limit`` (1-500, default 50) and ``offset`` and answer
``{"items": [...], "total": n, "limit": l, "offset": o, "next_offset": n | null}``. Errors
have one shape, ``{"error": {"status": 404, "code": "not_found", "message": "..."}}``, and
the status means what HTTP says: 401 no or bad credentials, 403 a role or CSRF token
missing, 404 no such record, 409 the record's state does not allow it, 422 bad input.
The OpenAPI description is ``/api/v1/openapi.json``, readable at ``/api/docs``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hotline.console import data
from hotline.console.security import ApiError, requires, state_of
from hotline.console.state import Principal

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

Viewer = Annotated[Principal, Depends(requires("viewer", api=True))]
Analyst = Annotated[Principal, Depends(requires("analyst", api=True))]
Admin = Annotated[Principal, Depends(requires("admin", api=True))]
Limit = Annotated[int, Query(ge=1, le=data.MAX_PAGE, description="Records per page.")]
Offset = Annotated[int, Query(ge=0, description="Records to skip.")]


class ReportIn(BaseModel):
    urls: list[str] = Field(min_length=1, max_length=data.MAX_REPORT_URLS)


class DecisionIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    allow_list: str | None = Field(default=None, description="Dismiss only: allow-list name.")


class NoteIn(BaseModel):
    note: str = Field(default="", max_length=2000, description="What was done, or why.")


class ScheduleIn(BaseModel):
    name: str
    seeds: list[str] = Field(min_length=1)
    every: str | None = None
    cron: str | None = None
    depth: int | None = Field(default=None, ge=0)
    max_pages: int | None = Field(default=None, ge=1)


@router.get("/me", summary="Who the credentials belong to")
def me(who: Viewer) -> dict[str, Any]:
    return {"name": who.name, "role": who.role, "kind": who.kind}


@router.get("/overview", summary="Running crawls, queue depths, notices by state, health")
def overview(request: Request, who: Viewer) -> dict[str, Any]:
    return data.overview(state_of(request))


@router.post("/reports", status_code=202, summary="Report URLs: start an on-demand run")
def submit_report(request: Request, body: ReportIn, who: Analyst) -> dict[str, Any]:
    return data.submit_report(state_of(request), who, body.urls, source="request")


@router.get("/runs", summary="Crawl runs, newest first")
def runs(
    request: Request,
    who: Viewer,
    status: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows = data.list_runs(state_of(request), status=status, limit=limit + offset)
    return data.Page(limit, offset).take(rows)


@router.get("/runs/{run_id}", summary="One run: seeds, options, counts, health")
def run(request: Request, run_id: str, who: Viewer) -> dict[str, Any]:
    return data.run_detail(state_of(request), run_id)


@router.post("/runs/{run_id}/cancel", summary="Cancel a queued or running run")
def cancel(request: Request, run_id: str, who: Analyst) -> dict[str, Any]:
    return data.cancel_run(state_of(request), who, run_id)


@router.get("/schedules", summary="Crawl schedules")
def schedules(request: Request, who: Viewer) -> dict[str, Any]:
    rows = data.schedules(state_of(request))
    return data.Page(data.MAX_PAGE, 0).take(rows)


@router.post("/schedules", status_code=201, summary="Add a schedule")
def add_schedule(request: Request, body: ScheduleIn, who: Admin) -> dict[str, Any]:
    return data.schedule_action(state_of(request), who, "add", body.name, body.model_dump())


@router.post("/schedules/{name}/{action}", summary="Pause, resume or run a schedule now")
def schedule_action(request: Request, name: str, action: str, who: Admin) -> dict[str, Any]:
    if action not in {"pause", "resume", "run"}:
        raise ApiError(404, "not_found", f"no schedule action {action!r}")
    return data.schedule_action(state_of(request), who, action, name)


@router.delete("/schedules/{name}", summary="Remove a schedule")
def remove_schedule(request: Request, name: str, who: Admin) -> dict[str, Any]:
    return data.schedule_action(state_of(request), who, "remove", name)


def _hit_filter(
    run: str | None = None,
    list_name: Annotated[str | None, Query(alias="list")] = None,
    provider: str | None = None,
    since: Annotated[str | None, Query(description="Date or UTC time, inclusive.")] = None,
    until: Annotated[str | None, Query(description="Date or UTC time, inclusive.")] = None,
) -> data.HitFilter:
    return data.HitFilter(run or None, list_name or None, provider or None, since, until)


Filter = Annotated[data.HitFilter, Depends(_hit_filter)]


@router.get("/hits", summary="Confirmed hits with their hashes, match and notice")
def hits(
    request: Request, who: Viewer, flt: Filter, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    return data.Page(limit, offset).take(data.list_hits(state_of(request), flt))


@router.get("/hits.csv", summary="Confirmed hits as CSV (same filters)")
def hits_csv(request: Request, who: Viewer, flt: Filter) -> StreamingResponse:
    rows = data.list_hits(state_of(request), flt)
    return StreamingResponse(
        data.hits_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="hits.csv"'},
    )


@router.get("/hits/{hit_id}", summary="One hit: every hash, the match, the notice")
def hit(request: Request, hit_id: str, who: Viewer) -> dict[str, Any]:
    return data.hit_detail(state_of(request), hit_id)


@router.get("/review", summary="Near misses for an analyst")
def review(
    request: Request,
    who: Viewer,
    pending: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return data.Page(limit, offset).take(data.review_items(state_of(request), pending=pending))


@router.get("/review/{item_id}", summary="One review item and its decision")
def review_item(request: Request, item_id: str, who: Viewer) -> dict[str, Any]:
    return data.review_detail(state_of(request), item_id)


@router.post("/review/{item_id}/{decision}", summary="Confirm or dismiss a review item")
def decide(
    request: Request, item_id: str, decision: str, body: DecisionIn, who: Analyst
) -> dict[str, Any]:
    if decision not in {"confirm", "dismiss"}:
        raise ApiError(404, "not_found", f"no review decision {decision!r}")
    if decision == "confirm" and body.allow_list:
        raise ApiError(422, "invalid", "allow_list goes with dismiss")
    return data.decide_review(
        state_of(request), who, item_id, decision, body.reason, allow_list=body.allow_list
    )


@router.get("/notices", summary="Takedown notices, newest first")
def notices(
    request: Request,
    who: Viewer,
    status: str | None = None,
    provider: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows = data.notices(state_of(request), status=status, provider=provider)
    return data.Page(limit, offset).take(rows)


@router.get("/notices/{notice_id}", summary="One notice with its whole timeline")
def notice(request: Request, notice_id: str, who: Viewer) -> dict[str, Any]:
    return data.notice_detail(state_of(request), notice_id)


@router.get("/notices/{notice_id}/prepared", summary="Text and X-ARF of a notice to send by hand")
def prepared(request: Request, notice_id: str, who: Viewer) -> dict[str, Any]:
    result = data.manual_delivery(state_of(request), notice_id)
    if result is None:
        raise ApiError(409, "not_prepared", "the notice has no route, or no identity is configured")
    return result


@router.post("/notices/{notice_id}/{action}", summary="Resend, mark sent or reopen a notice")
def notice_action(
    request: Request, notice_id: str, action: str, who: Analyst, body: NoteIn | None = None
) -> dict[str, Any]:
    if action not in {"resend", "mark-sent", "reopen"}:
        raise ApiError(404, "not_found", f"no notice action {action!r}")
    note = "" if body is None else body.note
    return data.notice_action(state_of(request), who, action, notice_id, note=note)


@router.get("/stats", summary="Per provider: notices, removals, time to removal")
def stats(request: Request, who: Viewer) -> dict[str, Any]:
    return data.stats(state_of(request))


@router.get("/lists", summary="Hash lists: kind, version, counts, thresholds, classification")
def lists(request: Request, who: Viewer) -> dict[str, Any]:
    return data.Page(data.MAX_PAGE, 0).take(data.lists_info(state_of(request)))


@router.post("/lists/{name}", status_code=201, summary="Upload a new version of a list (CSV)")
async def upload_list(
    request: Request,
    name: str,
    who: Admin,
    file: Annotated[UploadFile, File(description="Native CSV: algorithm,hash,id,category")],
    allow: Annotated[bool, Form()] = False,
    classification: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    body = await file.read(data.MAX_LIST_UPLOAD + 1)
    if len(body) > data.MAX_LIST_UPLOAD:
        raise ApiError(413, "too_large", "import lists this large with `hotline hashes import`")
    return await run_in_threadpool(
        data.upload_list,
        state_of(request),
        who,
        name,
        body,
        filename=file.filename or "upload.csv",
        allow=allow,
        classification=classification,
    )


@router.get("/audit", summary="The audit trail, newest first")
def audit(request: Request, who: Viewer, limit: Limit = 100) -> dict[str, Any]:
    return data.Page(limit, 0).take(data.audit_events(state_of(request), limit=limit))
