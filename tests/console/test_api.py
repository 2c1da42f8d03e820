"""The HTTP API under /api/v1 with an API token and with the session cookie: reports start
runs, hits come with their hashes and notices, review decisions become hits and notices,
notices are marked sent, lists are uploaded, and every error has the one JSON shape."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import time
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from hotline.console.app import create_app
from hotline.services import Session
from store.accounts import Accounts
from store.queue import HitQueue
from store.runs import RunStore
from takedown.notices import NoticeStore
from tests.builders import make_hit
from tests.console.conftest import CHEAP_HASHER, Console, csrf_of
from tests.helpers import HOST_A, HOST_B, free_port


def bearer(console: Console, role: str, name: str | None = None) -> TestClient:
    _, secret = console.accounts.create_token(name or f"script-{role}", role, actor="admin@test")
    web = console.app_client()
    web.headers["Authorization"] = f"Bearer {secret}"
    return web


def error_of(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert (body["error"]["status"], body["error"]["code"]) == (status, code)
    assert body["error"]["message"]
    return str(body["error"]["message"])


def populate(console: Console) -> None:
    """Two confirmed hits on HOST_A (noticed through the form channel, so they wait as
    awaiting_manual) and one near miss on HOST_B."""
    queue = HitQueue(console.client, console.keys)
    queue.enqueue(make_hit(1, crawl="run-a"))
    queue.enqueue(make_hit(2, crawl="run-b", list="known", first_seen="2026-11-25T10:00:00Z"))
    queue.enqueue(make_hit(3, host=HOST_B, verdict="review", algorithm="pdq", distance=40))
    console.state.takedown.notifier().run(once=True)


def test_reports_start_a_run_with_the_valid_urls(console: Console) -> None:
    web = bearer(console, "analyst")
    response = web.post(
        "/api/v1/reports",
        json={"urls": [f"http://{HOST_A}/a.html", "not a url", f"http://{HOST_B}/b.html"]},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    run = body["run"]
    assert run["seeds"] == [f"http://{HOST_A}/a.html", f"http://{HOST_B}/b.html"]
    assert run["origin"] == "console:script-analyst"
    assert run["status"] == "queued"
    assert [r["line"] for r in body["rejected"]] == [2]
    assert console.launcher.launched == [run["id"]]
    stored = RunStore(console.client, console.keys).get(run["id"])
    assert stored.options["allow_private_networks"] is True
    assert web.get(f"/api/v1/runs/{run['id']}").json()["id"] == run["id"]


def test_a_report_without_a_valid_url_is_422_and_starts_nothing(console: Console) -> None:
    web = bearer(console, "analyst")
    message = error_of(
        web.post("/api/v1/reports", json={"urls": ["ftp://x/"]}), 422, "no_valid_url"
    )
    assert "request:1" in message
    error_of(web.post("/api/v1/reports", json={"urls": []}), 422, "invalid")
    error_of(web.post("/api/v1/reports", json={"links": ["x"]}), 422, "invalid")
    assert console.launcher.launched == []
    assert RunStore(console.client, console.keys).list() == []


def test_credentials_and_roles(console: Console) -> None:
    anonymous = console.app_client()
    response = anonymous.get("/api/v1/hits")
    error_of(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    bad = console.app_client()
    bad.headers["Authorization"] = "Bearer hlt_not-a-token"
    error_of(bad.get("/api/v1/hits"), 401, "unauthenticated")
    viewer = bearer(console, "viewer")
    assert viewer.get("/api/v1/hits").status_code == 200
    error_of(viewer.post("/api/v1/reports", json={"urls": [f"http://{HOST_A}/"]}), 403, "forbidden")
    analyst = bearer(console, "analyst")
    error_of(analyst.post("/api/v1/schedules/x/pause"), 403, "forbidden")
    console.accounts.revoke_token("script-viewer", actor="admin@test")
    error_of(viewer.get("/api/v1/hits"), 401, "unauthenticated")


def test_session_cookie_calls_need_the_csrf_header(console: Console) -> None:
    web = console.login("ana")
    error_of(web.post("/api/v1/reports", json={"urls": [f"http://{HOST_A}/"]}), 403, "csrf")
    assert console.launcher.launched == []
    token = csrf_of(web)
    response = web.post(
        "/api/v1/reports", json={"urls": [f"http://{HOST_A}/"]}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 202, response.text
    assert response.json()["run"]["origin"] == "console:ana"


def test_hits_with_hashes_notices_filters_pages_and_csv(console: Console) -> None:
    populate(console)
    web = bearer(console, "viewer")
    page = web.get("/api/v1/hits").json()
    assert page["total"] == 2 and page["next_offset"] is None
    newest, oldest = page["items"]
    assert (newest["entry"], oldest["entry"]) == ("k002", "k001")
    expected = make_hit(1)
    assert (oldest["sha256"], oldest["md5"], oldest["sha1"]) == (
        expected.sha256,
        expected.md5,
        expected.sha1,
    )
    assert oldest["notice"]["status"] == "awaiting_manual"
    assert oldest["notice"]["provider"] == "Alpha Hosting"
    assert oldest["notice"]["reference"].startswith("HL-")
    first = web.get("/api/v1/hits", params={"limit": 1}).json()
    assert (len(first["items"]), first["next_offset"], first["total"]) == (1, 1, 2)
    assert [
        h["entry"] for h in web.get("/api/v1/hits", params={"run": "run-a"}).json()["items"]
    ] == ["k001"]
    assert web.get("/api/v1/hits", params={"provider": "Nobody"}).json()["total"] == 0
    assert web.get("/api/v1/hits", params={"provider": "Alpha Hosting"}).json()["total"] == 2
    for provider, total in (("Alpha Hosting", 2), ("(unroutable)", 0), ("Nobody", 0)):
        listed = web.get("/api/v1/notices", params={"provider": provider}).json()
        assert listed["total"] == total, provider
    second = web.get("/api/v1/notices", params={"limit": 1, "offset": 1}).json()
    assert (second["total"], second["next_offset"], len(second["items"])) == (2, None, 1)
    assert second["items"][0]["id"] == oldest["id"]  # newest first: the oldest comes second
    since = web.get("/api/v1/hits", params={"since": "2026-11-24"}).json()
    assert [h["entry"] for h in since["items"]] == ["k002"]
    error_of(web.get("/api/v1/hits", params={"since": "yesterday"}), 422, "invalid")
    error_of(web.get("/api/v1/hits", params={"limit": 0}), 422, "invalid")
    detail = web.get(f"/api/v1/hits/{oldest['id']}").json()
    assert detail["notice"]["timeline"][0]["event"] == "queued"
    error_of(web.get("/api/v1/hits/nope"), 404, "not_found")
    exported = web.get("/api/v1/hits.csv", params={"run": "run-a"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["url"], r["sha256"], r["notice_status"]) for r in rows] == [
        (expected.url, expected.sha256, "awaiting_manual")
    ]


def test_listings_hold_when_records_go_away_and_unroutable_means_no_provider(
    console: Console,
) -> None:
    populate(console)
    notices = NoticeStore(console.client, console.keys)
    queue = HitQueue(console.client, console.keys)
    # A hit whose notice was never routed: it has no provider, "(unroutable)" names it.
    lost = make_hit(9, crawl="run-c")
    queue.enqueue(lost)
    notices.create(lost, actor="t")
    # An index entry whose record went away (what retention's index sweep cleans up).
    console.client.zadd(console.keys.notices, {"f" * 32: 1.0})
    web = bearer(console, "viewer")
    unroutable = web.get("/api/v1/notices", params={"provider": "(unroutable)"}).json()
    assert ([n["id"] for n in unroutable["items"]], unroutable["total"]) == ([lost.incident], 1)
    hits = web.get("/api/v1/hits", params={"provider": "(unroutable)"}).json()
    assert [h["id"] for h in hits["items"]] == [lost.incident]
    # Paging one by one over the listing ends, and shows every notice that exists once.
    seen, offset = [], 0
    for _ in range(10):
        page = web.get("/api/v1/notices", params={"limit": 1, "offset": offset}).json()
        seen += [n["id"] for n in page["items"]]
        if page["next_offset"] is None:
            break
        offset = page["next_offset"]
    assert page["next_offset"] is None, "paging did not end"
    assert sorted(seen) == sorted(notices.fields_of_each(("status",)))
    assert len(seen) == 3
    # A reappeared hit whose latest sighting was purged: its earlier one is still shown.
    first = make_hit(1, crawl="run-a")
    console.client.zadd(console.keys.notices_in("removed"), {first.incident: 1.0})
    again = queue.enqueue(dataclasses.replace(first, crawl="run-d"))
    assert again is not None
    console.client.xdel(console.keys.hits, again)
    console.client.hdel(console.keys.stream_ids("confirmed"), first.incident)
    detail = web.get(f"/api/v1/hits/{first.incident}").json()
    assert (detail["id"], detail["crawl"]) == (first.incident, "run-a")


def test_a_review_decision_through_the_api_becomes_one_notice(console: Console) -> None:
    populate(console)
    viewer = bearer(console, "viewer")
    (item,) = viewer.get("/api/v1/review", params={"pending": True}).json()["items"]
    assert (item["algorithm"], item["distance"], item["decision"]) == ("pdq", 40, None)
    error_of(
        viewer.post(f"/api/v1/review/{item['id']}/confirm", json={"reason": "x"}), 403, "forbidden"
    )
    analyst = bearer(console, "analyst", "partner")
    error_of(
        analyst.post(f"/api/v1/review/{item['id']}/confirm", json={"reason": ""}), 422, "invalid"
    )
    decided = analyst.post(f"/api/v1/review/{item['id']}/confirm", json={"reason": "same picture"})
    assert decided.status_code == 200, decided.text
    assert (decided.json()["decision"], decided.json()["actor"]) == ("confirmed", "token@partner")
    error_of(
        analyst.post(f"/api/v1/review/{item['id']}/dismiss", json={"reason": "changed my mind"}),
        409,
        "conflict",
    )
    console.state.takedown.notifier().run(once=True)
    hits = viewer.get("/api/v1/hits").json()["items"]
    confirmed = [h for h in hits if h["url"] == item["url"]]
    assert len(confirmed) == 1 and confirmed[0]["decided_by"] == "token@partner"
    notice = viewer.get(f"/api/v1/notices/{confirmed[0]['notice']['id']}").json()
    assert notice["url"] == item["url"]
    assert viewer.get("/api/v1/review", params={"pending": True}).json()["total"] == 0


def test_notices_prepared_text_and_mark_sent(console: Console) -> None:
    populate(console)
    analyst = bearer(console, "analyst", "desk")
    listing = analyst.get("/api/v1/notices", params={"status": "awaiting_manual"}).json()
    assert listing["total"] == 2
    notice = listing["items"][0]
    prepared = analyst.get(f"/api/v1/notices/{notice['id']}/prepared").json()
    assert prepared["recipient"] == "https://abuse.alpha.example/report"
    assert notice["url"] in prepared["text"]
    assert '"baseline"' in json.dumps(prepared["xarf"])  # the list's classification
    error_of(
        analyst.post(f"/api/v1/notices/{notice['id']}/reopen", json={"note": "x"}), 409, "conflict"
    )
    done = analyst.post(f"/api/v1/notices/{notice['id']}/mark-sent", json={"note": "ticket 7"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "sent"
    error_of(analyst.post(f"/api/v1/notices/{notice['id']}/mark-sent", json={}), 409, "conflict")
    other = listing["items"][1]
    resent = analyst.post(f"/api/v1/notices/{other['id']}/resend", json={"note": "lost form"})
    assert resent.status_code == 200, resent.text
    assert resent.json()["status"] == "awaiting_manual"  # prepared again for the form
    events = [e["event"] for e in analyst.get(f"/api/v1/notices/{other['id']}").json()["timeline"]]
    assert events.count("prepared") == 2
    timeline = analyst.get(f"/api/v1/notices/{notice['id']}").json()["timeline"]
    assert timeline[-1]["actor"] == "token@desk" and "ticket 7" in timeline[-1]["detail"]
    error_of(analyst.get("/api/v1/notices", params={"status": "lost"}), 422, "bad_status")
    error_of(analyst.post(f"/api/v1/notices/{notice['id']}/delete"), 404, "not_found")


def test_lists_upload_by_admins_only(console: Console) -> None:
    admin = bearer(console, "admin")
    body = "algorithm,hash,id,category\n" + f"sha256,{make_hit(9).sha256},e9,test\n"
    files = {"file": ("known.csv", body.encode(), "text/csv")}
    error_of(bearer(console, "analyst").post("/api/v1/lists/known", files=files), 403, "forbidden")
    stored = admin.post("/api/v1/lists/known", files=files, data={"classification": "baseline"})
    assert stored.status_code == 201, stored.text
    assert (stored.json()["version"], stored.json()["total"]) == (1, 1)
    again = admin.post("/api/v1/lists/known", files=files)
    assert again.json()["version"] == 2
    assert again.json()["classification"] == {"*": "baseline"}
    bad = {"file": ("bad.csv", b"algorithm,hash,id,category\nsha256,zz,e1,test\n", "text/csv")}
    message = error_of(admin.post("/api/v1/lists/known", files=bad), 422, "invalid")
    assert "bad.csv" in message
    lists = admin.get("/api/v1/lists").json()["items"]
    assert [(x["name"], x["version"]) for x in lists] == [("known", 2)]


def test_schedules_and_runs(console: Console) -> None:
    admin = bearer(console, "admin", "ops")
    added = admin.post(
        "/api/v1/schedules",
        json={"name": "weekly", "seeds": [f"http://{HOST_A}/"], "every": "7d"},
    )
    assert added.status_code == 201, added.text
    error_of(
        admin.post(
            "/api/v1/schedules",
            json={"name": "weekly", "seeds": [f"http://{HOST_A}/"], "every": "7d"},
        ),
        409,
        "conflict",
    )
    error_of(
        admin.post(
            "/api/v1/schedules",
            json={"name": "w2", "seeds": [f"http://{HOST_A}/"], "every": "soon"},
        ),
        422,
        "invalid",
    )
    listed = admin.get("/api/v1/schedules").json()
    assert [(s["name"], s["every"]) for s in listed["items"]] == [("weekly", 7 * 86400)]
    assert admin.post("/api/v1/schedules/weekly/pause").json()["paused"] is True
    started = admin.post("/api/v1/schedules/weekly/run").json()
    assert console.launcher.launched == [started["run_id"]]
    runs = admin.get("/api/v1/runs").json()
    assert [r["id"] for r in runs["items"]] == [started["run_id"]]
    assert admin.get("/api/v1/runs", params={"status": "finished"}).json()["total"] == 0
    cancelled = admin.post(f"/api/v1/runs/{started['run_id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    error_of(admin.post(f"/api/v1/runs/{started['run_id']}/cancel"), 409, "conflict")
    error_of(admin.get("/api/v1/runs/nope"), 404, "not_found")
    assert admin.delete("/api/v1/schedules/weekly").json()["removed"] is True
    error_of(admin.post("/api/v1/schedules/weekly/resume"), 404, "not_found")
    events = admin.get("/api/v1/audit").json()["items"]
    mine = [(e["event"], e["notice"]) for e in events if e["actor"] == "token@ops"]
    assert ("schedule_add", "schedule:weekly") in mine
    assert ("run_cancel_requested", f"run:{started['run_id']}") in mine


def test_overview_stats_health_and_docs(console: Console) -> None:
    populate(console)
    web = bearer(console, "viewer")
    view = web.get("/api/v1/overview").json()
    assert view["queues"]["hits"] == 2
    assert view["queues"]["review_pending"] == 1
    assert view["notices"]["awaiting_manual"] == 2
    assert view["removed_this_week"] == 0
    # Two removals, one closed three days ago and one eight days ago: one this week.
    store = NoticeStore(console.client, console.keys)
    now = time.time()
    for notice, days in zip(store.ids(), (3, 8), strict=True):
        store.record(
            notice, "removed", actor="t", status="removed", fields={"closed_at": now - days * 86400}
        )
    assert web.get("/api/v1/overview").json()["removed_this_week"] == 1
    stats = web.get("/api/v1/stats").json()
    assert (stats["statuses"]["awaiting_manual"], stats["statuses"]["removed"]) == (0, 2)
    assert console.app_client().get("/healthz").json() == {"status": "ok"}
    assert console.app_client().get("/readyz").json()["redis"] == "ok"
    spec = console.app_client().get("/api/v1/openapi.json").json()
    assert "/api/v1/reports" in spec["paths"] and "/api/v1/hits" in spec["paths"]
    docs = console.app_client().get("/api/docs")
    assert docs.status_code == 200 and "/api/v1/reports" in docs.text
    # Served from the console itself, never from a CDN: no script, style or link elsewhere
    # (a word search for "cdn" also met random asset names).
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", docs.text, re.I) == []


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/runs/x/y/z"])
def test_unknown_api_paths_answer_json(console: Console, path: str) -> None:
    error_of(bearer(console, "viewer").get(path), 404, "not_found")


def test_redis_not_answering_is_503_with_the_error_shape(console: Console) -> None:
    """A console whose Redis went away (nothing listens on its port) says so: /readyz and
    every API call answer 503, /healthz still 200, pages an HTML error with the headers."""
    dead = redis.Redis.from_url(
        f"redis://127.0.0.1:{free_port('127.0.0.1')}/0", socket_connect_timeout=2
    )
    state = dataclasses.replace(
        console.state,
        session=Session(dead, "redis://dead", console.keys),
        accounts=Accounts(dead, console.keys, hasher=CHEAP_HASHER),
    )
    web = TestClient(create_app(state), follow_redirects=False)
    web.headers["Authorization"] = "Bearer hlt_anything"
    assert web.get("/healthz").status_code == 200
    ready = web.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    error_of(web.get("/api/v1/hits"), 503, "unavailable")
    browser = TestClient(create_app(state), follow_redirects=False)
    browser.cookies.set("hotline_login_csrf", "t")
    page = browser.post("/login", data={"username": "ana", "password": "x", "csrf_token": "t"})
    assert page.status_code == 503 and "Redis" in page.text
    assert "img-src 'self'" in page.headers["content-security-policy"]
