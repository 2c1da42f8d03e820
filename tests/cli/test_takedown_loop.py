"""Notice and takedown end to end, through the real CLI, on loopback only.

A two-host benign site (127.0.0.2 and 127.0.0.3: two "hosting providers"), a real redis-server,
a real SMTP server (aiosmtpd) and, where routing needs it, a real RDAP server. The analyst's
commands run as subprocesses: ``hotline crawl`` queues the hits, ``hotline notifier`` sends the
notices, ``hotline recheck`` verifies removal, ``hotline stats`` and ``hotline notices`` report.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from hotline import imagegen
from hotline.demosite import DEMO_CATEGORY, KNOWN_LIST_HEADER
from hotline.loopback import Exchange, RunningServer, html_page, image_response, serve
from takedown.xarf import validate_xarf
from tests.builders import IDENTITY_TOML
from tests.helpers import (
    HOST_A,
    HOST_B,
    HOTLINE,
    hotline_env,
    ok_json,
    one_line_error,
    run_cli,
)
from tests.servers.rdap import RdapServer, load_doc
from tests.servers.smtp import SmtpServer

ALPHA = "abuse@alpha-hosting.example"
BETA = "abuse@beta-hosting.example"
#: Seconds a crawl of the test site may take.
CRAWL_TIMEOUT = 180.0


def to_addr(message: EmailMessage) -> str:
    return parseaddr(str(message["To"]))[1]


@dataclass
class Site:
    server_a: RunningServer
    server_b: RunningServer
    known: dict[str, str] = field(default_factory=dict)  # image URL -> entry id
    bodies: dict[str, bytes] = field(default_factory=dict)  # image URL -> bytes served

    def remove(self, url: str, status: int) -> None:
        server = self.server_a if url.startswith(self.server_a.base_url) else self.server_b
        path = url.removeprefix(server.base_url)
        server.mount({path: html_page("<h1>gone</h1>", status=status)})


class Counter:
    """Serves every image of ``site`` as before, counting the requests for them."""

    def __init__(self, site: Site) -> None:
        self._count = 0
        self._lock = threading.Lock()
        for url, body in site.bodies.items():
            server = site.server_a if url.startswith(site.server_a.base_url) else site.server_b
            server.mount({url.removeprefix(server.base_url): self._handler(body)})

    def _handler(self, body: bytes) -> Callable[[Exchange], None]:
        def serve_image(exchange: Exchange) -> None:
            with self._lock:
                self._count += 1
            exchange.start(200, {"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            exchange.write(body)

        return serve_image

    def requests(self) -> int:
        with self._lock:
            return self._count


@dataclass
class Setup:
    site: Site
    smtp: SmtpServer
    env: dict[str, str]
    config: Path
    known_csv: Path

    def configure(self, extra: str = "", *, rdap_url: str = "") -> None:
        directory = self.config.parent / "providers.yaml"
        self.config.write_text(
            IDENTITY_TOML
            + f"""
