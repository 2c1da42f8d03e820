"""The full test site: two loopback hosts, planted copies of known images, distractors, traps.

Host A (:data:`tests.helpers.HOST_A`) is the reported site; host B
(:data:`tests.helpers.HOST_B`) is an image host that A embeds from.
``serve_linked(build_test_site)`` (:func:`hotline.loopback.serve_linked`) serves both. All
images are seeded textures from :mod:`hotline.imagegen`, generated and hashed at fixture time
and served from memory. The "known" list is made of the hashes of the known images as served;
every planted copy sits in a distinct embedding so a crawler test can say which embedding it
missed. Distractors are other textures in the same embeddings and must never be reported.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from PIL import Image

from hotline import imagegen
from hotline.loopback import (
    Exchange,
    LinkedSite,
    Response,
    Route,
    html_page,
    image_response,
    redirect,
)
from tests.site.reference import (
    KNOWN_LIST_HEADER,
    ReferenceHashes,
    hamming_hex,
    reference_hashes,
)

KNOWN_CATEGORY = "test"
KNOWN_SEEDS = tuple(range(101, 111))  # k01..k10
DISTRACTOR_SEEDS = tuple(range(2001, 2011))  # d01..d10
IMAGE_SIZE = (512, 384)
WRONG_EXTENSION_SIZE = (320, 240)
DATA_URI_SIZE = (128, 96)
JPEG_QUALITY = 90

GZIP_BOMB_CHUNK = 1 << 20
GZIP_BOMB_CHUNKS = 200  # 200 MiB of zeros once inflated
HUGE_PNG_SIDE = 40_000
SLOW_STALL_SECONDS = 20.0
SLOW_DECLARED_LENGTH = 4096
ENDLESS_CHUNK = b"<p>" + b"more " * 800 + b"</p>\n"
CALENDAR_START = (2026, 11)

#: Embeddings of exact copies, in the order they are planted.
EMBEDDINGS = (
    "img_src",
    "img_srcset",
    "picture_source_srcset",
    "data_src",
    "data_srcset",
    "data_original",
    "data_lazy_src",
    "inline_style",
    "style_block",
    "linked_stylesheet",
    "og_image",
    "twitter_image",
    "link_image_src",
    "a_href_image",
    "iframe",
    "frame",
    "data_uri",
    "wrong_extension",
    "redirect",
    "deep_page",
)
#: Transformed copies (perceptual matches), all planted as <img src> on the variants page.
TRANSFORMS = (
    "reencode_jpeg_q60",
    "resize_half",
    "png",
    "webp",
    "gif",
    "crop_4pct",
    "watermark",
)
HOSTILE = (
    "gzip_bomb",
    "calendar",
    "redirect_loop",
    "endless",
    "slow",
    "huge_png",
    "truncated_jpeg",
    "html_as_jpeg",
    "missing_image",
    "server_error",
)


@dataclass(frozen=True)
class KnownImage:
    entry_id: str
    seed: int
    body: bytes
    content_type: str
    hashes: ReferenceHashes


@dataclass(frozen=True)
class Planted:
    """One planted copy of a known image.

    ``url`` is the absolute image URL as referenced (``"data:"`` for the inline data URI),
    ``final_url`` where it ends up after redirects, ``page`` the document that references it
    directly (HTML page, frame page, or the CSS file for ``linked_stylesheet``). ``transform``
    is ``"exact"`` for byte-identical copies. The distances are those of the served copy to
    the known entry's reference hashes (0 for exact copies).
    """

    url: str
    page: str
    embedding: str
    transform: str
    entry_id: str
    final_url: str
    sha256: str
    pdq_distance: int
    phash_distance: int


@dataclass
class TestSite:
    """Routes for both hosts plus the manifest of what was planted where."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    base_a: str
    base_b: str
    seed_url: str
    routes_a: dict[str, Route]
    routes_b: dict[str, Route]
    known: dict[str, KnownImage]
    known_csv: str
    planted: list[Planted]
    distractor_urls: list[str]
    distractor_sha256s: set[str]
    served_images: list[bytes]
    hostile: dict[str, str]
    pages: list[str] = field(default_factory=list)

    def planted_by_embedding(self, embedding: str) -> Planted:
        return next(p for p in self.planted if p.embedding == embedding and p.transform == "exact")

    def planted_by_transform(self, transform: str) -> Planted:
        return next(p for p in self.planted if p.transform == transform)


