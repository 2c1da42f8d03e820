"""The review queue through the CLI: per-list thresholds decide confirmed against review, and
an analyst's decisions (show, confirm, dismiss, allow-list) hold end to end: crawls of a
loopback site, the real notifier and a real SMTP server."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from hotline.demosite import DEMO_CATEGORY
from hotline.imagegen import cropped, encode, textured_image, watermarked
from hotline.loopback import RunningServer, html_page, image_response, serve
from matchers.algorithms import PDQ_MIN_QUALITY, hamming
from matchers.digest import ImageDigest, digest_bytes
from store.keys import Keys
from store.queue import HitQueue
from tests.builders import IDENTITY_TOML, make_hit
from tests.helpers import HOST_A, ok_json, one_line_error, run_cli
from tests.servers.smtp import SmtpServer


def test_a_near_copy_goes_to_review_under_strict_thresholds(
    env: dict[str, str], tmp_path: Path
) -> None:
    original = textured_image(3301)
    known = encode(original, "JPEG", quality=92)
    copy = encode(cropped(watermarked(original, "sample"), 0.02), "JPEG", quality=80)
    k, c = digest_bytes(known), digest_bytes(copy)
    assert k.pdq and c.pdq and k.phash and c.phash
    pdq_distance, phash_distance = hamming(k.pdq, c.pdq), hamming(k.phash, c.phash)
    # Strict list: the copy falls between confirm and review for both algorithms.
    pdq_confirm, phash_confirm = pdq_distance - 1, phash_distance - 1
    assert pdq_confirm >= 0 and phash_confirm >= 0, (pdq_distance, phash_distance)

    known_csv = tmp_path / "known.csv"
    known_csv.write_text(
        "algorithm,hash,id,category\n"
        f"sha256,{k.sha256},e1,test\npdq,{k.pdq},e1,test\nphash,{k.phash},e1,test\n"
    )
    imported = run_cli(
        [
            "hashes",
            "import",
            str(known_csv),
            "--list",
            "strict",
            "--pdq-confirm",
            str(pdq_confirm),
            "--phash-confirm",
            str(phash_confirm),
        ],
        env,
    )
    assert imported.returncode == 0, imported.stderr
    pages = {
        "/": html_page("<img src='/original.jpg'><img src='/copy.jpg'>"),
        "/original.jpg": image_response(known, "image/jpeg"),
        "/copy.jpg": image_response(copy, "image/jpeg"),
    }
    with serve(pages, host=HOST_A) as site:
        crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert (summary["confirmed_new"], summary["review_new"]) == (1, 1)
    hits = json.loads(run_cli(["hits", "list", "--json"], env).stdout)
    review = json.loads(run_cli(["review", "list", "--json"], env).stdout)
    assert [(h["url"], h["algorithm"], h["verdict"]) for h in hits] == [
        (site.url("/original.jpg"), "sha256", "confirmed")
    ]
    (item,) = review
    assert item["url"] == site.url("/copy.jpg") and item["verdict"] == "review"
    assert (item["algorithm"], item["distance"]) in {
        ("pdq", pdq_distance),
        ("phash", phash_distance),
    }


# -- analysts' decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class NearMiss:
    """A known image and a near copy of it (cropped, watermarked, re-encoded)."""

    known: bytes
    copy: bytes
    k: ImageDigest
    c: ImageDigest

    @property
    def distances(self) -> tuple[int, int]:
        assert self.k.pdq and self.c.pdq and self.k.phash and self.c.phash
        return hamming(self.k.pdq, self.c.pdq), hamming(self.k.phash, self.c.phash)


@pytest.fixture(scope="module")
def near() -> NearMiss:
    original = textured_image(3302)
    known = encode(original, "JPEG", quality=92)
    copy = encode(cropped(watermarked(original, "sample"), 0.02), "JPEG", quality=80)
    result = NearMiss(known, copy, digest_bytes(known), digest_bytes(copy))
    assert min(result.distances) > 0, result.distances
    return result


def import_list(env: dict[str, str], tmp_path: Path, near: NearMiss, *, strict: bool) -> None:
    """The list ``known`` with the known image as entry e1. Strict: the copy is a near miss
    (confirm thresholds one below its distances); else it is confirmed."""
    k = near.k
    csv = tmp_path / "known.csv"
    csv.write_text(
        "algorithm,hash,id,category\n"
        + "".join(
            f"{a},{h},e1,{DEMO_CATEGORY}\n"
            for a, h in (("sha256", k.sha256), ("pdq", k.pdq), ("phash", k.phash))
        )
    )
    pdq, phash = near.distances
    slack = 1 if strict else 0
    imported = run_cli(
        [
            "hashes",
            "import",
            str(csv),
            "--list",
            "known",
            "--pdq-confirm",
            str(pdq - slack),
            "--phash-confirm",
            str(phash - slack),
        ],
        env,
    )
    assert imported.returncode == 0, imported.stderr


def crawl(env: dict[str, str], url: str) -> dict[str, Any]:
    summary: dict[str, Any] = ok_json(["crawl", url, "--allow-private-networks"], env)
    return summary


@pytest.fixture
def site(near: NearMiss) -> Any:
    with serve(
        {
            "/": html_page("<img src='/copy.jpg'>"),
            "/copy.jpg": image_response(near.copy, "image/jpeg"),
            "/elsewhere/": html_page("<img src='/mirror/same.jpg'>"),
            "/mirror/same.jpg": image_response(near.copy, "image/jpeg"),
        },
        host=HOST_A,
    ) as server:
        yield server


def queued_near_miss(
    env: dict[str, str], tmp_path: Path, near: NearMiss, site: RunningServer
) -> str:
    """Crawl the site's front page under the strict list: one review item; its id."""
    import_list(env, tmp_path, near, strict=True)
    summary = crawl(env, site.url("/"))
    assert (summary["confirmed_new"], summary["review_new"]) == (0, 1)
    (item,) = ok_json(["review", "list"], env)
    assert item["url"] == site.url("/copy.jpg")
    assert item["decision"] is None
    return str(item["id"])


