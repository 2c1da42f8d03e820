"""The streaming extraction against the tree-and-XPath one it replaced, and on the markup that
defeated a tree: deep nesting, huge elements, a document over its CPU budget."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy.http import HtmlResponse

from crawler.discovery import FEED_BYTES, ParseBudgetExceeded, extract, extract_css
from tests.crawler import discovery_reference

PAGE_URL = "http://site.example/dir/page.html"

TAGS = (
    "img", "picture", "source", "input", "video", "audio", "embed", "object", "iframe", "frame",
    "a", "area", "meta", "link", "style", "div", "span", "p", "svg", "image", "table", "td",
    "template", "noscript", "figure", "ul", "li", "form",
)  # fmt: skip
ATTRS = (
    "src", "srcset", "data-src", "data-srcset", "data-bg", "data-original", "lowsrc", "poster",
    "href", "content", "property", "name", "itemprop", "rel", "as", "type", "style", "data",
    "imagesrcset", "class",
)  # fmt: skip
VALUES = st.sampled_from(
    [
        "a.jpg", "/b.png", "http://cdn.example/c.webp", "//cdn.example/d.gif", "../e.jpg",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=", "javascript:void(0)", "mailto:x@y", "",
        " f.jpg ", "g.jpg 1x, h.jpg 2x", "i.jpg 100w,j.jpg 400w", "image", "og:image",
        "twitter:image", "stylesheet", "image_src", "preload", "x.css", "/v.mp4", "#top",
        "background: url('k.png')", 'background:url("l.png") url(m.css)', "url(n.png)",
        "http://bad..example/o.jpg", "p.jpg#frag", "&amp;q.jpg",
    ]
) | st.text(alphabet="abc./:# ()'\",", max_size=12)  # fmt: skip
TEXTS = st.sampled_from(
    ["", "text", " ", "a < b", "&amp;", ".x { background: url(s.png) }", "@import 't.css';"]
)


@st.composite
def _element(draw: st.DrawFn, depth: int) -> str:
    tag = draw(st.sampled_from(TAGS))
    attrs = draw(st.lists(st.tuples(st.sampled_from(ATTRS), VALUES), max_size=4))
    rendered = "".join(f' {name}="{value.replace(chr(34), "&quot;")}"' for name, value in attrs)
    children = "" if depth <= 0 else "".join(draw(st.lists(_element(depth - 1), max_size=3)))
    text = draw(TEXTS)
    closing = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", ""]))  # sometimes left open
    return f"<{tag}{rendered}>{text}{children}{closing}"


DOCUMENTS = st.lists(_element(3), max_size=6).map(
    lambda parts: "<!doctype html><html><body>" + "".join(parts) + "</body></html>"
)


def _response(body: bytes) -> HtmlResponse:
    return HtmlResponse(url=PAGE_URL, body=body, encoding="utf-8")


@settings(
    max_examples=200, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow]
)
@given(DOCUMENTS)
def test_the_stream_finds_what_the_tree_found(document: str) -> None:
    response = _response(document.encode())
    assert extract(response) == discovery_reference.extract(response)


def _nested(depth: int) -> bytes:
    return (
        "<html><body>" + "<div>" * depth + '<img src="/a.png"><a href="/next">n</a>'
        '<div style="background:url(/b.png)"></div></body></html>'
    ).encode()


@pytest.mark.parametrize("depth", [2046, 5000, 100_000])
def test_images_below_thousands_of_unclosed_elements_are_found(depth: int) -> None:
    response = _response(_nested(depth))
    refs = extract(response)
    assert [ref.url for ref in refs.images] == [
        "http://site.example/a.png",
        "http://site.example/b.png",
    ]
    assert refs.links == ["http://site.example/next"]
    # What a tree made of it (why the crawler stopped using one): nothing at all.
    assert discovery_reference.extract(response).images == []


def test_an_element_with_a_hundred_thousand_attributes_does_not_hide_the_next_image() -> None:
    attributes = " ".join(f'data-x{i}="v"' for i in range(100_000))
    body = f'<html><body><div {attributes}></div><img src="/a.png"></body></html>'.encode()
    refs = extract(_response(body), budget=60.0)
    assert [ref.url for ref in refs.images] == ["http://site.example/a.png"]


def test_a_page_over_its_cpu_budget_is_given_up() -> None:
    body = ("<html><body>" + '<img src="/a.png">' * (FEED_BYTES // 8)).encode()
    with pytest.raises(ParseBudgetExceeded):
        extract(_response(body), budget=0.0)
    assert extract(_response(body), budget=None).images  # the same page, without a budget


def test_style_text_split_across_feed_chunks_is_read_whole() -> None:
    padding = "x" * (FEED_BYTES - 40)
    body = f"<html><head><style>/*{padding}*/ .a {{ background: url(/split.png) }}</style>"
    refs = extract(_response(body.encode()))
    assert [ref.url for ref in refs.images] == ["http://site.example/split.png"]


def test_multibyte_text_across_chunk_boundaries_keeps_urls_intact() -> None:
    body = ("<html><body>" + "ä" * FEED_BYTES + '<img src="/ö.png"></body></html>').encode()
    refs = extract(_response(body))
    assert [ref.url for ref in refs.images] == ["http://site.example/ö.png"]


#: CPU seconds a hostile stylesheet may take: linear reading takes milliseconds, the quadratic
#: regexes it replaces took 29 s and 68 s on these inputs.
CSS_CPU_BOUND = 5.0


@pytest.mark.parametrize(
    "css",
    ["url(a" * 40_000, "/* a" * 40_000, 'url("a' * 40_000, "@import   " * 40_000],
    ids=["unquoted-urls", "open-comments", "open-quotes", "imports"],
)
def test_hostile_stylesheets_are_read_in_linear_time(css: str) -> None:
    # 160-200 KB each between two images; the second is inside the comment left open.
    started = time.thread_time()
    images, _ = extract_css(
        f".y {{ background: url(/y.png) }} {css} .z {{ background: url(/z.png) }}",
        "http://site.example/s.css",
    )
    assert time.thread_time() - started < CSS_CPU_BOUND
    found = [ref.url for ref in images]
    expected = ["http://site.example/y.png"]
    if not css.startswith("/*"):
        expected.append("http://site.example/z.png")
    assert found == expected
