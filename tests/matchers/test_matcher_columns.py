"""Matcher over columnar lists: variant queries, hot reload, large-list structure."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matchers.algorithms import PDQ_CONFIRM_THRESHOLD, PDQ_REVIEW_THRESHOLD
from matchers.codec import StringTable
from matchers.digest import ImageDigest
from matchers.errors import InvalidHash
from matchers.index import (
    SMALL_INDEX_ROWS,
    LinearHammingIndex,
    Match,
    Matcher,
    MultiIndexHammingIndex,
)
from matchers.lists import HashColumn, HashList, ListEntry, Thresholds
from tests.matchers.hashgen import flip, random_hash


def digest(
    rng: random.Random,
    *,
    pdq: str | None = None,
    phash: str | None = None,
    quality: int = 100,
    pdq_variants: tuple[str, ...] = (),
    phash_variants: tuple[str, ...] = (),
) -> ImageDigest:
    """A digest of made-up hashes with the given variants to query."""
    return ImageDigest(
        md5=random_hash(rng, 128),
        sha1=random_hash(rng, 160),
        sha256=random_hash(rng, 256),
        pdq=pdq if pdq is not None else random_hash(rng, 256),
        pdq_quality=quality,
        phash=phash if phash is not None else random_hash(rng, 64),
        format="png",
        width=10,
        height=10,
        frames=1,
        error=None,
        pdq_variants=pdq_variants,
        phash_variants=phash_variants,
    )


def test_entry_matched_only_through_a_variant() -> None:
    rng = random.Random(1)
    canonical = random_hash(rng, 256)
    mirrored = random_hash(rng, 256)  # unrelated to the canonical hash
    listed = flip(mirrored, 5, rng)
    matcher = Matcher([HashList("known", [ListEntry("pdq", listed, "e", "A")])])
    plain = digest(rng, pdq=canonical)
    assert matcher.match(plain) == []
    with_variants = digest(rng, pdq=canonical, pdq_variants=(canonical, mirrored))
    assert matcher.match(with_variants) == [Match("known", "e", "A", "pdq", 5, "confirmed")]


def test_smallest_distance_over_variants_wins() -> None:
    rng = random.Random(2)
    listed = random_hash(rng, 256)
    far, near = flip(listed, 40, rng), flip(listed, 12, rng)
    phash_listed = random_hash(rng, 64)
    matcher = Matcher(
        [
            HashList(
                "known",
                [ListEntry("pdq", listed, "p", ""), ListEntry("phash", phash_listed, "h", "")],
            )
        ]
    )
    found = matcher.match(
        digest(
            rng,
            pdq=far,
            pdq_variants=(far, near),
            phash=flip(phash_listed, 10, rng),
        )
    )
    assert found == [
        Match("known", "p", "", "pdq", 12, "confirmed"),
        Match("known", "h", "", "phash", 10, "review"),
    ]


def test_review_band_is_searched_with_the_canonical_hash_only() -> None:
    rng = random.Random(12)
    listed = random_hash(rng, 256)
    matcher = Matcher([HashList("known", [ListEntry("pdq", listed, "p", "")])])
    canonical = random_hash(rng, 256)
    in_band = flip(listed, 40, rng)  # between confirm (31) and review (50)
    assert matcher.match(digest(rng, pdq=canonical, pdq_variants=(canonical, in_band))) == []
    assert matcher.match(digest(rng, pdq=in_band, pdq_variants=(in_band, canonical))) == [
        Match("known", "p", "", "pdq", 40, "review")
    ]


def test_variants_respect_pdq_quality() -> None:
    rng = random.Random(3)
    listed = random_hash(rng, 256)
    matcher = Matcher([HashList("known", [ListEntry("pdq", listed, "p", "")])])
    weak = digest(rng, quality=10, pdq_variants=(random_hash(rng, 256), listed))
    assert matcher.match(weak) == []


def test_variants_reach_allow_lists() -> None:
    rng = random.Random(4)
    listed = random_hash(rng, 256)
    mirrored = flip(listed, 3, rng)
    known = HashList("known", [ListEntry("pdq", listed, "p", "")])
    allow = HashList("fp", [ListEntry("pdq", mirrored, "fp", "")], kind="allow")
    matcher = Matcher([known], allow=[allow])
    image = digest(rng, pdq=flip(listed, 60, rng), pdq_variants=(listed,))
    assert matcher.allowed(image)
    assert matcher.match(image) == []


def big_list(name: str, n: int, seed: int, planted: dict[str, str]) -> HashList:
    """A PDQ list of ``n`` random rows plus named planted hashes, built from columns."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    extra = np.stack([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in planted.values()])
    hashes = np.concatenate([codes, extra])
    ids = np.zeros(len(hashes), dtype=np.uint32)
    ids[n:] = np.arange(1, len(planted) + 1)
    return HashList.from_columns(
        name,
        {"pdq": HashColumn(hashes, ids, np.zeros(len(hashes), dtype=np.uint8))},
        StringTable.from_strings(planted),
        StringTable.from_strings(["B1"]),
    )


def test_large_list_uses_multi_index_and_agrees_with_linear() -> None:
    rng = random.Random(5)
    probe = random_hash(rng, 256)
    planted = {
        f"d{d}": flip(probe, d, rng)
        for d in (0, PDQ_CONFIRM_THRESHOLD, PDQ_CONFIRM_THRESHOLD + 1, PDQ_REVIEW_THRESHOLD)
    }
    planted["too-far"] = flip(probe, PDQ_REVIEW_THRESHOLD + 1, rng)
    hash_list = big_list("big", 3 * SMALL_INDEX_ROWS, 9, planted)
    fast = Matcher([hash_list])
    slow = Matcher([hash_list], index_factory=LinearHammingIndex.from_rows)
    image = digest(rng, pdq=probe)
    assert isinstance(fast._lists[0].perceptual["pdq"], MultiIndexHammingIndex)
    expected = [
        Match("big", "d0", "B1", "pdq", 0, "confirmed"),
        Match("big", "d31", "B1", "pdq", 31, "confirmed"),
        Match("big", "d32", "B1", "pdq", 32, "review"),
        Match("big", "d50", "B1", "pdq", 50, "review"),
    ]
    assert fast.match(image) == expected
    assert slow.match(image) == expected


