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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree
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
_LAZY_SRC_SET = frozenset(LAZY_SRC_ATTRS)
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
# An unquoted url() ends at whitespace, a quote or a parenthesis (a "(" inside makes it a bad URL
# for browsers too); possessive, so "url(url(url(..." costs linear time, not quadratic (200 KB of
# it took 68 s).
_CSS_URL_RE = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^()'"\s]*+))\s*\)""", re.IGNORECASE)
_CSS_IMPORT_RE = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


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


def strip_css_comments(css: str) -> str:
    """``css`` without its ``/* ... */`` comments; an unclosed one runs to the end (as in
    browsers). Linear: a regex took quadratic time on many unclosed ``/*`` (29 s for 160 KB)."""
    parts: list[str] = []
    pos = 0
    while (opening := css.find("/*", pos)) >= 0:
        parts.append(css[pos:opening])
        closing = css.find("*/", opening + 2)
        if closing < 0:
            return "".join(parts)
        pos = closing + 2
    parts.append(css[pos:])
    return "".join(parts)


def css_urls(css: str) -> tuple[list[str], list[str]]:
    """Raw ``url(...)`` references and ``@import`` targets of a stylesheet or style attribute."""
    css = strip_css_comments(css)
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


#: Steps (elements read, references cleaned) between two checks of a document's CPU budget.
CHECK_EVERY = 1024


class ParseBudgetExceeded(Exception):
    """A document took more than its CPU budget to read: it is dropped (``parse_timeout``)."""


class Budget:
    """The CPU seconds this thread may spend on one document (``None``: no limit), checked
    every :data:`CHECK_EVERY` steps (an element read, a reference cleaned) and between chunks."""

    def __init__(self, seconds: float | None = None) -> None:
        self.deadline = None if seconds is None else time.thread_time() + seconds
        self._steps = 0

    def step(self) -> None:
        self._steps += 1
        if not self._steps % CHECK_EVERY:
            self.check()

    def check(self) -> None:
        """Raise :class:`ParseBudgetExceeded` once the thread's CPU time passed the deadline."""
        if self.deadline is not None and time.thread_time() > self.deadline:
            raise ParseBudgetExceeded


class _Collector:
    """The images found so far, each URL once, with the embedding it was first found in."""

    def __init__(self, base: str, budget: Budget | None = None) -> None:
        self.base = base
        self.budget = budget or Budget()
        self.images: list[ImageRef] = []
        self._seen_images: set[str] = set()

    def image(self, raw: str | None, embedding: str) -> None:
        if not raw:
            return
        self.budget.step()
        url = clean_url(raw, self.base)
        if url is None or url in self._seen_images:
            return
        self._seen_images.add(url)
        self.images.append(ImageRef(url, embedding))


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _fetchable(raws: Iterable[str], base: str, budget: Budget | None = None) -> list[str]:
    """The absolute http(s) URLs of ``raws`` (``data:`` URIs and other schemes left out)."""
    budget = budget or Budget()
    urls = []
    for raw in raws:
        budget.step()
        url = clean_url(raw, base)
        if url is not None and not url.startswith("data:"):
            urls.append(url)
    return urls


def _attr_embedding(attr: str) -> str:
    return attr.replace("-", "_")


def _css_images(c: _Collector, sources: Iterable[str], embedding: str) -> list[str]:
    """The images of CSS texts (``url(...)``); returns their ``@import`` targets, raw."""
    imports: list[str] = []
    for css in sources:
        images, more = css_urls(css)
        for u in images:
            c.image(u, embedding)
        imports.extend(more)
    return imports


# -- the page: one streaming pass over the markup ---------------------------------------------
#
# lxml's HTML parser drives a target object with start/end/data events and builds no tree: markup
# nested past libxml2's depth limit (about 2 000 unclosed elements, which hid every later image
# from a tree) and elements with hundreds of thousands of attributes (quadratic when a tree
# stores them: 40 000 took 11 s) cost linear time. References are kept per kind in document
# order, then handed to the collector kind by kind: the first kind an image URL is found in is
# the embedding it is counted under, whatever the order of the kinds in the document.

