"""The console's pages: server-rendered HTML (Jinja2), usable without JavaScript.

Each page reads through :mod:`hotline.console.data`, as the API does. A form that changes
something posts ``csrf_token`` and, when done, redirects back (POST, redirect, GET) with a
one-time message in the ``hotline_flash`` cookie. No template ever puts a reported URL in a
``src`` attribute (see ``templates/macros.html``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from hotline.console import data
from hotline.console.charts import duration_label, removal_bars, removal_histogram, status_bars
from hotline.console.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ApiError,
    csrf_matches,
    new_token,
    requires,
    secure_request,
    state_of,
)
from hotline.console.state import Principal
from store.accounts import ROLES, AccountError, TokenExists, TokenNotFound, UserNotFound
from store.audit import append_event
from takedown.notices import STATUSES as NOTICE_STATUSES

__all__ = ["FLASH_COOKIE", "router", "templates"]

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
FLASH_COOKIE: Final = "hotline_flash"
GENERIC_LOGIN_ERROR: Final = "Wrong user name or password."
THROTTLED_LOGIN_ERROR: Final = "Too many failed logins. Wait a few minutes and try again."

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)
templates.env.filters["duration"] = lambda seconds: (
    "-" if seconds is None else duration_label(seconds)
)
router = APIRouter()

Viewer = Annotated[Principal, Depends(requires("viewer", api=False))]
Analyst = Annotated[Principal, Depends(requires("analyst", api=False))]
Admin = Annotated[Principal, Depends(requires("admin", api=False))]
CsrfField = Annotated[str, Form()]


def root_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(
    request: Request, template: str, *, http_status: int = 200, **context: Any
) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    flash = request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "root": root_of(request),
            "nonce": request.state.nonce,
            "who": principal,
            "csrf": principal.csrf if principal is not None else "",
            "flash": _flash_text(flash),
            "path": request.url.path,
            **context,
        },
        status_code=http_status,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _flash_text(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {"kind": str(value.get("kind", "info")), "text": str(value.get("text", ""))[:500]}


def redirect(
    request: Request, path: str, text: str = "", *, kind: str = "info"
) -> RedirectResponse:
    """303 to ``path`` (under the root path), with a one-time message."""
    response = RedirectResponse(root_of(request) + path, status_code=303)
    if text:
        response.set_cookie(
            FLASH_COOKIE,
            json.dumps({"kind": kind, "text": text[:500]}),
            httponly=True,
            samesite="strict",
            secure=secure_request(request),
            path="/",
        )
    return response


def check_form(request: Request, who: Principal, token: str) -> None:
    """A form that changes state must carry the session's CSRF token."""
    if not csrf_matches(who.csrf, token):
        raise ApiError(403, "csrf", "the form's security token is missing or out of date; reload")


# -- login and logout ----------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next)