[notices]
directory = "{directory.name}"
{extra}
[rdap]
url = "{rdap_url}"
[smtp]
host = "{self.smtp.host}"
port = {self.smtp.port}
security = "none"
""",
            encoding="utf-8",
        )

    def messages_by_notice(self) -> dict[str, list[EmailMessage]]:
        out: dict[str, list[EmailMessage]] = {}
        for received in self.smtp.messages:
            message = received.message
            notice_id = str(message["Message-ID"]).strip("<>").split(".")[0]
            out.setdefault(notice_id, []).append(message)
        return out


def _site_routes(site: Site) -> None:
    """Page on A with two known images on A, two on B, and one unknown image on each."""
    base_a, base_b = site.server_a.base_url, site.server_b.base_url
    images: list[tuple[RunningServer, str, bool]] = [
        (site.server_a, "/img/a1.jpg", True),
        (site.server_a, "/img/a2.jpg", True),
        (site.server_a, "/img/a3.jpg", False),
        (site.server_b, "/media/b1.jpg", True),
        (site.server_b, "/media/b2.jpg", True),
        (site.server_b, "/media/b3.jpg", False),
    ]
    tags = []
    for number, (server, path, known) in enumerate(images, start=1):
        body = imagegen.encode(imagegen.textured_image(9100 + number, 320, 240), "JPEG")
        server.mount({path: image_response(body, "image/jpeg")})
        url = server.url(path)
        site.bodies[url] = body
        if known:
            site.known[url] = f"e2e-{number:02d}"
        tags.append(f"<img src='{url}' alt='texture {number}'>")
    site.server_a.mount({"/": html_page("<h1>Reported page</h1>\n" + "\n".join(tags))})
    assert base_a != base_b


@pytest.fixture
def setup(redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Setup]:
    with (
        serve(host=HOST_A) as server_a,
        serve(host=HOST_B) as server_b,
        SmtpServer("127.0.0.1") as smtp,
    ):
        site = Site(server_a, server_b)
        _site_routes(site)
        rows = [KNOWN_LIST_HEADER] + [
            f"sha256,{hashlib.sha256(site.bodies[url]).hexdigest()},{entry},{DEMO_CATEGORY}"
            for url, entry in site.known.items()
        ]
        known_csv = tmp_path / "known.csv"
        known_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        (tmp_path / "providers.yaml").write_text(
            f"""
- name: Alpha Hosting
  cidrs: [{HOST_A}/32]
  abuse: {ALPHA}
- name: Beta Hosting
  cidrs: [{HOST_B}/32]
  abuse: {BETA}
  language: de
