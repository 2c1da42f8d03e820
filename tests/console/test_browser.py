"""The console in a real browser: Debian's chromium driven by Playwright, against
``hotline serve`` as an analyst runs it (a subprocess on 127.0.0.1), crawls launched by the
console itself (``hotline crawl --run`` processes) of a benign loopback site on 127.0.0.2,
and the real notifier.

The analyst logs in, reports two URLs, watches the run finish on its page, sees the hits,
confirms the near miss in the review queue and sees its notice appear, downloads the hits
as CSV, and logs out. On the way the test proves that a form posted without its CSRF token
is refused, that a viewer cannot decide a review item, and that the browser never requests
anything from the reported site (every request it made is counted, and the site counts every
request that was not the crawler's). Afterwards no Redis value, log or file holds a byte
window of a served image. Screenshots of each page go to the test's temporary directory.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from argon2 import PasswordHasher

from hotline.imagegen import cropped, encode, textured_image, watermarked
from hotline.loopback import Exchange, RunningServer, html_page, serve
from matchers.algorithms import hamming
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry, Thresholds
from store.accounts import Accounts
from store.keys import Keys
from store.lists import EVERY_CATEGORY, ClassificationMap, ListStore
from tests.builders import IDENTITY_TOML
from tests.helpers import HOST_A, HOTLINE, free_port, hotline_env, run_cli, wait_for
from tests.nocontent import WindowFinder

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Flags for a headless chromium on a machine with no network but loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PASSWORD = "correct horse battery"
#: Milliseconds the browser waits for a page or an element (a crawl included).
UI_TIMEOUT = 120_000
SERVE_TIMEOUT = 60.0
#: Every page an analyst can open (the users page is for admins).
PAGES = (
    "/",
    "/report",
    "/runs",
    "/schedules",
    "/hits",
    "/review",
    "/notices",
    "/providers",
    "/lists",
    "/audit",
)


@dataclass
class Site:
    """The reported site: two pages, two known images and a near copy of one of them. Every
    request whose User-Agent is not the crawler's is kept (a browser's would be)."""

    server: RunningServer
    known: list[bytes]
    copy: bytes
    foreign: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.server.url(path)


def _near_copy() -> tuple[bytes, bytes, bytes]:
    first = textured_image(4101)
    known_a = encode(first, "JPEG", quality=92)
    copy = encode(cropped(watermarked(first, "sample"), 0.02), "JPEG", quality=80)
    known_b = encode(textured_image(4102), "JPEG", quality=92)
    return known_a, known_b, copy


@pytest.fixture
def site() -> Iterator[Site]:
    known_a, known_b, copy = _near_copy()
    holder: dict[str, Site] = {}

    def image(body: bytes):
        def handler(exchange: Exchange) -> None:
            agent = exchange.headers.get("User-Agent", "")
            if "HeadlessChrome" in agent:
                with holder["site"].lock:
                    holder["site"].foreign.append(exchange.path)
            exchange.start(200, {"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            exchange.write(body)

        return handler

    routes = {
        "/one.html": html_page("<h1>one</h1><img src='/a.jpg'><img src='/copy.jpg'>"),
        "/two.html": html_page("<h1>two</h1><img src='/b.jpg'>"),
        "/a.jpg": image(known_a),
        "/b.jpg": image(known_b),
        "/copy.jpg": image(copy),
    }
    with serve(routes, host=HOST_A) as server:
        holder["site"] = Site(server, [known_a, known_b], copy)
        yield holder["site"]


@dataclass
class Served:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path


def _store_list(client: redis.Redis, keys: Keys, site: Site) -> None:
    """The known list: both known images; thresholds just below the copy's distances, so
    the copy is a near miss (review), not a hit."""
    k, c = digest_bytes(site.known[0]), digest_bytes(site.copy)
    assert k.pdq and c.pdq and k.phash and c.phash
    pdq, phash = hamming(k.pdq, c.pdq), hamming(k.phash, c.phash)
    assert pdq > 0 and phash > 0
    entries = []
    for number, body in enumerate(site.known, start=1):
        d = digest_bytes(body)
        assert d.pdq and d.phash
        for algorithm, value in (("sha256", d.sha256), ("pdq", d.pdq), ("phash", d.phash)):
            entries.append(ListEntry(algorithm, value, f"e{number}", "test"))
    thresholds = Thresholds(pdq_confirm=pdq - 1, phash_confirm=phash - 1)
    ListStore(client, keys).save(
        HashList("known", entries, thresholds),
        classification=ClassificationMap({EVERY_CATEGORY: "baseline"}),
    )


@pytest.fixture
def served(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path, site: Site
) -> Iterator[Served]:
    config = tmp_path / "hotline.toml"
    config.write_text(IDENTITY_TOML + '[rdap]\nurl = ""\n', encoding="utf-8")
    data_dir = tmp_path / "data"
    env = hotline_env(
        HOTLINE_REDIS_URL=redis_url,
        HOTLINE_KEY_PREFIX=redis_prefix,
        HOTLINE_DATA_DIR=str(data_dir),
        HOTLINE_CONFIG=str(config),
        HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
    )
    keys = Keys(redis_prefix)
    _store_list(redis_client, keys, site)
    accounts = Accounts(
        redis_client, keys, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    accounts.add_user("ana", "analyst", PASSWORD, actor="admin@test")
    accounts.add_user("vic", "viewer", PASSWORD, actor="admin@test")
    port = free_port("127.0.0.1")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*HOTLINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"hotline serve exited: {log.read_text()}")
        try:
            import httpx

            return httpx.get(base + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, "the console to answer", timeout=SERVE_TIMEOUT)
        yield Served(base, env, process, log, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run scripts/bootstrap --test", pytrace=False)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _log_in(page, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")


def test_an_analyst_reports_decides_and_exports_in_a_real_browser(
    served: Served,
    site: Site,
    browser,
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_prefix: str,
) -> None:
    expect = playwright_api.expect
    shots = tmp_path / "screenshots"
    shots.mkdir()
    context = browser.new_context(accept_downloads=True)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    base = served.base

    _log_in(page, base, "ana")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # Report two URLs; the run page follows the crawl live until it ends.
    page.get_by_role("link", name="Report URLs").click()
    page.get_by_label("URLs").fill(site.url("/one.html") + "\n" + site.url("/two.html"))
    page.get_by_role("button", name="Start the crawl").click()
    expect(page.get_by_role("status")).to_contain_text("started with 2 URLs")
    page.screenshot(path=str(shots / "run-started.png"), full_page=True)
    expect(page.locator('[data-live="status"]')).to_have_text("finished", timeout=UI_TIMEOUT)
    hits_table = page.locator("table.data").last
    expect(hits_table.locator("tbody tr")).to_have_count(2)
    expect(hits_table).to_contain_text(site.url("/a.jpg"))
    expect(hits_table).to_contain_text(site.url("/b.jpg"))
    page.screenshot(path=str(shots / "run-finished.png"), full_page=True)

    # The near miss waits in the review queue; a form without its CSRF token is refused.
    page.get_by_role("link", name="Review", exact=True).click()
    expect(page.locator("table.data tbody tr")).to_have_count(1)
    page.locator("table.data tbody a").first.click()
    item_url = page.url
    forged = page.request.post(item_url, form={"decision": "confirm", "reason": "forged"})
    assert forged.status == 403
    page.screenshot(path=str(shots / "review.png"), full_page=True)
    page.get_by_label("Reason").fill("the same picture, cropped and watermarked")
    page.get_by_role("button", name="Confirm: send a notice").click()
    expect(page.get_by_role("status")).to_contain_text("confirmed by analyst@ana")

    # The notifier sends (prepares) a notice for each of the three hits.
    notified = run_cli(["notifier", "--once"], served.env)
    assert notified.returncode == 0, notified.stderr
    page.get_by_role("link", name="Notices").click()
    notices = page.locator("table.data tbody tr")
    expect(notices).to_have_count(3)
    expect(page.locator("table.data")).to_contain_text(site.url("/copy.jpg"))
    page.screenshot(path=str(shots / "notices.png"), full_page=True)
    page.get_by_role("link", name="Providers").click()
    expect(page.locator("figure.chart svg")).to_have_count(3)
    page.screenshot(path=str(shots / "providers.png"), full_page=True)

    # The hits, downloaded as CSV.
    page.get_by_role("link", name="Hits", exact=True).click()
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert sorted(r["url"] for r in rows) == sorted(
        site.url(p) for p in ("/a.jpg", "/b.jpg", "/copy.jpg")
    )
    assert {r["sha256"] for r in rows} == {digest_bytes(b).sha256 for b in (*site.known, site.copy)}
    page.screenshot(path=str(shots / "hits.png"), full_page=True)
    for page_path in PAGES:
        page.goto(base + page_path)
        expect(page.locator("main h1").first).to_be_visible()
        page.screenshot(
            path=str(shots / f"page-{page_path.strip('/') or 'overview'}.png"), full_page=True
        )

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(base + "/login")
    page.goto(base + "/hits")
    page.wait_for_url(base + "/login?next=%2Fhits")

    # A viewer sees the review item but can neither find nor post a decision.
    viewer_context = browser.new_context()
    viewer_context.on("request", lambda request: requested.append(request.url))
    viewer = viewer_context.new_page()
    viewer.set_default_timeout(UI_TIMEOUT)
    _log_in(viewer, base, "vic")
    viewer.goto(item_url)
    expect(viewer.locator("#decision")).to_contain_text("confirmed by analyst@ana")
    expect(viewer.locator("#decide")).to_have_count(0)
    token = viewer.locator("body").get_attribute("data-csrf")
    refused = viewer.request.post(
        item_url, form={"decision": "dismiss", "reason": "viewer", "csrf_token": token or ""}
    )
    assert refused.status == 403
    viewer_context.close()
    context.close()

    # The browser asked the console for everything and the reported site for nothing.
    assert requested and all(url.startswith(base + "/") for url in requested), [
        u for u in requested if not u.startswith(base + "/")
    ]
    assert site.foreign == []

    # No byte window of a served image in Redis, the console's log or the data directory.
    finder = WindowFinder([*site.known, site.copy])
    for key in redis_client.scan_iter(match=f"{redis_prefix}*", count=1000):
        dumped = redis_client.dump(key)
        assert dumped is not None
        assert finder.find(key + dumped, f"redis key {key!r}") is None
    for path in [served.log, *served.data_dir.rglob("*")]:
        if path.is_file():
            assert finder.find(path.read_bytes(), str(path)) is None
    for name in ("overview", "review", "providers"):
        assert (shots / f"{name}.png").stat().st_size > 0

    # SIGTERM shuts the console down gracefully: it exits 0 and says so.
    served.process.terminate()
    assert served.process.wait(timeout=SERVE_TIMEOUT) == 0, served.log.read_text()
    assert served.log.read_text().rstrip().endswith("console stopped")
