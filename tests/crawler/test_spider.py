"""The spider's callbacks, offline: hand-built responses, no reactor, no network."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
import zipfile
from types import SimpleNamespace
from typing import Any, cast

from scrapy import Request
from scrapy.exceptions import DownloadCancelledError, StopDownload
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure
from twisted.web.iweb import UNKNOWN_LENGTH

from crawler.spiders.hotline import HOT_SECTION_PRIORITY, HotlineSpider, Info, section

SEED = "http://www.example.org/"


def _spider(**settings: Any) -> HotlineSpider:
    """The spider with ``settings``; the trap guard off unless they turn it on (the tests
    here schedule pages of one template by the dozen)."""
    settings.setdefault("CRAWL_TRAP_GUARD", False)
    crawler = get_crawler(HotlineSpider, settings_dict=settings)
    crawler.spider = spider = HotlineSpider.from_crawler(crawler, urls=SEED)
    return spider


def _info(kind: str = "page", depth: int = 0, page: str = SEED) -> Info:
    return Info(
        kind=kind, seed=SEED, depth=depth, page=page, frame=0, embedding="seed", parent=SEED
    )


def _run(spider: HotlineSpider, response: Any) -> list[Any]:
    async def collect() -> list[Any]:
        return [out async for out in spider.parse(response)]

    return asyncio.run(collect())


def _page(url: str, body: str, info: Info) -> HtmlResponse:
    request = Request(url, meta={"hotline": info})
    return HtmlResponse(url=url, body=body.encode(), encoding="utf-8", request=request)


def _kinds(outputs: list[Any]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for out in outputs:
        assert isinstance(out, Request)
        kinds.setdefault(out.meta["hotline"]["kind"], []).append(out.url)
    return kinds


def test_links_images_probes_and_frames_are_scheduled_by_kind() -> None:
    spider = _spider()
    body = (
        "<a href='/a'>a</a><a href='http://img.example.org/b'>b</a>"
        "<a href='http://example.net/view/1'>off-site</a>"
        "<a href='http://example.net/big.JPG'>off-site image</a>"
        "<img src='/x.png'><iframe src='http://ads.example.com/frame'></iframe>"
        "<link rel='stylesheet' href='/s.css'>"
    )
    kinds = _kinds(_run(spider, _page(SEED, body, _info())))
    assert kinds["page"] == [
        "http://ads.example.com/frame",
        "http://www.example.org/a",
        "http://img.example.org/b",
    ]
    assert kinds["probe"] == ["http://example.net/view/1"]
    assert kinds["image"] == ["http://www.example.org/x.png", "http://example.net/big.JPG"]
    assert kinds["css"] == ["http://www.example.org/s.css"]


def test_no_links_are_followed_past_the_depth() -> None:
    spider = _spider(CRAWL_DEPTH=1)
    body = "<a href='/deeper'>d</a><img src='/still-fetched.png'>"
    kinds = _kinds(_run(spider, _page(SEED + "p", body, _info(depth=1))))
    assert "page" not in kinds
    assert kinds["image"] == ["http://www.example.org/still-fetched.png"]


def test_page_cap_counts_distinct_pages_only() -> None:
    spider = _spider(CRAWL_MAX_PAGES_PER_SEED=5)
    nav = "".join(f"<a href='/nav{i}'>n</a>" for i in range(3))
    outputs = []
    for n in range(4):
        body = nav + f"<a href='/article{n}'>a</a>"
        outputs += _run(spider, _page(f"{SEED}p{n}", body, _info()))
    pages = _kinds(outputs)["page"]
    # 3 navigation links once each, then article0 and article1: five pages in all.
    assert pages == [
        f"{SEED}nav0",
        f"{SEED}nav1",
        f"{SEED}nav2",
        f"{SEED}article0",
        f"{SEED}article1",
    ]
    assert spider.crawler.stats is not None
    assert spider.crawler.stats.get_value("crawl/page_cap_reached") == 2


def test_a_non_image_answer_to_an_image_request_is_counted_and_dropped() -> None:
    spider = _spider()
    request = Request(SEED + "fake.jpg", meta={"hotline": _info(kind="image")})
    response = TextResponse(SEED + "fake.jpg", body=b"<html>not an image</html>", request=request)
    assert _run(spider, response) == []
    assert spider.crawler.stats is not None
    assert spider.crawler.stats.get_value("crawl/not_image") == 1


def test_stylesheets_yield_their_images_relative_to_the_css() -> None:
    spider = _spider()
    request = Request(SEED + "css/site.css", meta={"hotline": _info(kind="css")})
    response = TextResponse(
        SEED + "css/site.css",
        body=b".a{background:url(../img/a.png)} @import 'more.css';",
        encoding="utf-8",
        request=request,
    )
    outputs = _run(spider, response)
    assert [(o.url, o.meta["hotline"]["kind"], o.meta["hotline"]["page"]) for o in outputs] == [
        ("http://www.example.org/img/a.png", "image", SEED),
        ("http://www.example.org/css/more.css", "css", SEED),
    ]


def test_only_the_first_chunk_of_an_image_download_is_judged() -> None:
    import pytest
    from scrapy.exceptions import StopDownload

    spider = _spider()
    html = Request(SEED + "fake.jpg", meta={"hotline": _info(kind="image")})
    with pytest.raises(StopDownload):
        spider._on_bytes_received(b"<!doctype html><html><body>not an image" * 20, html, spider)
    # A first chunk too short to judge lets the download through, and the next chunk (the
    # middle of the body, not its start) is never mistaken for a non-image.
    png = Request(SEED + "real.png", meta={"hotline": _info(kind="image")})
    spider._on_bytes_received(b"\x89PNG", png, spider)
    spider._on_bytes_received(b"\x00" * 64, png, spider)
    page = Request(SEED + "page", meta={"hotline": _info()})
    spider._on_bytes_received(b"<!doctype html>" * 4, page, spider)  # pages are never cut


def test_media_and_links_to_files_are_fetched_as_media_with_the_file_cap() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=5000)
    body = (
        "<video src='/v/clip.mp4'></video><embed src='/e/x'>"
        "<a href='/files/pack.ZIP'>zip</a><a href='http://example.net/movie.webm'>off-site</a>"
        "<a href='/files/'>a directory</a><img src='/i.png'>"
    )
    outputs = _run(spider, _page(SEED, body, _info()))
    assert _kinds(outputs)["media"] == [
        "http://www.example.org/v/clip.mp4",
        "http://www.example.org/e/x",
        "http://www.example.org/files/pack.ZIP",
        "http://example.net/movie.webm",
    ]
    assert _kinds(outputs)["page"] == ["http://www.example.org/files/"]
    caps = {o.url: o.meta.get("download_maxsize") for o in outputs}
    # Whatever may turn out to be a file carries the larger cap; the spider holds pages and
    # images to theirs while the body arrives.
    assert caps["http://www.example.org/v/clip.mp4"] == 5000
    assert caps["http://www.example.org/i.png"] == 5000
    assert caps["http://www.example.org/files/"] == 5000


def _binary(url: str, body: bytes, info: Info, content_type: bytes) -> Any:
    from scrapy.http import Response

    request = Request(url, meta={"hotline": info})
    return Response(url, body=body, headers={"Content-Type": content_type}, request=request)


def test_a_body_that_is_not_a_page_or_an_image_is_an_item_with_its_exact_hashes() -> None:
    spider = _spider()
    body = b"%PDF-1.7\n" + bytes(range(256)) * 4
    info = _info(kind="page")
    [item] = _run(spider, _binary(SEED + "dl/1", body, info, b"application/octet-stream"))
    assert (item.media_type, item.digest.format, item.digest.pdq) == ("file", "pdf", None)
    assert item.digest.sha256 == hashlib.sha256(body).hexdigest()
    assert item.digest.md5 == hashlib.md5(body).hexdigest()
    assert (item.url, item.page) == (SEED + "dl/1", SEED)  # reached as a page: its parent
    stats = spider.crawler.stats
    assert stats is not None
    assert (stats.get_value("crawl/files"), stats.get_value("crawl/files/file")) == (1, 1)
    assert stats.get_value("crawl/pages") is None


def test_an_archive_is_an_item_and_so_is_each_of_its_members() -> None:
    spider = _spider(MATCHER_POOL="inline")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes/a.txt", b"a benign note\n" * 20)
        archive.writestr("b.pdf", b"%PDF-1.4\n" + bytes(range(256)))
    body = out.getvalue()
    info = _info(kind="media")
    items = _run(spider, _binary(SEED + "pack.zip", body, info, b"application/zip"))
    container = hashlib.sha256(body).hexdigest()
    assert [(i.media_type, i.member, i.digest.format, i.container_sha256) for i in items] == [
        ("archive", "", "zip", ""),
        ("archive_member", "notes/a.txt", "", container),
        ("archive_member", "b.pdf", "pdf", container),
    ]
    assert {i.url for i in items} == {SEED + "pack.zip"}
    stats = spider.crawler.stats
    assert stats is not None
    assert (stats.get_value("crawl/archives"), stats.get_value("crawl/archive/members")) == (1, 2)


def test_a_page_answering_a_media_request_is_counted_and_dropped() -> None:
    spider = _spider()
    request = Request(SEED + "v.mp4", meta={"hotline": _info(kind="media")})
    response = HtmlResponse(SEED + "v.mp4", body=b"<html>gone</html>", request=request)
    assert _run(spider, response) == []
    assert spider.crawler.stats is not None
    assert spider.crawler.stats.get_value("crawl/not_media") == 1


def test_a_page_with_a_stray_control_byte_is_still_parsed_as_a_page() -> None:
    spider = _spider()
    body = "<html>\x00<img src='/x.png'></html>"
    assert _kinds(_run(spider, _page(SEED, body, _info())))["image"] == [SEED + "x.png"]


def _feed(
    spider: HotlineSpider,
    request: Request,
    chunks: list[bytes],
    headers: dict[bytes, bytes] | None = None,
    length: object = -1,
) -> str | None:
    """One response to ``request``: its headers, then its chunks; what stopped it, if
    anything (``fail:<what was too large>`` or ``stop`` for a body not worth fetching)."""
    try:
        spider._on_headers_received(headers or {}, length, request, spider)
        for chunk in chunks:
            spider._on_bytes_received(chunk, request, spider)
    except StopDownload as stop:
        return f"fail:{request.meta.get('hotline_too_large')}" if stop.fail else "stop"
    return None


PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
ZIP_HEAD = b"PK\x03\x04"
HTML = b"<html><body>" + b"a" * 1000


def _chunks(first: bytes, total: int, size: int = 500) -> list[bytes]:
    body = first + b"\x01" * (total - len(first))
    return [body[i : i + size] for i in range(0, total, size)]


def test_bodies_are_held_to_the_cap_of_what_their_first_bytes_show() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=5000)

    def feed(kind: str, first: bytes, total: int) -> str | None:
        request = Request(SEED + kind, meta={"hotline": _info(kind=kind)})
        return _feed(spider, request, _chunks(first, total))

    assert feed("media", ZIP_HEAD, 5000) is None
    assert feed("media", ZIP_HEAD, 5500) == "fail:file"
    assert feed("image", PNG_HEAD, 1000) is None
    assert feed("image", PNG_HEAD, 1500) == "fail:image"
    assert feed("page", HTML, 1500) == "fail:text"
    assert feed("page", ZIP_HEAD, 4500) is None  # a file reached as a page
    assert feed("probe", HTML, 1000) == "stop"  # a page: not fetched
    assert feed("image", HTML, 1000) == "stop"


def test_a_body_is_judged_by_its_first_512_bytes_however_they_arrive() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=50_000)
    request = Request(SEED + "v", meta={"hotline": _info(kind="media")})
    body = _chunks(b"\x00\x00\x00\x18ftypisom", 3000)
    tiny = [body[0][:10], body[0][10:], *body[1:]]  # a 10-byte first read
    assert _feed(spider, request, tiny) is None
    assert request.meta["hotline_body"] == "file"
    # A tar's magic sits at byte 257, after a file name that reads as text.
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("readme.txt")
        info.size = 3000
        archive.addfile(info, io.BytesIO(b"x" * 3000))
    probe = Request(SEED + "t", meta={"hotline": _info(kind="probe")})
    data = tar.getvalue()
    assert _feed(spider, probe, [data[i : i + 100] for i in range(0, len(data), 100)]) is None


def test_each_response_is_judged_afresh_after_a_redirect_or_a_retry() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=5000)
    request = Request(SEED + "v.mp4", meta={"hotline": _info(kind="media")})
    assert _feed(spider, request, _chunks(HTML, 600)) == "stop"  # the redirect's page
    follow = request.replace(url=SEED + "cdn/v.mp4")  # meta copied, as Scrapy does
    assert _feed(spider, follow, _chunks(ZIP_HEAD, 4000)) is None
    retry = follow.copy()
    assert _feed(spider, retry, _chunks(ZIP_HEAD, 4000)) is None  # not 8000 bytes
    assert retry.meta["hotline_received"] == 4000


def test_compressed_bodies_are_capped_by_what_was_asked_for() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=5000)
    gzip_headers = {b"Content-Encoding": b"gzip"}
    # Judged once Scrapy has decompressed them, which it holds to the cap asked for.
    cases = [("probe", 1000), ("image", 1000), ("page", 1000), ("media", 5000)]
    for kind, cap in cases:
        request = Request(SEED + kind, meta={"hotline": _info(kind=kind)})
        assert _feed(spider, request, [b"\x1f\x8b" + b"\x01" * 600], gzip_headers) is None
        assert request.meta["download_maxsize"] == cap


def test_a_declared_length_over_the_cap_counts_as_too_large() -> None:
    spider = _spider(DOWNLOAD_MAXSIZE=1000, CRAWL_MEDIA_MAXSIZE=5000)
    request = Request(SEED + "v.mp4", meta={"hotline": _info(kind="media")})
    assert _feed(spider, request, [], length=UNKNOWN_LENGTH) is None  # streamed: no length
    assert "hotline_too_large" not in request.meta
    assert _feed(spider, request, [], length=6000) is None
    failure = Failure(DownloadCancelledError("Expected to receive 6000 bytes"))
    failure.request = request  # type: ignore[attr-defined]
    spider.on_error(failure)
    other = Request(SEED + "x.mp4", meta={"hotline": _info(kind="media")})
    cancelled = Failure(DownloadCancelledError("cancelled"))
    cancelled.request = other  # type: ignore[attr-defined]
    spider.on_error(cancelled)
    stats = spider.crawler.stats
    assert stats is not None
    assert stats.get_value("crawl/too_large/declared") == 1
    assert stats.get_value("crawl/errors/DownloadCancelledError") == 1


def test_media_per_page_are_capped() -> None:
    spider = _spider(CRAWL_MAX_MEDIA_PER_PAGE=3)
    body = "".join(f"<video src='/v{i}.mp4'></video>" for i in range(3)) + "".join(
        f"<a href='/f{i}.zip'>f</a>" for i in range(3)
    )
    kinds = _kinds(_run(spider, _page(SEED, body, _info())))
    assert len(kinds["media"]) == 3
    assert spider.crawler.stats is not None
    assert spider.crawler.stats.get_value("crawl/media_cap_reached") == 3


def test_a_section_with_hits_is_crawled_first_and_a_hit_page_s_held_links_released() -> None:
    spider = _spider(CRAWL_DEPTH=1, CRAWL_HIT_DEPTH=2)
    crawled: list[Request] = []
    spider.crawler.engine = cast(Any, SimpleNamespace(crawl=crawled.append))
    body = "<a href='/gallery/2'>g</a><a href='/blog/1'>b</a>"
    page = SEED + "gallery/1"
    # At the depth limit: the links are kept, not scheduled.
    assert _kinds(_run(spider, _page(page, body, _info(depth=1, page=page)))) == {}
    spider._on_hit(page=page, seed=SEED)
    assert [(r.url, r.meta["hotline"]["depth"], r.meta["hotline"]["limit"]) for r in crawled] == [
        (SEED + "gallery/2", 2, 3),
        (SEED + "blog/1", 2, 3),
    ]
    # The gallery section had a hit: its pages go before the blog's.
    assert [r.priority for r in crawled] == [HOT_SECTION_PRIORITY, 0]
    assert section(SEED + "gallery/9?x=1") == "www.example.org/gallery"
    stats = spider.crawler.stats
    assert stats is not None and stats.get_value("crawl/hit_section/www.example.org/gallery") == 1


def test_references_past_the_per_page_caps_are_counted_not_followed() -> None:
    spider = _spider(CRAWL_MAX_IMAGES_PER_PAGE=10, CRAWL_MAX_LINKS_PER_PAGE=5)
    body = "".join(f"<img src='/i{n}.png'>" for n in range(30))
    body += "".join(f"<a href='/p{n}'>p</a>" for n in range(8))
    kinds = _kinds(_run(spider, _page(SEED, body, _info())))
    # In document order: the first ten images, the first five links.
    assert kinds["image"] == [f"{SEED}i{n}.png" for n in range(10)]
    assert kinds["page"] == [f"{SEED}p{n}" for n in range(5)]
    stats = spider.crawler.stats
    assert stats is not None
    assert stats.get_value("crawl/page_cap/images") == 20
    assert stats.get_value("crawl/page_cap/links") == 3
    assert stats.get_value("crawl/pages_capped") == 1
    _run(spider, _page(SEED + "small", "<img src='/one.png'>", _info(page=SEED + "small")))
    assert stats.get_value("crawl/pages_capped") == 1  # a page within the caps is not counted


def test_a_page_over_its_cpu_budget_is_dropped_and_the_next_one_is_read() -> None:
    spider = _spider(CRAWL_PARSE_TIMEOUT=1e-9)
    body = "<img src='/slow.png'>" * 100
    assert _run(spider, _page(SEED, body, _info())) == []
    stats = spider.crawler.stats
    assert stats is not None and stats.get_value("crawl/parse_timeout") == 1
    spider.parse_budget = 10.0
    kinds = _kinds(_run(spider, _page(SEED + "next", "<img src='/b.png'>", _info())))
    assert kinds["image"] == [SEED + "b.png"]
    assert stats.get_value("crawl/parse_timeout") == 1
