"""Pages built to stall or blind a crawler, end to end: deep nesting, an element with 200 000
attributes, and a page over its CPU budget; the crawl finds what a browser would show, drops the
page it cannot read in time, counts it, and goes on."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, html_page, image_response, serve
from matchers.digest import digest_bytes
from tests.helpers import HOST_A, run_cli

#: CPU seconds a page may take in this crawl: the deep and wide pages take about 0.1 s, the
#: page of 200 000 images about 3 s.
PARSE_BUDGET = 0.8


def test_hostile_pages_neither_hide_images_nor_stall_the_crawl(
    env: dict[str, str], tmp_path: Path
) -> None:
    nested_png = encode(textured_image(611), "PNG")
    wide_png = encode(textured_image(612), "PNG")
    attributes = " ".join(f'data-x{i}="v"' for i in range(200_000))
    flood = "".join(f"<img src='/flood/{i}.png'>" for i in range(200_000))
    flood_requests: list[str] = []

    def flood_image(exchange: Exchange) -> None:
        flood_requests.append(exchange.path)
        exchange.start(404, {"Content-Length": "0"})

    with serve(host=HOST_A) as site:
        site.mount(
            {
                "/": html_page(
                    "<a href='/nested'>n</a><a href='/wide'>w</a><a href='/flood'>f</a>"
                ),
                "/nested": html_page("<div>" * 2046 + "<img src='/nested.png'>"),
                "/wide": html_page(f"<div {attributes}></div><img src='/wide.png'>"),
                "/flood": html_page(flood),
                "/flood/*": flood_image,
                "/nested.png": image_response(nested_png, "image/png"),
                "/wide.png": image_response(wide_png, "image/png"),
            }
        )
        known = tmp_path / "known.csv"
        rows = [f"sha256,{digest_bytes(body).sha256},{name}" for name, body in
                [("nested", nested_png), ("wide", wide_png)]]  # fmt: skip
        known.write_text("algorithm,hash,id\n" + "\n".join(rows) + "\n")
        assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-network",
                f"{HOST_A}/32",
                "--json",
                "--set",
                f"CRAWL_PARSE_TIMEOUT={PARSE_BUDGET}",
                "--set",
                "AUTOTHROTTLE_ENABLED=false",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert summary["parse_timeouts"] == 1, (summary, crawl.stderr[-3000:])
    assert summary["pages"] == 4
    assert "page " + site.url("/flood") + " dropped" in crawl.stderr
    assert flood_requests == []
    hits = json.loads(run_cli(["hits", "list", "--json"], env).stdout)
    assert sorted(h["entry"] for h in hits) == ["nested", "wide"]