def test_confirm_makes_one_hit_and_one_notice(
    env: dict[str, str],
    tmp_path: Path,
    near: NearMiss,
    site: RunningServer,
    smtp_server: SmtpServer,
) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(
        IDENTITY_TOML
        + f"""
[classification]
strict = "baseline"
known = "baseline"
[notices]
directory = "providers.yaml"
[rdap]
url = ""
[smtp]
host = "{smtp_server.host}"
port = {smtp_server.port}
security = "none"
""",
        encoding="utf-8",
    )
    (tmp_path / "providers.yaml").write_text(
        f"- name: Alpha Hosting\n  cidrs: [{HOST_A}/32]\n  abuse: abuse@alpha.example\n",
        encoding="utf-8",
    )
    env = {**env, "HOTLINE_CONFIG": str(config)}
    review_id = queued_near_miss(env, tmp_path, near, site)
    confirmed = ok_json(
        ["review", "confirm", review_id[:8], "--reason", "same scene", "--analyst", "alice"], env
    )
    assert (confirmed["id"], confirmed["new"], confirmed["actor"]) == (
        review_id,
        True,
        "analyst@alice",
    )
    again = run_cli(["review", "confirm", review_id, "--reason", "sure", "--analyst", "bob"], env)
    assert again.returncode == 0, again.stderr
    assert "already confirmed by analyst@alice" in again.stdout
    (hit,) = ok_json(["hits", "list"], env)
    assert (hit["incident"], hit["verdict"], hit["url"]) == (
        review_id,
        "confirmed",
        site.url("/copy.jpg"),
    )
    assert (hit["decided_by"], hit["decision_reason"]) == ("analyst@alice", "same scene")
    # The real notifier notices it like any other hit: one message, once.
    assert ok_json(["notifier", "--once"], env)["sent"] == 1
    assert ok_json(["notifier", "--once"], env)["sent"] == 0
    (received,) = smtp_server.messages
    message: EmailMessage = received.message
    assert str(message["Message-ID"]).strip("<>").split(".")[0] == review_id
    assert site.url("/copy.jpg") in str(message.get_body(("plain",)))
    notice = ok_json(["notices", "show", review_id], env)
    assert notice["status"] == "sent"
    events = [(e["event"], e["actor"]) for e in notice["timeline"]]
    assert events[0] == ("review_confirmed", "analyst@alice")
    assert events[-1][0] == "sent"
    shown = ok_json(["review", "show", review_id[:6]], env)
    assert shown["decision"]["decision"] == "confirmed"
    assert shown["decision"]["hit_entry"]