# --- hostile bodies (built once per process; small despite what they decompress to) ---------


def _raw_deflate_of_zeros(chunk: int, repeats: int) -> bytes:
    """A raw deflate stream of ``chunk * repeats`` zero bytes, built from one compressed chunk.

    A full flush makes each compressed chunk independent of the previous ones, so the same
    bytes can simply be repeated; ``\\x03\\x00`` is an empty final block.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment * repeats + b"\x03\x00"


@functools.cache
def gzip_bomb() -> bytes:
    """A gzip member that inflates to GZIP_BOMB_CHUNKS MiB of zeros."""
    zeros = bytes(GZIP_BOMB_CHUNK)
    crc = 0
    for _ in range(GZIP_BOMB_CHUNKS):
        crc = zlib.crc32(zeros, crc)
    size = GZIP_BOMB_CHUNK * GZIP_BOMB_CHUNKS
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + _raw_deflate_of_zeros(GZIP_BOMB_CHUNK, GZIP_BOMB_CHUNKS) + trailer


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def huge_png() -> bytes:
    """A valid 1-bit greyscale PNG of HUGE_PNG_SIDE² pixels (all black), about 200 KB."""
    row = 1 + HUGE_PNG_SIDE // 8  # filter byte + packed bits
    rows_per_chunk = 1000
    chunk = row * rows_per_chunk
    repeats = HUGE_PNG_SIDE // rows_per_chunk
    total = chunk * repeats
    adler = ((total % 65521) << 16) | 1  # adler32 of all-zero data: a stays 1, b counts bytes
    stream = b"\x78\xda" + _raw_deflate_of_zeros(chunk, repeats) + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", HUGE_PNG_SIDE, HUGE_PNG_SIDE, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )


def _endless(exchange: Exchange) -> None:
    exchange.start(200, {"Content-Type": "text/html; charset=utf-8"})
    exchange.write(b"<!doctype html><html><body>\n")
    while exchange.write(ENDLESS_CHUNK):
        pass


def _slow(exchange: Exchange) -> None:
    exchange.start(
        200,
        {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(SLOW_DECLARED_LENGTH)},
    )
    if exchange.write(b"<!doctype html><html><body>slow"):
        exchange.wait(SLOW_STALL_SECONDS)


def _calendar(base_a: str) -> Callable[[Exchange], None]:
    def handler(exchange: Exchange) -> None:
        parts = exchange.path.strip("/").split("/")
        try:
            year, month = int(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            year, month = 0, 0
        if len(parts) != 3 or not 1 <= month <= 12 or year < 1:
            body = b"no such month\n"
            exchange.start(404, {"Content-Type": "text/plain", "Content-Length": str(len(body))})
            exchange.write(body)
            return
        nxt = (year + 1, 1) if month == 12 else (year, month + 1)
        prev = (year - 1, 12) if month == 1 else (year, month - 1)
        page = (
            f"<!doctype html><html><body><h1>{year}-{month:02d}</h1>"
            f"<a href='{base_a}/calendar/{nxt[0]}/{nxt[1]}'>next month</a> "
            f"<a href='/calendar/{prev[0]}/{prev[1]}'>previous month</a>"
            "</body></html>\n"
        ).encode()
        exchange.start(
            200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(page))}
        )
        exchange.write(page)

    return handler


# --- building ---------------------------------------------------------------------------------

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


def _doc(title: str, body: str, head: str = "") -> Response:
    return html_page(
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title>\n{head}"
        f"</head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )


class _Builder:
    def __init__(self, base_a: str, base_b: str) -> None:
        self.a = base_a
        self.b = base_b
        self.routes_a: dict[str, Route] = {}
        self.routes_b: dict[str, Route] = {}
        self.served: list[bytes] = []
        self.planted: list[Planted] = []
        self.distractor_urls: list[str] = []
        self.distractor_sha256s: set[str] = set()
        self.known: dict[str, KnownImage] = {}
        self.distractors: list[tuple[bytes, str]] = []
        self._known_cycle = 0
        self._distractor_cycle = 0

    # images -------------------------------------------------------------------------------

    def make_images(self) -> None:
        for number, seed in enumerate(KNOWN_SEEDS, start=1):
            entry_id = f"k{number:02d}"
            if number == len(KNOWN_SEEDS):  # small PNG, inlined as a data URI
                body = imagegen.encode(imagegen.textured_image(seed, *DATA_URI_SIZE), "PNG")
                ctype = "image/png"
            elif number == len(KNOWN_SEEDS) - 1:  # PNG served as text/plain
                body = imagegen.encode(imagegen.textured_image(seed, *WRONG_EXTENSION_SIZE), "PNG")
                ctype = "image/png"
            else:
                img = imagegen.textured_image(seed, *IMAGE_SIZE)
                body = imagegen.encode(img, "JPEG", quality=JPEG_QUALITY)
                ctype = "image/jpeg"
            self.known[entry_id] = KnownImage(entry_id, seed, body, ctype, reference_hashes(body))
        for seed in DISTRACTOR_SEEDS[:-1]:
            img = imagegen.textured_image(seed, *IMAGE_SIZE)
            self.distractors.append((imagegen.encode(img, "JPEG", quality=JPEG_QUALITY), "jpeg"))
        small = imagegen.textured_image(DISTRACTOR_SEEDS[-1], *DATA_URI_SIZE)
        self.distractors.append((imagegen.encode(small, "PNG"), "png"))
        for body, _ in self.distractors:
            self.distractor_sha256s.add(hashlib.sha256(body).hexdigest())

    def _next_known_jpeg(self) -> KnownImage:
        jpegs = [k for k in self.known.values() if k.content_type == "image/jpeg"]
        known = jpegs[self._known_cycle % len(jpegs)]
        self._known_cycle += 1
        return known

    def _next_distractor_jpeg(self) -> bytes:
        jpegs = [body for body, kind in self.distractors if kind == "jpeg"]
        body = jpegs[self._distractor_cycle % len(jpegs)]
        self._distractor_cycle += 1
        return body

    # serving -------------------------------------------------------------------------------

    def _serve(self, host: str, path: str, route: Route, body: bytes | None = None) -> str:
        routes = self.routes_a if host == "a" else self.routes_b
        if path in routes:
            raise ValueError(f"duplicate route {host}:{path}")
        routes[path] = route
        if body is not None:
            self.served.append(body)
        return (self.a if host == "a" else self.b) + path

    def known_at(
        self,
        host: str,
        path: str,
        embedding: str,
        page: str,
        known: KnownImage | None = None,
        content_type: str | None = None,
    ) -> str:
        """Serve a byte-exact copy of a known image at host:path and record it as planted."""
        known = known or self._next_known_jpeg()
        url = self._serve(
            host,
            path,
            image_response(known.body, content_type or known.content_type),
            known.body,
        )
        self.planted.append(
            Planted(
                url=url,
                page=page,
                embedding=embedding,
                transform="exact",
                entry_id=known.entry_id,
                final_url=url,
                sha256=known.hashes.sha256,
                pdq_distance=0,
                phash_distance=0,
            )
        )
        return url

    def distractor_at(self, host: str, path: str, body: bytes | None = None) -> str:
        body = body or self._next_distractor_jpeg()
        url = self._serve(host, path, image_response(body, "image/jpeg"), body)
        self.distractor_urls.append(url)
        return url

    def transformed_at(self, transform: str, known: KnownImage, page: str) -> str:
        source = imagegen.decode(known.body)
        fmt = "JPEG"
        opts: dict[str, object] = {"quality": JPEG_QUALITY}
        img: Image.Image = source
        if transform == "reencode_jpeg_q60":
            opts = {"quality": 60}
        elif transform == "resize_half":
            img = imagegen.resized(source, 0.5)
        elif transform == "png":
            fmt, opts = "PNG", {}
        elif transform == "webp":
            fmt, opts = "WEBP", {"quality": 80}
        elif transform == "gif":
            fmt, opts = "GIF", {}
        elif transform == "crop_4pct":
            img = imagegen.cropped(source, 0.04)
        elif transform == "watermark":
            img = imagegen.watermarked(source, "example.test")
        else:
            raise ValueError(f"unknown transform {transform!r}")
        body = imagegen.encode(img, fmt, **opts)
        ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}[fmt]
        url = self._serve(
            "a",
            f"/variants/{transform.replace('_', '-')}.{ext}",
            image_response(body, CONTENT_TYPES[fmt]),
            body,
        )
        got = reference_hashes(body)
        self.planted.append(
            Planted(
                url=url,
                page=page,
                embedding="img_src",
                transform=transform,
                entry_id=known.entry_id,
                final_url=url,
                sha256=got.sha256,
                pdq_distance=hamming_hex(got.pdq, known.hashes.pdq),
                phash_distance=hamming_hex(got.phash, known.hashes.phash),
            )
        )
        return url

    # pages -------------------------------------------------------------------------------

    def gallery(self) -> str:
        page = self.a + "/gallery.html"
        self.known_at("a", "/img/gallery/k-src.jpg", "img_src", page)
        d1 = self.distractor_at("a", "/img/gallery/d-src.jpg")
        self.known_at("a", "/img/gallery/k-srcset-2x.jpg", "img_srcset", page)
        d2 = self.distractor_at("a", "/img/gallery/d-srcset-1x.jpg")
        k3 = self.known_at("b", "/img/picture/k-source.jpg", "picture_source_srcset", page)
        d3 = self.distractor_at("b", "/img/picture/d-fallback.jpg")
        d4 = self.distractor_at("b", "/img/picture/d-source.jpg")
        body = (
            f"<img src='/img/gallery/k-src.jpg' alt='one'>\n"
            f"<img src='{d1}' alt='two'>\n"
            f"<img src='{d2}' srcset='/img/gallery/d-srcset-1x.jpg 1x, "
            f"/img/gallery/k-srcset-2x.jpg 2x' alt='three'>\n"
            f"<picture>\n<source srcset='{k3} 1x' type='image/jpeg' media='(min-width: 600px)'>\n"
            f"<source srcset='{d4}'>\n<img src='{d3}' alt='four'>\n</picture>\n"
        )
        self._serve("a", "/gallery.html", _doc("Gallery", body))
        return page

    def lazy(self) -> str:
        page = self.a + "/lazy.html"
        k1 = self.known_at("a", "/img/lazy/k-data-src.jpg", "data_src", page)
        k2 = self.known_at("b", "/img/lazy/k-data-srcset.jpg", "data_srcset", page)
        self.known_at("a", "/img/lazy/k-data-original.jpg", "data_original", page)
        k4 = self.known_at("a", "/img/lazy/k-data-lazy-src.jpg", "data_lazy_src", page)
        d1 = self.distractor_at("a", "/img/lazy/d-data-src.jpg")
        d2 = self.distractor_at("b", "/img/lazy/d-data-srcset.jpg")
        d3 = self.distractor_at("a", "/img/lazy/d-data-original.jpg")
        self.distractor_at("a", "/img/lazy/d-data-lazy-src.jpg")
        body = (
            f"<img class='lazy' data-src='{k1.removeprefix(self.a)}' alt='one'>\n"
            f"<img class='lazy' data-src='{d1}' alt='two'>\n"
            f"<img class='lazy' data-srcset='{d2} 480w, {k2} 960w' sizes='50vw' alt='three'>\n"
            f"<img class='lazy' data-original='img/lazy/k-data-original.jpg' alt='four'>\n"
            f"<img class='lazy' data-original='{d3}' alt='five'>\n"
            f"<img class='lazy' data-lazy-src='{k4}' alt='six'>\n"
            f"<img class='lazy' data-lazy-src='./img/lazy/d-data-lazy-src.jpg' alt='seven'>\n"
        )
        self._serve("a", "/lazy.html", _doc("Lazy images", body))
        return page

    def styles(self) -> str:
        page = self.a + "/styles.html"
        css_url = self.a + "/static/css/site.css"
        self.known_at("a", "/img/style/k-inline.jpg", "inline_style", page)
        self.known_at("b", "/img/style/k-block.jpg", "style_block", page)
        self.known_at("a", "/static/images/k-sheet.jpg", "linked_stylesheet", css_url)
        d1 = self.distractor_at("a", "/img/style/d-inline.jpg")
        d2 = self.distractor_at("a", "/img/style/d-block.jpg")
        self.distractor_at("a", "/static/images/d-sheet.jpg")
        css = (
            b"body { margin: 0; }\n"
            b'.banner { background-image: url("../images/k-sheet.jpg"); }\n'
            b".footer { background: #fff url('../images/d-sheet.jpg') repeat-x; }\n"
        )
        self._serve("a", "/static/css/site.css", Response(200, {"Content-Type": "text/css"}, css))
        head = (
            "<link rel='stylesheet' href='/static/css/site.css'>\n"
            "<style>\n"
            f".hero {{ background: url({self.b}/img/style/k-block.jpg) no-repeat; }}\n"
            f".side {{ background-image: url('{d2}'); }}\n"
            "</style>\n"
        )
        body = (
            "<div style=\"background-image: url('/img/style/k-inline.jpg')\">inline</div>\n"
            f"<div style='background: url({d1}) center'>inline too</div>\n"
            "<div class='hero'>hero</div><div class='side'>side</div>\n"
            "<div class='banner'>banner</div><div class='footer'>footer</div>\n"
        )
        self._serve("a", "/styles.html", _doc("Styles", body, head))
        return page

    def meta(self) -> tuple[str, str]:
        page = self.a + "/meta.html"
        k1 = self.known_at("b", "/img/meta/k-og.jpg", "og_image", page)
        k2 = self.known_at("a", "/img/meta/k-twitter.jpg", "twitter_image", page)
        self.known_at("a", "/img/meta/k-image-src.jpg", "link_image_src", page)
        head = (
            f"<meta property='og:image' content='{k1}'>\n"
            f"<meta name='twitter:image' content='{k2}'>\n"
            "<link rel='image_src' href='/img/meta/k-image-src.jpg'>\n"
        )
        self._serve("a", "/meta.html", _doc("Meta", "<p>Share me.</p>", head))
        other = self.a + "/meta-other.html"
        d1 = self.distractor_at("b", "/img/meta/d-og.jpg")
        d2 = self.distractor_at("a", "/img/meta/d-twitter.jpg")
        d3 = self.distractor_at("a", "/img/meta/d-image-src.jpg")
        head = (
            f"<meta property='og:image' content='{d1}'>\n"
            f"<meta name='twitter:image' content='{d2}'>\n"
            f"<link rel='image_src' href='{d3}'>\n"
        )
        self._serve("a", "/meta-other.html", _doc("More meta", "<p>Share me too.</p>", head))
        return page, other

    def links(self) -> str:
        page = self.a + "/links.html"
        inner = self.a + "/frames/inner.html"
        k1 = self.known_at("b", "/view/123", "a_href_image", page)
        d1 = self.distractor_at("b", "/view/456")
        k2 = self.known_at("a", "/img/frames/k-iframe.jpg", "iframe", inner)
        d2 = self.distractor_at("a", "/img/frames/d-iframe.jpg")
        self._serve(
            "a",
            "/frames/inner.html",
            _doc("Inner", f"<img src='{k2}' alt='in'>\n<img src='{d2}' alt='in too'>"),
        )
        body = (
            f"<p><a href='{k1}'>a photo</a> and <a href='{d1}'>another</a></p>\n"
            "<iframe src='/frames/inner.html' width='600' height='400'></iframe>\n"
        )
        self._serve("a", "/links.html", _doc("Links", body))
        return page

    def frames(self) -> str:
        page = self.a + "/frames.html"
        left = self.a + "/frames/left.html"
        k1 = self.known_at("a", "/img/frames/k-frame.jpg", "frame", left)
        d1 = self.distractor_at("a", "/img/frames/d-frame.jpg")
        self._serve("a", "/frames/left.html", _doc("Left", f"<img src='{k1}' alt='left'>"))
        self._serve("a", "/frames/right.html", _doc("Right", f"<img src='{d1}' alt='right'>"))
        frameset = html_page(
            "<!doctype html>\n<html><head><title>Frames</title></head>\n"
            "<frameset cols='50%,50%'>\n<frame src='/frames/left.html'>\n"
            "<frame src='frames/right.html'>\n</frameset>\n</html>\n"
        )
        self._serve("a", "/frames.html", frameset)
        return page

    def misc(self) -> str:
        page = self.a + "/misc.html"
        inline = self.known["k10"]
        self.served.append(inline.body)
        self.planted.append(
            Planted(
                url="data:",
                page=page,
                embedding="data_uri",
                transform="exact",
                entry_id=inline.entry_id,
                final_url="data:",
                sha256=inline.hashes.sha256,
                pdq_distance=0,
                phash_distance=0,
            )
        )
        d_inline = self.distractors[-1][0]
        self.served.append(d_inline)
        self.known_at(
            "a",
            "/x/photo.txt",
            "wrong_extension",
            page,
            known=self.known["k09"],
            content_type="text/plain",
        )
        self._serve(
            "a",
            "/x/notes.txt",
            Response(200, {"Content-Type": "text/plain"}, b"just some notes\n"),
        )
        # Redirect: /r/k-1 on A answers 302 with the image's address on B.
        target = self._next_known_jpeg()
        final = self._serve(
            "b", "/img/moved/k-target.jpg", image_response(target.body, "image/jpeg")
        )
        self.served.append(target.body)
        url = self._serve("a", "/r/k-1", redirect(final))
        self.planted.append(
            Planted(
                url=url,
                page=page,
                embedding="redirect",
                transform="exact",
                entry_id=target.entry_id,
                final_url=final,
                sha256=target.hashes.sha256,
                pdq_distance=0,
                phash_distance=0,
            )
        )
        d_final = self.distractor_at("b", "/img/moved/d-target.jpg")
        self._serve("a", "/r/d-1", redirect(d_final))

        def data_uri(body: bytes) -> str:
            return "data:image/png;base64," + base64.b64encode(body).decode()

        body = (
            f"<img src='{data_uri(inline.body)}' alt='inline'>\n"
            f"<img src='{data_uri(d_inline)}' alt='inline too'>\n"
            "<img src='/x/photo.txt' alt='odd name'>\n"
            "<p><a href='/x/notes.txt'>notes</a></p>\n"
            "<img src='/r/k-1' alt='moved'>\n<img src='/r/d-1' alt='moved too'>\n"
        )
        self._serve("a", "/misc.html", _doc("Miscellany", body))
        return page

    def deep(self) -> str:
        level1 = self.a + "/deep/level1.html"
        level2 = self.a + "/deep/level2.html"
        k1 = self.known_at("a", "/img/deep/k-deep.jpg", "deep_page", level2)
        d1 = self.distractor_at("a", "/img/deep/d-deep.jpg")
        d2 = self.distractor_at("a", "/img/deep/d-level1.jpg")
        self._serve(
            "a",
            "/deep/level1.html",
            _doc("Level 1", f"<img src='{d2}' alt='shallow'>\n<a href='level2.html'>deeper</a>"),
        )
        self._serve(
            "a",
            "/deep/level2.html",
            _doc("Level 2", f"<img src='{k1}' alt='deep'>\n<img src='{d1}' alt='deep too'>"),
        )
        return level1

    def variants(self) -> str:
        page = self.a + "/variants.html"
        imgs = []
        for transform in TRANSFORMS:
            url = self.transformed_at(transform, self._next_known_jpeg(), page)
            imgs.append(f"<img src='{url}' alt='{transform}'>")
        d1 = self.distractor_at("a", "/variants/d-1.jpg")
        imgs.append(f"<img src='{d1}' alt='other'>")
        self._serve("a", "/variants.html", _doc("Variants", "\n".join(imgs)))
        return page

    def hostile(self) -> dict[str, str]:
        truncated = imagegen.encode(imagegen.textured_image(4242, 256, 192), "JPEG", quality=85)
        truncated = truncated[: len(truncated) // 2]
        bomb = gzip_bomb()
        huge = huge_png()
        self.served.extend([truncated, huge])
        urls = {
            "gzip_bomb": self._serve(
                "a",
                "/bomb.html",
                Response(
                    200,
                    {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
                    bomb,
                ),
            ),
            "calendar": self.a + "/calendar/{}/{}".format(*CALENDAR_START),
            "redirect_loop": self._serve("a", "/loop/a", redirect(self.a + "/loop/b")),
            "endless": self._serve("a", "/endless", _endless),
            "slow": self._serve("a", "/slow", _slow),
            "huge_png": self._serve("a", "/huge.png", image_response(huge, "image/png")),
            "truncated_jpeg": self._serve(
                "a", "/broken.jpg", image_response(truncated, "image/jpeg")
            ),
            "html_as_jpeg": self._serve(
                "a",
                "/fake.jpg",
                Response(
                    200,
                    {"Content-Type": "image/jpeg"},
                    b"<!doctype html><html><body><p>not an image</p></body></html>\n",
                ),
            ),
            "missing_image": self.b + "/img/missing.jpg",
            "server_error": self._serve(
                "a",
                "/error500.html",
                Response(500, {"Content-Type": "text/html"}, b"<html><body>oops</body></html>\n"),
            ),
        }
        self._serve("a", "/loop/b", redirect(self.a + "/loop/a"))
        self._serve("a", "/calendar/*", _calendar(self.a))
        return urls

    def index(self, pages: list[str], hostile: Mapping[str, str]) -> None:
        links = "\n".join(f"<li><a href='{p.removeprefix(self.a)}'>{p}</a></li>" for p in pages)
        body = (
            "<p>Reported site (test fixture; generated textures only).</p>\n"
            f"<ul>\n{links}\n</ul>\n"
            "<h2>Odd corners</h2>\n<ul>\n"
            f"<li><a href='{hostile['gzip_bomb']}'>archive</a></li>\n"
            f"<li><a href='{hostile['calendar']}'>calendar</a></li>\n"
            f"<li><a href='{hostile['redirect_loop']}'>loop</a></li>\n"
            f"<li><a href='{hostile['endless']}'>endless</a></li>\n"
            f"<li><a href='{hostile['slow']}'>slow</a></li>\n"
            f"<li><a href='{hostile['server_error']}'>error</a></li>\n"
            "</ul>\n"
            f"<img src='{hostile['huge_png']}' alt='huge'>\n"
            f"<img src='{hostile['truncated_jpeg']}' alt='truncated'>\n"
            f"<img src='{hostile['html_as_jpeg']}' alt='fake'>\n"
            f"<img src='{hostile['missing_image']}' alt='missing'>\n"
        )
        self._serve("a", "/", _doc("Index", body))


def build_test_site(base_a: str, base_b: str) -> TestSite:
    """Render both hosts' routes for servers already listening at ``base_a`` and ``base_b``."""
    builder = _Builder(base_a.rstrip("/"), base_b.rstrip("/"))
    builder.make_images()
    pages = [
        builder.gallery(),
        builder.lazy(),
        builder.styles(),
        *builder.meta(),
        builder.links(),
        builder.frames(),
        builder.misc(),
        builder.deep(),
        builder.variants(),
    ]
    hostile = builder.hostile()
    builder.index(pages, hostile)
    rows = [KNOWN_LIST_HEADER]
    for known in builder.known.values():
        rows.extend(known.hashes.rows(known.entry_id, KNOWN_CATEGORY))
    return TestSite(
        base_a=builder.a,
        base_b=builder.b,
        seed_url=builder.a + "/",
        routes_a=builder.routes_a,
        routes_b=builder.routes_b,
        known=builder.known,
        known_csv="\n".join(rows) + "\n",
        planted=builder.planted,
        distractor_urls=builder.distractor_urls,
        distractor_sha256s=builder.distractor_sha256s,
        served_images=builder.served,
        hostile=hostile,
        pages=[builder.a + "/", *pages],
    )


#: The test site and the servers serving it.
RunningTestSite = LinkedSite[TestSite]
