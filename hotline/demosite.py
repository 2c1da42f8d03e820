"""The benign demo site that ``hotline demo`` crawls (served by :mod:`hotline.loopback`).

:func:`build_demo_site` makes a handful of pages with about a dozen generated textures
embedded in the usual ways (``img``, ``srcset``, ``picture``, lazy-loading attributes, CSS
backgrounds, ``og:image``); four of them are "known" reference images whose hashes make up the
demo's known list, and a resized copy of one is found by perceptual matching only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from hotline import imagegen
from hotline.loopback import Response, html_page, image_response
from matchers.digest import digest_bytes

KNOWN_LIST_HEADER = "algorithm,hash,id,category"
DEMO_CATEGORY = "demo"


@dataclass
class DemoSite:
    """The demo's pages (path -> response), known list CSV, and which paths serve known images."""

    pages: dict[str, Response]
    known_csv: str
    known_urls: dict[str, str]


def _page(title: str, body: str, head: str = "") -> Response:
    return html_page(
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{head}</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def build_demo_site(seed: int = 7) -> DemoSite:
    """A small benign site: 4 pages, 12 textures, 4 of them known (plus one resized copy)."""
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in rng.choice(1_000_000, size=12, replace=False)]
    jpeg = [
        imagegen.encode(imagegen.textured_image(s, 480, 360), "JPEG", quality=88) for s in seeds
    ]
    pages: dict[str, Response] = {}
    for index, body in enumerate(jpeg, start=1):
        pages[f"/images/photo-{index:02d}.jpg"] = image_response(body, "image/jpeg")

    # Images 1, 4, 7 and 10 are the known reference images; the rest are ordinary content.
    known_indexes = (1, 4, 7, 10)
    rows = [KNOWN_LIST_HEADER]
    known_urls: dict[str, str] = {}
    for number, index in enumerate(known_indexes, start=1):
        entry_id = f"demo-{number:03d}"
        digest = digest_bytes(jpeg[index - 1])
        rows.extend(
            f"{algorithm},{value},{entry_id},{DEMO_CATEGORY}"
            for algorithm, value in digest.hashes().items()
        )
        known_urls[f"/images/photo-{index:02d}.jpg"] = entry_id
    # A smaller, re-encoded copy of the first known image: found by perceptual matching only.
    copy = imagegen.resized(imagegen.decode(jpeg[0]), 0.75)
    pages["/media/thumb-a.webp"] = image_response(
        imagegen.encode(copy, "WEBP", quality=75), "image/webp"
    )
    known_urls["/media/thumb-a.webp"] = known_urls["/images/photo-01.jpg"]

    pages["/"] = _page(
        "Demo gallery",
        "<p>Benign generated textures for trying out the crawler.</p>\n"
        "<ul><li><a href='/gallery.html'>Gallery</a></li>"
        "<li><a href='/lazy.html'>Lazy-loaded</a></li>"
        "<li><a href='/styled.html'>Styled</a></li></ul>\n"
        "<img src='/images/photo-01.jpg' alt='texture 1'>\n"
        "<img src='/images/photo-02.jpg' alt='texture 2'>",
        head="<meta property='og:image' content='/images/photo-03.jpg'>",
    )
    pages["/gallery.html"] = _page(
        "Gallery",
        "<img src='/images/photo-05.jpg' "
        "srcset='/images/photo-05.jpg 1x, /images/photo-04.jpg 2x' alt='texture 4'>\n"
        "<picture><source srcset='/media/thumb-a.webp' type='image/webp'>"
        "<img src='/images/photo-06.jpg' alt='texture 6'></picture>\n"
        "<p><a href='/'>Home</a></p>",
    )
    pages["/lazy.html"] = _page(
        "Lazy-loaded",
        "<img data-src='/images/photo-07.jpg' src='/images/photo-08.jpg' alt='texture 7'>\n"
        "<img data-src='/images/photo-09.jpg' alt='texture 9'>\n"
        "<p><a href='/'>Home</a></p>",
    )
    pages["/styled.html"] = _page(
        "Styled",
        "<div style=\"background-image:url('/images/photo-10.jpg')\">banner</div>\n"
        "<div class='hero'>hero</div>\n"
        "<img src='/images/photo-12.jpg' alt='texture 12'>\n"
        "<p><a href='/'>Home</a></p>",
        head="<style>.hero { background: url(/images/photo-11.jpg) no-repeat; }</style>",
    )
    return DemoSite(pages=pages, known_csv="\n".join(rows) + "\n", known_urls=known_urls)
