"""The spider's callbacks, offline: hand-built responses, no reactor, no network."""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy import Request
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler

from crawler.spiders.hotline import HotlineSpider, Info

SEED = "http://www.example.org/"


def _spider(**settings: Any) -> HotlineSpider:
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
        spider._on_bytes_received(b"<!doctype html><html><body>not an image", html, spider)
    # A first chunk too short to judge lets the download through, and the next chunk (the
    # middle of the body, not its start) is never mistaken for a non-image.
    png = Request(SEED + "real.png", meta={"hotline": _info(kind="image")})
    spider._on_bytes_received(b"\x89PNG", png, spider)
    spider._on_bytes_received(b"\x00" * 64, png, spider)
    page = Request(SEED + "page", meta={"hotline": _info()})
    spider._on_bytes_received(b"<!doctype html>" * 4, page, spider)  # pages are never cut
