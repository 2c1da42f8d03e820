"""The extraction the crawler used before its streaming pass: XPath over a parsed tree.

A test oracle only (``tests/crawler/test_discovery.py`` compares the two on documents a tree
holds whole); it misses everything below libxml2's depth limit and is quadratic in an element's
attributes, which is why the crawler no longer uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scrapy.http import HtmlResponse

from crawler.discovery import (
    LAZY_SRC_ATTRS,
    META_IMAGE_PROPERTIES,
    SRCSET_ATTRS,
    ImageRef,
    PageRefs,
    _attr_embedding,
    _Collector,
    _css_images,
    _fetchable,
    _unique,
    clean_url,
    parse_srcset,
)


def _img_elements(response: HtmlResponse, c: _Collector) -> None:
    """``<img>``, ``<picture><source>`` and ``<input type=image>``: ``src``, lazy-loading
    attributes and every ``srcset`` flavour."""
    for el in response.xpath("//img | //picture//source | //input[@type='image']"):
        tag = el.root.tag if isinstance(el.root.tag, str) else ""
        embedding_prefix = "picture_source" if tag == "source" else "img"
        c.image(el.attrib.get("src"), f"{embedding_prefix}_src")
        for attr in LAZY_SRC_ATTRS:
            c.image(el.attrib.get(attr), _attr_embedding(attr))
        for attr in SRCSET_ATTRS:
            value = el.attrib.get(attr)
            if value:
                for u in parse_srcset(value):
                    c.image(u, f"{embedding_prefix}_{_attr_embedding(attr)}")


def _lazy_attributes(response: HtmlResponse, c: _Collector) -> None:
    """Lazy-loading attributes on anything else (divs with data-bg, figure[data-src], ...)."""
    for attr in LAZY_SRC_ATTRS:
        for value in response.xpath(f"//*[not(self::img) and not(self::source)]/@{attr}").getall():
            c.image(value, _attr_embedding(attr))


def _video_posters(response: HtmlResponse, c: _Collector) -> None:
    for value in response.xpath("//video/@poster").getall():
        c.image(value, "video_poster")


def _svg_images(response: HtmlResponse, c: _Collector) -> None:
    for value in response.xpath("//*[local-name()='image']/@href").getall():
        c.image(value, "svg_image")


def _meta_images(response: HtmlResponse, c: _Collector) -> None:
    """``og:image``, ``twitter:image`` (and their variants) and ``itemprop=image``."""
    for meta in response.xpath("//meta"):
        key = (meta.attrib.get("property") or meta.attrib.get("name") or "").strip().lower()
        if key in META_IMAGE_PROPERTIES or (meta.attrib.get("itemprop") or "").lower() == "image":
            embedding = "twitter_image" if key.startswith("twitter:") else "og_image"
            c.image(meta.attrib.get("content"), embedding)


def _link_images(response: HtmlResponse, c: _Collector) -> None:
    """``<link rel=image_src>`` and ``<link rel=preload as=image>``."""
    for link in response.xpath("//link[@href]"):
        rels = set((link.attrib.get("rel") or "").lower().split())
        if "image_src" in rels:
            c.image(link.attrib.get("href"), "link_image_src")
        elif "preload" in rels and (link.attrib.get("as") or "").lower() == "image":
            c.image(link.attrib.get("href"), "link_preload")


_ELEMENT_IMAGES: tuple[Callable[[HtmlResponse, _Collector], None], ...] = (
    _img_elements,
    _lazy_attributes,
    _video_posters,
    _svg_images,
    _meta_images,
    _link_images,
)


def _styles(response: HtmlResponse, c: _Collector) -> list[str]:
    """Images of inline ``style`` attributes, then of ``<style>`` blocks; returns the
    stylesheets they ``@import``, raw."""
    imports = _css_images(c, response.xpath("//*[@style]/@style").getall(), "inline_style")
    imports += _css_images(c, response.xpath("//style/text()").getall(), "style_block")
    return imports


# -- what to crawl next ---------------------------------------------------------------------


def _anchors(response: HtmlResponse, c: _Collector) -> list[str]:
    """The links of ``<a>`` and ``<area>``; a ``data:`` URI among them is an image."""
    links = []
    for href in response.xpath("//a/@href | //area/@href").getall():
        url = clean_url(href, c.base)
        if url is None:
            continue
        if url.startswith("data:"):
            c.image(url, "a_href")
        else:
            links.append(url)
    return links


def _frames(response: HtmlResponse, base: str) -> list[str]:
    """``<iframe>`` (also lazy ``data-src``) and ``<frame>`` sources: crawled as pages."""
    return _fetchable(
        response.xpath("//iframe/@src | //iframe/@data-src | //frame/@src").getall(), base
    )


# (XPath, embedding) of every media reference, in the order they are looked for.
_MEDIA_XPATHS: tuple[tuple[str, str], ...] = (
    ("//video/@src", "video_src"),
    ("//video//source/@src", "video_source"),
    ("//audio/@src", "audio_src"),
    ("//audio//source/@src", "audio_source"),
    ("//embed/@src", "embed_src"),
    ("//object/@data", "object_data"),
)


def _media(response: HtmlResponse, base: str, images: Iterable[ImageRef]) -> list[ImageRef]:
    """Videos, audio, ``<embed>`` and ``<object>`` files, each URL once (not one already
    found as an image)."""
    seen = {ref.url for ref in images}
    found: list[ImageRef] = []
    for xpath, embedding in _MEDIA_XPATHS:
        for url in _fetchable(response.xpath(xpath).getall(), base):
            if url not in seen:
                seen.add(url)
                found.append(ImageRef(url, embedding))
    return found


def _linked_stylesheets(response: HtmlResponse, base: str) -> list[str]:
    """``<link rel=stylesheet>`` targets."""
    hrefs = [
        link.attrib["href"]
        for link in response.xpath("//link[@href]")
        if "stylesheet" in (link.attrib.get("rel") or "").lower().split()
    ]
    return _fetchable(hrefs, base)


def extract(response: HtmlResponse) -> PageRefs:
    """Every image reference, link, frame, stylesheet and media file of an HTML page."""
    base = response.urljoin("")  # honours <base href>
    c = _Collector(base)
    for find in _ELEMENT_IMAGES:
        find(response, c)
    imports = _styles(response, c)
    links = _anchors(response, c)
    frames = _frames(response, base)
    stylesheets = _linked_stylesheets(response, base) + _fetchable(imports, base)
    media = _media(response, base, c.images)
    return PageRefs(c.images, _unique(links), _unique(frames), _unique(stylesheets), media)
