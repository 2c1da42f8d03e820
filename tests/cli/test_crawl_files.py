"""Files that are not images (videos, archives, PDFs, any binary body) in a real crawl through
the CLI: found wherever a page links or embeds them, matched by their exact hashes, size-capped
while they arrive, noticed as files, and never stored."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

import py7zr
import redis

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, Handler, Response, html_page, image_response, serve
from tests.helpers import HOST_A, HOST_B, ok_json, run_cli, run_cli_measured
from tests.nocontent import WindowFinder

#: MiB of zeros in the archive bomb of the archive crawl.
BOMB_MIB = 200


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _mp4(seed: int, size: int = 300_000) -> bytes:
    """Bytes that open like an MP4 file (an ``ftyp`` box), then noise: a benign stand-in."""
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + _noise(seed, size)


def _webm(seed: int) -> bytes:
    return b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm" + (
        _noise(seed, 90_000)
    )


def _zip_of_images() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for n in range(3):
            archive.writestr(f"pics/{n}.png", encode(textured_image(4700 + n), "PNG"))
    return out.getvalue()


def _file(body: bytes, content_type: str = "application/octet-stream") -> Response:
    return Response(200, {"Content-Type": content_type}, body)


def _known_list(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "known.csv"
    path.write_text("algorithm,hash,id\n" + "".join(f"{a},{h},{i}\n" for a, h, i in rows))
    return path


def _leaks(finder: WindowFinder, env: dict[str, str], tmp_path: Path, *outputs: str) -> list[str]:
    """Where any 64-byte window of a served file occurs: this test's Redis keys, the files
    under its temp directory (the data directory, the list), the CLI's output."""
    found = []
    client = redis.Redis.from_url(env["HOTLINE_REDIS_URL"])
    try:
        keys = list(client.scan_iter(match=env["HOTLINE_KEY_PREFIX"] + "*", count=1000))
        assert keys, "the crawl stored nothing at all"
        for key in keys:
            dumped = client.dump(key)
            assert isinstance(dumped, bytes)
            if leak := finder.find(key + dumped, f"redis key {key!r}"):
                found.append(str(leak))
    finally:
        client.close()
    for path in tmp_path.rglob("*"):
        if (
            path.is_file()
            and not path.is_symlink()
            and (leak := finder.find(path.read_bytes(), str(path)))
        ):
            found.append(str(leak))
    for output in outputs:
        if leak := finder.find(output.encode("utf-8", "surrogateescape"), "output"):
            found.append(str(leak))
    return found


