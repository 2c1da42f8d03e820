"""Multi-index hashing: exact Hamming range search over millions of packed hashes.

After Norouzi, Punjani and Fleet, *Fast Search in Hamming Space with Multi-Index Hashing*
(CVPR 2012). A ``bits``-bit hash is cut into ``m`` disjoint chunks of consecutive bits. If two
hashes are within distance ``r`` and ``r = s * m + a`` (``0 <= a < m``), then one of the first
``a + 1`` chunks differs in at most ``s`` bits, or one of the other chunks in at most ``s - 1``
bits (otherwise the distance would be at least ``(a + 1)(s + 1) + (m - a - 1) s = r + 1``).

For every chunk the index keeps the row numbers sorted by chunk value plus an offsets table
(``offsets[v] .. offsets[v + 1]`` are the rows whose chunk equals ``v``), like a CSR matrix. A
query enumerates the chunk values within the small per-chunk radius (XOR with precomputed
masks), gathers the rows of those buckets, and verifies every candidate with
``np.bitwise_count`` on the packed ``uint64`` rows: results are exact, never approximate.
:meth:`MultiIndexHammingIndex.search_many` does this for all of a digest's variants in one call,
each probe at its own radius (smallest distance per row over the probes it is within range of).
Verification reads the leading half of each candidate's words first, from the index's own
copy of the rows: that half alone rules out nearly every candidate, and the trailing half is
read for the few left.
Everything is numpy; no Python loop runs per entry or per candidate.

Chunk widths follow the list size (about ``log2(n)`` bits, so a bucket holds a few rows) within
a memory budget for the offsets tables; :func:`plan_chunks` picks them with a cost model of the
lookups and candidates at the radii the matcher uses.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Final, Generic, TypeVar, cast

import numpy as np
import numpy.typing as npt

from matchers.algorithms import (
    PDQ_CONFIRM_THRESHOLD,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.errors import InvalidHash

__all__ = [
    "DEFAULT_RADII",
    "MAX_CHUNK_BITS",
    "MultiIndexHammingIndex",
    "Radii",
    "best_per_probe_brute_force",
    "distances_to",
    "pack_hex",
    "plan_chunks",
    "probe_radii",
]

P = TypeVar("P")

WORD_BITS: Final = 64
#: Widest chunk: its offsets table has 2**MAX_CHUNK_BITS + 1 entries.
MAX_CHUNK_BITS: Final = 24
#: Narrowest chunk considered by the planner.
MIN_CHUNK_BITS: Final = 4
#: Bytes of offsets tables allowed per indexed row (at least _MIN_OFFSETS_BYTES in all).
OFFSETS_BYTES_PER_ROW: Final = 16
_MIN_OFFSETS_BYTES: Final = 1 << 20
#: At most this many chunks (each costs 4 bytes per row for its sorted row numbers).
MAX_CHUNKS: Final = 16
#: Radii the planner optimises for, by bit length: the matcher's confirm and review bands.
DEFAULT_RADII: Final[dict[int, tuple[int, ...]]] = {
    256: (PDQ_CONFIRM_THRESHOLD, PDQ_REVIEW_THRESHOLD),
    64: (PHASH_CONFIRM_THRESHOLD, PHASH_REVIEW_THRESHOLD),
}
#: Cost model: a gathered candidate costs this many bucket lookups.
_CANDIDATE_COST: Final = 3.0
_LOW32: Final = np.uint64(0xFFFFFFFF)
#: Candidates are verified in blocks of about this many (32 bytes each for PDQ: the gathered
#: rows and the temporaries stay in the CPU caches).
VERIFY_BLOCK: Final = 16384
#: A query plan: chunk number, offsets-table base and XOR mask of every bucket looked up.
_Plan = tuple[npt.NDArray[np.intp], npt.NDArray[np.int64], npt.NDArray[np.uint64]]


def pack_hex(hash_hex: str, bits: int) -> npt.NDArray[np.uint64]:
    """A hex hash as ``bits // 64`` uint64 words (the hex bytes in memory order).

    Raises:
        InvalidHash: wrong length or not hex.
    """
    if len(hash_hex) * 4 != bits:
        raise InvalidHash(f"expected a {bits}-bit hash, got {len(hash_hex) * 4} bits")
    try:
        raw = bytes.fromhex(hash_hex)
    except ValueError:
        raise InvalidHash(f"{bits}-bit hash is not hex") from None
    return np.frombuffer(raw, dtype=np.uint64)


def _split(bits: int, m: int) -> tuple[int, ...]:
    base, extra = divmod(bits, m)
    return (base + 1,) * extra + (base,) * (m - extra)


def _lookups(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(radius + 1)) if radius >= 0 else 0


def _radii(widths: Sequence[int], radius: int, n: int) -> tuple[int, ...]:
    """Per-chunk search radius: ``s`` for ``a + 1`` chunks, ``s - 1`` for the others.

    Which chunks get ``s`` is free (the bound holds for any choice); the cheapest are chosen.
    """
    m = len(widths)
    s, a = divmod(radius, m)
    extra = [
        _chunk_cost(w, s, n) - _chunk_cost(w, s - 1, n) for w in widths
    ]  # cost of raising a chunk from s - 1 to s
    raised = set(sorted(range(m), key=lambda j: (extra[j], j))[: a + 1])
    return tuple(s if j in raised else s - 1 for j in range(m))


def _chunk_cost(width: int, radius: int, n: int) -> float:
    lookups = _lookups(width, radius)
    return lookups * (1.0 + _CANDIDATE_COST * n / 2.0**width)


def _cost(widths: Sequence[int], radius: int, n: int) -> float:
    return sum(_chunk_cost(w, s, n) for w, s in zip(widths, _radii(widths, radius, n), strict=True))


def plan_chunks(bits: int, n: int, radii: Iterable[int]) -> tuple[int, ...]:
    """Chunk widths (summing to ``bits``) minimising the cost model over ``radii``.

    Constraints: at most :data:`MAX_CHUNKS` chunks, each at most :data:`MAX_CHUNK_BITS` wide, and
    offsets tables within ``OFFSETS_BYTES_PER_ROW * n`` bytes (at least 1 MiB).
    """
    wanted = [r for r in radii if 0 <= r < bits] or [0]
    budget = max(_MIN_OFFSETS_BYTES, OFFSETS_BYTES_PER_ROW * n)
    best: tuple[float, tuple[int, ...]] | None = None
    for m in range(1, min(MAX_CHUNKS, bits // MIN_CHUNK_BITS) + 1):
        widths = _split(bits, m)
        if widths[0] > MAX_CHUNK_BITS:
            continue
        if sum(4 * (2**w + 1) for w in widths) > budget:
            continue
        cost = sum(_cost(widths, r, n) for r in wanted)
        if best is None or cost < best[0]:
            best = (cost, widths)
    if best is None:  # nothing fits the budget: as many chunks as allowed
        return _split(bits, min(MAX_CHUNKS, bits // MIN_CHUNK_BITS))
    return best[1]


_TWO_WORDS: Final = 2
_PAIR_SUM: Final = np.uint16(0x0101)
_FOUR_WORDS: Final = 4
_BYTE_SUM: Final = np.uint32(0x01010101)
_ALL_64: Final = np.uint32(0x40404040)  # four words of 64 differing bits each: distance 256


def distances_to(
    rows: npt.NDArray[np.uint64], probe: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    """Hamming distance of every packed row to ``probe`` (``np.bitwise_count`` per word).

    ``probe`` is one packed hash (``(words,)``) or one per row (``(n, words)``).

    Summing the per-word counts along a short axis is slow in numpy; for one and four words
    (pHash, PDQ) the counts are added without a reduction.
    """
    return _popcount_rows(rows ^ probe)


@functools.lru_cache(maxsize=64)
def _masks(width: int, radius: int) -> npt.NDArray[np.uint64]:
    """Every ``width``-bit value with at most ``radius`` bits set (0 first)."""
    values = [0]
    for k in range(1, min(radius, width) + 1):
        values.extend(
            sum(1 << bit for bit in combo) for combo in itertools.combinations(range(width), k)
        )
    masks = np.array(values, dtype=np.uint64)
    masks.flags.writeable = False
    return masks


def _distances_by_probe(
    candidates: npt.NDArray[np.uint64],
    probes: npt.NDArray[np.uint64],
    slices: Iterable[tuple[int, int, int]],
) -> npt.NDArray[np.int64]:
    """Hamming distance of each gathered candidate row to the probe it came from: for every
    ``(p, low, high)`` in ``slices``, rows ``low .. high`` of ``candidates`` (overwritten) belong
    to probe ``p``.

    The XOR runs in place one word column at a time (a long strided loop each; broadcasting a
    probe over rows of four words, or gathering a probe per candidate, is several times slower).
    """
    for p, low, high in slices:
        for word in range(candidates.shape[1]):
            column = candidates[low:high, word]
            np.bitwise_xor(column, probes[p, word], out=column)
    return _popcount_rows(candidates)


def _popcount_rows(xored: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Bits set in every row of ``xored`` (see :func:`distances_to`)."""
    counts: npt.NDArray[np.uint8] = np.bitwise_count(xored)
    words = xored.shape[1]
    total: npt.NDArray[np.int64]
    if words == 1:
        total = counts.ravel().astype(np.int64)
    elif words == _TWO_WORDS:
        pairs: npt.NDArray[np.uint16] = np.ascontiguousarray(counts).view(np.uint16).ravel()
        # The top byte of pairs * 0x0101 is the sum of the two counts (at most 128).
        total = ((pairs * _PAIR_SUM) >> np.uint16(8)).astype(np.int64)
    elif words == _FOUR_WORDS:
        packed: npt.NDArray[np.uint32] = np.ascontiguousarray(counts).view(np.uint32).ravel()
        # The top byte of packed * 0x01010101 is the sum of the four counts (mod 256).
        total = ((packed * _BYTE_SUM) >> np.uint32(24)).astype(np.int64)
        total[packed == _ALL_64] = 4 * WORD_BITS
    else:
        total = counts.sum(axis=1, dtype=np.int64)
    return total