def _login_page(
    request: Request, next: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The login form with a fresh form token (in a cookie and in the form)."""
    token = new_token()
    response = render(
        request,
        "login.html",
        http_status=status,
        login_csrf=token,
        next=_safe_next(next),
        error=error,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
        path="/",
        max_age=3600,
    )
    return response


def _safe_next(value: str) -> str:
    """Only a path of this console (never another site) after login."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: CsrfField = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    state = state_of(request)
    accounts = state.accounts
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        raise ApiError(403, "csrf", "the login form's security token is missing; reload the page")
    address = request.client.host if request.client else "unknown"
    name = username.strip()
    if not accounts.login_allowed(name, address):
        return _login_page(request, next, error=THROTTLED_LOGIN_ERROR, status=429)
    user = accounts.verify_password(name, password)
    if user is None:
        accounts.record_login_failure(name, address)
        return _login_page(request, next, error=GENERIC_LOGIN_ERROR, status=401)
    accounts.clear_login_failures(name)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a new session id at every login: a planted cookie never becomes a session
        accounts.end_session(old)
    token, _ = accounts.create_session(
        user.name, idle=state.settings.idle_timeout, absolute=state.settings.absolute_timeout
    )
    append_event(
        state.session.client,
        state.session.keys,
        incident=f"user:{user.name}",
        event="login",
        actor=f"analyst@{user.name}",
        detail=f"from {address}",
    )
    response = RedirectResponse(root_of(request) + _safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request, who: Viewer, csrf_token: CsrfField = "") -> Response:
    check_form(request, who, csrf_token)
    state = state_of(request)
    state.accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    append_event(
        state.session.client,
        state.session.keys,
        incident=f"user:{who.name}",
        event="logout",
        actor=who.actor,
    )
    response = RedirectResponse(root_of(request) + "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- overview, report, runs ----------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, who: Viewer) -> HTMLResponse:
    view = data.overview(state_of(request))
    return render(request, "overview.html", view=view, statuses=NOTICE_STATUSES)


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request, who: Analyst) -> HTMLResponse:
    return render(request, "report.html")


@router.post("/report")
async def report(
    request: Request,
    who: Analyst,
    csrf_token: CsrfField = "",
    urls: Annotated[str, Form(max_length=1_000_000)] = "",
    seeds: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_form(request, who, csrf_token)
    lines = urls.splitlines()
    source = "report form"
    if seeds is not None and seeds.filename:
        raw = await seeds.read(1_000_001)
        if len(raw) > 1_000_000:
            raise ApiError(413, "too_large", f"{seeds.filename}: a seed file is at most 1 MB")
        try:
            lines = [*lines, *raw.decode("utf-8-sig").splitlines()]
        except UnicodeDecodeError:
            raise ApiError(422, "invalid", f"{seeds.filename}: not UTF-8 text") from None
        source = f"report form and {seeds.filename}"
    result = await run_in_threadpool(
        data.submit_report, state_of(request), who, lines, source=source
    )
    run_id = result["run"]["id"]
    rejected = result["rejected"]
    text = f"Run {run_id} started with {len(result['run']['seeds'])} URLs."
    if rejected:
        text += f" {len(rejected)} skipped: " + "; ".join(
            f"line {r['line']}: {r['reason']}" for r in rejected[:5]
        )
    return redirect(request, f"/runs/{quote(run_id)}", text)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, who: Viewer, status: str | None = None) -> HTMLResponse:
    rows = data.list_runs(state_of(request), status=status or None, limit=200)
    return render(request, "runs.html", runs=rows, status=status or "")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, who: Viewer) -> HTMLResponse:
    state = state_of(request)
    run = data.run_detail(state, run_id)
    hits = data.list_hits(state, data.HitFilter(run=run["id"]))
    return render(request, "run.html", run=run, hits=hits)


@router.post("/runs/{run_id}/cancel")
def run_cancel(request: Request, run_id: str, who: Analyst, csrf_token: CsrfField = "") -> Response:
    check_form(request, who, csrf_token)
    data.cancel_run(state_of(request), who, run_id)
    return redirect(request, f"/runs/{quote(run_id)}", f"Cancel of run {run_id} requested.")


# -- schedules -----------------------------------------------------------------------------


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "schedules.html", schedules=data.schedules(state_of(request)))


@router.post("/schedules")
def schedule_add(
    request: Request,
    who: Admin,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form()] = "",
    seeds: Annotated[str, Form()] = "",
    every: Annotated[str, Form()] = "",
    cron: Annotated[str, Form()] = "",
    depth: Annotated[str, Form()] = "",
    max_pages: Annotated[str, Form()] = "",
) -> Response:
    check_form(request, who, csrf_token)
    form = {"seeds": seeds, "every": every, "cron": cron, "depth": depth, "max_pages": max_pages}
    data.schedule_action(state_of(request), who, "add", name.strip(), form)
    return redirect(request, "/schedules", f"Schedule {name.strip()} added.")


@router.post("/schedules/{name}/{action}")
def schedule_change(
    request: Request, name: str, action: str, who: Admin, csrf_token: CsrfField = ""
) -> Response:
    check_form(request, who, csrf_token)
    if action not in {"pause", "resume", "remove", "run"}:
        raise ApiError(404, "not_found", f"no schedule action {action!r}")
    result = data.schedule_action(state_of(request), who, action, name)
    if action == "run":
        return redirect(
            request, f"/runs/{quote(result['run_id'])}", f"Run {result['run_id']} started."
        )
    done = {"pause": "paused", "resume": "resumed", "remove": "removed"}[action]
    return redirect(request, "/schedules", f"Schedule {name} {done}.")