def test_known_files_are_matched_by_their_exact_hashes_wherever_they_are_found(
    env: dict[str, str], tmp_path: Path
) -> None:
    video = _mp4(1)
    webm = _webm(2)
    unknown_video = _mp4(3, 120_000)
    pack = _zip_of_images()
    pdf = b"%PDF-1.4\n" + _noise(4, 50_000)
    blob = _noise(5, 200_000)  # no signature at all, under a name without extension
    embedded = _noise(6, 40_000)
    probed = _noise(7, 70_000)
    # An image served gzip-encoded: a browser shows it, so it is hashed decompressed.
    packed_image = encode(textured_image(4711), "PNG")
    known = _known_list(
        tmp_path,
        [
            ("sha256", hashlib.sha256(video).hexdigest(), "v1"),
            ("md5", hashlib.md5(webm).hexdigest(), "v2"),
            ("md5", hashlib.md5(pack).hexdigest(), "z1"),
            ("sha1", hashlib.sha1(pdf).hexdigest(), "d1"),
            ("sha256", hashlib.sha256(blob).hexdigest(), "b1"),
            ("sha256", hashlib.sha256(embedded).hexdigest(), "e1"),
            ("sha256", hashlib.sha256(probed).hexdigest(), "p1"),
            ("sha256", hashlib.sha256(packed_image).hexdigest(), "g1"),
        ],
    )
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0
    with serve(host=HOST_A) as site, serve(host=HOST_B) as other:
        other.mount(
            {
                "/packs/set.zip": _file(pack, "application/zip"),
                "/get": _file(probed),
            }
        )
        page = (
            "<video src='/v/clip.mp4' poster='/v/poster.jpg'></video>"
            "<video controls><source src='/v/clip.webm' type='video/webm'></video>"
            "<video src='/v/other.mp4'></video>"
            "<embed src='/e/player'>"
            "<object data='/o/report.pdf'></object>"
            "<a href='/dl/7f3a9c'>download</a>"
            f"<a href='{other.url('/packs/set.zip')}'>pack</a>"
            f"<a href='{other.url('/get')}?id=9'>mirror</a>"
            "<a href='/about'>about</a>"
            "<img src='/img/packed.png'>"
        )
        site.mount(
            {
                "/": html_page(page),
                "/about": html_page("<p>nothing here</p>"),
                "/v/poster.jpg": image_response(encode(textured_image(4710), "JPEG"), "image/jpeg"),
                "/v/clip.mp4": _file(video, "video/mp4"),
                "/v/clip.webm": _file(webm, "video/webm"),
                "/v/other.mp4": _file(unknown_video, "video/mp4"),
                "/e/player": _file(embedded),
                "/o/report.pdf": _file(pdf, "application/pdf"),
                "/dl/7f3a9c": _file(blob),
                "/img/packed.png": Response(
                    200,
                    {"Content-Type": "image/png", "Content-Encoding": "gzip"},
                    gzip.compress(packed_image),
                ),
            }
        )
        crawl = run_cli(
            ["crawl", site.url("/"), "--allow-private-networks", "--json"],
            env,
        )
        assert crawl.returncode == 0, crawl.stderr
        assert "Traceback" not in crawl.stderr
        summary = json.loads(crawl.stdout)
        hits = ok_json(["hits", "list"], env)
        expected = {
            (site.url("/v/clip.mp4"), "video", "mp4", "v1"),
            (site.url("/v/clip.webm"), "video", "webm", "v2"),
            (other.url("/packs/set.zip"), "archive", "zip", "z1"),
            (site.url("/o/report.pdf"), "file", "pdf", "d1"),
            (site.url("/dl/7f3a9c"), "file", "", "b1"),
            (site.url("/e/player"), "file", "", "e1"),
            (other.url("/get") + "?id=9", "file", "", "p1"),
            (site.url("/img/packed.png"), "image", "png", "g1"),
        }
    assert {(h["url"], h["media_type"], h["file_type"], h["entry"]) for h in hits} == expected
    assert {h["page"] for h in hits} == {site.url("/")}
    assert all(h["verdict"] == "confirmed" and h["distance"] == 0 for h in hits)
    # Eight files (the unknown video too), two images (the poster, the gzip-encoded), two pages.
    assert (summary["files"], summary["images"], summary["pages"]) == (8, 2, 2)
    assert summary["confirmed_new"] == 8
    run = ok_json(["runs", "show", summary["crawl"]], env)
    assert run["stats"]["files"] == 8
    served = [video, webm, unknown_video, pack, pdf, blob, embedded, probed, packed_image]
    assert _leaks(WindowFinder(served), env, tmp_path, crawl.stdout, crawl.stderr) == []


