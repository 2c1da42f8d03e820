"""The whole loop through the real CLI: a two-host local site, the embedded Redis, a crawl.

One crawl runs for the module (``hotline`` in a subprocess, as an analyst runs it, with its own
data directory and temp directory); the tests then check recall per embedding and transform,
that no distractor was reported, that the hostile pages were survived, and that no image
content was retained anywhere the crawl could have written.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.redisserver import EmbeddedRedis
from store.connection import redis_from_url
from tests.builders import IDENTITY_TOML
from tests.helpers import HOST_A, HOST_B, hotline_env, run_cli, run_cli_measured
from tests.nocontent import WindowFinder, files_changed_in_temp
from tests.site.builder import EMBEDDINGS, TRANSFORMS, RunningTestSite

#: Seconds the crawl of the whole hostile site (and the recheck of its hits) may take.
CRAWL_TIMEOUT = 240.0

MAX_CRAWL_RSS_BYTES = 1024 * 1024 * 1024  # a hostile site must not blow the crawler up
TAKEDOWN_CONFIG = (
    IDENTITY_TOML
    + """
[notices]
directory = "providers.yaml"
[rdap]
url = ""
"""
)
PROVIDERS = """
- name: Loopback Hosting
  cidrs: [127.0.0.0/8]
  abuse: abuse@loopback-hosting.example
  channel: outbox