def test_dismiss_keeps_the_incident_out_of_every_later_crawl(
    env: dict[str, str], tmp_path: Path, near: NearMiss, site: RunningServer
) -> None:
    review_id = queued_near_miss(env, tmp_path, near, site)
    dismissed = run_cli(
        ["review", "dismiss", review_id[:10], "--reason", "another scene", "--analyst", "bob"],
        env,
    )
    assert dismissed.returncode == 0, dismissed.stderr
    assert "dismissed by analyst@bob" in dismissed.stdout
    (item,) = ok_json(["review", "list"], env)
    assert (item["decision"]["decision"], item["decision"]["actor"]) == ("dismissed", "analyst@bob")
    assert ok_json(["review", "list", "--pending"], env) == []
    table = run_cli(["review", "list"], env)
    assert "dismissed" in table.stdout and review_id[:12] in table.stdout
    # Looser thresholds would now confirm the copy: the re-crawl reports nothing for it.
    import_list(env, tmp_path, near, strict=False)
    summary = crawl(env, site.url("/"))
    assert (summary["confirmed_new"], summary["review_new"]) == (0, 0)
    assert ok_json(["hits", "list"], env) == []
    assert len(ok_json(["review", "list"], env)) == 1
    # The same bytes at another URL are another incident: still reported.
    elsewhere = crawl(env, site.url("/elsewhere/"))
    assert elsewhere["confirmed_new"] == 1


def test_dismiss_with_an_allow_list_silences_the_image_everywhere(
    env: dict[str, str], tmp_path: Path, near: NearMiss, site: RunningServer
) -> None:
    review_id = queued_near_miss(env, tmp_path, near, site)
    result = ok_json(
        ["review", "dismiss", review_id, "--reason", "benign", "--allow-list", "fp"], env
    )
    expected = ["sha256"]
    if near.c.pdq and (near.c.pdq_quality or 0) >= PDQ_MIN_QUALITY:
        expected.append("pdq")
    if near.c.phash:
        expected.append("phash")
    assert result["allow_list"] == {"name": "fp", "version": 1, "created": True, "added": expected}
    (info,) = [i for i in ok_json(["hashes", "lists"], env) if i["name"] == "fp"]
    assert info["kind"] == "allow"
    # The same bytes at another URL, on another page: not matched at all.
    summary = crawl(env, site.url("/elsewhere/"))
    assert (summary["confirmed_new"], summary["review_new"]) == (0, 0)
    assert len(ok_json(["review", "list"], env)) == 1
    assert ok_json(["hits", "list"], env) == []


def _sharing_a_prefix() -> tuple[Any, Any]:
    """Two made-up review items whose ids share their first six hex digits."""
    seen: dict[str, Any] = {}
    for number in itertools.count(1):
        item = make_hit(number, verdict="review", algorithm="pdq", distance=40)
        if item.incident[:6] in seen:
            return seen[item.incident[:6]], item
        seen[item.incident[:6]] = item
    raise AssertionError("unreachable")


def test_ids_errors_and_the_audit_trail(
    env: dict[str, str], redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    queue = HitQueue(redis_client, keys)
    first, second = _sharing_a_prefix()
    queue.enqueue(first)
    queue.enqueue(second)
    ambiguous = one_line_error(run_cli(["review", "show", first.incident[:6]], env), 2)
    assert "ambiguous" in ambiguous
    assert "no review item" in one_line_error(
        run_cli(["review", "confirm", "0" * 12, "--reason", "x"], env), 2
    )
    assert "not a review item id" in one_line_error(run_cli(["review", "show", "zz1234"], env), 2)
    assert "reason" in one_line_error(
        run_cli(["review", "confirm", first.incident, "--reason", " "], env), 2
    )
    # The analyst defaults to the user running the command.
    as_casey = {**env, "LOGNAME": "casey", "USER": "casey"}
    dismissed = run_cli(["review", "dismiss", first.incident, "--reason", "not it"], as_casey)
    assert dismissed.returncode == 0, dismissed.stderr
    final = one_line_error(
        run_cli(["review", "confirm", first.incident, "--reason", "it is"], as_casey), 2
    )
    assert "already dismissed by analyst@casey" in final
    refused = run_cli(
        ["review", "dismiss", second.incident, "--reason", "x", "--allow-list", "bad name"], env
    )
    assert one_line_error(refused, 2)
    assert queue.count("confirmed") == 0
    shown = ok_json(["review", "show", first.incident], env)
    assert shown["decision"]["actor"] == "analyst@casey"
    assert [(e["event"], e["actor"], e["notice"]) for e in shown["timeline"]] == [
        ("review_dismissed", "analyst@casey", first.incident)
    ]
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", redis_client.xrange(keys.audit))
    audit = [{k.decode(): v.decode() for k, v in data.items()} for _, data in rows]
    assert [(e["notice"], e["event"], e["actor"]) for e in audit] == [
        (first.incident, "review_dismissed", "analyst@casey")
    ]
    assert "not it" in audit[0]["detail"]
