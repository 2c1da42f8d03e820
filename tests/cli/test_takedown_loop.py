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
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

from hotline import imagegen
from hotline.demosite import DEMO_CATEGORY, KNOWN_LIST_HEADER
from hotline.loopback import RunningServer, html_page, image_response, serve
from takedown.xarf import validate_xarf
from tests.builders import IDENTITY_TOML
from tests.helpers import HOST_A, HOST_B, HOTLINE, hotline_env, ok_json, run_cli
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
    shown = ok_json(["notices", "show", hits[0]["incident"][:10]], setup.env)
    assert [e["event"] for e in shown["timeline"]] == ["queued", "classified", "routed", "sent"]
    assert all(e["actor"].startswith("notifier@") for e in shown["timeline"])


def test_recheck_marks_removed_with_time_to_removal_and_reminds_the_rest(setup: Setup) -> None:
    hits = crawl(setup)
    setup.configure('reminder_interval = "0s"\nescalate_after = "30d"')
    assert ok_json(["notifier", "--once"], setup.env)["sent"] == 4
    removed = {}
    for hit, status in zip(hits[:2], (404, 410), strict=True):
        setup.site.remove(hit["url"], status)
        removed[hit["incident"]] = status
    summary = ok_json(["recheck", "--all"], setup.env)
    assert summary["outcomes"] == {"removed": 2, "reminded": 2}
    for hit in hits:
        notice = ok_json(["notices", "show", hit["incident"]], setup.env)
        events = [e["event"] for e in notice["timeline"]]
        if hit["incident"] in removed:
            assert notice["status"] == "removed"
            assert events[-1] == "removed"
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
