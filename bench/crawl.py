"""Crawl benchmark: recall on the two-host test site, then crawl throughput per hashing pool.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/crawl.py [--images M] [--pages N] [--list-entries E] [--no-recall]
                                    [--no-distributed]

Prints one JSON object on stdout; progress goes to stderr.

1. Recall: the test site of ``tests/site/builder.py`` is served from 127.0.0.2 and 127.0.0.3,
   its known list is imported, and ``hotline crawl`` runs against it in a subprocess with a
   fresh data directory (the CLI starts its own embedded Redis there). Each planted exact copy
   (per embedding) and each transformed copy is looked up among the confirmed hits; anything
   reported about a distractor, or with an entry other than the one planted at that URL, is a
   false positive.
2. Throughput: a loopback site of N pages holding M generated 1024x768 JPEGs (a quarter on
   the second host), a known list of ~5 % of them plus a list of E (1 M) random MD5+PDQ
   entries, in one private Redis. Crawled through the CLI in one process with each hashing
   pool (``MATCHER_POOL`` = ``inline``, ``thread``, ``process``), with hashing off
   (``MATCHER_MAX_PIXELS=1`` on the reactor thread: only checksums, the crawl's own ceiling
   and the reference of every ratio), and, unless ``--no-distributed``, as a distributed run
   by two ``hotline worker`` processes with hashing on and off. Each reports pages/s and
   images/s over the run's own duration (from its record: started, after the lists were
   loaded, to finished), CPU (of the crawl's processes, less the fixed cost of a crawl that
   fetches the index page only; the hash workers' share from the crawl's stats), and hits
   found vs planted. ``cpu_budget_ms_per_image`` times each step on the same images in this
   process (exact hashes, decode, PDQ, pHash, the whole digest, matching against the lists):
   where the next bottleneck is.

Images are generated in memory and only ever held in memory (the generator processes hand the
bodies back over a pipe). Temp directories hold only the known-list CSV (hashes) and Redis
data. Nothing is served on or fetched from a non-loopback address.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from hotline import imagegen  # noqa: E402
from hotline.loopback import (  # noqa: E402
    Response,
    Route,
    html_page,
    image_response,
    serve_linked,
)
from hotline.redisserver import EmbeddedRedis  # noqa: E402
from matchers.algorithms import EXACT_ALGORITHMS  # noqa: E402
from matchers.codec import StringTable  # noqa: E402
from matchers.digest import decode_image, digest_bytes  # noqa: E402
from matchers.imageops import border_box_array, luma_array, phash_dihedral_luma  # noqa: E402
from matchers.index import Matcher  # noqa: E402
from matchers.lists import HashColumn, HashList, ListEntry  # noqa: E402
from matchers.pdq import pdq_hashes  # noqa: E402
from store.connection import redis_from_url  # noqa: E402
from store.keys import Keys  # noqa: E402
from store.lists import ListStore  # noqa: E402
from store.queue import HitQueue  # noqa: E402
from store.runs import RunStore  # noqa: E402
from tests.helpers import HOST_A, HOST_B  # noqa: E402
from tests.site.builder import (  # noqa: E402
    EMBEDDINGS,
    TRANSFORMS,
    TestSite,
    build_test_site,
)
from tests.site.reference import reference_hashes  # noqa: E402

HOTLINE = [sys.executable, "-m", "hotline.cli"]
CLI_TIMEOUT = 300.0

DEFAULT_IMAGES = 400
DEFAULT_PAGES = 40
DEFAULT_LIST_ENTRIES = 1_000_000
IMAGE_SIZE = (1024, 768)
DIGEST_SAMPLE = 60  # images of the CPU budget
KNOWN_FRACTION = 0.05
HOST_B_EVERY = 4  # every 4th image lives on the second host
THROUGHPUT_SEED_BASE = 500_000
JPEG_QUALITY = 85
#: Every mode crawls without AutoThrottle (a throughput figure, not politeness) and with
#: enough connections per host that one process is never waiting on the network.
THROUGHPUT_SETS = ("AUTOTHROTTLE_ENABLED=false", "CONCURRENT_REQUESTS_PER_DOMAIN=8")
HASHING_OFF = ("MATCHER_MAX_PIXELS=1", "MATCHER_POOL=inline")
#: Throughput modes: label, extra settings, distributed workers (0: one crawl process).
MODES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("inline", ("MATCHER_POOL=inline",), 0),
    ("thread", ("MATCHER_POOL=thread",), 0),
    ("process", ("MATCHER_POOL=process",), 0),
    # No image is decoded or hashed perceptually, only checksummed, on the reactor thread:
    # the crawl's own ceiling, the reference of every ratio.
    ("hashing_off", HASHING_OFF, 0),
    ("two_workers", (), 2),
    # Where one process's own ceiling is the limit, not the machine's two cores.
    ("two_workers_hashing_off", HASHING_OFF, 2),
)
RECALL_CRAWL_SETS = ("DOWNLOAD_TIMEOUT=4", "AUTOTHROTTLE_START_DELAY=0.05")

STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the CLI --------------------------------------------------------------------------------


def cli_env(data_dir: Path, tmp_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATA_DIR=str(data_dir), TMPDIR=str(tmp_dir), COLUMNS="200")
    return env


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        HOTLINE + args,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        log(f"`hotline {' '.join(args[:2])}` exited {done.returncode}: {done.stderr[-1500:]}")
    return done


def parse_json(done: subprocess.CompletedProcess[str], fallback: Any) -> Any:
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return fallback


def crawl_with_cli(
    root: Path, known_csv: str, seed: str, extra: Iterable[str], label: str
) -> dict[str, Any]:
    """Import the known list and crawl ``seed`` in a fresh data directory; collect hits."""
    data_dir, tmp_dir = root / f"{label}-data", root / f"{label}-tmp"
    tmp_dir.mkdir(parents=True)
    env = cli_env(data_dir, tmp_dir)
    known = root / f"{label}-known.csv"
    known.write_text(known_csv, encoding="utf-8")  # hashes only, never image bytes
    imported = run_cli(["hashes", "import", str(known), "--list", "known"], env)
    args = ["crawl", seed, "--allow-private-networks", "--json", *extra]
    log(f"{label}: hotline {' '.join(args)}")
    started = time.monotonic()
    children_before = _children_cpu()
    own_before = time.process_time()  # this process serves the site: its CPU is the servers'
    crawl = run_cli(args, env)
    wall = time.monotonic() - started
    crawl_cpu = _children_cpu() - children_before
    server_cpu = time.process_time() - own_before
    summary = parse_json(crawl, {})
    hits = parse_json(run_cli(["hits", "list", "--json"], env), [])
    review = parse_json(run_cli(["review", "list", "--json"], env), [])
    log(
        f"{label}: exit {crawl.returncode}, {summary.get('pages')} pages, "
        f"{summary.get('images')} images in {summary.get('elapsed_s')} s "
        f"({summary.get('images_per_s')} images/s), {len(hits)} hits, {len(review)} review"
    )
    return {
        "import_ok": imported.returncode == 0,
        "exit_code": crawl.returncode,
        "wall_s": round(wall, 2),
        "crawl_cpu_s": round(crawl_cpu, 2),
        "server_cpu_s": round(server_cpu, 2),
        "summary": summary,
        "hits": hits,
        "review": review,
        "stderr_tail": crawl.stderr[-800:] if crawl.returncode != 0 else "",
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def brief(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: record.get(k)
        for k in ("url", "page", "entry", "algorithm", "distance", "sha256", "verdict")
        if k in record
    }


def summary_figures(summary: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "finish_reason",
        "pages",
        "images",
        "hashed",
        "confirmed_new",
        "review_new",
        "undecodable",
        "refused_private",
        "errors",
        "elapsed_s",
        "images_per_s",
    )
    return {k: summary.get(k) for k in keys}


# --- 1. recall on the test site ---------------------------------------------------------------


def _matches(record: dict[str, Any], planted: Any) -> bool:
    if record.get("entry") != planted.entry_id:
        return False
    if planted.embedding == "data_uri" and planted.transform == "exact":
        return str(record.get("url", "")).startswith("data:") and (
            record.get("sha256") == planted.sha256
        )
    return record.get("url") in (planted.url, planted.final_url)


def _found_entry(records: list[dict[str, Any]], planted: Any) -> dict[str, Any] | None:
    return next((r for r in records if _matches(r, planted)), None)


def _recall_row(planted: Any, hits: list[dict[str, Any]], review: list[dict[str, Any]]) -> dict:
    hit = _found_entry(hits, planted)
    row: dict[str, Any] = {
        "found": hit is not None,
        "url": planted.url,
        "entry": planted.entry_id,
        "algorithm": hit.get("algorithm") if hit else None,
        "distance": hit.get("distance") if hit else None,
    }
    if planted.transform != "exact":
        row["planted_pdq_distance"] = planted.pdq_distance
        row["planted_phash_distance"] = planted.phash_distance
    if hit is None:
        in_review = _found_entry(review, planted)
        row["in_review"] = in_review is not None
        if in_review is not None:
            row["review_algorithm"] = in_review.get("algorithm")
            row["review_distance"] = in_review.get("distance")
    return row


def _false_positives(site: TestSite, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    planted_at: dict[str, set[str]] = {}
    planted_data: dict[str, set[str]] = {}  # sha256 -> entries, for data: URIs
    for p in site.planted:
        for url in {p.url, p.final_url}:
            planted_at.setdefault(url, set()).add(p.entry_id)
        if p.url.startswith("data:"):
            planted_data.setdefault(p.sha256, set()).add(p.entry_id)
    distractor_urls = set(site.distractor_urls)
    out = []
    for record in records:
        url, sha = str(record.get("url", "")), record.get("sha256")
        reasons = []
        if url in distractor_urls:
            reasons.append("distractor_url")
        if sha in site.distractor_sha256s:
            reasons.append("distractor_sha256")
        expected = planted_data.get(str(sha)) if url.startswith("data:") else planted_at.get(url)
        if expected is None:
            reasons.append("nothing_planted_here")
        elif record.get("entry") not in expected:
            reasons.append(f"wrong_entry(planted {','.join(sorted(expected))})")
        if reasons:
            out.append({**brief(record), "reasons": reasons})
    return out


def recall_phase(root: Path) -> dict[str, Any]:
    log("recall: building the test site")
    with serve_linked(build_test_site, (HOST_A, HOST_B)) as served:
        site = served.site
        extra = [arg for s in RECALL_CRAWL_SETS for arg in ("--set", s)]
        run = crawl_with_cli(root, site.known_csv, site.seed_url, extra, "recall")
    hits, review = run["hits"], run["review"]
    for record in hits:
        record.setdefault("verdict", "confirmed")
    for record in review:
        record.setdefault("verdict", "review")
    by_embedding = {e: _recall_row(site.planted_by_embedding(e), hits, review) for e in EMBEDDINGS}
    by_transform = {t: _recall_row(site.planted_by_transform(t), hits, review) for t in TRANSFORMS}
    false_positives = _false_positives(site, hits + review)

    def tally(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        found = sum(1 for r in rows.values() if r["found"])
        return {
            "found": found,
            "planted": len(rows),
            "recall": round(found / len(rows), 3) if rows else None,
            "missed": [name for name, r in rows.items() if not r["found"]],
        }

    return {
        "exit_code": run["exit_code"],
        "import_ok": run["import_ok"],
        "crawl": {
            **summary_figures(run["summary"]),
            "wall_s_including_cli_start": run["wall_s"],
            "crawl_cpu_s": run["crawl_cpu_s"],
        },
        "embeddings": tally(by_embedding),
        "transforms": tally(by_transform),
        "by_embedding": by_embedding,
        "by_transform": by_transform,
        "hits": len(hits),
        "hit_algorithms": dict(Counter(str(h.get("algorithm")) for h in hits)),
        "false_positives": false_positives,
        "review_items": [brief(r) for r in review],
        "stderr_tail": run["stderr_tail"],
    }


# --- 2. throughput: in-process with hashing, hashing off, two workers -------------------------


def _make_jpeg(seed: int) -> bytes:
    width, height = IMAGE_SIZE
    return imagegen.encode(
        imagegen.textured_image(seed, width, height), "JPEG", quality=JPEG_QUALITY
    )


def generate_bodies(count: int) -> list[bytes]:
    seeds = [THROUGHPUT_SEED_BASE + i for i in range(count)]
    workers = max(1, min(os.cpu_count() or 1, 4))
    # Forked before any server thread starts; bodies come back over pipes, never via disk.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_make_jpeg, seeds, chunksize=4))


class ThroughputSite:
    """An index page linking N pages that hold M images between them, a quarter of the
    images on the second host; ~5 % of the images are on a small known list."""

    def __init__(self, bodies: list[bytes], pages: int, base_a: str, base_b: str) -> None:
        count = len(bodies)
        self.pages = pages
        rng = np.random.default_rng(20260)
        known_count = max(1, round(count * KNOWN_FRACTION))
        known = sorted(int(i) for i in rng.choice(count, size=known_count, replace=False))
        self.routes_a: dict[str, Route] = {}
        self.routes_b: dict[str, Route] = {}
        self.image_urls: list[str] = []
        for i, body in enumerate(bodies):
            on_b = i % HOST_B_EVERY == HOST_B_EVERY - 1
            path = f"/img/{i:05d}.jpg"
            (self.routes_b if on_b else self.routes_a)[path] = image_response(body, "image/jpeg")
            self.image_urls.append((base_b if on_b else base_a) + path)
        page_imgs: list[list[str]] = [[] for _ in range(pages)]
        for i, url in enumerate(self.image_urls):
            page_imgs[i % pages].append(url)
        links = []
        for p, urls in enumerate(page_imgs):
            path = f"/pages/{p:04d}.html"
            imgs = "\n".join(f"<img src='{u}' alt='texture'>" for u in urls)
            self.routes_a[path] = _page(f"Page {p}", imgs + "\n<p><a href='/'>index</a></p>")
            links.append(f"<li><a href='{path}'>page {p}</a></li>")
        self.routes_a["/"] = _page("Benchmark index", "<ul>\n" + "\n".join(links) + "\n</ul>")
        self.seed_url = base_a + "/"
        entries = []
        self.known: dict[str, str] = {}  # url -> entry id
        for n, i in enumerate(known, start=1):
            entry = f"b{n:04d}"
            ref = reference_hashes(bodies[i])
            entries += [
                ListEntry("sha256", ref.sha256, entry, "bench"),
                ListEntry("md5", ref.md5, entry, "bench"),
                ListEntry("pdq", ref.pdq, entry, "bench"),
            ]
            self.known[self.image_urls[i]] = entry
        self.known_list = HashList("bench-known", entries=entries)


def _page(title: str, body: str) -> Response:
    return html_page(
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def noise_list(entries: int) -> HashList:
    """``entries`` random entries, each an MD5 and a PDQ hash (as the big vendor lists ship
    them), with ids of their own: the scale a crawl matches against."""
    rng = np.random.default_rng(31)
    numbers = np.arange(1, entries + 1, dtype=np.uint32)
    zeros = np.zeros(entries, dtype=np.uint8)
    columns = {
        "md5": HashColumn(rng.integers(0, 256, (entries, 16), dtype=np.uint8), numbers, zeros),
        "pdq": HashColumn(rng.integers(0, 256, (entries, 32), dtype=np.uint8), numbers, zeros),
    }
    width = len(str(entries))
    ids = StringTable.from_strings([f"n{n:0{width}d}" for n in range(1, entries + 1)])
    return HashList.from_columns("bench-noise", columns, ids, StringTable.from_strings(["x"]))


def _rate(count: int, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def _run_figures(client: Any, prefix: str, crawl_id: str | None) -> dict[str, Any]:
    """A run's counts and duration from its record (the same clock for every mode: from
    the first worker's start, after the lists were loaded, to the end)."""
    if not crawl_id:
        return {}
    record = RunStore(client, Keys(prefix)).get(crawl_id)
    duration = record.duration()
    hits = {
        (h.url, h.entry)
        for h in HitQueue(client, Keys(prefix)).iter_records("confirmed")
        if h.crawl == crawl_id
    }
    return {
        "status": record.status,
        "pages": record.stats.pages,
        "images": record.stats.images,
        "hashed": record.stats.hashed,
        "errors": record.stats.error_count,
        "run_s": round(duration or 0.0, 2),
        "pages_per_s": _rate(record.stats.pages, duration),
        "images_per_s": _rate(record.stats.images, duration),
        "workers": sorted(record.workers) if record.distributed else None,
        "hits": hits,
    }


