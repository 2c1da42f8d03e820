"""Matching benchmark: the project's Hamming index against numpy brute force and FAISS.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/match.py [--n 1000000] [--queries 200] [--no-faiss]

Prints one JSON object on stdout; progress goes to stderr. Everything runs on one core (numpy
and FAISS pinned to one thread). Only random hashes are used: no image is involved at all.

For PDQ (256 bits) and pHash (64 bits): N random entries (each with its own entry id) plus
planted near-duplicates of half the queries at known distances. The list goes through the
project's binary serialization (``HashList.to_bytes`` / ``from_bytes``) and the matcher's
default index is built from its columns. Reported per radius (PDQ 31 and 50, pHash 8 and 12):
p50/p99 query latency over the queries (half with planted neighbours, half random), recall of
the planted neighbours within the radius, and agreement of the result sets with brute force;
per structure: build time and memory. The same queries run against numpy brute force
(``np.bitwise_count`` over the packed matrix), ``faiss.IndexBinaryFlat`` and
``faiss.IndexBinaryMultiHash`` (``range_search``; ``nflip = r // nhash`` so it is exact).
``ratios`` gives reference / project for p50 latency, memory and build time. ``matcher``
times ``Matcher.match`` end to end (both lists, review bands): without variants, with 8 PDQ
hashes, and with 9 PDQ + 9 pHash hashes batched (one ``search_many`` per list and algorithm)
against the same digests queried one variant at a time (one ``search_many`` per list and
algorithm: the variants at the confirm radius, the canonical hash at the review radius), and
compares the matches of the first digests with brute force (``LinearHammingIndex``).
``index_memory_bytes``: both indexes, packed rows included.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from matchers.codec import StringTable  # noqa: E402
from matchers.index import (  # noqa: E402
    HammingIndex,
    LinearHammingIndex,
    Matcher,
    default_index,
)
from matchers.lists import HashColumn, HashList, Thresholds  # noqa: E402
from matchers.mih import Radii, probe_radii  # noqa: E402

PLANTED_DISTANCES = {
    "pdq": (0, 10, 20, 31, 32, 40, 50, 51),
    "phash": (0, 4, 8, 9, 12, 13),
}
RADII = {"pdq": (31, 50), "phash": (8, 12)}
BITS = {"pdq": 256, "phash": 64}
FAISS_NHASH = {"pdq": 16, "phash": 4}
ID_DIGITS = 10
#: Digests whose Matcher.match is compared with brute force (~1 s each at 10 M entries).
BRUTE_FORCE_MATCHES = 20
START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


def rss() -> int:
    """Current resident set size in bytes."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flip(rng: np.random.Generator, code: np.ndarray, distance: int) -> np.ndarray:
    bits = np.unpackbits(code)
    positions = rng.choice(len(bits), size=distance, replace=False)
    bits[positions] ^= 1
    return np.packbits(bits)


