"""The console's pages: login, sessions, CSRF, roles, the security headers on every response,
and the no-image rule in the HTML itself (a reported URL is never a ``src``)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from hotline.console.pages import GENERIC_LOGIN_ERROR, THROTTLED_LOGIN_ERROR
from hotline.console.security import SESSION_COOKIE
from store.accounts import MAX_FAILURES_PER_USER
from store.lists import ListStore
from store.queue import HitQueue
from store.review import ReviewDesk
from store.runs import RunStore
from tests.builders import make_hit
from tests.console.conftest import PASSWORD, Console, csrf_of, login, login_token
from tests.helpers import HOST_A, HOST_B

PAGES = (
    "/",
    "/report",
    "/runs",
    "/schedules",
    "/hits",
    "/review",
    "/review?show=all",
    "/notices",
    "/providers",
    "/lists",
    "/audit",
    "/users",
    "/logout",
    "/api/docs",
)


def populate(console: Console) -> None:
    queue = HitQueue(console.client, console.keys)
    queue.enqueue(make_hit(1))
    queue.enqueue(make_hit(2, host=HOST_B, verdict="review", algorithm="phash", distance=9))
    console.state.takedown.notifier().run(once=True)


class Loads(HTMLParser):
    """Every URL-valued attribute of a page, by tag and attribute."""

    URL_ATTRIBUTES = frozenset(
        {"src", "srcset", "href", "poster", "data", "action", "formaction", "background"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES and value:
                self.found.append((tag, name, value, values))


def reported_references(html: str) -> list[tuple[str, str, str]]:
    """Attributes pointing at a reported host, except links out that carry the warning
    and send no referrer."""
    parser = Loads()
    parser.feed(html)
    bad = []
    for tag, name, value, attrs in parser.found:
        if HOST_A not in value and HOST_B not in value:
            continue
        rel = set((attrs.get("rel") or "").split())
        if (
            tag == "a"
            and name == "href"
            and {"noreferrer", "noopener"} <= rel
            and "leave" in (attrs.get("class") or "")
        ):
            continue
        bad.append((tag, name, value))
    return bad


def test_every_page_renders_for_an_admin_with_the_headers_and_no_image(console: Console) -> None:
    populate(console)
    web = console.login("ada")
    notice_id = console.state.takedown.store.ids()[0]
    review_id = next(iter(ReviewDesk(console.client, console.keys).items())).id
    hit_id = make_hit(1).incident
    paths = [
        *PAGES,
        f"/notices/{notice_id}",
        f"/review/{review_id}",
        f"/hits/{hit_id}",
        "/runs/none",
    ]
    for path in paths:
        response = web.get(path)
        assert response.status_code == (404 if path == "/runs/none" else 200), (path, response.text)
        csp = response.headers["content-security-policy"]
        assert "img-src 'self'" in csp and "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "media-src 'none'" in csp
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert reported_references(response.text) == [], path
        assert "<img" not in response.text.lower(), path
    # The reported URLs are on the pages, as text.
    assert make_hit(1).url in web.get("/hits").text
    for asset in ("/static/console.css", "/static/console.js", "/static/icon.svg"):
        response = console.app_client().get(asset)
        assert response.status_code == 200
        assert response.headers["content-security-policy"]
        assert "http" not in response.text.replace("http://www.w3.org", ""), asset


def test_a_hostile_url_is_escaped_text(console: Console) -> None:
    hostile = f'http://{HOST_A}/x.jpg"><img src=x onerror=alert(1)>'
    HitQueue(console.client, console.keys).enqueue(make_hit(5, url=hostile))
    web = console.login("vic")
    page = web.get("/hits").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_login_is_generic_throttled_and_rotates_the_session(console: Console) -> None:
    web = console.app_client()
    assert web.get("/hits").headers["location"] == "/login?next=%2Fhits"
    wrong = login(web, "ana", "wrong password!!")
    unknown = login(web, "nobody", "wrong password!!")
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert GENERIC_LOGIN_ERROR in wrong.text and GENERIC_LOGIN_ERROR in unknown.text
    assert SESSION_COOKIE not in web.cookies
    ok = login(web, "ana", PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    first = web.cookies[SESSION_COOKIE]
    again = login(web, "ana", PASSWORD)
    assert again.status_code == 303
    second = web.cookies[SESSION_COOKIE]
    assert second != first
    stale = console.app_client()
    stale.cookies.set(SESSION_COOKIE, first)
    assert stale.get("/").status_code == 303  # the old session ended at the new login
    for _ in range(MAX_FAILURES_PER_USER):
        login(console.app_client(), "vic", "wrong password!!")
    blocked = login(console.app_client(), "vic", PASSWORD)
    assert blocked.status_code == 429 and THROTTLED_LOGIN_ERROR in blocked.text


def test_login_needs_its_form_token(console: Console) -> None:
    web = console.app_client()
    login_token(web)
    response = web.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in web.cookies


def test_logout_ends_the_session(console: Console) -> None:
    web = console.login("ana")
    cookie = web.cookies[SESSION_COOKIE]
    assert web.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert web.get("/").status_code == 200
    out = web.post("/logout", data={"csrf_token": csrf_of(web)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    replay = console.app_client()
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get("/").status_code == 303
    events = [json.loads(line) for line in console.access_log]
    assert any(e["path"] == "/logout" and e["status"] == 303 and e["user"] == "ana" for e in events)


def test_forms_without_the_csrf_token_change_nothing(console: Console) -> None:
    populate(console)
    item = next(iter(ReviewDesk(console.client, console.keys).items()))
    web = console.login("ana")
    refused = web.post(f"/review/{item.id}", data={"decision": "confirm", "reason": "x"})
    assert refused.status_code == 403
    assert "security token" in refused.text
    refused = web.post("/report", data={"urls": f"http://{HOST_A}/"})
    assert refused.status_code == 403
    assert console.launcher.launched == []
    assert next(iter(ReviewDesk(console.client, console.keys).items())).decision is None


def test_roles_on_pages(console: Console) -> None:
    populate(console)
    item = next(iter(ReviewDesk(console.client, console.keys).items()))
    viewer = console.login("vic")
    page = viewer.get(f"/review/{item.id}")
    assert 'id="decide"' not in page.text
    refused = viewer.post(
        f"/review/{item.id}",
        data={"decision": "confirm", "reason": "x", "csrf_token": csrf_of(viewer)},
    )
    assert refused.status_code == 403
    assert viewer.get("/report").status_code == 403
    assert viewer.get("/users").status_code == 403
    analyst = console.login("ana")
    assert analyst.get("/users").status_code == 403
    decided = analyst.post(
        f"/review/{item.id}",
        data={
            "decision": "dismiss",
            "reason": "a different picture",
            "csrf_token": csrf_of(analyst),
        },
    )
    assert decided.status_code == 303
    everything = analyst.get("/review?show=all").text
    assert "dismissed by analyst@ana" in everything and "<p>1 review items." in everything
    assert "<p>0 pending review items." in analyst.get("/review").text
    (decision,) = ReviewDesk(console.client, console.keys).decisions().values()
    assert (decision.actor, decision.reason) == ("analyst@ana", "a different picture")


def test_report_form_starts_a_run_and_shows_it(console: Console) -> None:
    web = console.login("ana")
    seeds = ("seeds.txt", f"# reported today\nhttp://{HOST_B}/b.html\n".encode(), "text/plain")
    response = web.post(
        "/report",
        data={"urls": f"http://{HOST_A}/a.html\nnot-a-url", "csrf_token": csrf_of(web)},
        files={"seeds": seeds},
    )
    assert response.status_code == 303, response.text
    (run_id,) = console.launcher.launched
    assert response.headers["location"] == f"/runs/{run_id}"
    page = web.get(response.headers["location"])
    assert f"Run {run_id} started with 2 URLs" in page.text
    assert "1 skipped" in page.text
    assert f"http://{HOST_B}/b.html" in page.text
    assert "started with" not in web.get(f"/runs/{run_id}").text  # the message is shown once
    cancelled = web.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(web)})
    assert cancelled.status_code == 303
    assert RunStore(console.client, console.keys).get(run_id).status == "cancelled"
    again = web.post(f"/runs/{run_id}/cancel", data={"csrf_token": csrf_of(web)})
    assert again.status_code == 409 and "cancelled" in again.text


def test_admin_adds_and_disables_a_user(console: Console) -> None:
    admin = console.login("ada")
    token = csrf_of(admin, "/users")
    added = admin.post(
        "/users",
        data={"name": "newbie", "role": "viewer", "password": PASSWORD, "csrf_token": token},
    )
    assert added.status_code == 303
    newbie = console.login("newbie")
    assert newbie.get("/").status_code == 200
    weak = admin.post(
        "/users", data={"name": "weak", "role": "viewer", "password": "short", "csrf_token": token}
    )
    assert weak.status_code == 422
    assert admin.post("/users/newbie/disable", data={"csrf_token": token}).status_code == 303
    assert newbie.get("/").status_code == 303  # the session ended with the account
    assert admin.post("/users/ada/disable", data={"csrf_token": token}).status_code == 409
    events = console.state.takedown.store.audit(count=50)
    assert any(e.actor == "analyst@ada" and "newbie" in e.notice for e in events)


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_the_console(console: Console, next_path: str) -> None:
    web = console.app_client()
    token = login_token(web)
    response = web.post(
        "/login",
        data={"username": "ana", "password": PASSWORD, "csrf_token": token, "next": next_path},
    )
    assert response.headers["location"] == "/"


def test_error_pages_carry_the_headers(console: Console) -> None:
    web: TestClient = console.login("vic")
    response = web.get("/notices/doesnotexist")
    assert response.status_code == 404
    assert re.search(r"img-src 'self'", response.headers["content-security-policy"])
    assert "doesnotexist" in response.text


def test_the_forms_of_notices_schedules_lists_and_review(console: Console) -> None:
    """Each state-changing form an analyst or admin submits, through the page as a browser
    posts it, and what it changed in the store."""
    populate(console)
    store = console.state.takedown.store
    admin = console.login("ada")
    token = csrf_of(admin)

    # A notice prepared for a web form is marked sent, with the analyst's note in its timeline.
    notice_id = next(n for n in store.ids() if store.get(n).status == "awaiting_manual")
    page = admin.get(f"/notices/{notice_id}")
    assert "Mark sent" in page.text and "Copy the text" in page.text
    done = admin.post(
        f"/notices/{notice_id}/mark-sent", data={"note": "form ticket 42", "csrf_token": token}
    )
    assert done.status_code == 303
    assert "(status sent)" in admin.get(done.headers["location"]).text
    assert store.get(notice_id).status == "sent"
    assert admin.post(f"/notices/{notice_id}/burn", data={"csrf_token": token}).status_code == 404

    # A schedule is added, paused and run now; a bad one is refused with its reason.
    added = admin.post(
        "/schedules",
        data={
            "name": "nightly",
            "seeds": f"http://{HOST_A}/\n",
            "every": "1d",
            "csrf_token": token,
        },
    )
    assert added.status_code == 303, added.text
    assert admin.post("/schedules/nightly/pause", data={"csrf_token": token}).status_code == 303
    assert console.state.session.schedules().get("nightly").paused
    ran = admin.post("/schedules/nightly/run", data={"csrf_token": token})
    assert ran.status_code == 303
    assert ran.headers["location"] == f"/runs/{console.launcher.launched[-1]}"
    bad = admin.post(
        "/schedules", data={"name": "bad", "seeds": "not a url", "every": "1d", "csrf_token": token}
    )
    assert bad.status_code == 422 and "not a url" in bad.text

    # A new version of a list is uploaded; a malformed one names its file and line.
    body = f"algorithm,hash,id,category\nsha256,{make_hit(9).sha256},e9,test\n".encode()
    uploaded = admin.post(
        "/lists",
        data={"name": "known", "classification": "baseline", "csrf_token": token},
        files={"file": ("known.csv", body, "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text
    assert "known" in admin.get("/lists").text
    broken = admin.post(
        "/lists",
        data={"name": "known", "csrf_token": token},
        files={"file": ("broken.csv", b"algorithm,hash,id,category\nsha256,zz,e1,test\n", "")},
    )
    assert broken.status_code == 422 and "broken.csv" in broken.text

    # A near miss is dismissed and its hashes go to an allow-list.
    item = next(iter(ReviewDesk(console.client, console.keys).items()))
    analyst = console.login("ana")
    nameless = analyst.post(
        f"/review/{item.id}",
        data={"decision": "allow-list", "reason": "benign", "csrf_token": csrf_of(analyst)},
    )
    assert nameless.status_code == 422
    allowed = analyst.post(
        f"/review/{item.id}",
        data={
            "decision": "allow-list",
            "reason": "a stock photo",
            "allow_list": "stock",
            "csrf_token": csrf_of(analyst),
        },
    )
    assert allowed.status_code == 303
    (decision,) = ReviewDesk(console.client, console.keys).decisions().values()
    assert (decision.decision, decision.actor, decision.reason) == (
        "dismissed",
        "analyst@ana",
        "a stock photo",
    )
    lists = ListStore(console.client, console.keys)
    assert {i.name: i.kind for i in lists.info()}["stock"] == "allow"
    assert item.record.sha256 in {e.hash for e in lists.load("stock").entries}
    events = {(e.actor, e.event) for e in store.audit(count=100)}
    assert {("analyst@ada", "schedule_add"), ("analyst@ada", "schedule_pause")} <= events


def test_admin_creates_and_revokes_an_api_token_on_the_users_page(console: Console) -> None:
    admin = console.login("ada")
    token = csrf_of(admin, "/users")
    created = admin.post("/tokens", data={"name": "intake", "role": "analyst", "csrf_token": token})
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    match = re.search(r'<pre id="token-secret">([^<]+)</pre>', created.text)
    assert match is not None
    secret = match.group(1)
    script = console.app_client()
    me = script.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert me.json() == {"name": "intake", "role": "analyst", "kind": "token"}
    assert secret not in admin.get("/users").text  # shown once
    again = admin.post("/tokens", data={"name": "intake", "role": "viewer", "csrf_token": token})
    assert again.status_code == 409
    revoked = admin.post("/tokens/intake/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    me = script.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 401
    assert admin.post("/tokens/ghost/revoke", data={"csrf_token": token}).status_code == 404
    analyst = console.login("ana")
    refused = analyst.post(
        "/tokens", data={"name": "mine", "role": "admin", "csrf_token": csrf_of(analyst)}
    )
    assert refused.status_code == 403
    assert [t.name for t in console.accounts.tokens()] == ["intake"]
