"""Indexes over hash lists and the :class:`Matcher` that turns a digest into verdicts.

Two small interfaces (STYLE.md point 6): an exact index (hash text -> payloads) and a Hamming
index (``add`` / ``query(hash, max_distance) -> [(payload, distance)]``). The linear Hamming
index is the reference implementation and the oracle for faster ones (multi-index hashing,
FAISS binary indexes), which only need to satisfy :class:`HammingIndex`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from matchers.algorithms import BITS, EXACT_ALGORITHMS, PERCEPTUAL_ALGORITHMS
from matchers.digest import ImageDigest
from matchers.errors import HashListError, InvalidHash
from matchers.lists import HashList, ListEntry, Thresholds

__all__ = [
    "ALGORITHM_PREFERENCE",
    "CONFIRMED",
    "REVIEW",
    "ExactIndex",
    "HammingIndex",
    "LinearHammingIndex",
    "Match",
    "Matcher",
]

P = TypeVar("P")

CONFIRMED: Final = "confirmed"
REVIEW: Final = "review"
#: When one entry matches through several hashes, the first algorithm here wins.
ALGORITHM_PREFERENCE: Final = ("sha256", "sha1", "md5", "pdq", "phash")
_VERDICT_RANK: Final = {CONFIRMED: 0, REVIEW: 1}
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
    """What the matcher needs from a perceptual index."""

    bits: int

    def add(self, hash_hex: str, payload: P) -> None: ...

    def query(self, hash_hex: str, max_distance: int) -> list[tuple[P, int]]: ...

    def __len__(self) -> int: ...


class LinearHammingIndex(Generic[P]):
    """Brute force over a packed ``uint64`` matrix with ``np.bitwise_count``, vectorised.

    Results are sorted by distance, then insertion order.
    """

    def __init__(self, bits: int) -> None:
        if bits <= 0 or bits % _WORD_BITS:
            raise ValueError(f"bits must be a positive multiple of {_WORD_BITS}, got {bits}")
        self.bits = bits
        self._words = bits // _WORD_BITS
        self._payloads: list[P] = []
        self._pending: list[bytes] = []
        self._matrix: npt.NDArray[np.uint64] = np.zeros((0, self._words), dtype=np.uint64)

    @classmethod
    def build(cls, bits: int, items: Iterable[tuple[str, P]]) -> LinearHammingIndex[P]:
        index: LinearHammingIndex[P] = cls(bits)
        for hash_hex, payload in items:
            index.add(hash_hex, payload)
        return index

    def _packed(self, hash_hex: str) -> bytes:
        if len(hash_hex) * 4 != self.bits:
            raise InvalidHash(f"expected a {self.bits}-bit hash, got {len(hash_hex) * 4} bits")
        try:
            return bytes.fromhex(hash_hex)
        except ValueError:
            raise InvalidHash(f"{self.bits}-bit hash is not hex") from None

    def add(self, hash_hex: str, payload: P) -> None:
        self._pending.append(self._packed(hash_hex))
        self._payloads.append(payload)

    def _rows(self) -> npt.NDArray[np.uint64]:
        if self._pending:
            fresh = np.frombuffer(b"".join(self._pending), dtype=np.uint64)
            self._matrix = np.concatenate([self._matrix, fresh.reshape(-1, self._words)])
            self._pending.clear()
        return self._matrix

    def query(self, hash_hex: str, max_distance: int) -> list[tuple[P, int]]:
        probe = np.frombuffer(self._packed(hash_hex), dtype=np.uint64)
        rows = self._rows()
        if max_distance < 0 or not len(rows):
            return []
        distances = np.bitwise_count(rows ^ probe).sum(axis=1, dtype=np.int64)
        hits = np.flatnonzero(distances <= max_distance)
        order = hits[np.argsort(distances[hits], kind="stable")]
        return [(self._payloads[i], int(distances[i])) for i in order]

    def __len__(self) -> int:
        return len(self._payloads)


#: Builds an empty Hamming index for a bit length; swap in a faster implementation here.
HammingIndexFactory = Callable[[int], HammingIndex[ListEntry]]


class _ListIndex:
    """All indexes of one hash list."""

    def __init__(self, hash_list: HashList, factory: HammingIndexFactory) -> None:
        self.name = hash_list.name
        self.thresholds: Thresholds = hash_list.thresholds
        self.exact: ExactIndex[ListEntry] = ExactIndex()
        self.perceptual: dict[str, HammingIndex[ListEntry]] = {
            name: factory(BITS[name]) for name in PERCEPTUAL_ALGORITHMS
        }
        for entry in hash_list.entries:
            if entry.algorithm in EXACT_ALGORITHMS:
                self.exact.add(f"{entry.algorithm}:{entry.hash}", entry)
            else:
                self.perceptual[entry.algorithm].add(entry.hash, entry)

    def candidates(self, digest: ImageDigest, *, confirmed_only: bool) -> list[Match]:
        """Every (entry, algorithm, distance) hit of ``digest`` in this list."""
        found: list[Match] = []
        for algorithm in EXACT_ALGORITHMS:
            value = getattr(digest, algorithm)
            for entry in self.exact.query(f"{algorithm}:{value}"):
                found.append(self._match(entry, algorithm, 0, CONFIRMED))
        for algorithm, value in self._perceptual_hashes(digest):
            confirm = self.thresholds.confirm(algorithm)
            limit = confirm if confirmed_only else self.thresholds.review(algorithm)
            for entry, distance in self.perceptual[algorithm].query(value, limit):
                verdict = CONFIRMED if distance <= confirm else REVIEW
                found.append(self._match(entry, algorithm, distance, verdict))
        return found

    def _perceptual_hashes(self, digest: ImageDigest) -> list[tuple[str, str]]:
        hashes: list[tuple[str, str]] = []
        quality = digest.pdq_quality if digest.pdq_quality is not None else -1
        if digest.pdq is not None and quality >= self.thresholds.pdq_min_quality:
            hashes.append(("pdq", digest.pdq))
        if digest.phash is not None:
            hashes.append(("phash", digest.phash))
        return hashes

    def _match(self, entry: ListEntry, algorithm: str, distance: int, verdict: str) -> Match:
        return Match(self.name, entry.id, entry.category, algorithm, distance, verdict)


def _preference(match: Match) -> tuple[int, int, int]:
    return (_VERDICT_RANK[match.verdict], _ALGORITHM_RANK[match.algorithm], match.distance)


class Matcher:
    """Match image digests against hash lists, honouring allow-lists of known false positives.

    ``match`` returns one :class:`Match` per (list, entry id), the best one: confirmed beats
    review, then exact beats perceptual (sha256 > sha1 > md5 > pdq > phash), then the smaller
    distance. Results are sorted by list name, verdict (confirmed first), algorithm preference,
    distance and entry id. If the image matches any allow-list entry within that allow-list's
    confirm threshold, nothing is returned.
    """

    def __init__(
        self,
        lists: Sequence[HashList],
        allow: Sequence[HashList] = (),
        *,
        index_factory: HammingIndexFactory = LinearHammingIndex,
    ) -> None:
        names = [hash_list.name for hash_list in lists]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise HashListError(duplicated[0], None, None, "list name used more than once")
        self._lists = [_ListIndex(hash_list, index_factory) for hash_list in lists]
        self._allow = [_ListIndex(hash_list, index_factory) for hash_list in allow]

    def allowed(self, digest: ImageDigest) -> bool:
        """True if an allow-list entry matches ``digest`` at its confirm threshold."""
        return any(index.candidates(digest, confirmed_only=True) for index in self._allow)

    def match(self, digest: ImageDigest) -> list[Match]:
        if self.allowed(digest):
            return []
        best: dict[tuple[str, str], Match] = {}
        for index in self._lists:
            for candidate in index.candidates(digest, confirmed_only=False):
                key = (candidate.list, candidate.entry)
                current = best.get(key)
                if current is None or _preference(candidate) < _preference(current):
                    best[key] = candidate
        return sorted(best.values(), key=lambda m: (m.list, *_preference(m), m.entry))