def numbered_ids(n: int, offset: int) -> StringTable:
    """Ids ``0000000000`` .. as one blob, built without a Python object per id."""
    numbers = np.arange(offset, offset + n, dtype=np.int64)
    digits = np.empty((n, ID_DIGITS), dtype=np.uint8)
    for place in range(ID_DIGITS):
        digits[:, ID_DIGITS - 1 - place] = ord("0") + (numbers // 10**place) % 10
    offsets = np.arange(n + 1, dtype=np.int64) * ID_DIGITS
    return StringTable(digits.ravel(), offsets.astype(np.uint32))


def make_data(
    rng: np.random.Generator, algorithm: str, n: int, queries: int
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """(codes (N+planted, bytes), query codes, planted row -> (query number, distance))."""
    width = BITS[algorithm] // 8
    codes = rng.integers(0, 256, size=(n, width), dtype=np.uint8)
    probes = rng.integers(0, 256, size=(queries, width), dtype=np.uint8)
    planted_rows = []
    planted: dict[int, Any] = {}
    for q in range(queries // 2):
        for distance in PLANTED_DISTANCES[algorithm]:
            planted[n + len(planted_rows)] = (q, distance)
            planted_rows.append(flip(rng, probes[q], distance))
    if planted_rows:
        codes = np.concatenate([codes, np.stack(planted_rows)])
    # Shuffle so planted rows are not all at the end (the row order matters to some indexes).
    order = rng.permutation(len(codes))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    codes = codes[order]
    planted = {int(inverse[row]): value for row, value in planted.items()}
    return codes, probes, planted


#: A reference slower than this per radius stops early (at least MIN_QUERIES queries run).
QUERY_BUDGET_S = 45.0
MIN_QUERIES = 20


def timed_queries(
    search: Callable[[int], np.ndarray], count: int
) -> tuple[list[float], dict[int, np.ndarray]]:
    """Queries alternate planted (first half) and random (second half), so a run cut short
    by the time budget still has both kinds."""
    half = count // 2
    order = [q for pair in zip(range(half), range(half, count), strict=False) for q in pair]
    latencies, results = [], {}
    began = time.perf_counter()
    for q in order:
        start = time.perf_counter()
        found = search(q)
        latencies.append(time.perf_counter() - start)
        results[q] = np.sort(np.asarray(found, dtype=np.int64))
        if time.perf_counter() - began > QUERY_BUDGET_S and len(results) >= MIN_QUERIES:
            break
    return latencies, results


def summary(
    latencies: list[float],
    results: dict[int, np.ndarray],
    truth: dict[int, np.ndarray],
    planted: dict[int, Any],
    radius: int,
) -> dict[str, Any]:
    wanted = [(row, q) for row, (q, d) in planted.items() if d <= radius and q in results]
    found = sum(1 for row, q in wanted if np.isin(row, results[q]))
    # Brute force may have been cut short by the time budget: compare the queries it ran.
    compared = [q for q in results if q in truth]
    exact = all(np.array_equal(results[q], truth[q]) for q in compared)
    ms = np.array(latencies) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "planted_recall": round(found / len(wanted), 4) if wanted else None,
        "planted_within_radius": len(wanted),
        "same_results_as_brute_force": exact,
        "queries_compared_with_brute_force": len(compared),
        "queries": len(results),
        "results_total": int(sum(len(r) for r in results.values())),
    }


def bench_algorithm(
    algorithm: str, n: int, queries: int, rng: np.random.Generator, use_faiss: bool
) -> tuple[dict[str, Any], HashList, HammingIndex[int], np.ndarray, dict[int, Any]]:
    bits = BITS[algorithm]
    log(f"{algorithm}: generating {n} entries")
    codes, probes, planted = make_data(rng, algorithm, n, queries)
    total = len(codes)
    hash_list = HashList.from_columns(
        f"bench-{algorithm}",
        {
            algorithm: HashColumn(
                codes, np.arange(1, total + 1, dtype=np.uint32), np.zeros(total, dtype=np.uint8)
            )
        },
        numbered_ids(total, 0),
        StringTable.from_strings(["A1"]),
    )
    out: dict[str, Any] = {"entries": total, "planted": len(planted)}
    log(f"{algorithm}: serializing")
    start = time.perf_counter()
    blob = hash_list.to_bytes()
    out["serialize_s"] = round(time.perf_counter() - start, 3)
    out["serialized_bytes"] = len(blob)
    del hash_list, codes
    gc.collect()
    start = time.perf_counter()
    hash_list = HashList.from_bytes(blob)
    out["load_s"] = round(time.perf_counter() - start, 3)
    out["list_nbytes"] = hash_list.nbytes
    del blob  # the loaded columns are views into it; it lives on through them
    rows = hash_list.columns[algorithm].words()
    probe_words = probes.view(np.uint64)
    results: dict[str, Any] = {}

    log(f"{algorithm}: numpy brute force")
    truth: dict[int, dict[int, np.ndarray]] = {}
    brute: dict[str, Any] = {"memory_bytes": int(rows.nbytes), "build_s": 0.0}
    for radius in RADII[algorithm]:

        def brute_search(q: int, radius: int = radius) -> np.ndarray:
            distances = np.bitwise_count(rows ^ probe_words[q]).sum(axis=1, dtype=np.int64)
            return np.flatnonzero(distances <= radius)

        latencies, found = timed_queries(brute_search, queries)
        truth[radius] = found
        brute[f"r{radius}"] = summary(latencies, found, found, planted, radius)
    results["numpy_brute_force"] = brute

    log(f"{algorithm}: project index")
    gc.collect()
    before = rss()
    start = time.perf_counter()
    index = default_index(bits, rows)
    build = time.perf_counter() - start
    mine: dict[str, Any] = {
        "class": type(index).__name__,
        "chunks": list(getattr(index, "chunks", ())),
        "build_s": round(build, 3),
        "load_plus_build_s": round(build + out["load_s"], 3),
        "memory_bytes": int(getattr(index, "nbytes", rows.nbytes)),
        "rss_delta_bytes": rss() - before,
    }
    for radius in RADII[algorithm]:
        index.search(probe_words[0], radius)  # warm the per-radius plan
        latencies, found = timed_queries(
            lambda q, radius=radius: index.search(probe_words[q], radius)[0], queries
        )
        mine[f"r{radius}"] = summary(latencies, found, truth[radius], planted, radius)
    results["project"] = mine

    if use_faiss:
        import faiss  # noqa: PLC0415 - optional (the "bench" extra)

        faiss.omp_set_num_threads(1)
        raw = np.ascontiguousarray(rows).view(np.uint8)
        for name, make in (
            ("faiss_flat", lambda: faiss.IndexBinaryFlat(bits)),
            (
                "faiss_multihash",
                lambda: faiss.IndexBinaryMultiHash(
                    bits, FAISS_NHASH[algorithm], bits // FAISS_NHASH[algorithm]
                ),
            ),
        ):
            log(f"{algorithm}: {name}")
            gc.collect()
            before = rss()
            start = time.perf_counter()
            reference = make()
            reference.add(raw)
            entry: dict[str, Any] = {
                "build_s": round(time.perf_counter() - start, 3),
                "rss_delta_bytes": rss() - before,
            }
            # RSS deltas of small structures vanish in reused pages: count the codes at least.
            entry["memory_bytes"] = max(entry["rss_delta_bytes"], int(raw.nbytes))
            if name == "faiss_multihash":
                entry["nhash"] = FAISS_NHASH[algorithm]
                entry["b"] = bits // FAISS_NHASH[algorithm]
            for radius in RADII[algorithm]:
                if name == "faiss_multihash":
                    reference.nflip = radius // FAISS_NHASH[algorithm]

                # FAISS binary range search keeps distances < radius: ask for radius + 1.
                def faiss_search(q: int, radius: int = radius, ref: Any = reference) -> np.ndarray:
                    _lims, _distances, labels = ref.range_search(probes[q : q + 1], radius + 1)
                    return np.asarray(labels)

                faiss_search(0)
                latencies, found = timed_queries(faiss_search, queries)
                entry[f"r{radius}"] = summary(latencies, found, truth[radius], planted, radius)
                if name == "faiss_multihash":
                    entry[f"r{radius}"]["nflip"] = radius // FAISS_NHASH[algorithm]
            results[name] = entry
            del reference
            gc.collect()

    out["indexes"] = results
    out["ratios"] = ratios(results, RADII[algorithm])
    return out, hash_list, index, probes, planted


def ratios(results: dict[str, Any], radii: tuple[int, ...]) -> dict[str, Any]:
    """reference / project: > 1 means the project's index is faster, smaller or quicker."""
    mine = results["project"]
    out: dict[str, Any] = {}
    for name, reference in results.items():
        if name == "project":
            continue
        entry: dict[str, Any] = {}
        for radius in radii:
            entry[f"r{radius}_p50_speedup"] = round(
                reference[f"r{radius}"]["p50_ms"] / mine[f"r{radius}"]["p50_ms"], 2
            )
        entry["memory_ratio"] = round(reference["memory_bytes"] / mine["memory_bytes"], 2)
        if reference["build_s"]:
            entry["build_ratio"] = round(reference["build_s"] / max(mine["build_s"], 1e-9), 2)
        out[f"{name}_vs_project"] = entry
    return out


class PerVariantIndex:
    """The matcher's former path, for comparison: ``search_many`` as one ``search`` per variant,
    merged in Python (smallest distance per row)."""

    def __init__(self, inner: HammingIndex[int]) -> None:
        self.inner = inner
        self.bits = inner.bits

    def search(self, probe: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.search(probe, max_distance)

    def search_many(self, probes: np.ndarray, max_distance: Radii) -> tuple[np.ndarray, np.ndarray]:
        best: dict[int, int] = {}
        radii = probe_radii(max_distance, len(probes)).tolist()
        for probe, radius in zip(probes, radii, strict=True):
            rows, distances = self.inner.search(probe, radius)
            for row, distance in zip(rows.tolist(), distances.tolist(), strict=True):
                if distance < best.get(row, distance + 1):
                    best[row] = distance
        return np.fromiter(best, dtype=np.intp), np.fromiter(best.values(), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.inner)


def make_digest(
    probes: dict[str, np.ndarray], q: int, rng: np.random.Generator, pdq: int, phash: int
) -> SimpleNamespace:
    """Query ``q``'s hashes (planted neighbours for the first half) plus random variants: a
    digest's mirrored / rotated / frame hashes are as far from each other as random ones."""
    pdq_hex = probes["pdq"][q].tobytes().hex()
    phash_hex = probes["phash"][q].tobytes().hex()
    return SimpleNamespace(
        md5="0" * 32,
        sha1="0" * 40,
        sha256="0" * 64,
        pdq=pdq_hex,
        pdq_quality=100,
        phash=phash_hex,
        pdq_variants=(pdq_hex, *(rng.bytes(32).hex() for _ in range(pdq - 1))) if pdq else (),
        phash_variants=(phash_hex, *(rng.bytes(8).hex() for _ in range(phash - 1)))
        if phash
        else (),
    )


def percentiles(latencies: list[float]) -> dict[str, float]:
    ms = np.array(latencies) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
    }


def bench_matcher(
    lists: list[HashList],
    indexes: dict[int, HammingIndex[int]],
    probes: dict[str, np.ndarray],
    queries: int,
) -> dict[str, Any]:
    """Matcher.match end to end over both lists (prebuilt indexes shared, not rebuilt).

    ``9_pdq_9_phash_variants``: a digest with 9 PDQ and 9 pHash hashes (canonical + 8 variants),
    matched with one batched ``search_many`` per list and algorithm; ``..._per_variant``: the
    same digests, one ``search`` per variant (the former path), interleaved query by query.
    """
    matcher = Matcher(lists, index_factory=lambda bits, _rows: indexes[bits])
    per_variant = Matcher(
        lists,
        index_factory=lambda bits, _rows: PerVariantIndex(indexes[bits]),  # type: ignore[arg-type,return-value]
    )
    rng = np.random.default_rng(7)
    out: dict[str, Any] = {}
    for label, variants in (("no_variants", 0), ("8_pdq_variants", 8)):
        latencies = []
        for q in range(queries):
            digest = make_digest(probes, q, rng, variants, 0)
            start = time.perf_counter()
            matcher.match(digest)  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - start)
        out[label] = percentiles(latencies)
    batched: list[float] = []
    sequential: list[float] = []
    identical = True
    for q in range(queries):
        digest = make_digest(probes, q, rng, 9, 9)
        start = time.perf_counter()
        found = matcher.match(digest)  # type: ignore[arg-type]
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        expected = per_variant.match(digest)  # type: ignore[arg-type]
        sequential.append(time.perf_counter() - start)
        identical = identical and found == expected
    out["9_pdq_9_phash_variants"] = percentiles(batched)
    out["9_pdq_9_phash_variants_per_variant"] = percentiles(sequential)
    out["9_pdq_9_phash_variants_speedup_p50"] = round(
        out["9_pdq_9_phash_variants_per_variant"]["p50_ms"]
        / out["9_pdq_9_phash_variants"]["p50_ms"],
        2,
    )
    out["9_pdq_9_phash_variants_same_matches"] = identical
    # Brute force (LinearHammingIndex over the same rows) on the first queries: the matches
    # must be identical, review band included.
    brute = Matcher(lists, index_factory=LinearHammingIndex.from_rows)
    checked = min(queries, BRUTE_FORCE_MATCHES)
    agree = all(
        matcher.match(digest) == brute.match(digest)  # type: ignore[arg-type]
        for digest in (make_digest(probes, q, rng, 9, 9) for q in range(checked))
    )
    out["9_pdq_9_phash_variants_same_as_brute_force"] = agree
    out["queries_compared_with_brute_force"] = checked
    out["index_memory_bytes"] = int(
        sum(int(getattr(index, "nbytes", 0)) for index in indexes.values())
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="random entries per list")
    parser.add_argument("--queries", type=int, default=200, help="queries per radius")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--no-faiss", action="store_true", help="skip the FAISS references")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    report: dict[str, Any] = {
        "n": args.n,
        "queries_per_radius": args.queries,
        "threads": 1,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "planted_distances": PLANTED_DISTANCES,
        "thresholds": Thresholds().as_dict(),
    }
    lists, indexes, probes = [], {}, {}
    for algorithm in ("pdq", "phash"):
        result, hash_list, index, algorithm_probes, _planted = bench_algorithm(
            algorithm, args.n, args.queries, rng, not args.no_faiss
        )
        report[algorithm] = result
        lists.append(hash_list)
        indexes[BITS[algorithm]] = index
        probes[algorithm] = algorithm_probes
        gc.collect()
    log("matcher end to end")
    report["matcher"] = bench_matcher(lists, indexes, probes, args.queries)
    report["peak_rss_bytes"] = _peak_rss()
    report["elapsed_s"] = round(time.perf_counter() - START, 1)
    json.dump(report, sys.stdout, indent=2)
    print()


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