# -- hits ----------------------------------------------------------------------------------


@router.get("/hits", response_class=HTMLResponse)
def hits_page(
    request: Request,
    who: Viewer,
    run: str = "",
    list_name: Annotated[str, Query(alias="list")] = "",
    provider: str = "",
    since: str = "",
    until: str = "",
) -> HTMLResponse:
    flt = data.HitFilter(
        run or None, list_name or None, provider or None, since or None, until or None
    )
    rows = data.list_hits(state_of(request), flt)
    query = urlencode(
        {
            k: v
            for k, v in {
                "run": run,
                "list": list_name,
                "provider": provider,
                "since": since,
                "until": until,
            }.items()
            if v
        }
    )
    return render(
        request,
        "hits.html",
        hits=rows[: data.MAX_PAGE],
        total=len(rows),
        flt={"run": run, "list": list_name, "provider": provider, "since": since, "until": until},
        query=query,
    )


@router.get("/hits/{hit_id}", response_class=HTMLResponse)
def hit_page(request: Request, hit_id: str, who: Viewer) -> HTMLResponse:
    return render(request, "hit.html", hit=data.hit_detail(state_of(request), hit_id))


# -- review --------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, who: Viewer, show: str = "pending") -> HTMLResponse:
    items = data.review_items(state_of(request), pending=show != "all")
    return render(request, "review.html", items=items[: data.MAX_PAGE], total=len(items), show=show)


@router.get("/review/{item_id}", response_class=HTMLResponse)
def review_item_page(request: Request, item_id: str, who: Viewer) -> HTMLResponse:
    return render(request, "review_item.html", item=data.review_detail(state_of(request), item_id))


@router.post("/review/{item_id}")
def review_decide(
    request: Request,
    item_id: str,
    who: Analyst,
    csrf_token: CsrfField = "",
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    allow_list: Annotated[str, Form()] = "",
) -> Response:
    check_form(request, who, csrf_token)
    chosen = "dismiss" if decision in {"dismiss", "allow-list"} else decision
    if decision == "allow-list" and not allow_list.strip():
        raise ApiError(422, "invalid", "name the allow-list the image's hashes go to")
    result = data.decide_review(
        state_of(request),
        who,
        item_id,
        chosen,
        reason,
        allow_list=allow_list.strip() if decision == "allow-list" else None,
    )
    text = f"Review item {result['id']}: {result['decision']} by {result['actor']}."
    if not result["new"]:
        text = f"Review item {result['id']} was already {result['decision']}; nothing changed."
    return redirect(request, "/review", text)


# -- notices -------------------------------------------------------------------------------