def test_files_may_be_larger_than_pages_and_images_up_to_their_own_cap(
    env: dict[str, str], tmp_path: Path
) -> None:
    small_cap, file_cap = 100_000, 200_000
    video = _mp4(11, 150_000)  # over the page and image cap, under the file cap
    too_long = _mp4(12, 300_000)  # over the file cap, found while it arrives
    declared = _mp4(13, 300_000)  # over the file cap, declared by its Content-Length
    image = encode(textured_image(4720, 260, 260), "PNG")  # over the image cap
    assert small_cap < len(image) < file_cap
    known = _known_list(
        tmp_path,
        [
            ("sha256", hashlib.sha256(video).hexdigest(), "v1"),
            ("sha256", hashlib.sha256(too_long).hexdigest(), "v2"),
            ("sha256", hashlib.sha256(declared).hexdigest(), "v3"),
            ("sha256", hashlib.sha256(image).hexdigest(), "i1"),
        ],
    )
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0

    def streamed(body: bytes) -> Handler:
        """No Content-Length: the body ends when the connection closes."""

        def send(exchange: Exchange) -> None:
            exchange.start(200, {"Content-Type": "application/octet-stream"})
            for start in range(0, len(body), 16_384):
                if not exchange.write(body[start : start + 16_384]):
                    return

        return send

    with serve(host=HOST_A) as site:
        site.mount(
            {
                "/": html_page(
                    "<video src='/v/a.mp4'></video><video src='/v/b.mp4'></video>"
                    "<video src='/v/c.mp4'></video><img src='/big.png'>"
                ),
                "/v/a.mp4": streamed(video),
                "/v/b.mp4": streamed(too_long),
                "/v/c.mp4": _file(declared, "video/mp4"),
                "/big.png": image_response(image, "image/png"),
            }
        )
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-private-networks",
                "--json",
                "--set",
                f"DOWNLOAD_MAXSIZE={small_cap}",
                "--set",
                f"CRAWL_MEDIA_MAXSIZE={file_cap}",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    assert "Traceback" not in crawl.stderr
    summary = json.loads(crawl.stdout)
    hits = ok_json(["hits", "list"], env)
    assert [(h["url"], h["entry"]) for h in hits] == [(site.url("/v/a.mp4"), "v1")]
    run = ok_json(["runs", "show", summary["crawl"]], env)
    assert run["stats"]["errors"] == {"too_large": 3}
    assert (run["stats"]["files"], run["stats"]["images"]) == (1, 0)
    stats = run["crawl_stats"]
    assert [stats.get(f"crawl/too_large/{what}") for what in ("file", "declared", "image")] == [
        1,
        1,
        1,
    ]


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_members_of_archives_are_matched_and_reported_at_the_archive(
    env: dict[str, str], tmp_path: Path
) -> None:
    known_image = encode(textured_image(4730), "PNG")
    known_file = _noise(21, 30_000)
    other_image = encode(textured_image(4731), "JPEG")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("deep/known.bin", known_file)
        # A ratio bomb: 200 MiB of zeros in 200 KB, under the member cap (256 MiB).
        with archive.open("zeros.bin", "w") as member:
            for _ in range(BOMB_MIB):
                member.write(bytes(1024 * 1024))
    outer = _tar_gz(
        {"album/a.png": known_image, "album/b.jpg": other_image, "in.zip": inner.getvalue()}
    )
    known_in_7z = _noise(22, 20_000)
    seven = io.BytesIO()
    with py7zr.SevenZipFile(seven, "w") as archive:
        archive.writestr(b"nothing known", "readme.txt")
        archive.writestr(known_in_7z, "data/set.bin")
    known = _known_list(
        tmp_path,
        [
            ("sha256", hashlib.sha256(known_image).hexdigest(), "m1"),
            ("md5", hashlib.md5(known_file).hexdigest(), "m2"),
            ("sha1", hashlib.sha1(known_in_7z).hexdigest(), "m3"),
        ],
    )
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0
    with serve(host=HOST_A) as site:
        site.mount(
            {
                "/": html_page(
                    "<a href='/get/album.tar.gz'>album</a><a href='/get/set.7z'>set</a>"
                ),
                "/get/album.tar.gz": _file(outer, "application/gzip"),
                "/get/set.7z": _file(seven.getvalue(), "application/x-7z-compressed"),
            }
        )
        set_url = site.url("/get/set.7z")
        crawl, peak = run_cli_measured(
            ["crawl", site.url("/"), "--allow-private-networks", "--json"], env
        )
        assert crawl.returncode == 0, crawl.stderr
        assert "Traceback" not in crawl.stderr
        url = site.url("/get/album.tar.gz")
    # No process of the crawl (the crawler, its hash workers) held the bomb's expansion.
    assert peak < BOMB_MIB * 1024 * 1024, f"a crawl process peaked at {peak} bytes"
    summary = json.loads(crawl.stdout)
    hits = ok_json(["hits", "list"], env)
    container = hashlib.sha256(outer).hexdigest()
    assert {
        (h["url"], h["media_type"], h["member"], h["file_type"], h["entry"], h["container_sha256"])
        for h in hits
    } == {
        (url, "archive_member", "album/a.png", "png", "m1", container),
        (url, "archive_member", "in.zip!/deep/known.bin", "", "m2", container),
        (
            set_url,
            "archive_member",
            "data/set.bin",
            "",
            "m3",
            hashlib.sha256(seven.getvalue()).hexdigest(),
        ),
    }
    run = ok_json(["runs", "show", summary["crawl"]], env)
    stats = run["crawl_stats"]
    assert stats["crawl/archives"] == 2
    # a.png, b.jpg, in.zip, known.bin (not zeros); readme.txt, set.bin
    assert stats["crawl/archive/members"] == 6
    assert stats["crawl/archive/refused/ratio"] == 1
    served = [outer, inner.getvalue(), known_image, known_file, other_image, known_in_7z]
    served.append(seven.getvalue())
    assert _leaks(WindowFinder(served), env, tmp_path, crawl.stdout, crawl.stderr) == []
