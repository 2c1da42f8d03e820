"""Finding every image a page shows, and the links and frames to crawl next.

Pure functions over Scrapy responses and CSS text, so they are tested offline with hand-built
``HtmlResponse`` objects. Each image reference carries the *embedding* it was found in, which
ends up in crawl stats (``discovery/<embedding>``) and lets tests check recall per embedding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from scrapy.http import HtmlResponse

from crawler.scope import HTTP_SCHEMES

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


def clean_url(url: str, base: str) -> str | None:
    """Absolute http(s) URL without fragment, or a data: URI as is; ``None`` for anything else."""
    url = url.strip()
    if not url:
        return None
    if url[:5].lower() == "data:":
        return url
    try:
        absolute = urldefrag(urljoin(base, url))[0]
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:
        return None
    return absolute if scheme in HTTP_SCHEMES else None


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
    def __init__(self, base: str) -> None:
        self.base = base
        self.images: list[ImageRef] = []
        self._seen_images: set[str] = set()

    def image(self, raw: str | None, embedding: str, base: str | None = None) -> None:
        if not raw:
            return
        url = clean_url(raw, base or self.base)
        if url is None or url in self._seen_images:
            return
        self._seen_images.add(url)
        self.images.append(ImageRef(url, embedding))


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def extract(response: HtmlResponse) -> PageRefs:
    """Every image reference, link, frame and stylesheet of an HTML page."""
    base = response.urljoin("")  # honours <base href>
    c = _Collector(base)

    for el in response.xpath("//img | //picture//source | //input[@type='image']"):
        tag = el.root.tag if isinstance(el.root.tag, str) else ""
        embedding_prefix = "picture_source" if tag == "source" else "img"
        c.image(el.attrib.get("src"), f"{embedding_prefix}_src")
        for attr in LAZY_SRC_ATTRS:
            c.image(el.attrib.get(attr), attr.replace("-", "_"))
        for attr in SRCSET_ATTRS:
            value = el.attrib.get(attr)
            if value:
                for u in parse_srcset(value):
                    c.image(u, f"{embedding_prefix}_{attr.replace('-', '_')}")
    # Lazy attributes on anything else (divs with data-bg, figure[data-src], ...).
    for attr in LAZY_SRC_ATTRS:
        for value in response.xpath(f"//*[not(self::img) and not(self::source)]/@{attr}").getall():
            c.image(value, attr.replace("-", "_"))
    for value in response.xpath("//video/@poster").getall():
        c.image(value, "video_poster")
    for value in response.xpath("//*[local-name()='image']/@href").getall():
        c.image(value, "svg_image")

    for meta in response.xpath("//meta"):
        key = (meta.attrib.get("property") or meta.attrib.get("name") or "").strip().lower()
        if key in META_IMAGE_PROPERTIES or (meta.attrib.get("itemprop") or "").lower() == "image":
            embedding = "twitter_image" if key.startswith("twitter:") else "og_image"
            c.image(meta.attrib.get("content"), embedding)
    for link in response.xpath("//link[@href]"):
        rels = set((link.attrib.get("rel") or "").lower().split())
        if "image_src" in rels:
            c.image(link.attrib.get("href"), "link_image_src")
        elif "preload" in rels and (link.attrib.get("as") or "").lower() == "image":
            c.image(link.attrib.get("href"), "link_preload")

    imports: list[str] = []
    for style in response.xpath("//*[@style]/@style").getall():
        images, more = css_urls(style)
        for u in images:
            c.image(u, "inline_style")
        imports.extend(more)
    for block in response.xpath("//style/text()").getall():
        images, more = css_urls(block)
        for u in images:
            c.image(u, "style_block")
        imports.extend(more)

    links = []
    for href in response.xpath("//a/@href | //area/@href").getall():
        url = clean_url(href, base)
        if url is None:
            continue
        if url.startswith("data:"):
            c.image(url, "a_href")
        else:
            links.append(url)
    frames = []
    for src in response.xpath("//iframe/@src | //iframe/@data-src | //frame/@src").getall():
        url = clean_url(src, base)
        if url is not None and not url.startswith("data:"):
            frames.append(url)
    stylesheets = []
    for link in response.xpath("//link[@href]"):
        if "stylesheet" in (link.attrib.get("rel") or "").lower().split():
            url = clean_url(link.attrib["href"], base)
            if url is not None and not url.startswith("data:"):
                stylesheets.append(url)
    for raw in imports:
        url = clean_url(raw, base)
        if url is not None and not url.startswith("data:"):
            stylesheets.append(url)
    return PageRefs(c.images, _unique(links), _unique(frames), _unique(stylesheets))


def extract_css(css: str, css_url: str) -> tuple[list[ImageRef], list[str]]:
    """Image references and imported stylesheets of a linked stylesheet (URLs are relative
    to the stylesheet, not to the page)."""
    c = _Collector(css_url)
    images, imports = css_urls(css)
    for u in images:
        c.image(u, "linked_stylesheet")
    sheets = [
        u for u in (clean_url(i, css_url) for i in imports) if u and not u.startswith("data:")
    ]
    return c.images, _unique(sheets)
