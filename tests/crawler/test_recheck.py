"""Rechecks of noticed image URLs, end to end against loopback servers.

Each run happens in a subprocess (Twisted's reactor cannot be restarted inside pytest), with
warnings as errors, through a small driver calling
:func:`crawler.spiders.recheck.run_rechecks` with a poll serving batches of targets: one JSON
line per result on stdout, the finish reason and Scrapy's stats on stderr. Judging is tested
offline too (:mod:`crawler.judge`). Images are generated benign textures; the "noticed"
hashes are computed here with :mod:`matchers.digest`, as the crawler recorded them.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    IgnoreRequest,
)
from twisted.internet.error import DNSLookupError

from crawler.judge import Verdict, compare_digest, judge_body, judge_failure, judge_status
from hotline.imagegen import decode, encode, encode_video, textured_image
from hotline.loopback import Exchange, Response, html_page, image_response, redirect, serve
from matchers.algorithms import hamming
from matchers.archives import ArchiveLimits
from matchers.digest import digest_bytes
from matchers.video import VideoLimits
from store.addresses import AddressPolicy, parse_networks
from store.rechecks import RecheckTarget
from tests.helpers import HOST_A, HOST_B, ROOT, free_port, hotline_env, listening_sockets

RUN_TIMEOUT = 120
STALL_SECONDS = 60.0  # the stalling route waits at most this long (released on server stop)
SHORT_TIMEOUT = "2"  # DOWNLOAD_TIMEOUT of the main run, so the stalling route times out fast

#: Finish reasons of a run that ended as asked (``shutdown``: SIGINT/SIGTERM).
CLEAN_FINISH = frozenset({"finished", "shutdown"})

DRIVER = """
import json, sys, threading
from crawler.spiders.recheck import run_rechecks
from store.rechecks import RecheckTarget

batches = [[RecheckTarget.from_dict(t) for t in batch] for batch in json.load(open(sys.argv[1]))]
failing = sys.argv[3]  # "": none; "poll": the poll after the batches fails; else a notice id
interval = float(sys.argv[4]) if len(sys.argv) > 4 else None  # watch, polling this often
lock = threading.Lock()
reported = []
polls = []

def poll():
    with lock:
        polls.append(len(reported))
        if not batches and failing == "poll":
            raise RuntimeError("queue unavailable")
        return batches.pop(0) if batches else []

def report(result):
    if result.notice_id == failing:
        raise RuntimeError("queue unavailable")
    with lock:
        reported.append(result.notice_id)
    print(json.dumps(result.to_dict()), flush=True)

watch = {} if interval is None else {"poll_interval": interval}
settings = {"LOG_LEVEL": "WARNING", **json.loads(sys.argv[2])}
stats = run_rechecks(poll, report, once=interval is None, settings=settings, **watch)
summary = {"polls": polls, "finish_reason": stats.get("finish_reason"), "stats": stats}
print(json.dumps(summary, sort_keys=True), file=sys.stderr, flush=True)
"""


def driver_command(
    batches_file: Path, settings: dict[str, Any], failing: str = "", interval: str = ""
) -> list[str]:
    """The driver's command line: ``interval`` (seconds) keeps it polling until SIGTERM."""
    args = [str(batches_file), json.dumps(settings), failing]
    return [sys.executable, "-W", "error", "-c", DRIVER, *args, *([interval] if interval else [])]


def last_json_line(text: str) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(text.strip().splitlines()[-1]) if text.strip() else {}
    return line


# -- images ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    original: bytes
    copy: bytes  # the same picture, decoded and re-encoded as WebP at a lower quality
    other: bytes  # a different picture
    truncated: bytes  # the first half of a different JPEG


