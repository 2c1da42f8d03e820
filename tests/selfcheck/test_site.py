"""The test site is what it claims to be: routes serve what the manifest says, the fixture
images are far apart in hash space, and the hostile endpoints misbehave as designed."""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import itertools
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from urllib.parse import urlsplit

import pytest
from PIL import Image

from hotline import imagegen
from hotline.demosite import build_demo_site
from hotline.loopback import Exchange, Response, serve
from matchers.algorithms import PHASH_CONFIRM_THRESHOLD
from tests.helpers import HOST_A, HOST_B
from tests.site.builder import (
    EMBEDDINGS,
    HOSTILE,
    TRANSFORMS,
    RunningTestSite,
    build_test_site,
)
from tests.site.reference import (
    hamming_hex,
    reference_hashes,
)

pytest_plugins = ["tests.site.fixtures"]

PDQ_MATCH = 31  # the default PDQ match distance in DESIGN.md
MIN_PHASH_APART = 10
MIN_PDQ_APART = 64
TIMEOUT = 10.0


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers.items()), exc.read()


def connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    return conn, parts.path or "/"


def raw_get(url: str, limit: int | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """GET without following redirects or decoding; read at most ``limit`` bytes."""
    conn, path = connect(url)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read(limit) if limit is not None else resp.read()
    conn.close()
    return resp, body


# --- the servers -------------------------------------------------------------------------------


def test_servers_bind_the_two_loopback_hosts(test_site: RunningTestSite) -> None:
    assert urlsplit(test_site.base_a).hostname == HOST_A
    assert urlsplit(test_site.base_b).hostname == HOST_B
    for url in (test_site.base_a, test_site.base_b):
        assert urlsplit(url).port not in (None, 0, 80)
    for url in [p.url for p in test_site.site.planted if p.url != "data:"]:
        assert urlsplit(url).hostname in (HOST_A, HOST_B), url
    assert test_site.site.seed_url == test_site.base_a + "/"


def test_serve_refuses_non_loopback_addresses() -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::"):
        with pytest.raises(ValueError, match="non-loopback"):
            serve(host=host)


def test_stop_is_prompt_with_a_stalled_handler() -> None:
    entered = threading.Event()

    def stall(exchange: Exchange) -> None:
        exchange.start(200, {"Content-Type": "text/plain", "Content-Length": "100"})
        exchange.write(b"x")
        entered.set()
        exchange.wait(60)

    server = serve({"/stall": stall})
    conn, path = connect(server.url("/stall"))
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.read(1) == b"x"
    assert entered.wait(TIMEOUT)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(http.client.IncompleteRead):
        resp.read()  # the handler returned at once and the connection closed
    conn.close()


def test_stop_is_prompt_with_a_streaming_handler() -> None:
    def stream(exchange: Exchange) -> None:
        exchange.start(200, {"Content-Type": "text/plain"})
        while exchange.write(b"x" * 1024):
            pass

    server = serve({"/stream": stream}, host=HOST_B)
    conn, path = connect(server.url("/stream"))
    conn.request("GET", path)
    resp = conn.getresponse()
    assert len(resp.read(100_000)) == 100_000
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    drained = 0
    while chunk := resp.read(65536):  # what was in flight, then EOF
        drained += len(chunk)
        assert drained < 50_000_000
    conn.close()


def test_routes_can_be_mounted_after_start_and_prefixes_match() -> None:
    with serve(host=HOST_B) as server:
        assert fetch(server.url("/a"))[0] == 404
        server.mount({"/a": text(b"exact"), "/p/*": text(b"prefix")})
        assert fetch(server.url("/a"))[2] == b"exact"
        assert fetch(server.url("/p/x/y?q=1"))[2] == b"prefix"
        conn, _ = connect(server.url("/a"))
        conn.request("HEAD", "/a")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == "5"
        assert resp.read() == b""
        conn.close()


def text(body: bytes) -> Response:
    return Response(200, {"Content-Type": "text/plain"}, body)


# --- the images --------------------------------------------------------------------------------


def test_textured_images_are_deterministic_and_distinct() -> None:
    a = imagegen.textured_image(1, 64, 48)
    assert a.tobytes() == imagegen.textured_image(1, 64, 48).tobytes()
    assert a.tobytes() != imagegen.textured_image(2, 64, 48).tobytes()
    assert a.mode == "RGB"
    assert a.size == (64, 48)


def test_known_and_distractor_hashes_are_pairwise_far_apart(test_site: RunningTestSite) -> None:
    site = test_site.site
    hashes = [k.hashes for k in site.known.values()]
    for url in site.distractor_urls:
        hashes.append(reference_hashes(fetch(url)[2]))
    unique = {h.sha256: h for h in hashes}.values()  # a distractor may be served twice
    assert len(unique) >= 18
    for h in unique:
        assert h.pdq_quality >= 50
        assert h.phash != "8000000000000000"
    for x, y in itertools.combinations(unique, 2):
        assert hamming_hex(x.phash, y.phash) >= MIN_PHASH_APART
        assert hamming_hex(x.pdq, y.pdq) >= MIN_PDQ_APART


def test_known_csv_has_four_algorithms_per_entry(test_site: RunningTestSite) -> None:
    site = test_site.site
    rows = list(csv.DictReader(io.StringIO(site.known_csv)))
    assert list(rows[0]) == ["algorithm", "hash", "id", "category"]
    lengths = {"sha256": 64, "md5": 32, "pdq": 64, "phash": 16}
    by_id: dict[str, set[str]] = {}
    for row in rows:
        assert re.fullmatch(f"[0-9a-f]{{{lengths[row['algorithm']]}}}", row["hash"]), row
        assert row["category"] == "test"
        by_id.setdefault(row["id"], set()).add(row["algorithm"])
    assert set(by_id) == set(site.known) == {f"k{i:02d}" for i in range(1, 11)}
    assert all(algos == set(lengths) for algos in by_id.values())


def test_every_embedding_and_transform_is_planted(test_site: RunningTestSite) -> None:
    planted = test_site.site.planted
    exact = [p.embedding for p in planted if p.transform == "exact"]
    assert sorted(exact) == sorted(EMBEDDINGS)
    assert sorted(p.transform for p in planted if p.transform != "exact") == sorted(TRANSFORMS)
    assert len({p.url for p in planted if p.url != "data:"}) == len(planted) - 1
    assert sorted(test_site.site.hostile) == sorted(HOSTILE)


def test_planted_urls_serve_the_known_images(test_site: RunningTestSite) -> None:
    site = test_site.site
    served = {hashlib.sha256(b).hexdigest() for b in site.served_images}
    for p in site.planted:
        if p.url == "data:":
            continue
        status, _, body = fetch(p.url)  # follows the redirect
        assert status == 200, p
        digest = hashlib.sha256(body).hexdigest()
        assert digest == p.sha256, p
        assert digest in served
        assert digest not in site.distractor_sha256s
        if p.transform == "exact":
            assert digest == site.known[p.entry_id].hashes.sha256
        else:
            got = reference_hashes(body)
            reference = site.known[p.entry_id].hashes
            assert hamming_hex(got.pdq, reference.pdq) == p.pdq_distance
            assert hamming_hex(got.phash, reference.phash) == p.phash_distance
            assert p.phash_distance <= PHASH_CONFIRM_THRESHOLD, p
            if p.transform != "crop_4pct":  # PDQ is weak on crops; pHash still matches
                assert p.pdq_distance <= PDQ_MATCH, p


def test_distractors_match_nothing_known(test_site: RunningTestSite) -> None:
    site = test_site.site
    known = list(site.known.values())
    for url in site.distractor_urls:
        status, _, body = fetch(url)
        assert status == 200
        got = reference_hashes(body)
        assert got.sha256 in site.distractor_sha256s
        for k in known:
            assert hamming_hex(got.phash, k.hashes.phash) > MIN_PHASH_APART
            assert hamming_hex(got.pdq, k.hashes.pdq) > PDQ_MATCH * 2


def test_pages_reference_their_planted_images(test_site: RunningTestSite) -> None:
    site = test_site.site
    for p in site.planted:
        status, _, text = fetch(p.page)
        assert status == 200, p
        page = text.decode()
        if p.embedding == "data_uri":
            assert "src='data:image/png;base64," in page
            continue
        path = urlsplit(p.url).path
        assert path.rsplit("/", 1)[-1] in page, p  # relative or absolute
    css = fetch(site.planted_by_embedding("linked_stylesheet").page)[2].decode()
    assert 'url("../images/k-sheet.jpg")' in css
    frameset = fetch(test_site.base_a + "/frames.html")[2].decode()
    assert "<frame src='/frames/left.html'>" in frameset
    index = fetch(site.seed_url)[2].decode()
    for page_url in site.pages[1:]:
        assert f"href='{urlsplit(page_url).path}'" in index


def test_data_uri_decodes_to_the_known_png(test_site: RunningTestSite) -> None:
    site = test_site.site
    planted = site.planted_by_embedding("data_uri")
    page = fetch(planted.page)[2].decode()
    encoded = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    digests = {hashlib.sha256(base64.b64decode(e)).hexdigest() for e in encoded}
    assert site.known[planted.entry_id].hashes.sha256 in digests


def test_deep_page_is_two_links_from_the_seed(test_site: RunningTestSite) -> None:
    site = test_site.site
    deep = site.planted_by_embedding("deep_page")
    index = fetch(site.seed_url)[2].decode()
    assert "deep/level2.html" not in index
    level1 = fetch(test_site.base_a + "/deep/level1.html")[2].decode()
    assert "href='level2.html'" in level1
    assert deep.page == test_site.base_a + "/deep/level2.html"


def test_wrong_extension_is_a_png_served_as_text(test_site: RunningTestSite) -> None:
    p = test_site.site.planted_by_embedding("wrong_extension")
    status, headers, body = fetch(p.url)
    assert status == 200
    assert headers["Content-Type"] == "text/plain"
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    assert p.url.endswith(".txt")


def test_redirect_plant_answers_302_to_host_b(test_site: RunningTestSite) -> None:
    p = test_site.site.planted_by_embedding("redirect")
    resp, _ = raw_get(p.url)
    assert resp.status == 302
    assert resp.getheader("Location") == p.final_url
    assert urlsplit(p.final_url).hostname == HOST_B


# --- hostile endpoints -------------------------------------------------------------------------


def test_redirect_loop(test_site: RunningTestSite) -> None:
    url_a = test_site.site.hostile["redirect_loop"]
    resp, _ = raw_get(url_a)
    assert resp.status == 302
    url_b = resp.getheader("Location")
    assert url_b is not None
    assert url_b.endswith("/loop/b")
    resp, _ = raw_get(url_b)
    assert resp.status == 302
    assert resp.getheader("Location") == url_a


def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(test_site: RunningTestSite) -> None:
    resp, body = raw_get(test_site.site.hostile["gzip_bomb"])
    assert resp.getheader("Content-Encoding") == "gzip"
    assert len(body) < 1_000_000
    inflater = zlib.decompressobj(wbits=31)
    assert inflater.decompress(body, 1 << 20) == bytes(1 << 20)  # read a bounded prefix only
    (declared,) = struct.unpack("<I", body[-4:])
    assert declared >= 200 * 1_000_000


def test_endless_streams_past_any_reasonable_limit(test_site: RunningTestSite) -> None:
    limit = 4 * 1024 * 1024
    resp, body = raw_get(test_site.site.hostile["endless"], limit=limit)
    assert resp.status == 200
    assert resp.getheader("Content-Length") is None
    assert len(body) == limit


def test_slow_sends_a_little_then_stalls(test_site: RunningTestSite) -> None:
    parts = urlsplit(test_site.site.hostile["slow"])
    assert parts.hostname is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {parts.path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"slow" not in received:
            chunk = sock.recv(4096)
            assert chunk
            received += chunk
        assert b"Content-Length: 4096" in received
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)  # nothing more is coming for a long while


def test_calendar_links_to_the_next_month_forever(test_site: RunningTestSite) -> None:
    url = test_site.site.hostile["calendar"]
    for expected in ("2026/12", "2027/1", "2027/2"):
        page = fetch(url)[2].decode()
        match = re.search(r"href='([^']+)'>next month", page)
        assert match is not None
        url = match.group(1)
        assert url.endswith("/calendar/" + expected)
    assert fetch(test_site.base_a + "/calendar/2026/13")[0] == 404


def test_broken_images(test_site: RunningTestSite) -> None:
    hostile = test_site.site.hostile
    status, headers, huge = fetch(hostile["huge_png"])
    assert headers["Content-Type"] == "image/png"
    assert len(huge) < 1_000_000
    assert huge[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", huge[16:24]) == (40_000, 40_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(huge))

    status, headers, truncated = fetch(hostile["truncated_jpeg"])
    assert status == 200
    assert truncated.startswith(b"\xff\xd8")
    assert not truncated.endswith(b"\xff\xd9")

    status, headers, fake = fetch(hostile["html_as_jpeg"])
    assert headers["Content-Type"] == "image/jpeg"
    assert fake.startswith(b"<!doctype html>")

    assert fetch(hostile["missing_image"])[0] == 404
    assert fetch(hostile["server_error"])[0] == 500

    index = fetch(test_site.site.seed_url)[2].decode()
    for name in ("huge_png", "truncated_jpeg", "html_as_jpeg", "missing_image"):
        assert f"<img src='{hostile[name]}'" in index
    for name in ("gzip_bomb", "calendar", "redirect_loop", "endless", "slow", "server_error"):
        assert f"href='{hostile[name]}'" in index


# --- building ---------------------------------------------------------------------------------


def test_site_builds_quickly() -> None:
    started = time.monotonic()
    site = build_test_site(f"http://{HOST_A}:1", f"http://{HOST_B}:2")
    assert time.monotonic() - started < 5
    assert len(site.known) == 10
    assert len(site.distractor_sha256s) == 10


def test_demo_site() -> None:
    demo = build_demo_site()
    rows = list(csv.DictReader(io.StringIO(demo.known_csv)))
    ids = {row["id"] for row in rows}
    assert ids == {"demo-001", "demo-002", "demo-003", "demo-004"}
    assert {row["category"] for row in rows} == {"demo"}
    assert set(demo.known_urls.values()) == ids
    with serve(demo.pages) as server:
        hashes = {(row["algorithm"], row["hash"]) for row in rows}
        for path, entry in demo.known_urls.items():
            status, _, body = fetch(server.url(path))
            assert status == 200
            got = reference_hashes(body)
            if ("sha256", got.sha256) in hashes:
                continue
            pdq = {r["hash"] for r in rows if r["id"] == entry and r["algorithm"] == "pdq"}
            assert min(hamming_hex(got.pdq, h) for h in pdq) <= PDQ_MATCH