@router.get("/notices", response_class=HTMLResponse)
def notices_page(
    request: Request, who: Viewer, status: str = "", provider: str = ""
) -> HTMLResponse:
    rows = data.notices(state_of(request), status=status or None, provider=provider or None)
    return render(
        request,
        "notices.html",
        notices=rows[: data.MAX_PAGE],
        total=len(rows),
        status=status,
        provider=provider,
        statuses=NOTICE_STATUSES,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_page(request: Request, notice_id: str, who: Viewer) -> HTMLResponse:
    state = state_of(request)
    notice = data.notice_detail(state, notice_id)
    prepared = None
    if notice["channel"] in {"outbox", "form"} or notice["status"] == "awaiting_manual":
        prepared = data.manual_delivery(state, notice["id"])
    return render(request, "notice.html", notice=notice, prepared=prepared)


@router.post("/notices/{notice_id}/{action}")
def notice_change(
    request: Request,
    notice_id: str,
    action: str,
    who: Analyst,
    csrf_token: CsrfField = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_form(request, who, csrf_token)
    if action not in {"resend", "mark-sent", "reopen"}:
        raise ApiError(404, "not_found", f"no notice action {action!r}")
    result = data.notice_action(state_of(request), who, action, notice_id, note=note)
    text = f"Notice {result['reference']}: {result['outcome']} (status {result['status']})."
    if result["error"]:
        text += f" Last error: {result['error']}"
    return redirect(request, f"/notices/{quote(result['id'])}", text)


# -- providers, lists, audit, users --------------------------------------------------------


@router.get("/providers", response_class=HTMLResponse)
def providers_page(request: Request, who: Viewer) -> HTMLResponse:
    state = state_of(request)
    figures = data.stats(state)
    rows = data.provider_rows(state)
    everything = [v for row in rows for v in row.removal_upper]
    return render(
        request,
        "providers.html",
        figures=figures,
        # Providers no notice went out to ("(unroutable)") have no removal times to draw.
        bars=removal_bars([row for row in rows if row.notices]),
        histogram=removal_histogram(everything, title="Time to removal, all providers"),
        states=status_bars(
            {name.replace("_", " "): n for name, n in figures["statuses"].items()},
            title="Notices by state",
        ),
    )


@router.get("/lists", response_class=HTMLResponse)
def lists_page(request: Request, who: Viewer) -> HTMLResponse:
    return render(request, "lists.html", lists=data.lists_info(state_of(request)))


@router.post("/lists")
async def list_upload(
    request: Request,
    who: Admin,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form()] = "",
    classification: Annotated[str, Form()] = "",
    allow: Annotated[bool, Form()] = False,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_form(request, who, csrf_token)
    if file is None or not file.filename:
        raise ApiError(422, "invalid", "choose a CSV file to upload")
    body = await file.read(data.MAX_LIST_UPLOAD + 1)
    if len(body) > data.MAX_LIST_UPLOAD:
        raise ApiError(413, "too_large", "import lists this large with `hotline hashes import`")
    info = await run_in_threadpool(
        data.upload_list,
        state_of(request),
        who,
        name.strip(),
        body,
        filename=file.filename,
        allow=allow,
        classification=classification,
    )
    return redirect(
        request,
        "/lists",
        f"List {info['name']}: version {info['version']}, {info['total']} entries.",
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, who: Viewer, limit: int = 200) -> HTMLResponse:
    limit = max(1, min(limit, 2000))
    return render(request, "audit.html", events=data.audit_events(state_of(request), limit=limit))


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, who: Admin) -> HTMLResponse:
    return _users(request)


def _users(request: Request, *, new_token: dict[str, str] | None = None) -> HTMLResponse:
    accounts = state_of(request).accounts
    return render(
        request,
        "users.html",
        http_status=201 if new_token else 200,
        users=[u.as_json() for u in accounts.users()],
        tokens=[t.as_json() for t in accounts.tokens()],
        roles=ROLES,
        new_token=new_token,
    )


@router.post("/tokens", response_class=HTMLResponse)
def token_create(
    request: Request,
    who: Admin,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
) -> HTMLResponse:
    """Create an API token and show its secret on this one response (never stored, never
    redirected through a cookie; the response is ``no-store``)."""
    check_form(request, who, csrf_token)
    try:
        token, secret = state_of(request).accounts.create_token(name.strip(), role, actor=who.actor)
    except TokenExists as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except AccountError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return _users(request, new_token={"name": token.name, "role": token.role, "secret": secret})


@router.post("/tokens/{name}/revoke")
def token_revoke(request: Request, name: str, who: Admin, csrf_token: CsrfField = "") -> Response:
    check_form(request, who, csrf_token)
    try:
        state_of(request).accounts.revoke_token(name, actor=who.actor)
    except TokenNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return redirect(request, "/users", f"Token {name} revoked.")


@router.post("/users")
def user_add(
    request: Request,
    who: Admin,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    check_form(request, who, csrf_token)
    try:
        state_of(request).accounts.add_user(name.strip(), role, password, actor=who.actor)
    except AccountError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return redirect(request, "/users", f"User {name.strip()} added as {role}.")


@router.post("/users/{name}/{action}")
def user_change(
    request: Request, name: str, action: str, who: Admin, csrf_token: CsrfField = ""
) -> Response:
    check_form(request, who, csrf_token)
    accounts = state_of(request).accounts
    try:
        if action == "disable":
            if name == who.name:
                raise ApiError(409, "conflict", "you cannot disable your own account")
            accounts.disable_user(name, actor=who.actor)
        elif action == "enable":
            accounts.enable_user(name, actor=who.actor)
        else:
            raise ApiError(404, "not_found", f"no user action {action!r}")
    except UserNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except AccountError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return redirect(request, "/users", f"User {name} {action}d.")