_WORKER_CPU = re.compile(r"'matcher/pool/worker_cpu_s': ([0-9.]+)")


def _worker_cpu(log: str) -> float:
    found = _WORKER_CPU.findall(log)
    return float(found[-1]) if found else 0.0


def _measured(started: float, children: float, own: float) -> dict[str, float]:
    return {
        "wall_s_including_cli_start": round(time.monotonic() - started, 2),
        "crawl_cpu_s": round(_children_cpu() - children, 2),
        "server_cpu_s": round(time.process_time() - own, 2),
    }


def throughput_mode(
    label: str,
    site: ThroughputSite,
    redis_url: str,
    root: Path,
    sets: list[str],
    *,
    workers: int = 0,
) -> dict[str, Any]:
    """One crawl of the site through the CLI: in this process's child (``workers`` 0) or
    queued with ``--distributed`` for that many ``hotline worker --once`` processes."""
    prefix = f"bench-{label}:"
    env = {
        **cli_env(root / f"{label}-data", root / f"{label}-tmp"),
        "HOTLINE_REDIS_URL": redis_url,
        "HOTLINE_KEY_PREFIX": prefix,
        "HOTLINE_ALLOW_PRIVATE_NETWORKS": "1",
    }
    (root / f"{label}-tmp").mkdir(parents=True)
    args = ["crawl", site.seed_url, "--json", "--verbose", "--max-pages", str(site.pages + 10)]
    args += [arg for s in (*THROUGHPUT_SETS, *sets) for arg in ("--set", s)]
    started, children, own = time.monotonic(), _children_cpu(), time.process_time()
    procs = []
    if workers:
        args.append("--distributed")
        procs = [
            subprocess.Popen(
                [*HOTLINE, "worker", "--once", "--id", f"w{n}"],
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(1, workers + 1)
        ]
    log(f"{label}: hotline {' '.join(args)}" + (f" with {workers} workers" if workers else ""))
    crawl = run_cli(args, env)
    for proc in procs:
        _, err = proc.communicate(timeout=CLI_TIMEOUT)
        if proc.returncode != 0:
            log(f"{label}: a worker exited {proc.returncode}: {err[-1500:]}")
    measured = _measured(started, children, own)
    summary = parse_json(crawl, {})
    figures = _run_figures(redis_from_url(redis_url), prefix, summary.get("crawl"))
    hits = figures.pop("hits", set())
    log(
        f"{label}: exit {crawl.returncode}, {figures.get('pages')} pages, "
        f"{figures.get('images')} images in {figures.get('run_s')} s: "
        f"{figures.get('pages_per_s')} pages/s, {figures.get('images_per_s')} images/s"
    )
    wall = measured["wall_s_including_cli_start"]
    return {
        "exit_code": crawl.returncode,
        "settings": [*THROUGHPUT_SETS, *sets],
        **figures,
        **measured,
        # CPU of the crawl's processes (CLI start and list loading included) over their wall
        "cpu_cores_used": round(measured["crawl_cpu_s"] / wall, 2) if wall else None,
        "server_share_of_cpu": round(
            measured["server_cpu_s"] / (measured["server_cpu_s"] + measured["crawl_cpu_s"]), 2
        )
        if measured["crawl_cpu_s"]
        else None,
        "hits_found": len(hits & set(site.known.items())),
        "hits_planted": len(site.known),
        # CPU seconds of the hash worker processes (from the crawl's stats; 0 without them)
        "worker_cpu_s": _worker_cpu(crawl.stderr),
        "stderr_tail": crawl.stderr[-800:] if crawl.returncode != 0 else "",
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def throughput_phase(
    root: Path, bodies: list[bytes], pages: int, list_entries: int, *, distributed: bool
) -> dict[str, Any]:
    log(f"throughput: building the site and a {list_entries}-entry list")
    with (
        EmbeddedRedis(root / "redis") as redis_server,
        serve_linked(
            lambda base_a, base_b: ThroughputSite(bodies, pages, base_a, base_b), (HOST_A, HOST_B)
        ) as served,
    ):
        site = served.site
        noise = noise_list(list_entries)
        client = redis_from_url(redis_server.url)
        labels = [label for label, _sets, _workers in MODES]
        if not distributed:
            labels = [label for label in labels if not label.startswith("two_workers")]
        for label in (*labels, "startup"):
            store = ListStore(client, Keys(f"bench-{label}:"))
            store.save(noise)
            store.save(site.known_list)
        client.close()
        modes: dict[str, dict[str, Any]] = {}
        for label, sets, workers in MODES:
            if label in labels:
                modes[label] = throughput_mode(
                    label, site, redis_server.url, root, list(sets), workers=workers
                )
        # The fixed cost of a crawl process (start, list loading): the index page alone.
        startup = throughput_mode(
            "startup", site, redis_server.url, root, [*HASHING_OFF, "CRAWL_DEPTH=0"]
        )
    log("throughput: the CPU of each step on the same images, in this process")
    budget = cpu_budget(bodies[:DIGEST_SAMPLE], Matcher([noise, site.known_list]))
    fixed_cpu = startup.get("crawl_cpu_s") or 0.0
    for figures in modes.values():
        images = figures.get("images") or 0
        cpu = figures.get("crawl_cpu_s")
        per_image = (cpu - fixed_cpu) * 1000 / images if images and cpu is not None else None
        figures["cpu_ms_per_image"] = None if per_image is None else round(per_image, 1)
        # What the crawl process itself spends (the reactor thread, GIL-bound): all of it
        # but the hash workers' share.
        workers = figures.get("worker_cpu_s") or 0.0
        figures["crawl_process_cpu_ms_per_image"] = (
            None if per_image is None else round(per_image - workers * 1000 / images, 1)
        )
    reference = modes["hashing_off"].get("images_per_s")
    return {
        "images": len(bodies),
        "image_size": "x".join(map(str, IMAGE_SIZE)),
        "pages": pages,
        "megabytes": round(sum(len(x) for x in bodies) / 1e6, 1),
        "list_entries": list_entries + len(site.known_list.entries),
        "known_planted": len(site.known),
        "modes": modes,
        "startup": {k: startup.get(k) for k in ("crawl_cpu_s", "wall_s_including_cli_start")},
        "cpu_budget_ms_per_image": budget,
        "ratios": {
            **{
                f"{label}_over_hashing_off_images": _ratio(figures.get("images_per_s"), reference)
                for label, figures in modes.items()
                if label != "hashing_off"
            },
        },
        "targets": {"process_over_hashing_off_images": 0.5},
    }


def cpu_budget(bodies: list[bytes], matcher: Matcher) -> dict[str, Any]:
    """Milliseconds of CPU per image of each step, one thread, on the same bodies: what a
    crawl spends besides crawling, and where the next bottleneck is."""
    steps: dict[str, float] = dict.fromkeys(
        ("exact", "decode", "borders", "pdq", "phash", "digest_bytes", "match"), 0.0
    )
    # What a crawl computes: only the perceptual hashes the lists can query.
    algorithms = (*EXACT_ALGORITHMS, *sorted(matcher.perceptual_algorithms))
    for body in bodies:
        t = time.process_time()
        hashlib.md5(body, usedforsecurity=False).hexdigest()
        hashlib.sha1(body, usedforsecurity=False).hexdigest()
        hashlib.sha256(body).hexdigest()
        steps["exact"] += time.process_time() - t
        t = time.process_time()
        decoded = decode_image(body)
        steps["decode"] += time.process_time() - t
        t = time.process_time()
        pixels = luma_array(decoded.luma)
        box = border_box_array(pixels)
        steps["borders"] += time.process_time() - t
        crop = pixels if box is None else pixels[box[1] : box[3], box[0] : box[2]]
        t = time.process_time()
        pdq_hashes(crop)
        steps["pdq"] += time.process_time() - t
        t = time.process_time()
        phash_dihedral_luma(decoded.luma, box)
        steps["phash"] += time.process_time() - t
        t = time.process_time()
        digest = digest_bytes(body, algorithms=algorithms)
        steps["digest_bytes"] += time.process_time() - t
        t = time.process_time()
        matcher.match_or_allowed(digest)
        steps["match"] += time.process_time() - t
    count = max(1, len(bodies))
    out: dict[str, Any] = {k: round(v * 1000 / count, 2) for k, v in steps.items()}
    out["images"] = len(bodies)
    out["digest_bytes_computes"] = list(algorithms)
    out["digest_bytes_images_per_s_one_thread"] = (
        round(count / steps["digest_bytes"], 1) if steps["digest_bytes"] else None
    )
    return out


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="images (M)")
    parser.add_argument("--pages", type=int, default=DEFAULT_PAGES, help="pages (N)")
    parser.add_argument(
        "--list-entries", type=int, default=DEFAULT_LIST_ENTRIES, help="random list entries"
    )
    parser.add_argument("--no-recall", action="store_true", help="skip the recall phase")
    parser.add_argument("--no-distributed", action="store_true", help="skip the two-worker modes")
    args = parser.parse_args()
    if args.pages < 1 or args.images < args.pages:
        parser.error("need at least one page and one image per page")
    phases: dict[str, float] = {}

    # Generate first: the pool forks before any server thread exists.
    log(f"generating {args.images} textured JPEGs of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
    t = time.monotonic()
    bodies = generate_bodies(args.images)
    phases["generate"] = time.monotonic() - t
    log(f"generated {sum(len(b) for b in bodies) / 1e6:.1f} MB in {phases['generate']:.1f} s")

    result: dict[str, Any] = {
        "bench": "crawl",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        if not args.no_recall:
            t = time.monotonic()
            result["recall"] = recall_phase(root)
            phases["recall"] = time.monotonic() - t
        t = time.monotonic()
        result["throughput"] = throughput_phase(
            root, bodies, args.pages, args.list_entries, distributed=not args.no_distributed
        )
        phases["throughput"] = time.monotonic() - t
    result["phases_s"] = {k: round(v, 1) for k, v in phases.items()}
    result["total_s"] = round(time.monotonic() - STARTED, 1)
    log("done")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
