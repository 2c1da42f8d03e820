"""The console's ASGI application: pages, API, assets, health, and the rules every response
follows (security headers, error shapes, the access log).

:func:`create_app` builds it around one :class:`~hotline.console.state.ConsoleState`;
``hotline serve`` (:mod:`hotline.cli.serve`) runs it with uvicorn, and the tests drive it
with Starlette's test client or a real browser.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.console import api, pages
from hotline.console.security import (
    ApiError,
    LoginRequired,
    new_nonce,
    security_headers,
    state_of,
)
from hotline.console.state import ConsoleState

__all__ = ["create_app"]

STATIC_DIR: Final = Path(__file__).parent / "static"
ACCESS_LOG: Final = logging.getLogger("hotline.console.access")
ERROR_LOG: Final = logging.getLogger("hotline.console")
VERSION: Final = "1"
#: HTTP statuses and the code an error of that status has when nothing more precise is known.
STATUS_CODES: Final = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "throttled",
    503: "unavailable",
}


def create_app(state: ConsoleState, *, root_path: str = "") -> FastAPI:
    app = FastAPI(
        title="hotline-crawler console",
        summary="Report URLs, follow crawls, decide review items, follow takedown notices.",
        version=VERSION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        root_path=root_path,
    )
    app.state.console = state
    app.middleware("http")(_every_response)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(redis.RedisError, _redis_error)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/docs", api_docs, methods=["GET"], include_in_schema=False)
    return app


# -- every response ------------------------------------------------------------------------


async def _every_response(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Security headers on every response (errors included), and one access log line."""
    nonce = new_nonce()
    request.state.nonce = nonce
    started = time.monotonic()
    try:
        response = await call_next(request)
    except Exception:  # the last resort: a traceback in the log, one line to the client
        ERROR_LOG.exception("%s %s failed", request.method, request.url.path)
        response = _error_response(request, 500, "internal", "internal error (see the log)")
    response.headers.update(security_headers(nonce, static=request.url.path.startswith("/static/")))
    state: ConsoleState = request.app.state.console
    if state.settings.access_log is not None:
        principal = getattr(request.state, "principal", None)
        state.settings.access_log(
            json.dumps(
                {
                    "time": round(time.time(), 3),
                    "client": request.client.host if request.client else None,
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                    "user": None if principal is None else principal.name,
                },
                separators=(",", ":"),
            )
        )
    return response


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in {"/healthz", "/readyz"}


def _error_response(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"error": {"status": status, "code": code, "message": message}}, status_code=status
        )
    if not hasattr(request.state, "nonce"):
        request.state.nonce = new_nonce()
    try:
        return pages.render(
            request, "error.html", http_status=status, status=status, code=code, message=message
        )
    except Exception:  # a template that fails must not hide the error
        ERROR_LOG.exception("error page failed")
        return HTMLResponse(f"<p>{status} {code}</p>", status_code=status)


async def _api_error(request: Request, exc: ApiError) -> Response:
    response = _error_response(request, exc.status, exc.code, exc.message)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="hotline"'
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{root}/login?next={quote(target, safe='')}", status_code=303)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return _error_response(request, 422, "invalid", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = STATUS_CODES.get(exc.status_code, "error")
    return _error_response(request, exc.status_code, code, str(exc.detail))


async def _redis_error(request: Request, exc: Exception) -> Response:
    ERROR_LOG.warning("Redis failed: %s", " ".join(str(exc).split()))
    return _error_response(request, 503, "unavailable", "Redis is not answering; try again")


# -- health and documentation --------------------------------------------------------------


def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


def readyz(request: Request) -> Response:
    """The process can serve: Redis answers."""
    try:
        state_of(request).session.client.ping()
    except redis.RedisError as exc:
        return JSONResponse(
            {"status": "unavailable", "redis": " ".join(str(exc).split())}, status_code=503
        )
    return JSONResponse({"status": "ok", "redis": "ok"})


def api_docs(request: Request) -> HTMLResponse:
    """The OpenAPI description as a page of this console (no third-party script or CDN)."""
    spec: dict[str, Any] = request.app.openapi()
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parameters = [
                {
                    "name": p.get("name"),
                    "in": p.get("in"),
                    "required": p.get("required", False),
                    "description": p.get("description")
                    or p.get("schema", {}).get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            body = op.get("requestBody", {}).get("content", {})
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "parameters": parameters,
                    "body": ", ".join(sorted(body)),
                    "responses": sorted(op.get("responses", {})),
                }
            )
    return pages.render(request, "apidocs.html", operations=operations, spec=spec)
