"""Who may do what, and the headers that keep every image out of the analyst's browser.

**Authentication.** A person logs in with a password and gets a server-side session: the
cookie :data:`SESSION_COOKIE` holds a random token (HttpOnly, SameSite=Strict, ``Secure``
over HTTPS), Redis holds only its SHA-256 with the user, the CSRF token and the times
(:class:`store.accounts.Accounts`). A script sends ``Authorization: Bearer <token>`` with an
API token. Roles are ordered: viewer reads; analyst also reports, decides and sends; admin
also manages users, lists, schedules and the configuration.

**CSRF.** Every state-changing form carries the session's ``csrf_token``; an API call made
with the session cookie (the console's own JavaScript) carries it as ``X-CSRF-Token``. A
request with a bearer token carries no cookie, so a forged cross-site request cannot use
it. The login form, before any session exists, uses a double-submit cookie.

**The no-image guarantee.** Every response carries a ``Content-Security-Policy`` that lets
the page load images, media, frames and objects from nowhere but the console itself
(``img-src 'self'``: its own icon), no script but its own file, and no framing, together
with ``Referrer-Policy: no-referrer`` and ``X-Content-Type-Options: nosniff``. The templates
never put a reported URL in a ``src``; a link to one carries ``rel="noreferrer noopener"``
and a warning (see ``templates/macros.html``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Final

from fastapi import Request

from hotline.console.state import ConsoleState, Principal

__all__ = [
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "ApiError",
    "LoginRequired",
    "content_security_policy",
    "csrf_matches",
    "current_principal",
    "new_nonce",
    "new_token",
    "requires",
    "secure_request",
    "security_headers",
    "state_of",
]

SESSION_COOKIE: Final = "hotline_session"
LOGIN_CSRF_COOKIE: Final = "hotline_login_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiError(Exception):
    """An error with an HTTP status and a stable code, rendered as
    ``{"error": {"status": ..., "code": ..., "message": ...}}`` by the API and as an error
    page by the HTML side."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LoginRequired(Exception):
    """A page was asked for without a session: the browser goes to the login page."""


def state_of(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def secure_request(request: Request) -> bool:
    """Whether cookies must be ``Secure``: forced by the settings, else when the request came
    over HTTPS (uvicorn applies a trusted proxy's ``X-Forwarded-Proto`` to the scheme)."""
    forced = state_of(request).settings.secure_cookies
    return forced if forced is not None else request.url.scheme == "https"


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def new_token() -> str:
    """A random value for a double-submit cookie."""
    return secrets.token_urlsafe(32)


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self'",
            "media-src 'none'",
            "object-src 'none'",
            "frame-src 'none'",
            "worker-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "connect-src 'self'",
        )
    )


def security_headers(nonce: str, *, static: bool) -> dict[str, str]:
    """The headers of every response (``static``: the console's own assets may be cached)."""
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cache-Control": "private, max-age=3600" if static else "no-store",
    }


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def current_principal(request: Request) -> Principal | None:
    """The principal of this request (looked up once, then kept on ``request.state``): a
    valid bearer token, else a live session; None for neither. A bearer token that is not
    valid is an error (401), not an anonymous request."""
    cached: object = getattr(request.state, "principal", False)
    if cached is not False:
        return cached if isinstance(cached, Principal) else None
    state = state_of(request)
    principal: Principal | None = None
    secret = _bearer(request)
    if secret is not None:
        token = state.accounts.authenticate_token(secret)
        if token is None:
            raise ApiError(401, "unauthenticated", "the API token is not valid (or revoked)")
        principal = Principal(token.name, token.role, "token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            info = state.accounts.get_session(
                cookie,
                idle=state.settings.idle_timeout,
                absolute=state.settings.absolute_timeout,
            )
            if info is not None:
                principal = Principal(info.user, info.role, "session", info.csrf)
    request.state.principal = principal
    return principal


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def requires(role: str, *, api: bool) -> Callable[[Request], Principal]:
    """A dependency: the request's principal, who must hold ``role``.

    Pages (``api=False``) send a browser without a session to the login page; the API
    answers 401. A principal without the role gets 403. An API call that changes state with
    the session cookie must carry the CSRF token in ``X-CSRF-Token`` (forms check theirs in
    the handler, where the form is read)."""

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            if not api:
                raise LoginRequired
            raise ApiError(401, "unauthenticated", "log in, or send an API token as Bearer")
        if not principal.may(role):
            raise ApiError(
                403, "forbidden", f"this needs the {role} role (you are {principal.role})"
            )
        if (
            api
            and principal.kind == "session"
            and request.method not in SAFE_METHODS
            and not csrf_matches(principal.csrf, request.headers.get(CSRF_HEADER))
        ):
            raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header")
        return principal

    dependency.__name__ = f"requires_{role}_{'api' if api else 'page'}"
    return dependency
