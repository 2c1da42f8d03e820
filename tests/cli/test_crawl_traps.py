"""Crawler traps in a real crawl through the CLI: a loopback site of galleries next to an
endless calendar, a session-id loop, a faceted search and a repeating path. The crawl must
reach every gallery and image while spending at most a tenth of its requests on the traps."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, Handler, Response, html_page, image_response, serve
from tests.helpers import HOST_A, ok_json, run_cli

GALLERIES = 40
PER_LISTING = 5
IMAGES_PER_GALLERY = 3
FACETS = {
    "color": ("red", "green", "blue", "black"),
    "size": ("s", "m", "l", "xl"),
    "sort": ("price", "name", "new"),
}
TRAPS = ("/calendar", "/shop", "/search", "/a/")


def _send(exchange: Exchange, response: Response) -> None:
    exchange.start(response.status, {**response.headers, "Content-Length": str(len(response.body))})
    exchange.write(response.body)


def _site(requests: list[str]) -> dict[str, Handler | Response]:
    lock = threading.Lock()
    pictures = {
        f"/img/{g}-{i}.png": encode(textured_image(9000 + g * 10 + i, 64, 48), "PNG")
        for g in range(1, GALLERIES + 1)
        for i in range(IMAGES_PER_GALLERY)
    }

    def counted(route: Handler) -> Handler:
        def handle(exchange: Exchange) -> None:
            with lock:
                requests.append(exchange.target)
            route(exchange)

        return handle

    def static(response: Response) -> Handler:
        return counted(lambda exchange: _send(exchange, response))

    def listing(exchange: Exchange) -> None:
        page = int(dict(parse_qsl(exchange.query)).get("page", "1"))
        first = (page - 1) * PER_LISTING + 1
        links = "".join(
            f"<a href='/gallery/{g}'>gallery {g}</a>"
            for g in range(first, min(first + PER_LISTING, GALLERIES + 1))
        )
        if first + PER_LISTING <= GALLERIES:
            links += f"<a href='/galleries?page={page + 1}'>next</a>"
        _send(exchange, html_page(links))

    def gallery(exchange: Exchange) -> None:
        number = int(exchange.path.rsplit("/", 1)[1])
        images = "".join(f"<img src='/img/{number}-{i}.png'>" for i in range(IMAGES_PER_GALLERY))
        _send(exchange, html_page(images + "<a href='/'>home</a>"))

    def calendar(exchange: Exchange) -> None:
        year, month = map(int, dict(parse_qsl(exchange.query))["month"].split("-"))
        before = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
        after = f"{year + (month == 12)}-{month % 12 + 1:02d}"
        links = f"<a href='/calendar?month={before}'>prev</a>"
        _send(exchange, html_page(links + f"<a href='/calendar?month={after}'>next</a>"))

    def shop(exchange: Exchange) -> None:
        # Every page links to the shop again under a fresh session id.
        fresh = uuid.uuid4().hex
        links = f"<a href='/shop?sid={fresh}'>shop</a><a href='/shop/cart?sid={fresh}'>cart</a>"
        _send(exchange, html_page(links))

    def search(exchange: Exchange) -> None:
        chosen = dict(parse_qsl(exchange.query))
        links = "".join(
            f"<a href='/search?{urlencode({**chosen, name: value})}'>{value}</a>"
            for name, values in FACETS.items()
            for value in values
            if chosen.get(name) != value
        )
        # Results: pictures that the galleries show too.
        _send(exchange, html_page("<img src='/img/1-0.png'><img src='/img/2-0.png'>" + links))

    def loop(exchange: Exchange) -> None:
        _send(exchange, html_page(f"<a href='{exchange.path}b/a/'>deeper</a>"))

    home = (
        "<a href='/galleries?page=1'>galleries</a><a href='/about'>about</a>"
        "<a href='/calendar?month=2026-12'>calendar</a>"
        f"<a href='/shop?sid={uuid.uuid4().hex}'>shop</a>"
        "<a href='/search?color=red'>search</a><a href='/a/'>archive</a>"
    )
    routes: dict[str, Handler | Response] = {
        "/": static(html_page(home)),
        "/about": static(html_page("<p>about us</p><a href='/'>home</a>")),
        "/galleries": counted(listing),
        "/gallery/*": counted(gallery),
        "/calendar": counted(calendar),
        "/shop": counted(shop),
        "/shop/cart": counted(shop),
        "/search": counted(search),
        "/a/*": counted(loop),
    }
    routes.update(
        {path: static(image_response(body, "image/png")) for path, body in pictures.items()}
    )
    return routes


def test_the_crawl_reaches_all_content_and_spends_little_on_traps(
    env: dict[str, str], tmp_path: Path
) -> None:
    requests: list[str] = []
    with serve(_site(requests), host=HOST_A) as site:
        crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--depth", "12"], env)
    assert crawl.returncode == 0, crawl.stderr
    (run,) = ok_json(["runs", "list"], env)
    stats = ok_json(["runs", "show", run["id"]], env)["crawl_stats"]
    assert stats["crawl/images"] == GALLERIES * IMAGES_PER_GALLERY
    fetched = set(requests)
    assert {f"/gallery/{g}" for g in range(1, GALLERIES + 1)} <= fetched
    on_traps = [r for r in requests if r.startswith(TRAPS)]
    assert len(on_traps) <= len(requests) / 10, (len(on_traps), len(requests), on_traps)
    # Each trap was met and cut, and the run record says which templates.
    assert stats["crawl/trap_pages_skipped/session_id"] >= 1
    assert stats["crawl/trap_pages_skipped/repeated_segments"] >= 1
    assert stats["crawl/trap_pages_skipped/template_budget"] >= 1
    cut = {
        key.removeprefix("crawl/trap_template/")
        for key, count in stats.items()
        if "trap_template/" in key and count > 0
    }
    # Galleries were held at first (five a listing, two free), released as they proved
    # productive: none is left cut.
    assert not any("/gallery/" in template for template in cut)
    host = "127.0.0.2"
    assert f"{host}/calendar?month" in cut
    assert any(t.startswith(f"{host}/search?") for t in cut)
    assert any(t.startswith(f"{host}/a/") for t in cut)
    # The summary table names the count and the templates cut the most.
    assert "trap pages skipped" in crawl.stdout and f"{host}/" in crawl.stdout


def test_the_guard_can_be_turned_off(env: dict[str, str], tmp_path: Path) -> None:
    requests: list[str] = []
    with serve(_site(requests), host=HOST_A) as site:
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                "--allow-private-networks",
                "--depth",
                "4",
                "--set",
                "CRAWL_TRAP_GUARD=0",
                "--json",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    summary = json.loads(crawl.stdout)
    assert (summary["trap_pages_skipped"], summary["trap_templates"]) == (0, {})
    # Without it, the calendar is walked to the depth limit (both ways).
    months = {r for r in requests if r.startswith("/calendar")}
    assert len(months) >= 6


# -- hits steer the crawl ---------------------------------------------------------------------


def _known(tmp_path: Path, env: dict[str, str], bodies: list[bytes]) -> None:
    known = tmp_path / "known.csv"
    rows = "".join(f"sha256,{hashlib.sha256(b).hexdigest()},k{n}\n" for n, b in enumerate(bodies))
    known.write_text("algorithm,hash,id\n" + rows)
    assert run_cli(["hashes", "import", str(known), "--list", "k"], env).returncode == 0


def test_a_hit_lets_the_crawl_follow_its_page_s_links_further(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Depth limit 1; hits at depths 1 and 3 carry the crawl to a hit at depth 4, three
    levels below the limit. Without hit-driven depth only the first is found."""
    pictures = [encode(textured_image(9500 + n, 64, 48), "PNG") for n in range(4)]
    _known(tmp_path, env, pictures[:3])
    chain = ["/s/1", "/s/1/2", "/s/1/2/3", "/s/1/2/3/4", "/s/1/2/3/4/5"]
    shown = {"/s/1": 0, "/s/1/2/3": 1, "/s/1/2/3/4": 2}
    routes: dict[str, Handler | Response] = {"/": html_page("<a href='/s/1'>start</a>")}
    for here, below in zip(chain, [*chain[1:], None], strict=True):
        image = f"<img src='/img/{shown[here]}.png'>" if here in shown else ""
        routes[here] = html_page(image + (f"<a href='{below}'>more</a>" if below else ""))
    routes.update({f"/img/{n}.png": image_response(b, "image/png") for n, b in enumerate(pictures)})
    found = {}
    with serve(routes, host=HOST_A) as site:
        for hit_depth in ("0", "2"):
            args = ["--depth", "1", "--hit-depth", hit_depth, "--json"]
            crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", *args], env)
            assert crawl.returncode == 0, crawl.stderr
            summary = json.loads(crawl.stdout)
            hits = ok_json(["hits", "list"], env)
            found[hit_depth] = sorted(h["entry"] for h in hits)  # the first crawl's and since
            if hit_depth == "2":
                assert summary["hit_sections"] == {"127.0.0.2/s": 3}
    assert found == {"0": ["k0"], "2": ["k0", "k1", "k2"]}


