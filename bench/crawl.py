"""Crawl benchmark: recall on the two-host test site, then end-to-end throughput.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/crawl.py [--images N]

Prints one JSON object on stdout; progress goes to stderr.

1. Recall: the test site of ``tests/site/builder.py`` is served from 127.0.0.2 and 127.0.0.3,
   its known list is imported, and ``hotline crawl`` runs against it in a subprocess with a
   fresh data directory (the CLI starts its own embedded Redis there). Each planted exact copy
   (per embedding) and each transformed copy is looked up among the confirmed hits; anything
   reported about a distractor, or with an entry other than the one planted at that URL, is a
   false positive.
2. Throughput: N generated textured JPEGs (mixed sizes) on ~N/20 pages, served from the same
   two loopback hosts with a known list of ~5% of them, crawled twice (AutoThrottle off, and
   the default AutoThrottle on). Next to the crawl's images/s, the same bodies are hashed in
   one thread twice: naively (full decode, PDQ on the full-size array, pHash, md5/sha1/sha256)
   and with the project's ``matchers.digest.digest_bytes``.

Images are generated in memory and only ever held in memory (the generator processes hand the
bodies back over a pipe). Temp directories hold only the known-list CSV (hashes) and Redis
data. Nothing is served on or fetched from a non-loopback address.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
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

import imagehash  # noqa: E402
import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402

from hotline import imagegen  # noqa: E402
from hotline.demosite import (  # noqa: E402
    Response,
    Route,
    html_page,
    image_response,
    serve,
)
from matchers.digest import digest_bytes  # noqa: E402
from tests.site.builder import EMBEDDINGS, TRANSFORMS, TestSite, build_test_site  # noqa: E402
from tests.site.reference import KNOWN_LIST_HEADER, reference_hashes  # noqa: E402

HOST_A = "127.0.0.2"
HOST_B = "127.0.0.3"
HOTLINE = [sys.executable, "-m", "hotline.cli"]
CLI_TIMEOUT = 300.0

DEFAULT_IMAGES = 400
IMAGES_PER_PAGE = 20
KNOWN_FRACTION = 0.05
HOST_B_EVERY = 4  # every 4th image lives on the second host
THROUGHPUT_SEED_BASE = 500_000
JPEG_QUALITY = 85
#: Cycled through in this order: weighted towards the smaller sizes most web images have.
SIZES = (
    (640, 480),
    (800, 600),
    (1024, 768),
    (640, 480),
    (1280, 960),
    (768, 1024),
    (800, 600),
    (1600, 1200),
    (640, 480),
    (1024, 768),
    (2048, 1536),
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
    with serve(host=HOST_A) as server_a, serve(host=HOST_B) as server_b:
        log("recall: building the test site")
        site = build_test_site(server_a.base_url, server_b.base_url)
        server_a.mount(site.routes_a)
        server_b.mount(site.routes_b)
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


# --- 2. throughput ----------------------------------------------------------------------------


def _make_jpeg(job: tuple[int, int, int]) -> bytes:
    seed, width, height = job
    return imagegen.encode(
        imagegen.textured_image(seed, width, height), "JPEG", quality=JPEG_QUALITY
    )


def generate_bodies(count: int) -> list[bytes]:
    jobs = [(THROUGHPUT_SEED_BASE + i, *SIZES[i % len(SIZES)]) for i in range(count)]
    workers = max(1, min(os.cpu_count() or 1, 4))
    # Forked before any server thread starts; bodies come back over pipes, never via disk.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_make_jpeg, jobs, chunksize=4))


class ThroughputSite:
    """Index page -> pages -> images on two hosts; a known list of ~5% of the images."""

    def __init__(self, bodies: list[bytes], base_a: str, base_b: str) -> None:
        count = len(bodies)
        self.pages = max(1, math.ceil(count / IMAGES_PER_PAGE))
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
        page_imgs: list[list[str]] = [[] for _ in range(self.pages)]
        for i, url in enumerate(self.image_urls):
            page_imgs[i % self.pages].append(url)
        links = []
        for p, urls in enumerate(page_imgs):
            path = f"/pages/{p:04d}.html"
            imgs = "\n".join(f"<img src='{u}' alt='texture'>" for u in urls)
            self.routes_a[path] = _page(f"Page {p}", imgs + "\n<p><a href='/'>index</a></p>")
            links.append(f"<li><a href='{path}'>page {p}</a></li>")
        self.routes_a["/"] = _page("Benchmark index", "<ul>\n" + "\n".join(links) + "\n</ul>")
        self.seed_url = base_a + "/"
        rows = [KNOWN_LIST_HEADER]
        self.known: dict[str, str] = {}  # url -> entry id
        for n, i in enumerate(known, start=1):
            entry = f"b{n:04d}"
            rows.extend(reference_hashes(bodies[i]).rows(entry, "bench"))
            self.known[self.image_urls[i]] = entry
        self.known_csv = "\n".join(rows) + "\n"


def _page(title: str, body: str) -> Response:
    return html_page(
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def throughput_crawl(
    root: Path, site: ThroughputSite, label: str, sets: list[str], max_pages: int
) -> dict[str, Any]:
    extra = ["--max-pages", str(max_pages)]
    extra += [arg for s in sets for arg in ("--set", s)]
    run = crawl_with_cli(root, site.known_csv, site.seed_url, extra, label)
    crawl_id = run["summary"].get("crawl")
    hits = [h for h in run["hits"] if crawl_id is None or h.get("crawl") == crawl_id]
    correct = {(h.get("url"), h.get("entry")) for h in hits} & set(site.known.items())
    unexpected = [brief(h) for h in hits if site.known.get(str(h.get("url"))) != h.get("entry")] + [
        brief(r) for r in run["review"]
    ]
    s = run["summary"]
    images, elapsed = s.get("images") or 0, s.get("elapsed_s") or 0
    return {
        "exit_code": run["exit_code"],
        "settings": sets,
        **summary_figures(s),
        "images_per_s_end_to_end": round(images / elapsed, 1) if elapsed else None,
        "wall_s_including_cli_start": run["wall_s"],
        "crawl_cpu_s": run["crawl_cpu_s"],
        "server_cpu_s": run["server_cpu_s"],
        "hits_found": len(correct),
        "hits_planted": len(site.known),
        "missed": sorted(url for url in site.known if (url, site.known[url]) not in correct),
        "hit_algorithms": dict(Counter(str(h.get("algorithm")) for h in hits)),
        "unexpected_records": unexpected,
        "stderr_tail": run["stderr_tail"],
    }


def naive_hashing(bodies: list[bytes]) -> dict[str, Any]:
    """Single thread, full-size decode, PDQ on the full array, pHash, three digests."""
    parts = Counter[str]()
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        hashlib.md5(body, usedforsecurity=False).hexdigest()
        hashlib.sha1(body, usedforsecurity=False).hexdigest()
        hashlib.sha256(body).hexdigest()
        t1 = time.perf_counter()
        with Image.open(io.BytesIO(body)) as im:
            rgb = im.convert("RGB")
        t2 = time.perf_counter()
        pdqhash.compute(np.asarray(rgb))
        t3 = time.perf_counter()
        imagehash.phash(rgb)
        t4 = time.perf_counter()
        parts["exact"] += t1 - t0
        parts["decode"] += t2 - t1
        parts["pdq"] += t3 - t2
        parts["phash"] += t4 - t3
    total = time.perf_counter() - started
    return {
        "images": len(bodies),
        "seconds": round(total, 2),
        "images_per_s": round(len(bodies) / total, 1),
        "seconds_by_step": {k: round(v, 2) for k, v in parts.items()},
    }


def digest_hashing(bodies: list[bytes]) -> dict[str, Any]:
    """Single thread, the project's matchers.digest.digest_bytes (reduced-scale decode)."""
    errors = 0
    started = time.perf_counter()
    for body in bodies:
        if digest_bytes(body).error is not None:
            errors += 1
    total = time.perf_counter() - started
    return {
        "images": len(bodies),
        "seconds": round(total, 2),
        "images_per_s": round(len(bodies) / total, 1),
        "errors": errors,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def throughput_phase(root: Path, bodies: list[bytes], gen_s: float) -> dict[str, Any]:
    with serve(host=HOST_A) as server_a, serve(host=HOST_B) as server_b:
        log("throughput: building the site and its known list")
        site = ThroughputSite(bodies, server_a.base_url, server_b.base_url)
        server_a.mount(site.routes_a)
        server_b.mount(site.routes_b)
        max_pages = max(200, site.pages + 10)
        no_throttle = throughput_crawl(
            root, site, "throttle-off", ["AUTOTHROTTLE_ENABLED=false"], max_pages
        )
        throttle = throughput_crawl(root, site, "throttle-on", [], max_pages)
    log("throughput: naive single-thread hashing")
    naive = naive_hashing(bodies)
    log(f"throughput: naive {naive['images_per_s']} images/s; now digest_bytes")
    digest = digest_hashing(bodies)
    log(f"throughput: digest_bytes {digest['images_per_s']} images/s")
    sizes = Counter(f"{w}x{h}" for w, h in (SIZES[i % len(SIZES)] for i in range(len(bodies))))
    ratios = {}
    for name, run in (("autothrottle_off", no_throttle), ("autothrottle_on", throttle)):
        ips = run["images_per_s_end_to_end"]
        ratios[f"crawl_{name}_vs_naive"] = _ratio(ips, naive["images_per_s"])
        ratios[f"crawl_{name}_vs_digest_bytes"] = _ratio(ips, digest["images_per_s"])
    ratios["digest_bytes_vs_naive"] = _ratio(digest["images_per_s"], naive["images_per_s"])
    return {
        "images": len(bodies),
        "pages": site.pages + 1,
        "image_sizes": dict(sizes),
        "on_second_host": sum(1 for u in site.image_urls if HOST_B in u),
        "megabytes": round(sum(len(b) for b in bodies) / 1e6, 1),
        "known_planted": len(site.known),
        "generate_s": round(gen_s, 2),
        "crawl_autothrottle_off": no_throttle,
        "crawl_autothrottle_on": throttle,
        "hashing_naive_single_thread": naive,
        "hashing_digest_bytes_single_thread": digest,
        "ratios": ratios,
    }


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES, help="throughput images")
    args = parser.parse_args()
    if args.images < IMAGES_PER_PAGE:
        parser.error(f"--images must be at least {IMAGES_PER_PAGE}")
    phases: dict[str, float] = {}

    # Generate first: the pool forks before any server thread exists.
    log(f"generating {args.images} textured JPEGs")
    t = time.monotonic()
    bodies = generate_bodies(args.images)
    phases["generate"] = time.monotonic() - t
    log(f"generated {sum(len(b) for b in bodies) / 1e6:.1f} MB in {phases['generate']:.1f} s")

    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        root = Path(tmp)
        t = time.monotonic()
        recall = recall_phase(root)
        phases["recall"] = time.monotonic() - t
        t = time.monotonic()
        throughput = throughput_phase(root, bodies, phases["generate"])
        phases["throughput"] = time.monotonic() - t

    result = {
        "bench": "crawl",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "recall": recall,
        "throughput": throughput,
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "total_s": round(time.monotonic() - STARTED, 1),
    }
    log("done")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