#: Bytes of markup fed to the parser at a time; the CPU budget is checked between them.
FEED_BYTES = 1 << 16


# Elements whose references depend on an enclosing element (markup may never close them).
_CONTAINERS = ("picture", "video", "audio", "style")
# Media attributes of elements, by tag: (attribute, embedding).
_MEDIA_ATTRS: dict[str, tuple[str, str]] = {
    "video": ("src", "video_src"),
    "audio": ("src", "audio_src"),
    "embed": ("src", "embed_src"),
    "object": ("data", "object_data"),
}
_IFRAME_SOURCES = frozenset({"src", "data-src"})
# The order media kinds are handed over.
_MEDIA_ORDER = (
    "video_src",
    "video_source",
    "audio_src",
    "audio_source",
    "embed_src",
    "object_data",
)

Getter = Callable[[str], "str | None"]


class _PageEvents:
    """The lxml parser target: raw references by kind, in document order."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        # Image references as (raw, embedding), by kind, in the order the kinds are collected:
        # <img>/<picture>, lazy-loading attributes elsewhere (attribute by attribute), video
        # posters, SVG images, meta tags, link rels.
        self.images: dict[str, list[tuple[str, str]]] = {
            "img": [],
            **{attr: [] for attr in LAZY_SRC_ATTRS},
            "poster": [],
            "svg": [],
            "meta": [],
            "link": [],
        }
        self.inline_styles: list[str] = []
        self.style_blocks: list[str] = []
        self.anchors: list[str] = []
        self.frames: list[str] = []
        self.stylesheets: list[str] = []
        self.media: dict[str, list[str]] = {kind: [] for kind in _MEDIA_ORDER}
        self._open = dict.fromkeys(_CONTAINERS, 0)
        self._style_text: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.budget.step()
        if tag in self._open:
            self._open[tag] += 1
        if not attrib:  # (an immutable mapping whose get is slow in Python)
            return
        get = attrib.get
        if tag == "img" or (tag == "input" and get("type") == "image"):
            self._image_element("img", get)
        elif tag == "source":
            if self._open["picture"]:
                self._image_element("picture_source", get)
            for parent in ("video", "audio"):
                src = get("src")
                if self._open[parent] and src is not None:
                    self.media[f"{parent}_source"].append(src)
        if tag not in ("img", "source") and not _LAZY_SRC_SET.isdisjoint(attrib):
            for attr in LAZY_SRC_ATTRS:
                value = get(attr)
                if value:
                    self.images[attr].append((value, _attr_embedding(attr)))
        self._element_references(tag, attrib)
        style = get("style")
        if style is not None:
            self.inline_styles.append(style)

    def _element_references(self, tag: str, attributes: dict[str, str]) -> None:
        """Everything but images of ``img``/``picture`` and lazy-loading attributes."""
        get = attributes.get
        media = _MEDIA_ATTRS.get(tag)
        if media is not None and get(media[0]) is not None:
            self.media[media[1]].append(get(media[0]) or "")
        if tag == "video" and get("poster"):
            self.images["poster"].append((get("poster") or "", "video_poster"))
        elif (tag == "image" or tag.endswith(":image")) and get("href"):
            self.images["svg"].append((get("href") or "", "svg_image"))
        elif tag == "meta":
            self._meta(get)
        elif tag == "link" and get("href") is not None:
            self._link(get("href") or "", get)
        elif tag in ("a", "area") and get("href") is not None:
            self.anchors.append(get("href") or "")
        elif tag == "frame" and get("src") is not None:
            self.frames.append(get("src") or "")
        elif tag == "iframe":  # src and lazy data-src, in the order they are written
            self.frames.extend(v for name, v in attributes.items() if name in _IFRAME_SOURCES)

    def _image_element(self, prefix: str, get: Getter) -> None:
        """``src``, lazy-loading attributes and every ``srcset`` flavour of an image element."""
        found = self.images["img"]
        src = get("src")
        if src:
            found.append((src, f"{prefix}_src"))
        for attr in LAZY_SRC_ATTRS:
            value = get(attr)
            if value:
                found.append((value, _attr_embedding(attr)))
        for attr in SRCSET_ATTRS:
            value = get(attr)
            if value:
                embedding = f"{prefix}_{_attr_embedding(attr)}"
                found.extend((url, embedding) for url in parse_srcset(value))

    def _meta(self, get: Getter) -> None:
        """``og:image``, ``twitter:image`` (and their variants) and ``itemprop=image``."""
        key = (get("property") or get("name") or "").strip().lower()
        content = get("content")
        if content and (key in META_IMAGE_PROPERTIES or (get("itemprop") or "").lower() == "image"):
            embedding = "twitter_image" if key.startswith("twitter:") else "og_image"
            self.images["meta"].append((content, embedding))

    def _link(self, href: str, get: Getter) -> None:
        """``<link rel=image_src>``, ``<link rel=preload as=image>`` and stylesheets."""
        rels = set((get("rel") or "").lower().split())
        if "image_src" in rels:
            self.images["link"].append((href, "link_image_src"))
        elif "preload" in rels and (get("as") or "").lower() == "image":
            self.images["link"].append((href, "link_preload"))
        if "stylesheet" in rels:
            self.stylesheets.append(href)

    def end(self, tag: str) -> None:
        if self._open.get(tag):
            self._open[tag] -= 1
            if tag == "style":
                self._end_style()

    def data(self, text: str) -> None:
        if self._open["style"]:
            self._style_text.append(text)

    def close(self) -> None:
        self._end_style()  # a <style> never closed runs to the end of the document

    def _end_style(self) -> None:
        if self._style_text:
            self.style_blocks.append("".join(self._style_text))
            self._style_text.clear()


def _read(body: bytes, events: _PageEvents) -> None:
    """Feed ``body`` (UTF-8) to lxml's HTML parser in chunks, checking the budget between them."""
    parser = etree.HTMLParser(
        target=events, encoding="utf-8", recover=True, no_network=True, huge_tree=True
    )
    try:
        for offset in range(0, len(body), FEED_BYTES):
            parser.feed(body[offset : offset + FEED_BYTES])
            events.budget.check()
        parser.close()
    except etree.LxmlError:  # nothing parser-worthy left (e.g. an empty page): keep what was read
        events.close()


