"""Image discovery on hand-built pages, offline (no crawler, no network)."""

from scrapy.http import HtmlResponse

from crawler.discovery import clean_url, css_urls, extract, extract_css, parse_srcset

PAGE_URL = "http://site.example/dir/page.html"

PAGE = b"""<!doctype html><html><head>
<meta property="og:image" content="/og.jpg">
<meta name="twitter:image" content="http://cdn.example/tw.png">
<link rel="image_src" href="imgsrc.jpg">
<link rel="stylesheet" href="/css/site.css">
<style>
  .hero { background: url("/hero.webp") } /* url(/commented.png) */
  @import "more.css";
</style>
</head><body>
<img src="a.jpg" srcset="a-1x.jpg 1x, a-2x.jpg 2x">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="">
<picture><source srcset="p.webp 100w,p-big.webp 400w" type="image/webp">
<source srcset="p2.avif" type="image/avif"><img src="p.jpg"></picture>
<img class="lazy" data-src="lazy.jpg" data-srcset="lazy-1.jpg 1x, lazy-2.jpg 2x">
<img data-original="orig.jpg"><img data-lazy-src="lazysrc.jpg">
<div data-bg="/bg.jpg"></div>
<div style="background-image: url('inline.png')">x</div>
<a href="/next.html">next</a><a href="http://img.example/view/1">view</a>
<a href="mailto:x@y">mail</a><a href="javascript:void(0)">js</a><a href="#top">top</a>
<iframe src="/frame.html"></iframe>
<video poster="poster.jpg"><source src="movie.mp4"></video>
</body></html>"""


def _response(body: bytes = PAGE) -> HtmlResponse:
    return HtmlResponse(url=PAGE_URL, body=body, encoding="utf-8")


def test_every_embedding_is_found_with_absolute_urls() -> None:
    refs = extract(_response())
    found = {r.url: r.embedding for r in refs.images}
    base = "http://site.example"
    expected = {
        f"{base}/og.jpg": "og_image",
        "http://cdn.example/tw.png": "twitter_image",
        f"{base}/dir/imgsrc.jpg": "link_image_src",
        f"{base}/hero.webp": "style_block",
        f"{base}/dir/a.jpg": "img_src",
        f"{base}/dir/a-1x.jpg": "img_srcset",
        f"{base}/dir/a-2x.jpg": "img_srcset",
        f"{base}/dir/p.webp": "picture_source_srcset",
        f"{base}/dir/p-big.webp": "picture_source_srcset",
        f"{base}/dir/p.jpg": "img_src",
        f"{base}/dir/p2.avif": "picture_source_srcset",
        f"{base}/dir/lazy.jpg": "data_src",
        f"{base}/dir/lazy-1.jpg": "img_data_srcset",
        f"{base}/dir/lazy-2.jpg": "img_data_srcset",
        f"{base}/dir/orig.jpg": "data_original",
        f"{base}/dir/lazysrc.jpg": "data_lazy_src",
        f"{base}/bg.jpg": "data_bg",
        f"{base}/dir/inline.png": "inline_style",
        f"{base}/dir/poster.jpg": "video_poster",
    }
    for url, embedding in expected.items():
        assert found.get(url) == embedding, url
    data = [r for r in refs.images if r.is_data]
    assert len(data) == 1 and data[0].url.startswith("data:image/gif;base64,")
    assert f"{base}/commented.png" not in found
    assert not any(u.endswith("movie.mp4") for u in found)


def test_links_frames_and_stylesheets() -> None:
    refs = extract(_response())
    assert refs.links == [
        "http://site.example/next.html",
        "http://img.example/view/1",
        "http://site.example/dir/page.html",
    ]
    assert refs.frames == ["http://site.example/frame.html"]
    assert refs.stylesheets == [
        "http://site.example/css/site.css",
        "http://site.example/dir/more.css",
    ]