"""


@dataclass
class CrawlRun:
    data_dir: Path
    tmp_dir: Path
    started: float
    env: dict[str, str]
    summary: dict[str, Any]
    crawl_output: str
    hits: list[dict[str, Any]]
    review: list[dict[str, Any]]
    max_rss: int
    notified: dict[str, Any]
    rechecked: dict[str, Any]
    takedown_output: str


@pytest.fixture(scope="module")
def crawl_run(
    test_site: RunningTestSite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CrawlRun]:
    root = tmp_path_factory.mktemp("e2e")
    data_dir, tmp_dir = root / "data", root / "tmp"
    tmp_dir.mkdir()
    env = hotline_env(HOTLINE_DATA_DIR=str(data_dir), TMPDIR=str(tmp_dir), COLUMNS="200")
    known = root / "known.csv"
    known.write_text(test_site.site.known_csv, encoding="utf-8")
    started = time.time()
    imported = run_cli(
        ["hashes", "import", str(known), "--list", "known", "--classification", "baseline"], env
    )
    assert imported.returncode == 0, imported.stderr
    crawl, max_rss = run_cli_measured(
        [
            "crawl",
            test_site.site.seed_url,
            "--allow-private-networks",
            "--json",
            "--verbose",
            # Test-sized limits: the slow endpoint stalls for 20 s, the endless one never ends.
            "--set",
            "DOWNLOAD_TIMEOUT=4",
            "--set",
            "DOWNLOAD_MAXSIZE=8388608",
            "--set",
            "AUTOTHROTTLE_START_DELAY=0.05",
            "--set",
            "LOG_LEVEL=DEBUG",
        ],
        env,
        timeout=CRAWL_TIMEOUT,
    )
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    hits = run_cli(["hits", "list", "--json"], env)
    review = run_cli(["review", "list", "--json"], env)
    assert hits.returncode == 0 and review.returncode == 0, hits.stderr + review.stderr
    # Then notice and takedown, with the embedded set-up's defaults: notices to the outbox.
    (data_dir / "hotline.toml").write_text(TAKEDOWN_CONFIG, encoding="utf-8")
    (data_dir / "providers.yaml").write_text(PROVIDERS, encoding="utf-8")
    notify = run_cli(["notifier", "--once", "--json"], env)
    assert notify.returncode == 0, notify.stderr
    # Written to the outbox is prepared, not sent: the analyst sends each, then marks it.
    for notice_id in json.loads(notify.stdout)["awaiting_manual"]:
        marked = run_cli(["notices", "mark-sent", notice_id, "--note", "sent by hand"], env)
        assert marked.returncode == 0, marked.stderr
    recheck = run_cli(
        ["recheck", "--all", "--json"],
        {**env, "HOTLINE_ALLOW_PRIVATE_NETWORKS": "1"},
        timeout=CRAWL_TIMEOUT,
    )
    assert recheck.returncode == 0, recheck.stderr[-3000:]
    yield CrawlRun(
        data_dir=data_dir,
        tmp_dir=tmp_dir,
        started=started,
        env=env,
        summary=json.loads(crawl.stdout),
        crawl_output=crawl.stdout + crawl.stderr,
        hits=json.loads(hits.stdout),
        review=json.loads(review.stdout),
        max_rss=max_rss,
        notified=json.loads(notify.stdout),
        rechecked=json.loads(recheck.stdout),
        takedown_output=notify.stdout + notify.stderr + recheck.stdout + recheck.stderr,
    )


def _found(run: CrawlRun, planted: Any) -> bool:
    for hit in run.hits:
        if hit["entry"] != planted.entry_id:
            continue
        if planted.embedding == "data_uri":
            if hit["url"].startswith("data:") and hit["sha256"] == planted.sha256:
                return True
        elif hit["url"] in (planted.url, planted.final_url):
            return True
    return False


def test_crawl_completed_and_reported_its_figures(crawl_run: CrawlRun) -> None:
    s = crawl_run.summary
    assert s["finish_reason"] == "finished"
    assert s["pages"] >= 5
    assert s["confirmed_new"] == len(crawl_run.hits)
    assert s["undecodable"] >= 2  # the truncated JPEG and the 40000x40000 PNG


@pytest.mark.parametrize("embedding", EMBEDDINGS)
def test_every_embedding_is_found(
    crawl_run: CrawlRun, test_site: RunningTestSite, embedding: str
) -> None:
    planted = test_site.site.planted_by_embedding(embedding)
    assert _found(crawl_run, planted), f"{embedding}: {planted.url} not reported"


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_every_transformed_copy_is_found(
    crawl_run: CrawlRun, test_site: RunningTestSite, transform: str
) -> None:
    planted = test_site.site.planted_by_transform(transform)
    assert _found(crawl_run, planted), (
        f"{transform}: {planted.url} (pdq {planted.pdq_distance}, "
        f"phash {planted.phash_distance}) not reported"
    )


def test_hits_carry_the_full_record(crawl_run: CrawlRun, test_site: RunningTestSite) -> None:
    keys = {
        "url",
        "page",
        "seed",
        "sha256",
        "md5",
        "sha1",
        "pdq",
        "phash",
        "list",
        "entry",
        "category",
        "algorithm",
        "distance",
        "first_seen",
        "ip",
        "crawl",
    }
    assert crawl_run.hits
    for hit in crawl_run.hits:
        assert keys <= set(hit)
        assert hit["seed"] == test_site.site.seed_url
        assert hit["crawl"] == crawl_run.summary["crawl"]
        assert hit["list"] == "known"
        if not hit["url"].startswith("data:"):
            assert hit["ip"] in (HOST_A, HOST_B)
            assert hit["status"] == 200
            assert hit["content_type"]
    exact = [h for h in crawl_run.hits if h["algorithm"] in ("sha256", "md5", "sha1")]
    assert exact and all(h["distance"] == 0 for h in exact)
    known_sha = {k.hashes.sha256 for k in test_site.site.known.values()}
    assert all(h["sha256"] in known_sha for h in exact)


def test_no_distractor_is_reported(crawl_run: CrawlRun, test_site: RunningTestSite) -> None:
    reported = crawl_run.hits + crawl_run.review
    urls = {r["url"] for r in reported}
    shas = {r["sha256"] for r in reported}
    assert not urls & set(test_site.site.distractor_urls)
    assert not shas & test_site.site.distractor_sha256s


def test_hostile_pages_were_survived(crawl_run: CrawlRun, test_site: RunningTestSite) -> None:
    assert crawl_run.max_rss < MAX_CRAWL_RSS_BYTES, f"crawler peaked at {crawl_run.max_rss} bytes"
    # The deep page is reached after the hostile links on the index page were scheduled.
    assert _found(crawl_run, test_site.site.planted_by_embedding("deep_page"))
    assert "Traceback" not in crawl_run.crawl_output


def test_a_recrawl_adds_no_duplicates(crawl_run: CrawlRun, test_site: RunningTestSite) -> None:
    again = run_cli(
        [
            "crawl",
            test_site.site.seed_url,
            "--allow-private-networks",
            "--json",
            "--set",
            "DOWNLOAD_TIMEOUT=4",
            "--set",
            "AUTOTHROTTLE_START_DELAY=0.05",
        ],
        crawl_run.env,
        timeout=CRAWL_TIMEOUT,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["confirmed_new"] == 0
    assert summary["confirmed_duplicate"] == len(crawl_run.hits)
    hits = json.loads(run_cli(["hits", "list", "--json"], crawl_run.env).stdout)
    assert len(hits) == len(crawl_run.hits)


def test_every_hit_was_noticed_and_rechecked(crawl_run: CrawlRun) -> None:
    incidents = {h["incident"] for h in crawl_run.hits}
    assert set(crawl_run.notified["awaiting_manual"]) == incidents
    outbox = crawl_run.data_dir / "outbox"
    assert {p.name.split(".")[0] for p in outbox.glob("*.eml")} == incidents
    # Every fetchable image is still served: rechecked online; inlined data: images are not
    # fetched on their own.
    fetchable = sum(1 for h in crawl_run.hits if not h["url"].startswith("data:"))
    assert crawl_run.rechecked["outcomes"] == {"online": fetchable}


def _files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def test_no_image_content_is_retained(
    crawl_run: CrawlRun, test_site: RunningTestSite, tmp_path_factory: pytest.TempPathFactory
) -> None:
    finder = WindowFinder(test_site.site.served_images)
    # Every Redis key's value, read back from the embedded server the CLI used.
    with EmbeddedRedis(crawl_run.data_dir) as server:
        client = redis_from_url(server.url)
        try:
            keys = list(client.scan_iter(count=1000))
            assert keys, "the crawl stored nothing at all"
            for key in keys:
                dumped = client.dump(key)
                assert dumped is not None
                leak = finder.find(key + dumped, f"redis key {key!r}")
                assert leak is None, leak
        finally:
            client.close()
    # Every file under the data directory (AOF, RDB, logs) and the crawl's temp directory,
    # and every file the crawl wrote in the system temp directory.
    candidates = [
        *_files_under(crawl_run.data_dir),
        *_files_under(crawl_run.tmp_dir),
        *files_changed_in_temp(
            Path(tempfile.gettempdir()), crawl_run.started, tmp_path_factory.getbasetemp()
        ),
    ]
    assert any(p.name.endswith(".aof") for p in candidates)
    for path in candidates:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        leak = finder.find(data, str(path))
        assert leak is None, leak
    # And the crawl's own output, logged at DEBUG, and the notifier's and recheck's.
    assert finder.find(crawl_run.crawl_output.encode("utf-8", "surrogateescape"), "logs") is None
    output = crawl_run.takedown_output.encode("utf-8", "surrogateescape")
    assert finder.find(output, "takedown logs") is None