def test_a_seed_that_shows_no_image_is_given_up(env: dict[str, str], tmp_path: Path) -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    routes: dict[str, Handler | Response] = {
        "/": html_page("<a href='/alpha'>next</a>"),
        "/pics": html_page("<img src='/p.png'><a href='/pics/more'>more</a>"),
        "/pics/more": html_page("<p>the end</p>"),
        "/p.png": image_response(encode(textured_image(9600, 64, 48), "PNG"), "image/png"),
    }
    for word, after in zip(words, [*words[1:], None], strict=True):
        routes[f"/{word}"] = html_page(f"<a href='/{after}'>next</a>" if after else "end")
    with serve(routes, host=HOST_A) as site:
        crawl = run_cli(
            [
                "crawl",
                site.url("/"),
                site.url("/pics"),
                "--allow-private-networks",
                "--depth",
                "20",
                "--set",
                "CRAWL_SEED_GIVE_UP_PAGES=4",
                "--json",
            ],
            env,
        )
    assert crawl.returncode == 0, crawl.stderr
    stats = ok_json(["runs", "show", json.loads(crawl.stdout)["crawl"]], env)["crawl_stats"]
    # The first seed: itself and three pages, then no further page; the second seed whole.
    assert stats["crawl/seeds_given_up"] == 1
    assert stats["crawl/pages"] == 4 + 2