def test_memory_lean_structure() -> None:
    """No Python object per entry: the list is arrays, the index shares its hash rows."""
    rng = random.Random(6)
    hash_list = big_list("lean", 2 * SMALL_INDEX_ROWS, 10, {"x": random_hash(rng, 256)})
    for value in vars(hash_list).values():
        assert not isinstance(value, list | tuple | set)
    column = hash_list.columns["pdq"]
    assert isinstance(column.hashes, np.ndarray) and column.hashes.dtype == np.uint8
    assert column.ids.dtype.kind == "u" and column.categories.dtype.kind == "u"
    loaded = HashList.from_bytes(hash_list.to_bytes())
    index = Matcher([loaded])._lists[0].perceptual["pdq"]
    assert isinstance(index, MultiIndexHammingIndex)
    assert np.shares_memory(index._rows, loaded.columns["pdq"].hashes)
    assert len(loaded.entries) == len(column)  # len() without building entries


def test_with_list_replaces_one_list_and_shares_the_others() -> None:
    rng = random.Random(7)
    a_hash, b_hash, c_hash = (random_hash(rng, 256) for _ in range(3))
    first = Matcher(
        [
            HashList("a", [ListEntry("pdq", a_hash, "a1", "")]),
            HashList("b", [ListEntry("pdq", b_hash, "b1", "")]),
        ]
    )
    b_v2 = HashList("b", [ListEntry("pdq", c_hash, "b2", "")], version=2)
    second = first.with_list(b_v2)
    assert [hl.name for hl in second.lists] == ["a", "b"]
    assert second._lists[0] is first._lists[0]  # unchanged list: same index object
    assert second.lists[1] is b_v2
    assert [m.entry for m in second.match(digest(rng, pdq=c_hash))] == ["b2"]
    assert second.match(digest(rng, pdq=b_hash)) == []
    # The old matcher still serves the old version (crawls in flight are not disturbed).
    assert [m.entry for m in first.match(digest(rng, pdq=b_hash))] == ["b1"]
    third = second.with_list(HashList("c", [ListEntry("pdq", a_hash, "c1", "")]))
    assert [hl.name for hl in third.lists] == ["a", "b", "c"]
    fourth = third.without_list("a")
    assert [m.list for m in fourth.match(digest(rng, pdq=a_hash))] == ["c"]
    with pytest.raises(KeyError):
        fourth.without_list("a")


def test_with_list_routes_allow_lists_by_kind() -> None:
    rng = random.Random(8)
    listed = random_hash(rng, 256)
    matcher = Matcher([HashList("known", [ListEntry("pdq", listed, "k", "")])])
    image = digest(rng, pdq=listed)
    assert len(matcher.match(image)) == 1
    allow = HashList("fp", [ListEntry("pdq", listed, "fp", "")], kind="allow")
    guarded = matcher.with_list(allow)
    assert [hl.name for hl in guarded.allow_lists] == ["fp"]
    assert guarded.match(image) == []
    assert len(guarded.without_list("fp").match(image)) == 1
    # A known list and an allow-list cannot share a name.
    with pytest.raises(Exception, match="more than once"):
        Matcher([HashList("x", [])], allow=[HashList("x", [], kind="allow")])


def test_per_list_thresholds_from_columns() -> None:
    rng = random.Random(9)
    probe = random_hash(rng, 256)
    planted = {"near": flip(probe, 12, rng)}
    strict = big_list("strict", SMALL_INDEX_ROWS, 11, planted)
    strict.thresholds = Thresholds(pdq_confirm=10, pdq_review=20)
    found = Matcher([strict]).match(digest(rng, pdq=probe))
    assert found == [Match("strict", "near", "B1", "pdq", 12, "review")]


def test_perceptual_algorithms_are_those_any_list_holds() -> None:
    rng = random.Random(31)
    exact_only = HashList("exact", [ListEntry("md5", random_hash(rng, 128), "e1")])
    pdq_list = HashList("pdq", [ListEntry("pdq", random_hash(rng, 256), "p1")])
    phash_allow = HashList("fp", [ListEntry("phash", random_hash(rng, 64), "f1")], kind="allow")
    assert Matcher([]).perceptual_algorithms == frozenset()
    matcher = Matcher([exact_only])
    assert matcher.perceptual_algorithms == frozenset()
    matcher = matcher.with_list(pdq_list)
    assert matcher.perceptual_algorithms == {"pdq"}
    # Allow-lists are queried too: their algorithms count.
    assert matcher.with_list(phash_allow).perceptual_algorithms == {"pdq", "phash"}
    assert matcher.without_list("pdq").perceptual_algorithms == frozenset()


@pytest.mark.parametrize("bad", ["ab" * 31, "zz" * 32, "ab" * 30 + "    ", "ab" * 33])
def test_malformed_variant_refused(bad: str) -> None:
    rng = random.Random(32)
    matcher = Matcher([HashList("pdq", [ListEntry("pdq", random_hash(rng, 256), "p1")])])
    with pytest.raises(InvalidHash):
        matcher.match(digest(rng, pdq_variants=(random_hash(rng, 256), bad)))
