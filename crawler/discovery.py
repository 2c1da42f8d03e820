"""Finding every image a page shows, and the links and frames to crawl next.

Pure functions over Scrapy responses and CSS text, so they are tested offline with hand-built
``HtmlResponse`` objects. Each image reference carries the *embedding* it was found in, which
ends up in crawl stats (``discovery/<embedding>``) and lets tests check recall per embedding.

:func:`extract` composes one function per kind of reference: ``img``/``picture``/``srcset``,
lazy-loading attributes elsewhere, video posters, SVG images, ``meta`` og/twitter images,
``link`` image rels, inline styles and ``<style>`` blocks, anchors (a ``data:`` anchor is an
image), media (``<video>``/``<audio>`` sources, ``<embed>``, ``<object>``: files matched by their
exact hashes), frames and linked or ``@import``ed stylesheets. :func:`extract_css` reads a linked
stylesheet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from scrapy.http import HtmlResponse

from crawler.scope import HTTP_SCHEMES, host_name_problem

# Attributes that lazy-loading libraries and themes use for an image URL (lazysizes, lozad,
# jQuery lazyload, WordPress, Echo.js, Magento zoom, ...).
LAZY_SRC_ATTRS = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-lazy",
    "data-url",
    "data-echo",
    "data-image",
    "data-img",
    "data-hi-res-src",
    "data-full-src",
    "data-large-file",
    "data-orig-file",
    "data-zoom-image",
    "data-bg",
    "data-background",
    "data-background-image",
    "lowsrc",
)
SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset", "imagesrcset")
META_IMAGE_PROPERTIES = frozenset(
    {
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
    }
)
_CSS_URL_RE = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT_RE = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_COMMENT_RE = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference: an absolute http(s) URL or a ``data:`` URI, and how it was embedded."""

    url: str
    embedding: str

    @property
    def is_data(self) -> bool:
        return self.url.startswith("data:")


@dataclass(frozen=True, slots=True)
class PageRefs:
    images: list[ImageRef]
    links: list[str]
    frames: list[str]
    stylesheets: list[str]
    #: Videos, audio, embedded and object files (http(s) only, none of them among ``images``).
    media: list[ImageRef] = field(default_factory=list)


def clean_url(url: str, base: str) -> str | None:
    """Absolute http(s) URL without fragment, or a data: URI as is; ``None`` for anything else
    (a host name DNS cannot hold among it)."""
    url = url.strip()
    if not url:
        return None
    if url[:5].lower() == "data:":
        return url
    try:
        absolute = urldefrag(urljoin(base, url))[0]
        parts = urlsplit(absolute)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in HTTP_SCHEMES or not host:
        return None
    if ":" not in host and host_name_problem(host) is not None:
        return None  # a name DNS cannot hold: nothing to fetch
    return absolute


def parse_srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` value, as the HTML standard splits it: a URL is a run of
    non-whitespace (commas inside it allowed, trailing commas end the candidate), then
    descriptors up to the next comma outside parentheses."""
    urls: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        j = i
        while j < n and not value[j].isspace():
            j += 1
        url = value[i:j]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while j < n:
                ch = value[j]
                j += 1
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth = max(0, depth - 1)
                elif ch == "," and depth == 0:
                    break
        i = j
        if url:
            urls.append(url)
    return urls


def css_urls(css: str) -> tuple[list[str], list[str]]:
    """Raw ``url(...)`` references and ``@import`` targets of a stylesheet or style attribute."""
    css = _CSS_COMMENT_RE.sub("", css)
    imports = [a or b for a, b in _CSS_IMPORT_RE.findall(css)]
    urls = [a or b or c for a, b, c in _CSS_URL_RE.findall(css)]
    # `@import url(x.css)` shows up among the url() matches: route *.css ones to imports.
    images = []
    for u in urls:
        if urlsplit(u).path.lower().endswith(".css"):
            imports.append(u)
        else:
            images.append(u)
    return images, imports


class _Collector:
    """The images found so far, each URL once, with the embedding it was first found in."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.images: list[ImageRef] = []
        self._seen_images: set[str] = set()

    def image(self, raw: str | None, embedding: str) -> None:
        if not raw:
            return
        url = clean_url(raw, self.base)
        if url is None or url in self._seen_images:
            return
        self._seen_images.add(url)
        self.images.append(ImageRef(url, embedding))


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _fetchable(raws: Iterable[str], base: str) -> list[str]:
    """The absolute http(s) URLs of ``raws`` (``data:`` URIs and other schemes left out)."""
    urls = (clean_url(raw, base) for raw in raws)
    return [url for url in urls if url is not None and not url.startswith("data:")]


def _attr_embedding(attr: str) -> str:
    return attr.replace("-", "_")


# -- images: one function per kind of reference, in the order they are looked for ---------------
# The first embedding an image URL is found in is the one it is counted under.


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


def _css_images(c: _Collector, sources: Iterable[str], embedding: str) -> list[str]:
    """The images of CSS texts (``url(...)``); returns their ``@import`` targets, raw."""
    imports: list[str] = []
    for css in sources:
        images, more = css_urls(css)
        for u in images:
            c.image(u, embedding)
        imports.extend(more)
    return imports


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


def extract_css(css: str, css_url: str) -> tuple[list[ImageRef], list[str]]:
    """Image references and imported stylesheets of a linked stylesheet (URLs are relative
    to the stylesheet, not to the page)."""
    c = _Collector(css_url)
    imports = _css_images(c, [css], "linked_stylesheet")
    return c.images, _unique(_fetchable(imports, css_url))