""",
            encoding="utf-8",
        )
        config = tmp_path / "hotline.toml"
        env = hotline_env(
            HOTLINE_REDIS_URL=redis_url,
            HOTLINE_KEY_PREFIX=redis_prefix,
            HOTLINE_DATA_DIR=str(tmp_path / "data"),
            HOTLINE_CONFIG=str(config),
            HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
        )
        result = Setup(site, smtp, env, config, known_csv)
        result.configure()
        yield result


def crawl(setup: Setup) -> list[dict[str, Any]]:
    imported = run_cli(
        [
            "hashes",
            "import",
            str(setup.known_csv),
            "--list",
            "known",
            "--classification",
            "baseline",
        ],
        setup.env,
    )
    assert imported.returncode == 0, imported.stderr
    crawled = run_cli(
        ["crawl", setup.site.server_a.url("/"), "--json"], setup.env, timeout=CRAWL_TIMEOUT
    )
    assert crawled.returncode == 0, crawled.stderr
    hits: list[dict[str, Any]] = ok_json(["hits", "list"], setup.env)
    assert {h["url"]: h["entry"] for h in hits} == setup.site.known
    return hits


def test_one_notice_per_hit_to_the_provider_the_directory_names(setup: Setup) -> None:
    hits = crawl(setup)
    stats = ok_json(["notifier", "--once"], setup.env)
    assert stats["sent"] == len(hits) == 4
    by_notice = setup.messages_by_notice()
    assert set(by_notice) == {h["incident"] for h in hits}
    for hit in hits:
        [message] = by_notice[hit["incident"]]
        expected = ALPHA if hit["url"].startswith(setup.site.server_a.base_url) else BETA
        assert to_addr(message) == expected
        assert message.get_content_type() == "multipart/report"
        text = message.get_body(("plain",))
        assert text is not None
        body = text.get_content()
        assert hit["url"] in body
        assert hit["page"] in body
        assert hit["sha256"] in body
        assert hit["incident"][:12] in str(message["Subject"]) + body
        [report] = [
            json.loads(part.get_content())
            for part in message.iter_attachments()
            if part.get_content_type() == "application/json"
        ]
        validate_xarf(report)
        assert report["url"] == hit["url"]
        assert report["source_identifier"] == hit["ip"]
        assert report["hash_values"]["sha256"] == hit["sha256"]
        assert "confidence" not in report
        # Never the image: no part of the message carries its bytes.
        raw = message.as_bytes()
        assert setup.site.bodies[hit["url"]][200:264] not in raw
    # The provider's language picks the template: Beta Hosting asked for German.
    beta = [m for ms in by_notice.values() for m in ms if to_addr(m) == BETA]
    assert all("Entfernungsaufforderung" in str(m["Subject"]) for m in beta)

    # Exactly once: running again (and re-crawling) sends nothing new.
    again = ok_json(["notifier", "--once"], setup.env)
    assert again["sent"] == 0
    recrawl = run_cli(["crawl", setup.site.server_a.url("/")], setup.env, timeout=CRAWL_TIMEOUT)
    assert recrawl.returncode == 0, recrawl.stderr
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 0
    assert len(setup.smtp.messages) == 4

    notices = ok_json(["notices", "list", "--status", "sent"], setup.env)
    assert {n["id"] for n in notices} == {h["incident"] for h in hits}
    assert {n["provider"] for n in notices} == {"Alpha Hosting", "Beta Hosting"}
    betas = [n["id"] for n in notices if n["provider"] == "Beta Hosting"]
    listed = ok_json(["notices", "list", "--provider", "Beta Hosting", "--limit", "1"], setup.env)
    assert [n["id"] for n in listed] == betas[-1:]  # the newest of them, oldest first
    assert ok_json(["hits", "list", "--crawl", "nosuchrun"], setup.env) == []
    newest = ok_json(["hits", "list", "--crawl", hits[0]["crawl"], "--limit", "2"], setup.env)
    assert [h["incident"] for h in newest] == [h["incident"] for h in hits[-2:]]
    shown = ok_json(["notices", "show", hits[0]["incident"][:10]], setup.env)
    assert [e["event"] for e in shown["timeline"]] == ["queued", "classified", "routed", "sent"]
    assert all(e["actor"].startswith("notifier@") for e in shown["timeline"])


def test_recheck_marks_removed_with_time_to_removal_and_reminds_the_rest(setup: Setup) -> None:
    hits = crawl(setup)
    setup.configure(
        'reminder_interval = "0s"\nescalate_after = "30d"\nremoval_confirm_after = "0s"'
    )
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    removed = {}
    for hit, status in zip(hits[:2], (404, 410), strict=True):
        setup.site.remove(hit["url"], status)
        removed[hit["incident"]] = status
    # A removal is seen once, then confirmed by the next check: with 0s the confirming check
    # is due at once, and the same run takes it.
    result = run_cli(["recheck", "--all", "--json", "--log-format", "json"], setup.env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcomes"] == {"removal_pending": 2, "removed": 2, "reminded": 2}
    # One JSON log line per state change the recheck made, in the order of the timeline.
    logged: dict[str, list[str]] = {}
    for line in result.stderr.splitlines():
        event = json.loads(line)
        if event.get("event") == "notice":
            logged.setdefault(event["notice"], []).append(event["action"])
    assert sorted(logged) == sorted(hit["incident"] for hit in hits)
    for hit in hits:
        notice = ok_json(["notices", "show", hit["incident"]], setup.env)
        events = [e["event"] for e in notice["timeline"]]
        assert events[-len(logged[hit["incident"]]) :] == logged[hit["incident"]]
        assert events[: -len(logged[hit["incident"]])][-1] == "sent"
        if hit["incident"] in removed:
            assert notice["status"] == "removed"
            assert events[-2:] == ["removal_seen", "removed"]
            assert f"http {removed[hit['incident']]}" in notice["timeline"][-1]["detail"]
            interval = notice["time_to_removal"]
            assert 0 <= interval["min_s"] <= interval["max_s"]
            assert notice["first_seen_gone"] is not None
        else:
            assert notice["status"] == "sent"
            assert events[-2:] == ["verified_online", "reminded"]
            assert notice["reminders"] == 1
    reminders = [
        m
        for m in (r.message for r in setup.smtp.messages)
        if "Reminder 1" in str(m["Subject"]) or "Erinnerung 1" in str(m["Subject"])
    ]
    assert len(reminders) == 2
    for message in reminders:
        notice_id = str(message["Message-ID"]).strip("<>").split(".")[0]
        assert notice_id not in removed
        assert str(message["In-Reply-To"]).startswith(f"<{notice_id}.notice.0@")

    stats = ok_json(["stats"], setup.env)
    rows = {r["provider"]: r for r in stats["providers"]}
    assert set(rows) == {"Alpha Hosting", "Beta Hosting"}
    assert sum(r["removed"] for r in rows.values()) == 2
    assert sum(r["still_online"] for r in rows.values()) == 2
    assert all(r["notices"] == 2 for r in rows.values())
    for row in rows.values():
        if row["removed"]:
            assert row["time_to_removal_s"]["median"] is not None


def test_killed_notifier_loses_nothing_and_sends_nothing_twice(setup: Setup) -> None:
    hits = crawl(setup)
    daemon = subprocess.Popen(
        [*HOTLINE, "notifier"],
        env=setup.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        setup.smtp.wait_for_messages(1, timeout=60)
        # The next message is received in full but gets no reply: the notifier is killed in
        # the middle of sending it, the server then drops it (it had not accepted it).
        setup.smtp.hold()
        setup.smtp.wait_held(1, timeout=60)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
        setup.smtp.wait_client_left(1)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
        assert daemon.stderr is not None
        daemon.stderr.close()
        setup.smtp.release()
    sent_before = len(setup.smtp.messages)
    assert 1 <= sent_before < len(hits)

    restarted = ok_json(["notifier", "--once"], setup.env)
    assert restarted["sent"] == len(hits) - sent_before
    assert restarted["resumed"] >= 1
    by_notice = setup.messages_by_notice()
    assert set(by_notice) == {h["incident"] for h in hits}
    assert all(len(messages) == 1 for messages in by_notice.values())
    timelines = [ok_json(["notices", "show", h["incident"]], setup.env)["timeline"] for h in hits]
    resumed = [t for t in timelines if any(e["event"] == "resumed" for e in t)]
    assert len(resumed) >= 1
    assert all(t[-1]["event"] == "sent" for t in timelines)


def test_a_duplicate_after_a_crash_carries_the_same_message_id(setup: Setup) -> None:
    """The one window a queue cannot close: the server accepted the message, the notifier
    died before recording it. The resend is the same message, so the desk can deduplicate."""
    crawl(setup)
    daemon = subprocess.Popen(
        [*HOTLINE, "notifier"], env=setup.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        setup.smtp.hold(keep_if_client_leaves=True)
        setup.smtp.wait_held(1, timeout=60)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
        setup.smtp.wait_client_left(1)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
        setup.smtp.release()
    [kept] = setup.smtp.messages
    ok_json(["notifier", "--once"], setup.env)
    ids = [str(r.message["Message-ID"]) for r in setup.smtp.messages]
    assert ids.count(str(kept.message["Message-ID"])) == 2
    assert len(set(ids)) == 4


def test_rdap_routes_what_the_directory_does_not_know(
    setup: Setup, rdap_server: RdapServer
) -> None:
    # The directory knows only 127.0.0.2; 127.0.0.3 is found through RDAP (ARIN-style nested
    # abuse entity, RIPE-style top-level abuse role).
    setup.config.parent.joinpath("providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: {ALPHA}\n", encoding="utf-8"
    )
    doc = load_doc("arin_ip")
    rdap_server.add_network(f"{HOST_B}/32", doc)
    setup.configure(rdap_url=rdap_server.url)
    hits = crawl(setup)
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    looked_up = ok_json(["providers", "lookup", HOST_B], setup.env)
    assert looked_up["method"] == "rdap"
    rdap_abuse = looked_up["recipient"]["address"]
    assert rdap_abuse not in {ALPHA, BETA}
    recipients = {to_addr(r.message) for r in setup.smtp.messages}
    assert recipients == {ALPHA, rdap_abuse}
    for hit in hits:
        notice = ok_json(["notices", "show", hit["incident"]], setup.env)
        on_b = hit["url"].startswith(setup.site.server_b.base_url)
        assert notice["route"]["method"] == ("rdap" if on_b else "directory-cidr")


def test_unroutable_notice_waits_for_an_analyst_then_resends(setup: Setup) -> None:
    setup.config.parent.joinpath("providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: {ALPHA}\n", encoding="utf-8"
    )
    hits = crawl(setup)
    stats = ok_json(["notifier", "--once"], setup.env)
    assert (stats["sent"], stats["unroutable"]) == (2, 2)
    waiting = ok_json(["notices", "list", "--status", "unroutable"], setup.env)
    assert len(waiting) == 2
    assert all(n["url"].startswith(setup.site.server_b.base_url) for n in waiting)
    lookup = run_cli(["providers", "lookup", HOST_B], setup.env)
    assert lookup.returncode == 0
    assert "unroutable" in lookup.stdout
    # The analyst adds the provider to the directory and resends.
    setup.config.parent.joinpath("providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: {ALPHA}\n"
        f"- name: Beta Hosting\n  cidrs: [{HOST_B}/32]\n  abuse: {BETA}\n",
        encoding="utf-8",
    )
    for notice in waiting:
        resent = ok_json(["notices", "resend", notice["id"][:8]], setup.env)
        assert resent["status"] == "sent"
    assert len(setup.smtp.messages) == len(hits)
    assert sum(1 for r in setup.smtp.messages if to_addr(r.message) == BETA) == 2


def test_recheck_refused_by_its_address_policy_changes_nothing(setup: Setup) -> None:
    hits = crawl(setup)
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    closed_env = {k: v for k, v in setup.env.items() if k != "HOTLINE_ALLOW_PRIVATE_NETWORKS"}
    counter = Counter(setup.site)
    for _ in range(3):
        result = run_cli(["recheck", "--once", "--all", "--json"], closed_env)
        assert result.returncode == 1, result.stderr
        assert json.loads(result.stdout)["outcomes"] == {"refused": 4}
        assert "refused by the recheck's address policy" in result.stderr
    assert counter.requests() == 0  # no request reached either host
    for hit in hits:
        notice = ok_json(["notices", "show", hit["incident"]], setup.env)
        assert notice["status"] == "sent"
        assert notice["policy_refusals"] == 3
        assert notice["checks"] == 0 and notice["first_seen_gone"] is None
        assert [e["event"] for e in notice["timeline"]][-3:] == ["recheck_refused"] * 3
    # The same hosts, allowed explicitly: the images are online.
    allowed = run_cli(
        [
            "recheck",
            "--all",
            "--json",
            "--allow-network",
            f"{HOST_A}/32",
            "--allow-network",
            f"{HOST_B}/32",
        ],
        closed_env,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["outcomes"] == {"online": 4}
    assert ok_json(["stats"], setup.env)["statuses"]["removed"] == 0


def test_quick_unreachable_rechecks_close_nothing(setup: Setup) -> None:
    hits = crawl(setup)
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    for hit in hits:
        setup.site.remove(hit["url"], 503)
    for _ in range(3):
        assert ok_json(["recheck", "--once", "--all"], setup.env)["outcomes"] == {"unreachable": 4}
    for hit in hits:
        notice = ok_json(["notices", "show", hit["incident"]], setup.env)
        assert notice["status"] == "sent"
        assert "not counted" in notice["timeline"][-1]["detail"]
    stats = ok_json(["stats"], setup.env)
    assert sum(r["removed"] + r["gone_unreachable"] for r in stats["providers"]) == 0
    assert sum(r["still_online"] for r in stats["providers"]) == 4


def test_resend_of_a_closed_notice_says_why_and_reopen_sends_a_numbered_notice(
    setup: Setup,
) -> None:
    hits = crawl(setup)
    setup.configure('removal_confirm_after = "0s"')
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    hit = hits[0]
    setup.site.remove(hit["url"], 404)
    ok_json(["recheck", "--all"], setup.env)
    assert ok_json(["notices", "show", hit["incident"]], setup.env)["status"] == "removed"

    resend = run_cli(["notices", "resend", hit["incident"]], setup.env)
    line = one_line_error(resend, 2)
    assert "is closed (removed on " in line and "notices reopen" in line
    assert len(setup.smtp.messages) == 4

    reopened = ok_json(
        ["notices", "reopen", hit["incident"][:8], "--reason", "seen again on a forum"], setup.env
    )
    assert (reopened["outcome"], reopened["status"]) == ("sent", "sent")
    again = setup.messages_by_notice()[hit["incident"]]
    assert len(again) == 2
    assert str(again[1]["Message-ID"]).startswith(f"<{hit['incident']}.reappearance.1@")
    subject = str(again[1]["Subject"])
    assert subject.startswith(("Online again (1): ", "Erneut online (1): ")), subject
    assert f"HL-{hit['incident'][:12]}" in subject
    shown = ok_json(["notices", "show", hit["incident"]], setup.env)
    reopen_event = next(e for e in shown["timeline"] if e["event"] == "reopened")
    assert reopen_event["actor"].startswith("analyst@")
    assert reopen_event["detail"] == "seen again on a forum"
    assert shown["reopens"] == 1 and shown["first_seen_gone"] is None
    # An open notice cannot be reopened: bad input, exit 2.
    not_closed = run_cli(["notices", "reopen", hit["incident"], "--reason", "x"], setup.env)
    assert "is sent, not closed" in one_line_error(not_closed, 2)


def test_a_removed_image_put_back_is_found_by_a_recrawl_and_noticed_again(setup: Setup) -> None:
    hits = crawl(setup)
    setup.configure('removal_confirm_after = "0s"')
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    hit = hits[0]
    url = hit["url"]
    setup.site.remove(url, 410)
    assert ok_json(["recheck", "--all"], setup.env)["outcomes"]["removed"] == 1
    assert ok_json(["notices", "show", hit["incident"]], setup.env)["status"] == "removed"
    # Re-crawled while it is gone: nothing new.
    recrawl = run_cli(["crawl", setup.site.server_a.url("/")], setup.env, timeout=CRAWL_TIMEOUT)
    assert recrawl.returncode == 0, recrawl.stderr
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 0

    # Put back: the next crawl finds it, the notice reopens, a numbered notice goes out.
    server = (
        setup.site.server_a
        if url.startswith(setup.site.server_a.base_url)
        else (setup.site.server_b)
    )
    server.mount(
        {url.removeprefix(server.base_url): image_response(setup.site.bodies[url], "image/jpeg")}
    )
    for _ in range(2):  # a second crawl before the notifier runs adds nothing
        recrawl = run_cli(["crawl", setup.site.server_a.url("/")], setup.env, timeout=CRAWL_TIMEOUT)
        assert recrawl.returncode == 0, recrawl.stderr
    stats = ok_json(["notifier", "--once"], setup.env)
    assert (stats["sent"], stats["reappeared"]) == (1, 1)
    messages = setup.messages_by_notice()[hit["incident"]]
    assert len(messages) == 2
    assert str(messages[1]["Message-ID"]).startswith(f"<{hit['incident']}.reappearance.1@")
    shown = ok_json(["notices", "show", hit["incident"]], setup.env)
    events = [e["event"] for e in shown["timeline"]]
    assert events[-3:] == ["reappeared", "routed", "sent"]
    assert (shown["status"], shown["reopens"], shown["time_to_removal"]) == ("sent", 1, None)
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 0  # exactly once
    rows = ok_json(["stats"], setup.env)["providers"]
    assert sum(r["reappeared"] for r in rows) == 1
