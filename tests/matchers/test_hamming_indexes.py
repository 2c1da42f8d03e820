"""Contract tests every Hamming index inherits, and oracle tests against brute force.

Brute force here is plain Python integers (``(a ^ b).bit_count()``), independent of numpy.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import numpy as np
import pytest

from matchers.algorithms import (
    PDQ_CONFIRM_THRESHOLD,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.errors import InvalidHash
from matchers.index import SMALL_INDEX_ROWS, LinearHammingIndex, default_index
from matchers.mih import (
    MAX_CHUNK_BITS,
    MultiIndexHammingIndex,
    distances_to,
    pack_hex,
    plan_chunks,
)
from tests.matchers.hashgen import brute_force, flip, random_hash


def rows_of(hashes: list[str], bits: int) -> np.ndarray:
    return np.stack([pack_hex(h, bits) for h in hashes]) if hashes else np.zeros((0, bits // 64))


class HammingIndexContract:
    """Inherited by every implementation; ``make(bits)`` builds an empty index."""

    def make(self, bits: int) -> Any:
        raise NotImplementedError

    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        raise NotImplementedError

    @pytest.mark.parametrize("bits", [64, 256])
    def test_empty_index(self, bits: int) -> None:
        index = self.make(bits)
        assert len(index) == 0
        assert index.query("0" * (bits // 4), bits) == []
        empty = self.from_rows(bits, np.zeros((0, bits // 64), dtype=np.uint64))
        assert len(empty) == 0
        assert empty.query("f" * (bits // 4), bits) == []

    @pytest.mark.parametrize("bits", [64, 256])
    def test_exact_hit_and_radius_zero(self, bits: int) -> None:
        rng = random.Random(bits)
        index = self.make(bits)
        hashes = [random_hash(rng, bits) for _ in range(50)]
        for number, hash_hex in enumerate(hashes):
            index.add(hash_hex, f"p{number}")
        assert len(index) == 50
        assert index.query(hashes[7], 0) == [("p7", 0)]
        assert index.query(flip(hashes[7], 1, rng), 0) == []
        assert index.query(hashes[7], -1) == []

    @pytest.mark.parametrize("bits", [64, 256])
    def test_results_sorted_by_distance_then_insertion(self, bits: int) -> None:
        rng = random.Random(bits + 1)
        probe = random_hash(rng, bits)
        distances = [5, 0, 3, 3, 9, 1, 5]
        index = self.make(bits)
        for number, distance in enumerate(distances):
            index.add(flip(probe, distance, rng), number)
        got = index.query(probe, 9)
        assert got == sorted(enumerate(distances), key=lambda pair: (pair[1], pair[0]))
        assert [d for _p, d in index.query(probe, 3)] == [0, 1, 3, 3]

    def test_whole_space_radius(self) -> None:
        index = self.make(64)
        index.add("0" * 16, "zero")
        index.add("f" * 16, "ones")
        assert index.query("0" * 16, 64) == [("zero", 0), ("ones", 64)]
        assert index.query("000000000000000f", 4) == [("zero", 4)]

    def test_invalid_hash_lengths(self) -> None:
        index = self.make(256)
        with pytest.raises(InvalidHash):
            index.add("ab" * 8, 1)
        index.add("ab" * 32, 1)
        with pytest.raises(InvalidHash):
            index.query("ab" * 8, 3)
        with pytest.raises(InvalidHash):
            index.query("zz" * 32, 3)
        with pytest.raises(ValueError, match="multiple of 64"):
            self.make(100)
        with pytest.raises(ValueError, match="shape"):
            self.from_rows(256, np.zeros((3, 1), dtype=np.uint64))

    def test_rows_index_payloads_are_row_numbers(self) -> None:
        rng = random.Random(3)
        hashes = [random_hash(rng, 64) for _ in range(20)]
        index = self.from_rows(64, rows_of(hashes, 64))
        assert index.query(hashes[13], 0) == [(13, 0)]
        rows, distances = index.search(pack_hex(hashes[13], 64), 0)
        assert rows.tolist() == [13] and distances.tolist() == [0]
        with pytest.raises(TypeError):
            index.add(hashes[0], 99)

    @pytest.mark.parametrize(
        ("bits", "threshold"),
        [
            (256, PDQ_CONFIRM_THRESHOLD),
            (256, PDQ_REVIEW_THRESHOLD),
            (64, PHASH_CONFIRM_THRESHOLD),
            (64, PHASH_REVIEW_THRESHOLD),
        ],
    )
    def test_oracle_at_threshold_and_one_past(self, bits: int, threshold: int) -> None:
        rng = random.Random(bits * 1000 + threshold)
        probes = [random_hash(rng, bits) for _ in range(6)]
        items: list[tuple[str, int]] = [(random_hash(rng, bits), n) for n in range(3000)]
        for probe in probes:
            for distance in (
                0,
                1,
                threshold - 1,
                threshold,
                threshold,
                threshold + 1,
                threshold + 2,
            ):
                items.append((flip(probe, distance, rng), len(items)))
            # Entries sharing a hash: both come back.
            shared = flip(probe, threshold, rng)
            items.extend([(shared, len(items)), (shared, len(items) + 1)])
        rng.shuffle(items)
        order = [payload for _h, payload in items]
        index = self.from_rows(bits, rows_of([h for h, _p in items], bits))
        for probe in probes:
            for limit in (threshold, threshold + 1):
                expected = brute_force(items, probe, limit)
                got = [(order[row], d) for row, d in index.query(probe, limit)]
                assert sorted(got, key=lambda pair: (pair[1], pair[0])) == expected
                assert [d for _p, d in got] == sorted(d for _p, d in got)
            at_threshold = [d for _p, d in index.query(probe, threshold) if d == threshold]
            assert len(at_threshold) >= 4
            assert any(d == threshold + 1 for _p, d in index.query(probe, threshold + 1))


class TestLinearHammingIndex(HammingIndexContract):
    def make(self, bits: int) -> Any:
        return LinearHammingIndex(bits)

    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return LinearHammingIndex.from_rows(bits, rows)


class TestMultiIndexHammingIndex(HammingIndexContract):
    def make(self, bits: int) -> Any:
        return MultiIndexHammingIndex(bits)

    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return MultiIndexHammingIndex.from_rows(bits, rows)


class TestMultiIndexOddChunks(HammingIndexContract):
    """Unequal chunks that straddle 64-bit words, and a chunk wider than the radius needs."""

    CHUNKS: ClassVar[dict[int, tuple[int, ...]]] = {
        64: (23, 21, 20),
        256: (5, 19, 24, *([13] * 16)),
    }

    def chunks(self, bits: int) -> tuple[int, ...] | None:
        return self.CHUNKS.get(bits)

    def make(self, bits: int) -> Any:
        return MultiIndexHammingIndex(bits, chunks=self.chunks(bits))

    def from_rows(self, bits: int, rows: np.ndarray) -> Any:
        return MultiIndexHammingIndex.from_rows(bits, rows, chunks=self.chunks(bits))


def test_chunk_layout_validated() -> None:
    assert sum(TestMultiIndexOddChunks.CHUNKS[256]) == 256
    with pytest.raises(ValueError, match="chunk widths"):
        MultiIndexHammingIndex(256, chunks=(256,))
    with pytest.raises(ValueError, match="chunk widths"):
        MultiIndexHammingIndex(64, chunks=(32, 16))
    with pytest.raises(ValueError, match="chunk widths"):
        MultiIndexHammingIndex(64, chunks=(MAX_CHUNK_BITS + 1, 64 - MAX_CHUNK_BITS - 1))


def test_plan_chunks_fits_budgets() -> None:
    for bits, radii in ((256, (31, 50)), (64, (8, 12))):
        for n in (0, 10, 10_000, 1_000_000, 10_000_000, 100_000_000):
            widths = plan_chunks(bits, n, radii)
            assert sum(widths) == bits
            assert max(widths) <= MAX_CHUNK_BITS
            assert max(widths) - min(widths) <= 1
            assert len(widths) <= 16
    # Wider chunks as lists grow (buckets stay small).
    assert plan_chunks(256, 10_000_000, (31, 50))[0] > plan_chunks(256, 10_000, (31, 50))[0]


def test_incremental_adds_rebuild_the_tables() -> None:
    rng = random.Random(11)
    index: MultiIndexHammingIndex[str] = MultiIndexHammingIndex(64)
    first = random_hash(rng, 64)
    index.add(first, "a")
    assert index.query(first, 0) == [("a", 0)]
    second = flip(first, 2, rng)
    index.add(second, "b")
    assert index.query(first, 2) == [("a", 0), ("b", 2)]
    assert len(index) == 2


def test_default_index_switches_on_size() -> None:
    rng = np.random.default_rng(5)
    small = rng.integers(0, 2**63, size=(SMALL_INDEX_ROWS - 1, 4), dtype=np.uint64)
    large = rng.integers(0, 2**63, size=(SMALL_INDEX_ROWS, 4), dtype=np.uint64)
    assert isinstance(default_index(256, small), LinearHammingIndex)
    assert isinstance(default_index(256, large), MultiIndexHammingIndex)


def test_index_keeps_the_rows_it_is_given() -> None:
    """Built from a list's columns, the index shares the packed rows (no copy per index)."""
    rows = np.random.default_rng(6).integers(0, 2**63, size=(5000, 4), dtype=np.uint64)
    index = MultiIndexHammingIndex.from_rows(256, rows)
    assert np.shares_memory(index._rows, rows)
    # Tables: sorted row numbers (4 bytes per row per chunk) plus offsets; nothing per entry
    # in Python.
    chunks = len(index.chunks)
    assert index.nbytes <= rows.nbytes + 4 * chunks * len(rows) + 4 * sum(
        2**w + 1 for w in index.chunks
    )


@pytest.mark.parametrize("words", [1, 2, 4])
def test_distances_to_counts_every_bit(words: int) -> None:
    rng = np.random.default_rng(words)
    rows = rng.integers(0, 2**63, size=(500, words), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    rows[0] = ~np.uint64(0)  # every bit set
    probe = np.zeros(words, dtype=np.uint64)
    expected = [sum(int(w).bit_count() for w in row) for row in rows]
    assert distances_to(rows, probe).tolist() == expected
    assert distances_to(rows, probe)[0] == 64 * words  # 256 does not wrap for PDQ
