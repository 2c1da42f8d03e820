"""``search_many``: one query for all of a digest's variants, exact against brute force.

Brute force here is plain Python integers (``(a ^ b).bit_count()``), independent of numpy.
The matcher's batched path is compared with the per-variant sequential path it replaced.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import mih
from matchers.algorithms import (
    PDQ_CONFIRM_THRESHOLD,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.codec import StringTable
from matchers.digest import ImageDigest
from matchers.errors import InvalidHash
from matchers.index import HammingIndex, LinearHammingIndex, Matcher, MultiIndexHammingIndex
from matchers.lists import HashColumn, HashList, Thresholds
from matchers.mih import Radii, pack_hex, probe_radii
from tests.matchers.hashgen import flip, random_hash

THRESHOLDS = [
    (256, PDQ_CONFIRM_THRESHOLD),
    (256, PDQ_REVIEW_THRESHOLD),
    (64, PHASH_CONFIRM_THRESHOLD),
    (64, PHASH_REVIEW_THRESHOLD),
]
#: Unequal chunks straddling 64-bit words, as in test_hamming_indexes.
ODD_CHUNKS = {64: (23, 21, 20), 256: (5, 19, 24, *([13] * 16))}


def pack(hashes: list[str], bits: int) -> npt.NDArray[np.uint64]:
    if not hashes:
        return np.zeros((0, bits // 64), dtype=np.uint64)
    return np.stack([pack_hex(h, bits) for h in hashes])


def brute_force_many(hashes: list[str], probes: list[str], limit: int) -> list[tuple[int, int]]:
    """(row, smallest distance over the probes) within ``limit``, by (distance, row)."""
    found = []
    for row, hash_hex in enumerate(hashes):
        value = int(hash_hex, 16)
        distance = min((value ^ int(p, 16)).bit_count() for p in probes)
        if distance <= limit:
            found.append((row, distance))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def as_pairs(result: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, int]]:
    rows, distances = result
    return list(zip(rows.tolist(), distances.tolist(), strict=True))


def planted_case(
    bits: int, threshold: int, seed: int, n: int = 3000, k: int = 9
) -> tuple[list[str], list[str]]:
    """(list hashes, k probes): random rows plus, per probe, rows at 0, 1, t - 1, t, t, t + 1
    and t + 2 from it; some rows near two probes at once (the minimum must win); a shared
    hash listed twice; probes that repeat."""
    rng = random.Random(seed)
    probes = [random_hash(rng, bits) for _ in range(k - 1)]
    probes.append(probes[2])  # a duplicated variant (e.g. a symmetric image)
    hashes = [random_hash(rng, bits) for _ in range(n)]
    for probe in probes:
        for distance in (0, 1, threshold - 1, threshold, threshold, threshold + 1, threshold + 2):
            hashes.append(flip(probe, distance, rng))
        shared = flip(probe, threshold, rng)
        hashes.extend([shared, shared])
    # Probes close to each other: a row near both, at different distances.
    near = flip(probes[0], threshold // 2, rng)
    probes[1] = near
    hashes.append(flip(near, 1, rng))
    rng.shuffle(hashes)
    return hashes, probes


def indexes(bits: int, rows: np.ndarray) -> dict[str, Any]:
    return {
        "linear": LinearHammingIndex.from_rows(bits, rows),
        "mih": MultiIndexHammingIndex.from_rows(bits, rows),
        "mih_odd": MultiIndexHammingIndex.from_rows(bits, rows, chunks=ODD_CHUNKS[bits]),
        "mih_one_chunk_per_word": MultiIndexHammingIndex.from_rows(
            bits, rows, chunks=(16,) * (bits // 16)
        ),
    }


@pytest.mark.parametrize(("bits", "threshold"), THRESHOLDS)
def test_search_many_equals_brute_force_at_threshold_and_one_past(
    bits: int, threshold: int
) -> None:
    hashes, probes = planted_case(bits, threshold, seed=bits * 100 + threshold)
    rows = pack(hashes, bits)
    packed = pack(probes, bits)
    for name, index in indexes(bits, rows).items():
        for limit in (threshold, threshold + 1):
            expected = brute_force_many(hashes, probes, limit)
            assert as_pairs(index.search_many(packed, limit)) == expected, (name, limit)
            # Hits exactly at the threshold and one past it exist, so the radius edge is tested.
            assert any(d == limit for _row, d in expected)
        # A subset of the probes, and each probe alone, agree with brute force too.
        for subset in ([0], [3, 5], list(range(len(probes)))):
            chosen = [probes[i] for i in subset]
            assert as_pairs(index.search_many(packed[subset], threshold)) == brute_force_many(
                hashes, chosen, threshold
            ), (name, subset)


def flip_bits(
    rng: np.random.Generator, row: npt.NDArray[np.uint64], distance: int
) -> npt.NDArray[np.uint64]:
    bits = np.unpackbits(row.view(np.uint8))
    bits[rng.choice(len(bits), size=distance, replace=False)] ^= 1
    return np.packbits(bits).view(np.uint64)


@pytest.mark.parametrize(("bits", "threshold"), THRESHOLDS)
def test_search_many_is_the_minimum_of_single_searches(bits: int, threshold: int) -> None:
    rng = np.random.default_rng(bits + threshold)
    rows = rng.integers(0, 2**63, size=(5000, bits // 64), dtype=np.uint64)
    # Clusters: rows near each other, so several probes reach the same rows.
    for start in range(0, 600, 6):
        for offset in range(1, 6):
            rows[start + offset] = flip_bits(rng, rows[start], int(rng.integers(0, threshold)))
    hits = 0
    for trial in range(4):
        picked = rng.integers(0, 600, size=trial * 4 + 1)
        probes = np.stack(
            [flip_bits(rng, rows[r], int(rng.integers(0, threshold + 2))) for r in picked]
        )
        for name, index in indexes(bits, rows).items():
            best: dict[int, int] = {}
            for probe in probes:
                for row, distance in as_pairs(index.search(probe, threshold)):
                    best[row] = min(distance, best.get(row, distance))
            expected = sorted(best.items(), key=lambda pair: (pair[1], pair[0]))
            assert as_pairs(index.search_many(probes, threshold)) == expected, name
            hits += len(expected)
    assert hits > 50


class SearchManyContract:
    """Inherited by every implementation; ``from_rows(bits, rows)`` builds an index."""

    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        raise NotImplementedError

    @pytest.mark.parametrize("bits", [64, 256])
    def test_empty_inputs(self, bits: int) -> None:
        rng = random.Random(bits)
        hashes = [random_hash(rng, bits) for _ in range(20)]
        index = self.from_rows(bits, pack(hashes, bits))
        for result in (
            index.search_many(np.zeros((0, bits // 64), dtype=np.uint64), bits),
            index.search_many(pack(hashes[:2], bits), -1),
            self.from_rows(bits, pack([], bits)).search_many(pack(hashes, bits), bits),
        ):
            rows, distances = result
            assert rows.dtype == np.intp and distances.dtype == np.int64
            assert len(rows) == len(distances) == 0

    @pytest.mark.parametrize("bits", [64, 256])
    def test_one_probe_is_search(self, bits: int) -> None:
        rng = random.Random(bits + 1)
        hashes = [random_hash(rng, bits) for _ in range(100)]
        probe = hashes[17]
        hashes += [flip(probe, d, rng) for d in (0, 2, 5, 5, 9)]
        index = self.from_rows(bits, pack(hashes, bits))
        for limit in (0, 5, 9):
            single = as_pairs(index.search(pack_hex(probe, bits), limit))
            assert as_pairs(index.search_many(pack([probe], bits), limit)) == single
            assert single == brute_force_many(hashes, [probe], limit)

    def test_whole_space_radius_takes_the_minimum(self) -> None:
        ones, zero = "f" * 16, "0" * 16
        index = self.from_rows(64, pack([zero, ones, "00000000ffffffff"], 64))
        got = as_pairs(index.search_many(pack(["000000000000000f", ones], 64), 64))
        assert got == [(1, 0), (0, 4), (2, 28)]

    def test_probe_shape_checked(self) -> None:
        index = self.from_rows(256, pack(["ab" * 32], 256))
        with pytest.raises(InvalidHash):
            index.search_many(np.zeros((2, 1), dtype=np.uint64), 3)
        with pytest.raises(InvalidHash):
            index.search_many(np.zeros(4, dtype=np.uint64), 3)

    def test_duplicate_probes_and_duplicate_rows(self) -> None:
        rng = random.Random(5)
        probe = random_hash(rng, 256)
        near = flip(probe, 7, rng)
        index = self.from_rows(256, pack([near, near, random_hash(rng, 256)], 256))
        got = as_pairs(index.search_many(pack([probe, probe, near], 256), 10))
        assert got == [(0, 0), (1, 0)]


class TestLinearSearchMany(SearchManyContract):
    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return LinearHammingIndex.from_rows(bits, rows)


class TestMultiIndexSearchMany(SearchManyContract):
    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return MultiIndexHammingIndex.from_rows(bits, rows)


class TestMultiIndexOddChunksSearchMany(SearchManyContract):
    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return MultiIndexHammingIndex.from_rows(bits, rows, chunks=ODD_CHUNKS[bits])


def test_incremental_index_search_many() -> None:
    rng = random.Random(12)
    index: MultiIndexHammingIndex[str] = MultiIndexHammingIndex(64)
    first = random_hash(rng, 64)
    index.add(first, "a")
    index.add(flip(first, 3, rng), "b")
    assert as_pairs(index.search_many(pack([first], 64), 3)) == [(0, 0), (1, 3)]


# --- The matcher: one batched call per list and algorithm, same result as per variant -------


class Sequential:
    """An index whose ``search_many`` is the matcher's former per-variant loop."""

    def __init__(self, inner: HammingIndex[int]) -> None:
        self.inner = inner
        self.bits = inner.bits
        self.calls = 0

    def search(self, probe: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.search(probe, max_distance)

    def search_many(self, probes: np.ndarray, max_distance: Radii) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        best: dict[int, int] = {}
        radii = probe_radii(max_distance, len(probes)).tolist()
        for probe, radius in zip(probes, radii, strict=True):
            rows, distances = self.inner.search(probe, radius)
            for row, distance in zip(rows.tolist(), distances.tolist(), strict=True):
                if distance < best.get(row, distance + 1):
                    best[row] = distance
        ordered = sorted(best.items(), key=lambda pair: (pair[1], pair[0]))
        return (
            np.array([r for r, _d in ordered], dtype=np.intp),
            np.array([d for _r, d in ordered], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.inner)


def column_list(name: str, hashes: dict[str, list[str]], kind: str = "known") -> HashList:
    columns = {}
    ids: list[str] = []
    for algorithm, values in hashes.items():
        raw = np.stack([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in values])
        column_ids = np.arange(len(ids), len(ids) + len(values), dtype=np.uint32)
        ids.extend(f"{algorithm}{i}" for i in range(len(values)))
        columns[algorithm] = HashColumn(raw, column_ids, np.zeros(len(values), dtype=np.uint8))
    return HashList.from_columns(
        name, columns, StringTable.from_strings(ids), StringTable.from_strings(["A"]), kind=kind
    )


def image(
    rng: random.Random, pdq: str, phash: str, pdq_variants: list[str], phash_variants: list[str]
) -> ImageDigest:
    return ImageDigest(
        md5=random_hash(rng, 128),
        sha1=random_hash(rng, 160),
        sha256=random_hash(rng, 256),
        pdq=pdq,
        pdq_quality=100,
        phash=phash,
        format="png",
        width=10,
        height=10,
        frames=1,
        error=None,
        pdq_variants=tuple(pdq_variants),
        phash_variants=tuple(phash_variants),
    )


@pytest.mark.parametrize("seed", range(6))
def test_matcher_batched_equals_sequential_per_variant(seed: int) -> None:
    rng = random.Random(seed)
    canonical_pdq = [random_hash(rng, 256) for _ in range(9)]
    canonical_phash = [random_hash(rng, 64) for _ in range(9)]
    pdq_hashes = [random_hash(rng, 256) for _ in range(5000)]
    phash_hashes = [random_hash(rng, 64) for _ in range(5000)]
    # Planted near every variant at the thresholds' edges (and one entry near two variants).
    for variant in canonical_pdq:
        for distance in (0, 12, PDQ_CONFIRM_THRESHOLD, PDQ_CONFIRM_THRESHOLD + 1, 50, 51):
            pdq_hashes.append(flip(variant, distance, rng))
    for variant in canonical_phash:
        for distance in (0, 3, PHASH_CONFIRM_THRESHOLD, PHASH_CONFIRM_THRESHOLD + 1, 10, 11):
            phash_hashes.append(flip(variant, distance, rng))
    rng.shuffle(pdq_hashes)
    rng.shuffle(phash_hashes)
    known = column_list("known", {"pdq": pdq_hashes, "phash": phash_hashes})
    small = column_list("small", {"pdq": pdq_hashes[:300], "phash": phash_hashes[:300]})
    strict = column_list("strict", {"pdq": pdq_hashes[-2000:]})
    strict.thresholds = Thresholds(pdq_confirm=10, pdq_review=40)
    lists = [known, small, strict]
    wrapped: list[Sequential] = []

    def sequential(bits: int, rows: np.ndarray) -> Any:
        from matchers.index import default_index

        wrapped.append(Sequential(default_index(bits, rows)))
        return wrapped[-1]

    batched = Matcher(lists)
    reference = Matcher(lists, index_factory=sequential)
    allow = column_list("fp", {"pdq": [flip(canonical_pdq[4], 20, rng)]}, kind="allow")
    for case in range(8):
        pdq_variants = rng.sample(canonical_pdq, rng.randint(1, 9))
        phash_variants = rng.sample(canonical_phash, rng.randint(0, 9))
        digest = image(rng, pdq_variants[0], canonical_phash[case], pdq_variants, phash_variants)
        found = batched.match(digest)
        assert found == reference.match(digest)
        assert found  # the planted entries are reached
        guarded, guarded_reference = batched.with_list(allow), reference.with_list(allow)
        assert guarded.allowed(digest) == guarded_reference.allowed(digest)
        assert guarded.match(digest) == guarded_reference.match(digest)
    assert all(index.calls for index in wrapped)


def test_matcher_queries_each_index_once_per_digest() -> None:
    rng = random.Random(9)
    variants = [random_hash(rng, 256) for _ in range(9)]
    phash_variants = [random_hash(rng, 64) for _ in range(9)]
    hash_list = column_list(
        "known", {"pdq": [flip(v, 5, rng) for v in variants], "phash": phash_variants}
    )
    wrapped: list[Sequential] = []

    def factory(bits: int, rows: np.ndarray) -> Any:
        wrapped.append(Sequential(LinearHammingIndex.from_rows(bits, rows)))
        return wrapped[-1]

    matcher = Matcher([hash_list], index_factory=factory)
    found = matcher.match(image(rng, variants[0], phash_variants[0], variants, phash_variants))
    assert len(found) == 18
    # One call per index for all nine variants at the confirm radius and the canonical hash's
    # review band: the number of calls does not grow with the number of variants.
    assert [index.calls for index in wrapped] == [1, 1]


# --- Per-probe radii: a digest's variants at the confirm radius, its canonical hash at review ---

REVIEW_BANDS = [
    (256, PDQ_CONFIRM_THRESHOLD, PDQ_REVIEW_THRESHOLD),
    (64, PHASH_CONFIRM_THRESHOLD, PHASH_REVIEW_THRESHOLD),
]


def brute_force_radii(
    hashes: list[str], probes: list[str], radii: list[int]
) -> list[tuple[int, int]]:
    """(row, smallest distance over the probes it is within range of), by (distance, row)."""
    found = []
    for row, hash_hex in enumerate(hashes):
        value = int(hash_hex, 16)
        within = [
            distance
            for probe, radius in zip(probes, radii, strict=True)
            if (distance := (value ^ int(probe, 16)).bit_count()) <= radius
        ]
        if within:
            found.append((row, min(within)))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


@pytest.mark.parametrize(("bits", "confirm", "review"), REVIEW_BANDS)
def test_per_probe_radii_equal_brute_force_at_both_edges(
    bits: int, confirm: int, review: int
) -> None:
    hashes, probes = planted_case(bits, confirm, seed=bits + confirm + review)
    rng = random.Random(bits * 7)
    # The canonical hash (probe 0) has rows at the review radius and one past it, and a row
    # within review of it but just past confirm of another probe (its own distance must win).
    for distance in (review - 1, review, review, review + 1, review + 2):
        hashes.append(flip(probes[0], distance, rng))
    rows = pack(hashes, bits)
    packed = pack(probes, bits)
    for name, index in indexes(bits, rows).items():
        for first, rest in ((review, confirm), (review + 1, confirm + 1), (confirm, review)):
            radii = [first] + [rest] * (len(probes) - 1)
            expected = brute_force_radii(hashes, probes, radii)
            assert as_pairs(index.search_many(packed, radii)) == expected, (name, radii)
            assert as_pairs(index.search_many(packed, np.array(radii))) == expected, name
            if first > rest:  # hits exactly at both radii exist, so both edges are tested
                distances = {d for _row, d in expected}
                assert first in distances and rest in distances, (name, radii)
        # A negative radius leaves its probe out; one radius for all is the same as repeated.
        radii = [-1] + [confirm] * (len(probes) - 1)
        assert as_pairs(index.search_many(packed, radii)) == brute_force_many(
            hashes, probes[1:], confirm
        )
        assert as_pairs(index.search_many(packed, [confirm] * len(probes))) == as_pairs(
            index.search_many(packed, confirm)
        )


@pytest.mark.parametrize("bits", [64, 256])
def test_per_probe_radii_length_checked(bits: int) -> None:
    rows = pack([random_hash(random.Random(bits), bits)], bits)
    for index in indexes(bits, rows).values():
        with pytest.raises(ValueError, match="radii"):
            index.search_many(np.concatenate([rows, rows]), [3, 4, 5])


def test_whole_space_radius_for_one_probe_only() -> None:
    ones, zero = "f" * 16, "0" * 16
    rows = pack([zero, ones, "00000000ffffffff"], 64)
    for name, index in indexes(64, rows).items():
        got = as_pairs(index.search_many(pack(["000000000000000f", ones], 64), [64, 3]))
        assert got == [(1, 0), (0, 4), (2, 28)], name
        got = as_pairs(index.search_many(pack(["000000000000000f", ones], 64), [3, 64]))
        assert got == [(1, 0), (2, 32), (0, 64)], name


@st.composite
def search_cases(draw: st.DrawFn) -> tuple[int, list[str], list[str], list[int]]:
    """(bits, list hashes, probes, radii): random rows plus rows planted near the probes at
    distances up to a few past the largest radius, duplicated rows and repeated probes."""
    bits = draw(st.sampled_from([64, 256]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    probes = [random_hash(rng, bits) for _ in range(draw(st.integers(1, 6)))]
    if draw(st.booleans()):
        probes.append(probes[0])
    top = PDQ_REVIEW_THRESHOLD if bits == 256 else PHASH_REVIEW_THRESHOLD
    radii = [draw(st.integers(-1, top)) for _ in probes]
    hashes = [random_hash(rng, bits) for _ in range(draw(st.integers(0, 200)))]
    for probe in probes:
        for _ in range(draw(st.integers(0, 8))):
            hashes.append(flip(probe, draw(st.integers(0, top + 3)), rng))
    duplicate: bool = draw(st.booleans())
    if hashes and duplicate:
        hashes.append(hashes[0])
    rng.shuffle(hashes)
    return bits, hashes, probes, radii


@settings(max_examples=50, deadline=None)
@given(case=search_cases())
def test_search_many_property_equals_brute_force(
    case: tuple[int, list[str], list[str], list[int]],
) -> None:
    bits, hashes, probes, radii = case
    expected = brute_force_radii(hashes, probes, radii)
    for name, index in indexes(bits, pack(hashes, bits)).items():
        assert as_pairs(index.search_many(pack(probes, bits), radii)) == expected, name


@pytest.mark.parametrize(("bits", "confirm", "review"), REVIEW_BANDS)
def test_many_small_verify_blocks_agree_with_brute_force(
    bits: int, confirm: int, review: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of a few candidates: probes' candidates straddle block boundaries, and hits of
    several probes fall in one block (each verified against its own probe and radius)."""
    monkeypatch.setattr(mih, "VERIFY_BLOCK", 7)
    hashes, probes = planted_case(bits, confirm, seed=bits + 3, n=500)
    radii = [review] + [confirm] * (len(probes) - 1)
    expected = brute_force_radii(hashes, probes, radii)
    assert len(expected) > 2 * len(probes)
    rows = pack(hashes, bits)
    for chunks in (None, ODD_CHUNKS[bits], (16,) * (bits // 16)):
        index = MultiIndexHammingIndex.from_rows(bits, rows, chunks=chunks)
        assert as_pairs(index.search_many(pack(probes, bits), radii)) == expected, chunks