@pytest.fixture(scope="module")
def images() -> Images:
    original = encode(textured_image(4101), "JPEG", quality=90)
    other = encode(textured_image(4102), "JPEG", quality=90)
    third = encode(textured_image(4103), "JPEG", quality=90)
    found = Images(
        original=original,
        copy=encode(decode(original), "WEBP", quality=70),
        other=other,
        truncated=third[: len(third) // 2],
    )
    a, b, c = (digest_bytes(x) for x in (found.original, found.copy, found.other))
    # Fixture sanity: the copy differs in bytes but not in picture; the other image differs.
    assert a.sha256 != b.sha256 and a.pdq and b.pdq and c.pdq and c.phash and a.phash
    assert hamming(a.pdq, b.pdq) <= 31 < hamming(a.pdq, c.pdq)
    assert hamming(a.phash, c.phash) > 10
    return found


def target(notice_id: str, url: str, body: bytes) -> dict[str, Any]:
    """The recheck target of a notice sent for ``body`` at ``url``."""
    digest = digest_bytes(body)
    return {
        "notice_id": notice_id,
        "url": url,
        "sha256": digest.sha256,
        "pdq": digest.pdq,
        "phash": digest.phash,
    }


# -- running ---------------------------------------------------------------------------------


class Recorder:
    """A route that records each request and answers with a fixed response."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, exchange: Exchange) -> None:
        with self._lock:
            self.paths.append(exchange.path)
        body = self.response.body
        exchange.start(
            self.response.status, {**self.response.headers, "Content-Length": str(len(body))}
        )
        exchange.write(body)


def stall(exchange: Exchange) -> None:
    """Never answer (until the server stops)."""
    exchange.wait(STALL_SECONDS)


@dataclass
class Run:
    returncode: int
    results: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    stderr: str
    order: list[str] = field(default_factory=list)


def run_once(tmp_path: Path, targets: list[dict[str, Any]], settings: dict[str, str]) -> Run:
    """Recheck ``targets`` (one poll's worth) with these Scrapy settings until the poll is
    empty. ``returncode`` is non-zero when the driver failed or the run did not end as
    asked."""
    batches_file = tmp_path / "targets.json"
    batches_file.write_text(json.dumps([targets]))
    proc = subprocess.run(
        driver_command(batches_file, settings),
        cwd=ROOT,
        env=hotline_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = last_json_line(proc.stderr)
    clean = summary.get("finish_reason") in CLEAN_FINISH
    return Run(
        returncode=proc.returncode or (0 if clean else 1),
        results={line["notice_id"]: line for line in lines},
        summary=summary,
        stderr=proc.stderr,
        order=[line["notice_id"] for line in lines],
    )


# -- the main run: every outcome at once --------------------------------------------------------


@dataclass
class MainRun:
    run: Run
    images: Images
    busy: Recorder
    base_a: str


@pytest.fixture(scope="module")
def main_run(images: Images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainRun]:
    busy = Recorder(Response(503, {"Content-Type": "text/plain"}, b"busy\n"))
    with serve(host=HOST_A) as a, serve(host=HOST_B) as b:
        b.mount({"/missing.jpg": Response(404, {"Content-Type": "text/plain"}, b"no\n")})
        a.mount(
            {
                "/same.jpg": image_response(images.original, "image/jpeg"),
                "/reencoded.jpg": image_response(images.copy, "image/webp"),
                "/replaced.jpg": image_response(images.other, "image/jpeg"),
                "/html.jpg": html_page("<p>This content has been removed.</p>"),
                "/gone-410.jpg": Response(410, {"Content-Type": "text/plain"}, b"gone\n"),
                "/legal-451.jpg": Response(451, {"Content-Type": "text/plain"}, b"legal\n"),
                "/busy.jpg": busy,
                "/forbidden.jpg": Response(403, {"Content-Type": "text/plain"}, b"no\n"),
                "/moved.jpg": redirect(b.url("/missing.jpg")),
                "/moved-ok.jpg": redirect("/same.jpg", status=301),
                "/loop.jpg": redirect("/loop.jpg"),
                "/truncated.jpg": image_response(images.truncated, "image/jpeg"),
                "/stall.jpg": stall,
            }
        )
        port = free_port(HOST_A)
        original = images.original
        targets = [
            target(name, url, original)
            for name, url in [
                ("same", a.url("/same.jpg")),
                ("reencoded", a.url("/reencoded.jpg")),
                ("replaced", a.url("/replaced.jpg")),
                ("html", a.url("/html.jpg")),
                ("404", a.url("/not-there.jpg")),
                ("410", a.url("/gone-410.jpg")),
                ("451", a.url("/legal-451.jpg")),
                ("503", a.url("/busy.jpg")),
                ("403", a.url("/forbidden.jpg")),
                ("redirect-404", a.url("/moved.jpg")),
                ("redirect-ok", a.url("/moved-ok.jpg")),
                ("redirect-loop", a.url("/loop.jpg")),
                ("truncated", a.url("/truncated.jpg")),
                ("stall", a.url("/stall.jpg")),
                ("closed-port", f"http://{HOST_A}:{port}/image.jpg"),
                ("no-such-host", "http://recheck-test.invalid/image.jpg"),
            ]
        ]
        run = run_once(
            tmp_path_factory.mktemp("recheck"),
            targets,
            {
                "SAFETY_ALLOW_PRIVATE_NETWORKS": "1",
                "AUTOTHROTTLE_ENABLED": "0",
                "DOWNLOAD_TIMEOUT": SHORT_TIMEOUT,
            },
        )
        yield MainRun(run=run, images=images, busy=busy, base_a=a.base_url)


def result(main_run: MainRun, notice_id: str) -> dict[str, Any]:
    assert main_run.run.returncode == 0, main_run.run.stderr[-3000:]
    return main_run.run.results[notice_id]


def test_every_target_is_reported_once_and_the_run_finishes(main_run: MainRun) -> None:
    run = main_run.run
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(run.order) == len(set(run.order)) == 16
    assert run.summary["finish_reason"] == "finished"
    stats = run.summary["stats"]
    assert stats["recheck/targets"] == 16
    assert stats["recheck/polls"] == 2  # the targets, then an empty poll: once=True stops
    assert stats["recheck/online"] + stats["recheck/removed"] + stats["recheck/unreachable"] == 16
    for line in run.results.values():
        assert line["checked_at"].endswith("Z")
        assert set(line) == {
            "notice_id",
            "url",
            "state",
            "reason",
            "http_status",
            "checked_at",
            "sha256",
            "profile",
        }
        # Whatever could close a notice was looked at twice, the second time as a browser.
        expected = "crawl" if line["state"] == "online" else "browser"
        assert line["profile"] == expected, line
    assert stats["recheck/second_looks"] == stats["recheck/removed"] + stats["recheck/unreachable"]


def test_unchanged_image_is_online(main_run: MainRun) -> None:
    got = result(main_run, "same")
    assert (got["state"], got["reason"], got["http_status"]) == ("online", "same bytes", 200)
    assert got["sha256"] == digest_bytes(main_run.images.original).sha256


def test_reencoded_copy_is_online_by_pdq(main_run: MainRun) -> None:
    got = result(main_run, "reencoded")
    assert got["state"] == "online"
    assert got["reason"].startswith("pdq distance ")
    distance = int(got["reason"].rsplit(" ", 1)[1])
    original, copy = digest_bytes(main_run.images.original), digest_bytes(main_run.images.copy)
    assert original.pdq is not None and copy.pdq is not None
    assert distance <= hamming(original.pdq, copy.pdq) <= 31
    assert got["sha256"] == copy.sha256


@pytest.mark.parametrize("status", [404, 410, 451])
def test_gone_statuses_are_removed(main_run: MainRun, status: int) -> None:
    got = result(main_run, str(status))
    assert (got["state"], got["reason"], got["http_status"]) == (
        "removed",
        f"http {status}",
        status,
    )
    assert got["sha256"] is None


def test_replaced_image_is_removed(main_run: MainRun) -> None:
    got = result(main_run, "replaced")
    assert (got["state"], got["reason"]) == ("removed", "content changed")
    assert got["sha256"] == digest_bytes(main_run.images.other).sha256


def test_replaced_by_html_is_removed(main_run: MainRun) -> None:
    got = result(main_run, "html")
    assert (got["state"], got["reason"], got["sha256"]) == (
        "removed",
        "not an image (text/html)",
        None,
    )


def test_server_errors_are_unreachable_after_one_retry(main_run: MainRun) -> None:
    got = result(main_run, "503")
    assert (got["state"], got["reason"], got["http_status"]) == ("unreachable", "http 503", 503)
    # RETRY_TIMES = 1, for each of the two looks (the crawl's, then the browser-like one).
    assert main_run.busy.paths == ["/busy.jpg"] * 4
    got = result(main_run, "403")
    assert (got["state"], got["reason"], got["http_status"]) == ("unreachable", "http 403", 403)


def test_network_failures_are_unreachable(main_run: MainRun) -> None:
    for notice_id, reason in [
        ("closed-port", "connection refused"),
        ("no-such-host", "dns lookup failed"),
        ("stall", "timeout"),
        ("redirect-loop", "too many redirects"),
    ]:
        got = result(main_run, notice_id)
        assert (got["state"], got["reason"], got["http_status"]) == (
            "unreachable",
            reason,
            None,
        ), notice_id


def test_redirects_are_followed_and_the_final_response_judged(main_run: MainRun) -> None:
    to_404 = result(main_run, "redirect-404")
    assert (to_404["state"], to_404["reason"], to_404["http_status"]) == (
        "removed",
        "http 404",
        404,
    )
    assert to_404["url"] == main_run.base_a + "/moved.jpg"  # reported under the noticed URL
    to_image = result(main_run, "redirect-ok")
    assert (to_image["state"], to_image["reason"]) == ("online", "same bytes")


def test_undecodable_image_is_unreachable_not_removed(main_run: MainRun) -> None:
    got = result(main_run, "truncated")
    assert got["state"] == "unreachable"
    assert got["reason"].startswith("image not decodable (")
    assert got["sha256"] == digest_bytes(main_run.images.truncated).sha256


# -- the address policy ----------------------------------------------------------------------


def test_private_targets_are_blocked_and_never_contacted(images: Images, tmp_path: Path) -> None:
    internal = Recorder(Response(200, {"Content-Type": "image/jpeg"}, images.original))
    with serve(host=HOST_A) as a, serve({"/*": internal}, host=HOST_B) as b:
        a.mount(
            {
                "/same.jpg": image_response(images.original, "image/jpeg"),
                "/to-internal.jpg": redirect(b.url("/redirected.jpg")),
            }
        )
        targets = [
            target("internal", b.url("/image.jpg"), images.original),
            target("via-redirect", a.url("/to-internal.jpg"), images.original),
            target("allowed", a.url("/same.jpg"), images.original),
        ]
        # Only 127.0.0.2 is opened (a hotline's lab); no SAFETY_ALLOW_PRIVATE_NETWORKS.
        allowed = run_once(
            tmp_path,
            targets,
            {"SAFETY_ALLOWED_NETWORKS": f"{HOST_A}/32", "AUTOTHROTTLE_ENABLED": "0"},
        )
        # Nothing opened at all: even the "allowed" host is refused.
        closed = run_once(tmp_path, targets[:1], {"AUTOTHROTTLE_ENABLED": "0"})
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert internal.paths == []
    for run, notice_id in [(allowed, "internal"), (allowed, "via-redirect"), (closed, "internal")]:
        got = run.results[notice_id]
        assert (got["state"], got["http_status"], got["sha256"], got["profile"]) == (
            "refused",
            None,
            None,
            "crawl",  # a refusal is about the configuration: no second look
        ), notice_id
        assert "address policy refused it" in got["reason"]
    assert allowed.results["allowed"]["state"] == "online"
    assert allowed.summary["stats"]["safety/refused_private"] == 2


def test_a_host_name_the_policy_refuses_is_refused_not_unreachable(
    images: Images, tmp_path: Path
) -> None:
    """``localhost`` resolves, but only to loopback addresses the policy refuses: that is a
    configuration error (``refused``), not a host that is down."""
    internal = Recorder(Response(200, {"Content-Type": "image/jpeg"}, images.original))
    with serve({"/*": internal}, host="127.0.0.1") as server:
        url = f"http://localhost:{server.url('/').rsplit(':', 1)[1]}"
        run = run_once(tmp_path, [target("by-name", url + "image.jpg", images.original)], {})
    assert run.returncode == 0, run.stderr[-3000:]
    got = run.results["by-name"]
    assert got["state"] == "refused", got
    assert "127.0.0.1" in got["reason"] and "address policy refused it" in got["reason"]
    assert internal.paths == []


class Cloaking:
    """A site that hides an image from the hotline: 403 for a request without the page as
    Referer (hotlink protection, or a site that recognises the recheck), the image otherwise.
    Records the User-Agent of every request."""

    def __init__(self, body: bytes, page: str) -> None:
        self.body = body
        self.page = page
        self.agents: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, exchange: Exchange) -> None:
        headers = {k.lower(): v for k, v in exchange.headers.items()}
        with self._lock:
            self.agents.append(headers.get("user-agent", ""))
        if headers.get("referer") == self.page:
            response = image_response(self.body, "image/jpeg")
        else:
            response = Response(403, {"Content-Type": "text/plain"}, b"forbidden\n")
        exchange.start(
            response.status, {**response.headers, "Content-Length": str(len(response.body))}
        )
        exchange.write(response.body)


def test_a_cloaked_image_is_found_online_by_the_browser_like_second_look(
    images: Images, tmp_path: Path
) -> None:
    with serve(host=HOST_A) as a:
        page = a.url("/gallery.html")
        cloaking = Cloaking(images.original, page)
        a.mount({"/cloaked.jpg": cloaking})
        noticed = {**target("cloaked", a.url("/cloaked.jpg"), images.original), "referer": page}
        run = run_once(
            tmp_path,
            [noticed],
            {"SAFETY_ALLOW_PRIVATE_NETWORKS": "1", "AUTOTHROTTLE_ENABLED": "0"},
        )
    assert run.returncode == 0, run.stderr[-3000:]
    got = run.results["cloaked"]
    assert (got["state"], got["profile"], got["http_status"]) == ("online", "browser", 200)
    assert got["reason"] == (
        "same bytes, for a browser-like fetch (the crawl's fetch: unreachable, http 403)"
    )
    assert run.summary["stats"]["recheck/cloaking"] == 1
    # Neither look announces itself, and the two looks are two different browsers.
    assert len(cloaking.agents) == 2  # 403 is not retried: the crawl's look, then the browser's
    assert all(agent.startswith("Mozilla/5.0") for agent in cloaking.agents)
    assert not any("hotline" in agent.lower() for agent in cloaking.agents)
    assert len(set(cloaking.agents)) == 2


# -- polling ---------------------------------------------------------------------------------


def run_driver(
    tmp_path: Path, batches: list[list[dict[str, Any]]], failing: str = ""
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``run_rechecks(once=True)`` with a poll serving ``batches``; (results, summary)."""
    batches_file = tmp_path / "batches.json"
    batches_file.write_text(json.dumps(batches))
    settings = {"SAFETY_ALLOW_PRIVATE_NETWORKS": True, "AUTOTHROTTLE_ENABLED": False}
    proc = subprocess.run(
        driver_command(batches_file, settings, failing),
        cwd=ROOT,
        env=hotline_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    run = last_json_line(proc.stderr)
    keys = ("recheck/poll_errors", "recheck/report_errors")
    summary = {"polls": run["polls"], "finish_reason": run["finish_reason"]}
    return lines, {**summary, **{k: run["stats"].get(k, 0) for k in keys}}


def test_poll_is_asked_again_when_idle(images: Images, tmp_path: Path) -> None:
    with serve(host=HOST_A) as a:
        a.mount({"/same.jpg": image_response(images.original, "image/jpeg")})
        lines, summary = run_driver(
            tmp_path,
            [
                [target("first-1", a.url("/same.jpg"), images.original)],
                [
                    target("second-1", a.url("/same.jpg"), images.original),
                    target("second-2", a.url("/not-there.jpg"), images.original),
                ],
            ],
        )
    states = {line["notice_id"]: (line["state"], line["reason"]) for line in lines}
    assert states == {
        "first-1": ("online", "same bytes"),
        "second-1": ("online", "same bytes"),
        "second-2": ("removed", "http 404"),
    }
    assert lines[0]["notice_id"] == "first-1"
    # Polled at the start, then each time the spider went idle: after the first batch was
    # reported, after the second, and the empty third poll ended the run.
    assert summary == {
        "polls": [0, 1, 3],
        "finish_reason": "finished",
        "recheck/poll_errors": 0,
        "recheck/report_errors": 0,
    }


def test_failing_poll_ends_a_single_run_and_a_failing_report_is_counted(
    images: Images, tmp_path: Path
) -> None:
    with serve(host=HOST_A) as a:
        a.mount({"/same.jpg": image_response(images.original, "image/jpeg")})
        batch = [
            target("kept", a.url("/same.jpg"), images.original),
            target("lost", a.url("/same.jpg"), images.original),
        ]
        lines, summary = run_driver(tmp_path, [batch], failing="poll")
        assert sorted(line["notice_id"] for line in lines) == ["kept", "lost"]
        assert summary["finish_reason"] == "poll_failed"
        assert summary["recheck/poll_errors"] == 1
        lines, summary = run_driver(tmp_path, [batch], failing="lost")
    assert [line["notice_id"] for line in lines] == ["kept"]
    assert summary["finish_reason"] == "finished"
    assert summary["recheck/report_errors"] == 1


def test_watch_mode_stops_gracefully_on_sigterm(images: Images, tmp_path: Path) -> None:
    batches_file = tmp_path / "targets.json"
    with serve(host=HOST_A) as a:
        a.mount({"/same.jpg": image_response(images.original, "image/jpeg")})
        batches_file.write_text(json.dumps([[target("one", a.url("/same.jpg"), images.original)]]))
        proc = subprocess.Popen(
            driver_command(batches_file, {"SAFETY_ALLOW_PRIVATE_NETWORKS": "1"}, interval="0.2"),
            cwd=ROOT,
            env=hotline_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())  # blocks until the first report
            assert proc.poll() is None  # watching: still running after the file's targets
            listening = listening_sockets(proc.pid)  # no RemoteControl, no telnet console
            proc.send_signal(signal.SIGTERM)
            rest, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert (first["notice_id"], first["state"]) == ("one", "online")
    assert listening == []
    assert proc.returncode == 0, stderr[-3000:]
    assert rest == ""
    summary = last_json_line(stderr)
    assert summary["finish_reason"] == "shutdown"


# -- judging, offline ------------------------------------------------------------------------


def test_status_alone_decides_all_but_success() -> None:
    assert judge_status(200) is None and judge_status(206) is None
    assert judge_status(410) == Verdict("removed", "http 410")
    assert judge_status(429) == Verdict("unreachable", "http 429")
    assert judge_status(302) == Verdict("unreachable", "http 302")  # a redirect without Location


def test_mirrored_copy_matches_through_the_dihedral_variants(images: Images) -> None:
    mirrored = encode(decode(images.original).transpose(Image.Transpose.FLIP_LEFT_RIGHT), "PNG")
    noticed = RecheckTarget.from_dict(target("n", "https://example.test/a.jpg", images.original))
    verdict = judge_body(noticed, mirrored, "image/png")
    assert verdict.state == "online" and verdict.reason.startswith("pdq distance ")


def test_phash_alone_can_keep_an_image_online(images: Images) -> None:
    original = digest_bytes(images.original)
    assert original.phash is not None
    url = "https://example.test/a.jpg"
    noticed = RecheckTarget("n", url, original.sha256.upper(), None, original.phash.upper())
    assert noticed.sha256 == original.sha256  # normalised to lowercase hex
    verdict = judge_body(noticed, images.copy, "image/webp")
    assert verdict.state == "online" and verdict.reason.startswith("phash distance ")
    other = digest_bytes(images.other)
    assert judge_body(noticed, images.other, "image/jpeg") == Verdict(
        "removed", "content changed", other.sha256
    )


def test_either_perceptual_hash_within_its_threshold_keeps_an_image_online(
    images: Images,
) -> None:
    original, copy = digest_bytes(images.original), digest_bytes(images.copy)
    assert original.pdq is not None and copy.pdq is not None and original.phash is not None
    pdq_distance = hamming(original.pdq, copy.pdq)
    assert pdq_distance > 0
    url = "https://example.test/a.jpg"
    tight_pdq = RecheckTarget(
        "n", url, original.sha256, original.pdq, original.phash, pdq_distance - 1
    )
    assert judge_body(tight_pdq, images.copy).reason.startswith("phash distance ")
    no_phash = RecheckTarget("n", url, original.sha256, original.pdq, None, pdq_distance - 1)
    assert judge_body(no_phash, images.copy) == Verdict("removed", "content changed", copy.sha256)


def test_not_an_image_reasons(images: Images) -> None:
    noticed = RecheckTarget.from_dict(target("n", "https://example.test/a.jpg", images.original))
    assert judge_body(noticed, b"", "image/jpeg") == Verdict("removed", "not an image (empty body)")
    assert judge_body(noticed, b"<html>gone</html>", "text/html; charset=utf-8") == Verdict(
        "removed", "not an image (text/html)"
    )
    # A hostile Content-Type is not echoed into the audit log.
    assert judge_body(noticed, b"plain words", "text/x\r\nX-Evil: 1") == Verdict(
        "removed", "not an image"
    )


def test_blocked_is_told_apart_from_other_refusals() -> None:
    closed = AddressPolicy()
    lab = AddressPolicy(allowed_networks=parse_networks([f"{HOST_A}/32"]))
    refused = IgnoreRequest(f"refused http://{HOST_B}/a.jpg: {HOST_B} is not a public address")
    got = judge_failure(refused, f"http://{HOST_B}/a.jpg", lab)
    assert got.state == "refused" and got.reason.startswith(f"{HOST_B}: the recheck's address")
    dropped = IgnoreRequest("dropped http://h.test/a.jpg: served from non-public address 10.1.1.1")
    got = judge_failure(dropped, "http://h.test/a.jpg", closed)
    assert got.state == "refused" and got.reason.startswith("served from a non-public address")
    # A name that does not resolve is unreachable; one whose addresses were all refused is not.
    lookup = DNSLookupError("no such host")
    assert judge_failure(lookup, "http://h.test/a.jpg", closed) == Verdict(
        "unreachable", "dns lookup failed"
    )
    got = judge_failure(lookup, "http://h.test/a.jpg", closed, ("10.0.0.1", "::1"))
    assert got.state == "refused" and got.reason.startswith("10.0.0.1, ::1: ")
    too_many = IgnoreRequest("max redirections reached")
    assert judge_failure(too_many, f"http://{HOST_A}/a.jpg", lab).reason == "too many redirects"
    too_large = DownloadCancelledError("larger than download max size")
    assert judge_failure(too_large, f"http://{HOST_A}/", lab) == Verdict("unreachable", "too large")
    refused_tcp = DownloadConnectionRefusedError("refused")
    assert judge_failure(refused_tcp, f"http://{HOST_A}/", lab) == Verdict(
        "unreachable", "connection refused"
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"notice_id": "n", "url": "data:image/png;base64,AAAA"},
        {"notice_id": "n", "url": "data:image/png;base64,AAAA", "sha256": "0" * 64},
        {"notice_id": "n", "url": "ftp://example.test/a.jpg", "sha256": "0" * 64},
        {"notice_id": "n", "url": "https://example.test/a.jpg", "sha256": "xyz"},
        {"notice_id": "n", "url": "https://example.test/a.jpg"},
        {"notice_id": "n", "url": "https://example.test/a.jpg", "sha256": "0" * 64, "pdq": "12"},
    ],
)
def test_bad_targets_are_refused_at_the_edge(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        RecheckTarget.from_dict(bad)


def test_a_noticed_file_is_online_only_while_the_same_bytes_are_served() -> None:
    video = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40
    noticed = RecheckTarget(
        "n", "https://example.test/v.mp4", hashlib.sha256(video).hexdigest(), media_type="video"
    )
    assert judge_body(noticed, video, "video/mp4") == Verdict(
        "online", "same bytes", noticed.sha256
    )
    edited = video[:-1] + b"\x00"
    assert judge_body(noticed, edited, "video/mp4") == Verdict(
        "removed", "not the same file", hashlib.sha256(edited).hexdigest()
    )
    assert RecheckTarget.from_dict(noticed.to_dict()) == noticed


def test_a_video_noticed_for_a_frame_is_online_while_another_encoding_shows_it() -> None:
    known = textured_image(7600)
    scenes = [(textured_image(7601), 2.0), (known, 2.0)]
    noticed_video = encode_video(scenes, container="mp4", width=320, height=240, fps=10)
    frame_pdq = digest_bytes(encode(known, "PNG")).pdq
    assert frame_pdq is not None
    noticed = RecheckTarget(
        "n",
        "https://example.test/v.mp4",
        hashlib.sha256(noticed_video).hexdigest(),
        pdq=frame_pdq,
        media_type="video",
    )
    again = encode_video(scenes, container="webm", width=480, height=360, fps=10)
    verdict = judge_body(noticed, again, "video/webm")
    assert verdict.state == "online" and verdict.reason.startswith("frame pdq distance ")
    assert int(verdict.reason.rsplit(" ", 1)[1]) <= 31
    other = encode_video([(textured_image(7602), 3.0)], container="mp4", width=320, height=240)
    assert judge_body(noticed, other, "video/mp4").reason == "video changed"
    broken = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40
    assert judge_body(noticed, broken, "video/mp4") == Verdict(
        "unreachable", "video not decodable (corrupt)", hashlib.sha256(broken).hexdigest()
    )
    assert judge_body(noticed, b"<html>gone</html>", "text/html").reason == "not the same file"


def test_a_long_animation_noticed_for_a_late_frame_is_online_while_it_shows_that_frame() -> None:
    known = textured_image(7610).resize((96, 72))
    others = [textured_image(7611 + n % 4).resize((96, 72)) for n in range(70)]

    def animation(frames: list[Image.Image], image_format: str) -> bytes:
        out = io.BytesIO()
        frames[0].save(out, image_format, save_all=True, append_images=frames[1:], duration=100)
        return out.getvalue()

    # The known picture only in the last frames: past the 8 an image's hashing looks at.
    noticed_gif = animation([*others, known, known], "GIF")
    frame_pdq = digest_bytes(encode(known, "PNG")).pdq
    assert frame_pdq is not None
    noticed = RecheckTarget(
        "n", "https://example.test/a.gif", hashlib.sha256(noticed_gif).hexdigest(), pdq=frame_pdq
    )
    as_webp = animation([*others, known, known], "WEBP")
    assert compare_digest(noticed, digest_bytes(as_webp)).state == "removed"
    verdict = judge_body(noticed, as_webp, "image/webp")
    assert verdict.state == "online" and verdict.reason.startswith("frame pdq distance ")
    without = animation([*others, others[0]], "WEBP")
    assert judge_body(noticed, without, "image/webp").reason == "content changed"


def _noticed_member(member: bytes) -> RecheckTarget:
    """A notice for ``member`` of an archive at a.zip (an archive that is no longer served)."""
    return RecheckTarget(
        "n",
        "https://example.test/a.zip",
        hashlib.sha256(member).hexdigest(),
        media_type="archive_member",
        container_sha256="0" * 64,
    )


def test_a_noticed_member_is_unreachable_when_the_archive_was_not_read_in_full() -> None:
    member = b"%PDF-1.4\n" + bytes(range(256)) * 8
    zeros = b"\x00" * (4 * 1024 * 1024)  # a ratio bomb before the member
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", zeros)
    bomb_only = out.getvalue()
    noticed = _noticed_member(member)
    assert judge_body(noticed, bomb_only).state == "unreachable"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("other.txt", b"benign")
    assert judge_body(noticed, out.getvalue()).reason == "not in the archive"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("moved/doc.pdf", member)
    assert judge_body(noticed, out.getvalue()).reason == "member still in the archive"


def test_archives_and_videos_are_judged_within_the_limits_given() -> None:
    member = b"%PDF-1.4\n" + bytes(range(256)) * 8
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("first.txt", b"a benign note\n")
        archive.writestr("doc.pdf", member)
    noticed = _noticed_member(member)
    assert judge_body(noticed, out.getvalue()).reason == "member still in the archive"
    one_member = ArchiveLimits(max_members=1)
    verdict = judge_body(noticed, out.getvalue(), archive_limits=one_member)
    assert (verdict.state, verdict.reason) == ("unreachable", "archive not read")

    known = textured_image(7620)
    clip = encode_video([(known, 2.0)], container="mp4", width=320, height=240, fps=10)
    frame_pdq = digest_bytes(encode(known, "PNG")).pdq
    video = RecheckTarget(
        "v", "https://example.test/v.mp4", "0" * 64, pdq=frame_pdq, media_type="video"
    )
    assert judge_body(video, clip).state == "online"
    small = VideoLimits(max_frame_pixels=320 * 240 - 1)
    assert judge_body(video, clip, video_limits=small).reason == "video not decodable (too_large)"
