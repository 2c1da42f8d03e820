"""Indexes over hash lists and the :class:`Matcher` that turns a digest into verdicts.

Two small interfaces: an exact index (hash text -> payloads) and a Hamming
index (``add`` / ``query(hash, max_distance) -> [(payload, distance)]``, plus the array form
``search``). The linear Hamming index is the reference implementation and the oracle for the
multi-index hashing one (:mod:`matchers.mih`), the matcher's default for all but small lists.
The matcher builds its indexes straight from a list's columns (no object per entry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from matchers.algorithms import BITS, EXACT_ALGORITHMS
from matchers.digest import ImageDigest
from matchers.errors import HashListError, InvalidHash
from matchers.lists import ALLOW, DEFAULT_ID, VIDEO_ENTRY_PREFIX, HashList, Thresholds
from matchers.mih import (
    MultiIndexHammingIndex,
    Radii,
    best_per_probe_brute_force,
    distances_to,
    pack_hex,
    probe_radii,
)

if TYPE_CHECKING:
    from matchers.video import FrameHashes

__all__ = [
    "ALGORITHM_PREFERENCE",
    "CONFIRMED",
    "REVIEW",
    "SMALL_INDEX_ROWS",
    "VIDEO_MATCH_PERCENT",
    "ExactIndex",
    "HammingIndex",
    "HammingIndexFactory",
    "LinearHammingIndex",
    "Match",
    "Matcher",
    "MultiIndexHammingIndex",
    "SortedExactIndex",
    "default_index",
]

P = TypeVar("P")

CONFIRMED: Final = "confirmed"
REVIEW: Final = "review"
#: When one entry matches through several hashes, the first algorithm here wins.
ALGORITHM_PREFERENCE: Final = ("sha256", "sha1", "md5", "pdq", "phash")
_VERDICT_RANK: Final = {CONFIRMED: 0, REVIEW: 1}
#: A video entry (id ``vpdq:...``: a video's PDQ frame hashes, as imported from vPDQ) is
#: confirmed when at least this percentage of the crawled video's frames, or of the entry's
#: frames, match within the PDQ confirm threshold (Meta's vPDQ rule: the larger of the query
#: and target match percentages, 80 %); fewer matching frames send it to review.
VIDEO_MATCH_PERCENT: Final = 80.0
#: Frame times kept per match (the first ones, in time order; the count is always kept).
MAX_MATCH_TIMES: Final = 20
_ALGORITHM_RANK: Final = {name: rank for rank, name in enumerate(ALGORITHM_PREFERENCE)}
_WORD_BITS: Final = 64


@dataclass(frozen=True, slots=True)
class Match:
    """One list entry matched by an image."""

    list: str
    entry: str
    category: str
    algorithm: str
    distance: int
    verdict: str  # CONFIRMED | REVIEW
    #: A video's: times (seconds) of the sampled frames that matched at this verdict (at most
    #: MAX_MATCH_TIMES, the first ones) and how many frames did.
    times: tuple[float, ...] = ()
    frames: int = 0
    #: A video entry's (see VIDEO_MATCH_PERCENT): the larger of the share of the video's
    #: frames that match the entry and the share of the entry's frames matched, in percent.
    share: float | None = None
    #: A video's: the PDQ (and its quality) of the frame that matched best by PDQ, what a
    #: recheck looks for in the video it fetches again.
    frame_pdq: str | None = None
    frame_pdq_quality: int | None = None
    #: A PDQ review-band match confirmed because the image's pHash is within the review
    #: distance of the same entry too (lists with ``Thresholds.corroborate``): the pHash
    #: distance. ``algorithm`` and ``distance`` are the PDQ's.
    corroborated_by: int | None = None


class ExactIndex(Generic[P]):
    """Hash text -> payloads (a dict; several payloads may share a hash)."""

    def __init__(self) -> None:
        self._table: dict[str, list[P]] = {}

    @classmethod
    def build(cls, items: Iterable[tuple[str, P]]) -> ExactIndex[P]:
        index: ExactIndex[P] = cls()
        for hash_hex, payload in items:
            index.add(hash_hex, payload)
        return index

    def add(self, hash_hex: str, payload: P) -> None:
        self._table.setdefault(hash_hex, []).append(payload)

    def query(self, hash_hex: str) -> list[P]:
        return list(self._table.get(hash_hex, ()))

    def __len__(self) -> int:
        return sum(len(payloads) for payloads in self._table.values())


class HammingIndex(Protocol[P]):
    """What the matcher needs from a perceptual index.

    ``add``/``query`` work with hex text and arbitrary payloads; ``search`` is the array form:
    row numbers (insertion order) and distances of every indexed hash within ``max_distance``
    of a packed probe (``bits // 64`` uint64 words), sorted by (distance, row).
    ``search_many`` is what the :class:`Matcher` uses, one call per index for all of a digest's
    variants: the same for a ``(k, bits // 64)`` array of probes, with one radius for all or
    one per probe; each row once, at its smallest distance over the probes it is within range
    of (rows out of range of every probe are left out).
    Implementations must be exact: no hash within the radius is ever missed.
    """

    bits: int

    def add(self, hash_hex: str, payload: P) -> None: ...

    def query(self, hash_hex: str, max_distance: int) -> list[tuple[P, int]]: ...

    def search(
        self, probe: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]: ...

    def search_many(
        self, probes: npt.NDArray[np.uint64], max_distance: Radii
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]: ...

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the index holds (what it shares with its list included)."""
        ...


class LinearHammingIndex(Generic[P]):
    """Brute force over a packed ``uint64`` matrix with ``np.bitwise_count``, vectorised.

    The reference implementation and the oracle of the faster ones. Results are sorted by
    distance, then insertion order.
    """

    def __init__(self, bits: int) -> None:
        if bits <= 0 or bits % _WORD_BITS:
            raise ValueError(f"bits must be a positive multiple of {_WORD_BITS}, got {bits}")
        self.bits = bits
        self._words = bits // _WORD_BITS
        self._payloads: list[P] | None = []
        self._pending: list[npt.NDArray[np.uint64]] = []
        self._matrix: npt.NDArray[np.uint64] = np.zeros((0, self._words), dtype=np.uint64)

    @classmethod
    def build(cls, bits: int, items: Iterable[tuple[str, P]]) -> LinearHammingIndex[P]:
        index: LinearHammingIndex[P] = cls(bits)
        for hash_hex, payload in items:
            index.add(hash_hex, payload)
        return index

    @classmethod
    def from_rows(cls, bits: int, rows: npt.NDArray[np.uint64]) -> LinearHammingIndex[int]:
        """Index packed rows (shape ``(n, bits // 64)``, not copied); payload = row number."""
        index: LinearHammingIndex[int] = LinearHammingIndex(bits)
        if rows.ndim != 2 or rows.shape[1] != index._words or rows.dtype != np.uint64:
            raise ValueError(f"rows must be uint64 of shape (n, {index._words})")
        index._payloads = None
        index._matrix = rows
        return index

    def add(self, hash_hex: str, payload: P) -> None:
        if self._payloads is None:
            raise TypeError("an index built from rows takes no further entries")
        self._pending.append(pack_hex(hash_hex, self.bits))
        self._payloads.append(payload)

    def _rows(self) -> npt.NDArray[np.uint64]:
        if self._pending:
            self._matrix = np.concatenate([self._matrix, np.stack(self._pending)])
            self._pending.clear()
        return self._matrix

    @property
    def nbytes(self) -> int:
        return int(self._rows().nbytes)

    def search(
        self, probe: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        rows = self._rows()
        if probe.shape != (self._words,):
            raise InvalidHash(f"expected a {self.bits}-bit probe")
        if max_distance < 0 or not len(rows):
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
        distances = distances_to(rows, probe)
        hits = np.flatnonzero(distances <= max_distance)
        order = hits[np.argsort(distances[hits], kind="stable")]
        return order, distances[order]

    def search_many(
        self, probes: npt.NDArray[np.uint64], max_distance: Radii
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """Brute force, probe by probe: every row within its probe's radius of some probe, at
        its smallest such distance (``max_distance``: one radius, or one per probe)."""
        rows = self._rows()
        if probes.ndim != 2 or probes.shape[1] != self._words:
            raise InvalidHash(f"expected {self.bits}-bit probes")
        return best_per_probe_brute_force(rows, probes, probe_radii(max_distance, len(probes)))

    def query(self, hash_hex: str, max_distance: int) -> list[tuple[P, int]]:
        found, distances = self.search(pack_hex(hash_hex, self.bits), max_distance)
        if self._payloads is None:
            return cast(
                "list[tuple[P, int]]", list(zip(found.tolist(), distances.tolist(), strict=True))
            )
        payloads = self._payloads
        return [(payloads[i], d) for i, d in zip(found.tolist(), distances.tolist(), strict=True)]

    def __len__(self) -> int:
        return len(self._matrix) + len(self._pending)


#: Builds a Hamming index over packed rows (``(n, bits // 64)`` uint64); payload = row number.
HammingIndexFactory = Callable[[int, npt.NDArray[np.uint64]], HammingIndex[int]]

#: Lists with fewer perceptual hashes than this are searched by brute force (faster there).
SMALL_INDEX_ROWS: Final = 4096


def default_index(bits: int, rows: npt.NDArray[np.uint64]) -> HammingIndex[int]:
    """The matcher's default: brute force for small lists, multi-index hashing otherwise."""
    if len(rows) < SMALL_INDEX_ROWS:
        return LinearHammingIndex.from_rows(bits, rows)
    return MultiIndexHammingIndex.from_rows(bits, rows)


class SortedExactIndex:
    """Exact lookup over a column of raw hashes without a Python object per entry.

    Rows are sorted by their first 8 bytes (as a big-endian integer); a query binary-searches
    that prefix and compares the full hash of the few rows sharing it.
    """

    _PREFIX: Final = 8

    def __init__(self, hashes: npt.NDArray[np.uint8]) -> None:
        self._hashes = hashes
        prefix = np.ascontiguousarray(hashes[:, : self._PREFIX]).view(">u8").ravel()
        keys = prefix.astype(np.uint64)
        self._order = np.argsort(keys).astype(np.uint32 if len(keys) < 2**32 else np.int64)
        self._keys = keys[self._order]

    def search(self, hash_hex: str) -> npt.NDArray[np.intp]:
        """Rows whose hash is ``hash_hex`` (ascending)."""
        width = self._hashes.shape[1]
        if len(hash_hex) != 2 * width:
            return np.zeros(0, dtype=np.intp)
        try:
            raw = bytes.fromhex(hash_hex)
        except ValueError:
            return np.zeros(0, dtype=np.intp)
        key = np.uint64(int.from_bytes(raw[: self._PREFIX], "big"))
        low = int(np.searchsorted(self._keys, key, side="left"))
        high = int(np.searchsorted(self._keys, key, side="right"))
        rows = self._order[low:high].astype(np.intp)
        probe = np.frombuffer(raw, dtype=np.uint8)
        return np.sort(rows[(self._hashes[rows] == probe).all(axis=1)])

    @property
    def nbytes(self) -> int:
        return int(self._order.nbytes + self._keys.nbytes)


class _ListIndex:
    """All indexes of one hash list, built straight from its columns (a multi-index keeps its
    own copy of the packed rows; exact indexes and brute force share the columns)."""

    def __init__(self, hash_list: HashList, factory: HammingIndexFactory) -> None:
        self.name = hash_list.name
        self.list = hash_list
        self.thresholds: Thresholds = hash_list.thresholds
        self.exact: dict[str, SortedExactIndex] = {}
        self.perceptual: dict[str, HammingIndex[int]] = {}
        for algorithm, column in hash_list.columns.items():
            if not len(column):
                continue
            if algorithm in EXACT_ALGORITHMS:
                self.exact[algorithm] = SortedExactIndex(column.hashes)
            else:
                self.perceptual[algorithm] = factory(BITS[algorithm], column.words())
        self._pdq_rows_per_id: npt.NDArray[np.intp] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the list's columns and of its indexes' arrays (an index that shares
        the columns' array counts it again: an upper bound)."""
        exact = sum(index.nbytes for index in self.exact.values())
        perceptual = sum(index.nbytes for index in self.perceptual.values())
        return self.list.nbytes + exact + perceptual

    def candidates(self, digest: ImageDigest, *, confirmed_only: bool) -> list[Match]:
        """Every (entry, algorithm, distance) hit of ``digest`` in this list; for perceptual
        algorithms, the smallest distance over all the digest's variants. With
        corroboration (see :class:`~matchers.lists.Thresholds`), an entry that both the PDQ
        and the pHash reach in their review band is confirmed too."""
        matches = [self._match(*hit) for hit in self.hits(digest, confirmed_only=confirmed_only)]
        if self.thresholds.corroborate and not confirmed_only:
            matches += _corroborated(matches)
        return matches

    def pdq_rows_per_id(self) -> npt.NDArray[np.intp]:
        """PDQ rows per entry id number (index 0, the default id, counts nothing): a video
        entry's frames. Computed once per list, when a video first needs it."""
        if self._pdq_rows_per_id is None:
            column = self.list.columns.get("pdq")
            if column is None or not len(column):
                counts = np.zeros(1, dtype=np.intp)
            else:
                counts = np.bincount(column.ids.astype(np.intp))
                counts[DEFAULT_ID] = 0
            self._pdq_rows_per_id = counts
        return self._pdq_rows_per_id

    def hits(self, digest: ImageDigest, *, confirmed_only: bool) -> list[tuple[str, int, int, str]]:
        """:meth:`candidates` as ``(algorithm, row, distance, verdict)``."""
        found: list[tuple[str, int, int, str]] = []
        for algorithm, exact in self.exact.items():
            hash_hex = getattr(digest, algorithm)
            if not hash_hex:
                continue  # a video frame has no exact hash
            for row in exact.search(hash_hex).tolist():
                found.append((algorithm, row, 0, CONFIRMED))
        for algorithm, probes in self._perceptual_hashes(digest):
            index = self.perceptual.get(algorithm)
            if index is None:
                continue
            confirm = self.thresholds.confirm(algorithm)
            # One search per index: every variant at the confirm radius and the canonical hash
            # (first) at the review radius. The review band is searched for the canonical hash
            # only: at 10 M entries a review-radius probe costs ~20x a confirm-radius one, and
            # near misses of rotated or mirrored copies are not worth 9 of them per image.
            radii = np.full(len(probes), confirm, dtype=np.int64)
            if not confirmed_only:
                radii[0] = self.thresholds.review(algorithm)
            rows, distances = index.search_many(_pack_all(probes, index.bits), radii)
            for row, distance in zip(rows.tolist(), distances.tolist(), strict=True):
                verdict = CONFIRMED if distance <= confirm else REVIEW
                found.append((algorithm, row, distance, verdict))
        return found

    def _perceptual_hashes(self, digest: ImageDigest) -> list[tuple[str, list[str]]]:
        """(algorithm, hashes to query): the canonical hash plus its variants, if any."""
        hashes: list[tuple[str, list[str]]] = []
        quality = digest.pdq_quality if digest.pdq_quality is not None else -1
        if digest.pdq is not None and quality >= self.thresholds.pdq_min_quality:
            hashes.append(("pdq", _with_variants(digest.pdq, getattr(digest, "pdq_variants", ()))))
        if digest.phash is not None:
            variants = getattr(digest, "phash_variants", ())
            hashes.append(("phash", _with_variants(digest.phash, variants)))
        return hashes

    def _match(self, algorithm: str, row: int, distance: int, verdict: str) -> Match:
        return Match(
            self.name,
            self.list.entry_id(algorithm, row),
            self.list.entry_category(algorithm, row),
            algorithm,
            distance,
            verdict,
        )


def _corroborated(matches: Sequence[Match]) -> list[Match]:
    """The confirmed matches corroboration makes: per entry not confirmed otherwise, its best
    PDQ review match confirmed when a pHash match of the same entry is in its review band."""
    pdq: dict[str, Match] = {}
    phash: dict[str, int] = {}
    confirmed: set[str] = set()
    for match in matches:
        if match.verdict == CONFIRMED:
            confirmed.add(match.entry)
        elif match.algorithm == "pdq":
            if match.entry not in pdq or match.distance < pdq[match.entry].distance:
                pdq[match.entry] = match
        elif match.algorithm == "phash":
            phash[match.entry] = min(match.distance, phash.get(match.entry, match.distance))
    return [
        dataclasses.replace(match, verdict=CONFIRMED, corroborated_by=phash[entry])
        for entry, match in pdq.items()
        if entry in phash and entry not in confirmed
    ]


def _pack_all(hashes: Sequence[str], bits: int) -> npt.NDArray[np.uint64]:
    """Hex hashes as a ``(len(hashes), bits // 64)`` array of packed rows (one parse for all).

    Raises:
        InvalidHash: a hash of the wrong length or not hex.
    """
    if any(len(hash_hex) * 4 != bits for hash_hex in hashes):
        raise InvalidHash(f"expected {bits}-bit hashes")
    try:
        raw = bytes.fromhex("".join(hashes))
    except ValueError:
        raise InvalidHash(f"{bits}-bit hash is not hex") from None
    if len(raw) * 8 != bits * len(hashes):  # fromhex skips whitespace
        raise InvalidHash(f"{bits}-bit hash is not hex")
    return np.frombuffer(raw, dtype=np.uint64).reshape(len(hashes), bits // _WORD_BITS)


def _with_variants(canonical: str, variants: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([canonical, *(variants or ())]))


def _preference(match: Match) -> tuple[int, int, int]:
    return (_VERDICT_RANK[match.verdict], _ALGORITHM_RANK[match.algorithm], match.distance)


class Matcher:
    """Match image digests against hash lists, honouring allow-lists of known false positives.

    ``match`` returns one :class:`Match` per (list, entry id), the best one: confirmed beats
    review, then exact beats perceptual (sha256 > sha1 > md5 > pdq > phash), then the smaller
    distance. Results are sorted by list name, verdict (confirmed first), algorithm preference,
    distance and entry id. If the image matches any allow-list entry within that allow-list's
    confirm threshold, nothing is returned. Every hash in ``digest.pdq_variants`` /
    ``digest.phash_variants`` (mirrored/rotated copies, animation frames) is queried too, at
    the confirm threshold; the review band is searched with the canonical hash only.

    A matcher is immutable: :meth:`with_list` and :meth:`without_list` return a new one that
    shares the indexes of every unchanged list, so a new list version is swapped in one list at
    a time (only that list is ever held twice, while its new index is built).
    """

    def __init__(
        self,
        lists: Sequence[HashList],
        allow: Sequence[HashList] = (),
        *,
        index_factory: HammingIndexFactory = default_index,
    ) -> None:
        names = [hash_list.name for hash_list in [*lists, *allow]]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise HashListError(duplicated[0], None, None, "list name used more than once")
        self._factory = index_factory
        self._lists = tuple(_ListIndex(hash_list, index_factory) for hash_list in lists)
        self._allow = tuple(_ListIndex(hash_list, index_factory) for hash_list in allow)

    @classmethod
    def _from_indexes(
        cls,
        lists: Iterable[_ListIndex],
        allow: Iterable[_ListIndex],
        factory: HammingIndexFactory,
    ) -> Matcher:
        matcher = cls.__new__(cls)
        matcher._factory = factory
        matcher._lists = tuple(lists)
        matcher._allow = tuple(allow)
        return matcher

    @property
    def lists(self) -> tuple[HashList, ...]:
        """The known lists, in the order given."""
        return tuple(index.list for index in self._lists)

    @property
    def allow_lists(self) -> tuple[HashList, ...]:
        return tuple(index.list for index in self._allow)

    @property
    def nbytes(self) -> int:
        """Memory the lists and their indexes hold, in bytes (known and allow-lists; an upper
        bound, see :attr:`_ListIndex.nbytes`): what ``hotline_index_bytes`` reports."""
        return sum(index.nbytes for index in (*self._lists, *self._allow))

    @property
    def perceptual_algorithms(self) -> frozenset[str]:
        """The perceptual algorithms (``"pdq"``, ``"phash"``) any loaded list holds entries of,
        known lists and allow-lists alike: the only perceptual hashes :meth:`match` can use, so
        a caller may skip computing the others."""
        return frozenset(
            algorithm for index in (*self._lists, *self._allow) for algorithm in index.perceptual
        )

    def with_list(self, hash_list: HashList, *, allow: bool | None = None) -> Matcher:
        """A new matcher with ``hash_list`` added or replacing the list of the same name.

        It goes with the allow-lists if ``allow`` is true (default: ``hash_list.kind ==
        "allow"``). The other lists' indexes are shared with this matcher, not rebuilt.
        """
        is_allow = hash_list.kind == ALLOW if allow is None else allow
        fresh = _ListIndex(hash_list, self._factory)
        lists = [i for i in self._lists if i.name != hash_list.name]
        allows = [i for i in self._allow if i.name != hash_list.name]
        target = allows if is_allow else lists
        old = [i.name for i in (self._allow if is_allow else self._lists)]
        position = old.index(hash_list.name) if hash_list.name in old else len(target)
        target.insert(position, fresh)
        return self._from_indexes(lists, allows, self._factory)

    def without_list(self, name: str) -> Matcher:
        """A new matcher without the list (known or allow) called ``name``.

        Raises:
            KeyError: no such list.
        """
        if name not in {i.name for i in (*self._lists, *self._allow)}:
            raise KeyError(name)
        return self._from_indexes(
            (i for i in self._lists if i.name != name),
            (i for i in self._allow if i.name != name),
            self._factory,
        )

    def allowed(self, digest: ImageDigest) -> bool:
        """True if an allow-list entry matches ``digest`` at its confirm threshold."""
        return any(index.candidates(digest, confirmed_only=True) for index in self._allow)

    def match(self, digest: ImageDigest) -> list[Match]:
        return self.match_or_allowed(digest)[0]

    def match_or_allowed(self, digest: ImageDigest) -> tuple[list[Match], bool]:
        """``(matches, allowed)``: the matches, or ``([], True)`` when an allow-list entry
        silences the image (allow-lists are searched once)."""
        if self.allowed(digest):
            return [], True
        best: dict[tuple[str, str], Match] = {}
        for index in self._lists:
            for candidate in index.candidates(digest, confirmed_only=False):
                key = (candidate.list, candidate.entry)
                current = best.get(key)
                if current is None or _preference(candidate) < _preference(current):
                    best[key] = candidate
        return sorted(best.values(), key=lambda m: (m.list, *_preference(m), m.entry)), False

    def match_video(
        self, digest: ImageDigest, frames: Sequence[FrameHashes]
    ) -> tuple[list[Match], bool]:
        """``(matches, allowed)`` of a video: its bytes (``digest``'s exact hashes) against
        every list, then each sampled frame like an image (a frame an allow-list matches is
        skipped; an allow-list entry matching the bytes silences the video).

        An image entry is confirmed when any frame is within its confirm threshold (one
        frame of a known picture is enough), a *video entry* (PDQ frame hashes under an id
        starting ``vpdq:``) when :data:`VIDEO_MATCH_PERCENT` of the frames match (see
        there), and goes to review when fewer do. Each match carries the times of the frames
        that matched at its verdict, their count and, for a video entry, the share; its
        ``distance`` is the best.
        """
        matches, allowed = self.match_or_allowed(digest)
        if allowed:
            return [], True
        best = {(m.list, m.entry): m for m in matches}
        # Each frame's digest, built and checked against the allow-lists once for all lists.
        kept = [(f, d) for f in frames if not self.allowed(d := f.as_image_digest())]
        for index in self._lists:
            video_entries = _VideoEntries(index)
            queryable = 0
            for frame, frame_digest in kept:
                quality = frame.pdq_quality if frame.pdq_quality is not None else -1
                if frame.pdq_variants and quality >= index.thresholds.pdq_min_quality:
                    queryable += 1
                for algorithm, row, distance, verdict in index.hits(
                    frame_digest, confirmed_only=False
                ):
                    video_entries.add(algorithm, row, distance, verdict, frame)
            for match in video_entries.matches(queryable):
                key = (match.list, match.entry)
                current = best.get(key)
                if current is None or _preference(match) < _preference(current):
                    best[key] = match
        return sorted(best.values(), key=lambda m: (m.list, *_preference(m), m.entry)), False


class _VideoEntries:
    """The frame hits of one video in one list, gathered per entry."""

    def __init__(self, index: _ListIndex) -> None:
        self.index = index
        # entry id -> [algorithm, category, best distance, {verdict: set of times}, pdq rows hit]
        self.entries: dict[str, _EntryFrames] = {}

    def add(
        self, algorithm: str, row: int, distance: int, verdict: str, frame: FrameHashes
    ) -> None:
        when = frame.time
        hash_list = self.index.list
        entry_id = hash_list.entry_id(algorithm, row)
        found = self.entries.get(entry_id)
        if found is None:
            number = int(hash_list.columns[algorithm].ids[row])
            found = _EntryFrames(
                algorithm, hash_list.entry_category(algorithm, row), distance, number
            )
            self.entries[entry_id] = found
        if (_ALGORITHM_RANK[algorithm], distance) < (
            _ALGORITHM_RANK[found.algorithm],
            found.distance,
        ):
            found.algorithm, found.distance = algorithm, distance
        if algorithm == "pdq" and (found.pdq_distance is None or distance < found.pdq_distance):
            found.pdq_distance = distance
            found.frame_pdq = frame.pdq_variants[0]
            found.frame_pdq_quality = frame.pdq_quality
        found.times.setdefault(verdict, set()).add(when)
        if algorithm == "pdq" and verdict == CONFIRMED:
            found.pdq_rows.add(row)
            found.confirmed_pdq_times.add(when)

    def matches(self, queryable: int) -> list[Match]:
        rows_per_id = self.index.pdq_rows_per_id() if self.entries else None
        out: list[Match] = []
        for entry_id, found in self.entries.items():
            entry_rows = 0
            if rows_per_id is not None and found.number < len(rows_per_id):
                entry_rows = int(rows_per_id[found.number])
            share: float | None = None
            if entry_id.startswith(VIDEO_ENTRY_PREFIX) and entry_rows:  # the share decides
                query_share = 100.0 * len(found.confirmed_pdq_times) / max(1, queryable)
                entry_share = 100.0 * len(found.pdq_rows) / entry_rows
                share = round(min(100.0, max(query_share, entry_share)), 1)
                verdict = CONFIRMED if share >= VIDEO_MATCH_PERCENT else REVIEW
                times = found.times.get(CONFIRMED, set()) | (
                    found.times.get(REVIEW, set()) if verdict == REVIEW else set()
                )
            else:
                verdict = CONFIRMED if CONFIRMED in found.times else REVIEW
                times = found.times[verdict]
            ordered = tuple(sorted(times))
            out.append(
                Match(
                    self.index.name,
                    entry_id,
                    found.category,
                    found.algorithm,
                    found.distance,
                    verdict,
                    times=ordered[:MAX_MATCH_TIMES],
                    frames=len(ordered),
                    share=share,
                    frame_pdq=found.frame_pdq,
                    frame_pdq_quality=found.frame_pdq_quality,
                )
            )
        return out


@dataclass(slots=True)
class _EntryFrames:
    algorithm: str
    category: str
    distance: int
    number: int  # the entry's id number in the list (DEFAULT_ID: an entry of one hash)
    times: dict[str, set[float]] = field(default_factory=dict)
    pdq_rows: set[int] = field(default_factory=set)
    confirmed_pdq_times: set[float] = field(default_factory=set)
    pdq_distance: int | None = None
    frame_pdq: str | None = None
    frame_pdq_quality: int | None = None