#: A search radius for every probe, or one per probe.
Radii = int | Sequence[int] | npt.NDArray[np.integer]


def probe_radii(max_distance: Radii, probes: int) -> npt.NDArray[np.int64]:
    """``max_distance`` as one radius per probe (``int64``, length ``probes``).

    Raises:
        ValueError: a sequence of radii whose length is not the number of probes.
    """
    if isinstance(max_distance, int | np.integer):
        return np.full(probes, int(max_distance), dtype=np.int64)
    radii = np.asarray(max_distance, dtype=np.int64)
    if radii.shape != (probes,):
        raise ValueError(f"expected one radius or {probes} radii, got shape {radii.shape}")
    return radii


def best_per_probe_brute_force(
    rows: npt.NDArray[np.uint64], probes: npt.NDArray[np.uint64], radii: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Brute force for :meth:`MultiIndexHammingIndex.search_many`'s contract: every row within
    its probe's radius of some probe, at its smallest such distance, sorted by (distance, row).
    """
    if not len(rows) or not len(probes):
        return _no_hits()
    beyond = np.int64(rows.shape[1] * WORD_BITS + 1)  # farther than any two hashes
    best = np.full(len(rows), beyond, dtype=np.int64)
    for probe, radius in zip(probes, radii.tolist(), strict=True):
        if radius < 0:
            continue
        distances = distances_to(rows, probe)
        distances[distances > radius] = beyond
        np.minimum(best, distances, out=best)
    hits = np.flatnonzero(best < beyond)
    return _sort_hits(hits.astype(np.intp), best[hits])


def _no_hits() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)


def _sort_hits(
    rows: npt.NDArray[np.intp], distances: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """``rows`` (ascending) and their distances, reordered by (distance, row)."""
    order = np.argsort(distances, kind="stable")
    return rows[order], distances[order]


def _best_per_row(
    rows: npt.NDArray[np.intp], distances: npt.NDArray[np.int64], bits: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Each row once with its smallest distance (rows may repeat: several chunks or probes),
    sorted by (distance, row)."""
    if not len(rows):
        return _no_hits()
    keys = np.unique(rows.astype(np.int64) * (bits + 1) + distances)  # by row, then distance
    unique_rows, best = np.divmod(keys, bits + 1)
    first = np.ones(len(keys), dtype=bool)
    first[1:] = unique_rows[1:] != unique_rows[:-1]
    return _sort_hits(unique_rows[first].astype(np.intp), best[first])


class MultiIndexHammingIndex(Generic[P]):
    """Exact Hamming range search by multi-index hashing (see the module docstring).

    Satisfies :class:`matchers.index.HammingIndex`. Built in one go from packed rows with
    :meth:`from_rows` (payloads are row numbers), or incrementally with :meth:`add` (the tables
    are rebuilt on the next query, so bulk loading should use :meth:`from_rows`).
    ``query`` results are sorted by distance, then insertion order.
    """

    def __init__(
        self, bits: int, *, chunks: Sequence[int] | None = None, radii: Iterable[int] = ()
    ) -> None:
        if bits <= 0 or bits % WORD_BITS:
            raise ValueError(f"bits must be a positive multiple of {WORD_BITS}, got {bits}")
        self.bits = bits
        self._words = bits // WORD_BITS
        self._fixed_chunks = tuple(chunks) if chunks is not None else None
        if self._fixed_chunks is not None and (
            sum(self._fixed_chunks) != bits
            or not all(0 < w <= MAX_CHUNK_BITS for w in self._fixed_chunks)
        ):
            raise ValueError(f"chunk widths must be 1..{MAX_CHUNK_BITS} bits and sum to {bits}")
        self._radii = tuple(radii) or DEFAULT_RADII.get(bits, (bits // 8,))
        self._rows: npt.NDArray[np.uint64] = np.zeros((0, self._words), dtype=np.uint64)
        # The index's own copy of the rows, split into leading and trailing words (see _build).
        self._head_words = (self._words + 1) // 2
        self._head: npt.NDArray[np.uint64] = np.zeros((0, self._head_words), dtype=np.uint64)
        self._tail: npt.NDArray[np.uint64] = np.zeros(
            (0, self._words - self._head_words), dtype=np.uint64
        )
        self._payloads: list[P] | None = []
        self._pending: list[npt.NDArray[np.uint64]] = []
        self._chunks: tuple[int, ...] = ()
        self._sorted: npt.NDArray[np.unsignedinteger] = np.zeros(0, dtype=np.uint32)
        self._offsets: npt.NDArray[np.unsignedinteger] = np.zeros(1, dtype=np.uint32)
        self._bases: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._plans: dict[int, _Plan] = {}

    @classmethod
    def from_rows(
        cls,
        bits: int,
        rows: npt.NDArray[np.uint64],
        *,
        chunks: Sequence[int] | None = None,
        radii: Iterable[int] = (),
    ) -> MultiIndexHammingIndex[int]:
        """Index packed rows (shape ``(n, bits // 64)``; the index keeps its own copy for
        verification, see ``_build``); payload = row number."""
        index: MultiIndexHammingIndex[int] = MultiIndexHammingIndex(
            bits, chunks=chunks, radii=radii
        )
        if rows.ndim != 2 or rows.shape[1] != index._words or rows.dtype != np.uint64:
            raise ValueError(f"rows must be uint64 of shape (n, {index._words})")
        index._payloads = None
        index._build(rows)
        return index

    @classmethod
    def build(cls, bits: int, items: Iterable[tuple[str, P]]) -> MultiIndexHammingIndex[P]:
        index: MultiIndexHammingIndex[P] = cls(bits)
        for hash_hex, payload in items:
            index.add(hash_hex, payload)
        return index

    def add(self, hash_hex: str, payload: P) -> None:
        if self._payloads is None:
            raise TypeError("an index built from rows takes no further entries")
        self._pending.append(pack_hex(hash_hex, self.bits))
        self._payloads.append(payload)

    def __len__(self) -> int:
        return len(self._rows) + len(self._pending)

    @property
    def chunks(self) -> tuple[int, ...]:
        """Chunk widths in bits (after the tables are built)."""
        self._flush()
        return self._chunks

    @property
    def nbytes(self) -> int:
        """Bytes of the index: its tables and its own copy of the packed rows."""
        self._flush()
        tables = self._sorted.nbytes + self._offsets.nbytes
        return int(self._head.nbytes + self._tail.nbytes + tables)

    def _flush(self) -> None:
        if self._pending:
            fresh = np.stack(self._pending)
            self._pending.clear()
            self._build(np.concatenate([self._rows, fresh]))

    def _chunk_values(self, rows: npt.NDArray[np.uint64]) -> list[npt.NDArray[np.uint64]]:
        """Value of every chunk for each row (bit ``i`` = bit ``i % 64`` of word ``i // 64``)."""
        values = []
        start = 0
        for width in self._chunks:
            word, shift = divmod(start, WORD_BITS)
            value = rows[:, word] >> np.uint64(shift)
            taken = WORD_BITS - shift
            if taken < width:
                value = value | (rows[:, word + 1] << np.uint64(taken))
            if width < WORD_BITS:
                value = value & np.uint64((1 << width) - 1)
            values.append(value)
            start += width
        return values

    def _build(self, rows: npt.NDArray[np.uint64]) -> None:
        n = len(rows)
        self._rows = rows
        # Verification reads the rows at random: the index keeps its own copy (numpy's large
        # allocations are backed by huge pages where the kernel allows, which roughly halves
        # the cost of a random read; a list's columns usually live in a blob read from Redis).
        # Leading and trailing words are apart so that the leading ones alone, half the bytes,
        # rule out nearly every candidate (see search_many).
        self._head = np.array(rows[:, : self._head_words], dtype=np.uint64, order="C")
        self._tail = np.array(rows[:, self._head_words :], dtype=np.uint64, order="C")
        self._chunks = self._fixed_chunks or plan_chunks(self.bits, n, self._radii)
        self._plans.clear()
        total = len(self._chunks) * n
        position_type = np.uint32 if total < 2**32 else np.uint64
        row_type = np.uint32 if n < 2**32 else np.uint64
        sizes = [2**w + 1 for w in self._chunks]
        self._bases = np.cumsum([0, *sizes[:-1]], dtype=np.int64)
        self._offsets = np.empty(sum(sizes), dtype=position_type)
        self._sorted = np.empty(total, dtype=row_type)
        numbers = np.arange(n, dtype=np.uint64)
        for j, (width, values) in enumerate(
            zip(self._chunks, self._chunk_values(rows), strict=True)
        ):
            # One uint64 sort of (value << 32 | row) is much faster than argsort of the values.
            if n < 2**32:
                keys = np.sort((values << np.uint64(32)) | numbers)
                self._sorted[j * n : (j + 1) * n] = keys & _LOW32
            else:  # pragma: no cover - beyond 4 G rows
                self._sorted[j * n : (j + 1) * n] = np.argsort(values, kind="stable")
            counts = np.bincount(values.astype(np.intp), minlength=2**width)
            base = int(self._bases[j])
            self._offsets[base] = j * n
            self._offsets[base + 1 : base + 2**width + 1] = np.cumsum(counts) + j * n

    def _plan(self, radius: int) -> _Plan:
        """(chunk number, offsets-table base, XOR mask) of every bucket a query at ``radius``
        looks up."""
        plan = self._plans.get(radius)
        if plan is None:
            chunk_ids: list[npt.NDArray[np.intp]] = []
            masks: list[npt.NDArray[np.uint64]] = []
            n = len(self._rows)
            for j, (width, r) in enumerate(
                zip(self._chunks, _radii(self._chunks, radius, n), strict=True)
            ):
                if r < 0:
                    continue
                chunk_masks = _masks(width, r)
                masks.append(chunk_masks)
                chunk_ids.append(np.full(len(chunk_masks), j, dtype=np.intp))
            ids = np.concatenate(chunk_ids)
            plan = (ids, self._bases[ids], np.concatenate(masks))
            self._plans[radius] = plan
        return plan

    def search(
        self, probe: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """Rows within ``max_distance`` of a packed probe and their distances, sorted by
        (distance, row)."""
        if probe.shape != (self._words,):
            raise InvalidHash(f"expected a {self.bits}-bit probe")
        return self.search_many(probe[None, :], max_distance)

    def search_many(
        self, probes: npt.NDArray[np.uint64], max_distance: Radii
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """Rows within range of any of the packed probes (shape ``(k, bits // 64)``), each once
        with its smallest distance over the probes it is within range of, sorted by
        (distance, row).

        ``max_distance`` is one radius for every probe or one per probe (see
        :func:`probe_radii`): a digest's variants at the confirm radius and its canonical hash
        at the review radius go in the same call.

        One pass for all probes: the bucket keys of every probe (each at its own radius) are
        enumerated and looked up together, their candidates gathered and verified in
        cache-sized blocks, each against the probe whose bucket produced it and at that
        probe's radius, and each row is kept once at its smallest distance. That is exact: a
        row within a probe's radius is among that probe's candidates (the multi-index bound
        holds per probe), so every (row, probe) pair within range is verified. ``search`` is
        this with one probe.
        """
        self._flush()
        rows = self._rows
        if probes.ndim != 2 or probes.shape[1] != self._words:
            raise InvalidHash(f"expected {self.bits}-bit probes")
        radii = probe_radii(max_distance, len(probes))
        live = radii >= 0
        if not len(rows) or not live.any():
            return _no_hits()
        probes = np.ascontiguousarray(probes[live], dtype=np.uint64)
        radii = radii[live]
        if int(radii.max()) >= self.bits:  # a whole-space radius: brute force, probe by probe
            return best_per_probe_brute_force(rows, probes, radii)
        probe_chunks = np.stack(self._chunk_values(probes), axis=1)  # (k, chunks)
        # keys: offsets-table index of every bucket looked up, probe-major; per_probe[p] of them
        # belong to probe p (probes of one radius share a plan and are enumerated together).
        key_blocks: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)] * len(probes)
        per_probe = np.zeros(len(probes), dtype=np.int64)
        for radius in np.unique(radii).tolist():
            chunk_ids, bucket_bases, masks = self._plan(radius)
            chosen = np.flatnonzero(radii == radius)
            block = bucket_bases + (probe_chunks[chosen][:, chunk_ids] ^ masks).astype(np.int64)
            for p, keys_of_probe in zip(chosen.tolist(), block, strict=True):
                key_blocks[p] = keys_of_probe
            per_probe[chosen] = len(chunk_ids)
        keys = np.concatenate(key_blocks)
        starts = np.take(self._offsets, keys).astype(np.int64)
        lengths = np.take(self._offsets, keys + 1).astype(np.int64)
        lengths -= starts
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        if not total:
            return _no_hits()
        # Candidates are probe-major: probe p's are numbers probe_ends[p] .. probe_ends[p + 1]
        # of the concatenated buckets; the g-th candidate is sorted[shift[i] + g] (bucket i).
        probe_ends = [0, *ends[np.cumsum(per_probe) - 1].tolist()]
        shift = starts - ends + lengths
        # Verified in blocks of about VERIFY_BLOCK candidates: one large batch would spill the
        # gathered rows and temporaries out of the CPU caches and run slower.
        cuts = np.searchsorted(ends, np.arange(VERIFY_BLOCK, total, VERIFY_BLOCK), side="left")
        bounds = [0, *np.unique(cuts + 1).tolist()]
        if bounds[-1] != len(keys):
            bounds.append(len(keys))
        found: list[npt.NDArray[np.intp]] = []
        found_distances: list[npt.NDArray[np.int64]] = []
        for a, b in itertools.pairwise(bounds):
            low, high = int(ends[a - 1]) if a else 0, int(ends[b - 1])
            if low == high:
                continue
            positions = np.repeat(shift[a:b], lengths[a:b])
            positions += np.arange(low, high, dtype=np.int64)
            candidates = np.take(self._sorted, positions).astype(np.intp)
            slices = [
                (p, max(start, low) - low, min(end, high) - low)
                for p, (start, end) in enumerate(itertools.pairwise(probe_ends))
                if start < high and end > low
            ]
            # The leading words first: their distance alone exceeds the radius for nearly
            # every candidate (128 random bits differ in 64 +- 6); the trailing words of the
            # few left are read and added after.
            head = np.take(self._head, candidates, axis=0)
            distances = _distances_by_probe(head, probes[:, : self._head_words], slices)
            keep = np.empty(len(distances), dtype=bool)
            for p, start, end in slices:
                np.less_equal(distances[start:end], radii[p], out=keep[start:end])
            near = np.flatnonzero(keep) if self._tail.shape[1] else np.zeros(0, dtype=np.intp)
            if len(near):
                owner = np.array([p for p, _start, _end in slices], dtype=np.intp)[
                    np.searchsorted([start for _p, start, _end in slices], near, side="right") - 1
                ]
                tail = np.take(self._tail, candidates[near], axis=0)
                tail ^= probes[owner, self._head_words :]
                distances[near] += _popcount_rows(tail)
                keep[near] = distances[near] <= radii[owner]
            found.append(candidates[keep])
            found_distances.append(distances[keep])
        return _best_per_row(np.concatenate(found), np.concatenate(found_distances), self.bits)

    def query(self, hash_hex: str, max_distance: int) -> list[tuple[P, int]]:
        probe = pack_hex(hash_hex, self.bits)
        found, distances = self.search(probe, max_distance)
        if self._payloads is None:
            return cast(
                "list[tuple[P, int]]", list(zip(found.tolist(), distances.tolist(), strict=True))
            )
        payloads = self._payloads
        return [(payloads[i], d) for i, d in zip(found.tolist(), distances.tolist(), strict=True)]