def test_base_href_is_honoured() -> None:
    body = (
        b"<html><head><base href='http://other.example/root/'></head>"
        b"<body><img src='x.png'></body></html>"
    )
    refs = extract(_response(body))
    assert [r.url for r in refs.images] == ["http://other.example/root/x.png"]


def test_linked_stylesheet_urls_resolve_against_the_stylesheet() -> None:
    css = (
        "@import url(deeper.css); .a{background:url(../img/bg.png)} "
        ".b{background:url(data:image/png;base64,AAAA)}"
    )
    images, imports = extract_css(css, "http://site.example/css/site.css")
    assert [i.url for i in images if not i.is_data] == ["http://site.example/img/bg.png"]
    assert all(i.embedding == "linked_stylesheet" for i in images)
    assert imports == ["http://site.example/css/deeper.css"]


def test_srcset_and_css_parsing_edge_cases() -> None:
    assert parse_srcset("a.jpg 1x,b.jpg 2x") == ["a.jpg", "b.jpg"]
    assert parse_srcset(" a.jpg 1x, b,c.jpg 2x ") == ["a.jpg", "b,c.jpg"]
    assert parse_srcset("a.jpg, b.jpg 2x") == ["a.jpg", "b.jpg"]
    assert parse_srcset("a.jpg,b.jpg 2x") == ["a.jpg,b.jpg"]  # one URL, as browsers read it
    assert parse_srcset("data:image/png;base64,AAAA 1x, z.png (x, y) 2x, w.png") == [
        "data:image/png;base64,AAAA",
        "z.png",
        "w.png",
    ]
    images, imports = css_urls("x{background:url( 'q.png' )} y{background:url(r.gif)}")
    assert images == ["q.png", "r.gif"] and imports == []


def test_media_files_are_found_once_each_and_not_as_images() -> None:
    body = b"""<html><body>
      <video src='/v/a.mp4' poster='/v/a.jpg'><source src='/v/a.webm' type='video/webm'></video>
      <video><source src='/v/a.mp4'><source src='data:video/mp4;base64,AAAA'></video>
      <audio src='/s/a.mp3'><source src='/s/a.ogg'></audio>
      <embed src='/e/player'><object data='/o/doc.pdf'></object>
      <object data='/v/a.jpg'></object>
      <video src='javascript:alert(1)'></video>
    </body></html>"""
    refs = extract(HtmlResponse(url="http://site.example/p/", body=body, encoding="utf-8"))
    base = "http://site.example"
    assert [(r.url, r.embedding) for r in refs.media] == [
        (f"{base}/v/a.mp4", "video_src"),
        (f"{base}/v/a.webm", "video_source"),
        (f"{base}/s/a.mp3", "audio_src"),
        (f"{base}/s/a.ogg", "audio_source"),
        (f"{base}/e/player", "embed_src"),
        (f"{base}/o/doc.pdf", "object_data"),
    ]
    # The poster is an image; an object pointing at it is not fetched twice.
    assert [(r.url, r.embedding) for r in refs.images] == [(f"{base}/v/a.jpg", "video_poster")]


def test_references_to_host_names_dns_cannot_hold_are_dropped() -> None:
    """Twisted's resolver logged a traceback for each (UnicodeError from the IDNA codec)."""
    base = "http://site.example/page"
    long_label = "a" * 64
    for bad in (
        "http://x..y.org/p",
        f"http://{long_label}.org/i.png",
        "http://" + "b." * 130 + "org/j.png",
    ):
        assert clean_url(bad, base) is None
    assert clean_url("http://bücher.de./x.png", base) == "http://bücher.de./x.png"
    assert clean_url("http://[::1]:8080/x", base) == "http://[::1]:8080/x"
    html = f"<img src='http://{long_label}.org/i.png'><a href='/ok'>ok</a>".encode()
    refs = extract(HtmlResponse(url=base, body=html, encoding="utf-8"))
    assert (refs.images, refs.links) == ([], ["http://site.example/ok"])