def extract(response: HtmlResponse, budget: float | None = None) -> PageRefs:
    """Every image reference, link, frame, stylesheet and media file of an HTML page.

    ``budget`` is the CPU seconds this thread may spend on it: past it,
    :class:`ParseBudgetExceeded` is raised (``None``: no limit).
    """
    steps = Budget(budget)
    base = response.urljoin("")  # honours <base href>
    events = _PageEvents(steps)
    # As parsel reads a page: its decoded text, NULs dropped, as UTF-8.
    _read(response.text.replace("\x00", "").encode("utf-8", "surrogatepass"), events)
    c = _Collector(base, steps)
    for found in events.images.values():
        for raw, embedding in found:
            c.image(raw, embedding)
    imports = _css_images(c, events.inline_styles, "inline_style")
    imports += _css_images(c, events.style_blocks, "style_block")
    links = []
    for raw in events.anchors:
        steps.step()
        url = clean_url(raw, base)
        if url is None:
            continue
        if url.startswith("data:"):  # a data: anchor is an image
            c.image(url, "a_href")
        else:
            links.append(url)
    frames = _fetchable(events.frames, base, steps)
    stylesheets = _fetchable(events.stylesheets, base, steps) + _fetchable(imports, base, steps)
    seen = {ref.url for ref in c.images}
    media: list[ImageRef] = []
    for kind in _MEDIA_ORDER:
        for url in _fetchable(events.media[kind], base, steps):
            if url not in seen:
                seen.add(url)
                media.append(ImageRef(url, kind))
    return PageRefs(c.images, _unique(links), _unique(frames), _unique(stylesheets), media)


def extract_css(css: str, css_url: str) -> tuple[list[ImageRef], list[str]]:
    """Image references and imported stylesheets of a linked stylesheet (URLs are relative
    to the stylesheet, not to the page)."""
    c = _Collector(css_url)
    imports = _css_images(c, [css], "linked_stylesheet")
    return c.images, _unique(_fetchable(imports, css_url))
