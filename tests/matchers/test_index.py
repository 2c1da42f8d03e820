"""Indexes (oracle tests against brute force) and Matcher verdicts."""

from __future__ import annotations

import random

import pytest

from matchers.algorithms import (
    PDQ_CONFIRM_THRESHOLD,
    PDQ_REVIEW_THRESHOLD,
    PHASH_CONFIRM_THRESHOLD,
    PHASH_REVIEW_THRESHOLD,
)
from matchers.digest import ImageDigest
from matchers.errors import HashListError, InvalidHash
from matchers.index import ExactIndex, LinearHammingIndex, Match, Matcher
from matchers.lists import HashList, ListEntry, Thresholds
from tests.matchers.hashgen import brute_force, flip, random_hash


@pytest.mark.parametrize(
    ("bits", "threshold"), [(256, PDQ_CONFIRM_THRESHOLD), (256, PDQ_REVIEW_THRESHOLD), (64, 8)]
)
def test_linear_index_matches_brute_force(bits: int, threshold: int) -> None:
    rng = random.Random(bits * 1000 + threshold)
    probes = [random_hash(rng, bits) for _ in range(5)]
    items: list[tuple[str, int]] = []
    for _ in range(3000):
        items.append((random_hash(rng, bits), len(items)))
    planted_at: dict[int, int] = {}
    for probe in probes:
        for distance in (0, 1, threshold - 1, threshold, threshold, threshold + 1, threshold + 2):
            planted_at[len(items)] = distance
            items.append((flip(probe, distance, rng), len(items)))
    index = LinearHammingIndex.build(bits, items)
    assert len(index) == len(items)
    for probe in probes:
        got = index.query(probe, threshold)
        expected = brute_force(items, probe, threshold)
        assert sorted(got, key=lambda pair: (pair[1], pair[0])) == expected
        assert [d for _p, d in got] == sorted(d for _p, d in got)
        assert sum(1 for _p, d in got if d == threshold) >= 2
        assert all(d <= threshold for _p, d in got)
        assert any(d == threshold + 1 for _p, d in index.query(probe, threshold + 1))


def test_linear_index_incremental_adds_and_empty() -> None:
    index: LinearHammingIndex[str] = LinearHammingIndex(64)
    assert index.query("0" * 16, 64) == []
    index.add("0" * 16, "zero")
    assert index.query("0" * 16, 0) == [("zero", 0)]
    index.add("f" * 16, "ones")
    assert index.query("0" * 16, 64) == [("zero", 0), ("ones", 64)]
    assert index.query("0" * 16, -1) == []
    assert index.query("000000000000000f", 4) == [("zero", 4)]


def test_linear_index_rejects_bad_hashes() -> None:
    index: LinearHammingIndex[int] = LinearHammingIndex(256)
    with pytest.raises(InvalidHash):
        index.add("ab" * 8, 1)
    with pytest.raises(InvalidHash):
        index.query("zz" * 32, 3)
    with pytest.raises(ValueError, match="multiple of 64"):
        LinearHammingIndex(100)


def test_exact_index() -> None:
    index = ExactIndex.build([("aa", 1), ("bb", 2), ("aa", 3)])
    assert index.query("aa") == [1, 3]
    assert index.query("cc") == []
    assert len(index) == 3


# --- Matcher ---------------------------------------------------------------------------

RNG_SEED = 20260101


def make_digest(
    rng: random.Random, *, pdq: str | None = None, phash: str | None = None, quality: int = 100
) -> ImageDigest:
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
    )


def only(matches: list[Match]) -> Match:
    assert len(matches) == 1, matches
    return matches[0]


@pytest.mark.parametrize(
    ("algorithm", "confirm", "review"),
    [
        ("pdq", PDQ_CONFIRM_THRESHOLD, PDQ_REVIEW_THRESHOLD),
        ("phash", PHASH_CONFIRM_THRESHOLD, PHASH_REVIEW_THRESHOLD),
    ],
)
def test_verdict_bands(algorithm: str, confirm: int, review: int) -> None:
    rng = random.Random(RNG_SEED)
    bits = 256 if algorithm == "pdq" else 64
    listed = random_hash(rng, bits)
    matcher = Matcher([HashList("known", [ListEntry(algorithm, listed, "e1", "A")])])
    expectations = [
        (0, "confirmed"),
        (confirm, "confirmed"),
        (confirm + 1, "review"),
        (review, "review"),
        (review + 1, None),
    ]
    for distance, verdict in expectations:
        near = flip(listed, distance, rng)
        digest = make_digest(rng, pdq=near if algorithm == "pdq" else None)
        if algorithm == "phash":
            digest = make_digest(rng, phash=near)
        matches = matcher.match(digest)
        if verdict is None:
            assert matches == []
        else:
            assert only(matches) == Match("known", "e1", "A", algorithm, distance, verdict)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
def test_exact_match_confirmed(algorithm: str) -> None:
    rng = random.Random(RNG_SEED)
    digest = make_digest(rng)
    matcher = Matcher([HashList("known", [ListEntry(algorithm, getattr(digest, algorithm), "x")])])
    assert only(matcher.match(digest)) == Match("known", "x", "", algorithm, 0, "confirmed")
    assert matcher.match(make_digest(rng)) == []


def test_per_list_threshold_override() -> None:
    rng = random.Random(RNG_SEED)
    listed = random_hash(rng, 256)
    entry = ListEntry("pdq", listed, "e", "")
    strict = HashList("strict", [entry], Thresholds(pdq_confirm=10, pdq_review=20))
    loose = HashList("loose", [entry], Thresholds(pdq_confirm=40, pdq_review=60))
    default = HashList("default", [entry])
    matcher = Matcher([strict, loose, default])
    results = matcher.match(make_digest(rng, pdq=flip(listed, 15, rng)))
    assert [(m.list, m.verdict) for m in results] == [
        ("default", "confirmed"),
        ("loose", "confirmed"),
        ("strict", "review"),
    ]
    results = matcher.match(make_digest(rng, pdq=flip(listed, 45, rng)))
    assert [(m.list, m.verdict) for m in results] == [("default", "review"), ("loose", "review")]


def test_allow_list_wins() -> None:
    rng = random.Random(RNG_SEED)
    listed = random_hash(rng, 256)
    known = HashList("known", [ListEntry("pdq", listed, "e", "")])
    digest = make_digest(rng, pdq=flip(listed, 3, rng))
    allowed_near = HashList("fp", [ListEntry("pdq", flip(digest.pdq or "", 20, rng), "fp1", "")])
    allowed_far = HashList("fp", [ListEntry("pdq", flip(digest.pdq or "", 40, rng), "fp1", "")])
    allowed_exact = HashList("fp", [ListEntry("sha256", digest.sha256, "fp2", "")])
    assert Matcher([known], allow=[allowed_near]).match(digest) == []
    assert Matcher([known], allow=[allowed_exact]).match(digest) == []
    # Within the allow-list's review band but beyond its confirm threshold: no effect.
    assert only(Matcher([known], allow=[allowed_far]).match(digest)).verdict == "confirmed"
    strict_allow = HashList("fp", allowed_near.entries, Thresholds(pdq_confirm=10))
    assert only(Matcher([known], allow=[strict_allow]).match(digest)).entry == "e"


def test_low_quality_pdq_not_matched_perceptually_but_exact_still_is() -> None:
    rng = random.Random(RNG_SEED)
    digest = make_digest(rng, quality=30)
    pdq_only = HashList("pdq-list", [ListEntry("pdq", digest.pdq or "", "p", "")])
    assert Matcher([pdq_only]).match(digest) == []
    relaxed = HashList("pdq-list", pdq_only.entries, Thresholds(pdq_min_quality=30))
    assert only(Matcher([relaxed]).match(digest)).algorithm == "pdq"
    exact = HashList("exact", [ListEntry("md5", digest.md5, "m", "")])
    assert only(Matcher([exact, pdq_only]).match(digest)).list == "exact"


def test_missing_perceptual_hashes_still_match_exactly() -> None:
    rng = random.Random(RNG_SEED)
    digest = make_digest(rng)
    truncated = ImageDigest(
        digest.md5, digest.sha1, digest.sha256, None, None, None, "jpeg", None, None, 1, "truncated"
    )
    hash_list = HashList(
        "known",
        [ListEntry("sha1", digest.sha1, "s", ""), ListEntry("pdq", digest.pdq or "", "p", "")],
    )
    assert [m.entry for m in Matcher([hash_list]).match(truncated)] == ["s"]


def test_one_match_per_entry_best_wins() -> None:
    rng = random.Random(RNG_SEED)
    digest = make_digest(rng)
    pdq, phash = digest.pdq or "", digest.phash or ""
    entries = [
        ListEntry("phash", phash, "item", "A"),
        ListEntry("pdq", flip(pdq, 2, rng), "item", "A"),
        ListEntry("md5", digest.md5, "item", "A"),
        ListEntry("sha256", digest.sha256, "item", "A"),
        ListEntry("pdq", flip(pdq, 35, rng), "near", "B"),
        ListEntry("phash", flip(phash, 3, rng), "near", "B"),
        ListEntry("pdq", flip(pdq, 40, rng), "far", "C"),
        ListEntry("pdq", flip(pdq, 45, rng), "far", "C"),
    ]
    matches = Matcher([HashList("known", entries)]).match(digest)
    assert matches == [
        Match("known", "item", "A", "sha256", 0, "confirmed"),
        Match("known", "near", "B", "phash", 3, "confirmed"),
        Match("known", "far", "C", "pdq", 40, "review"),
    ]
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    assert Matcher([HashList("known", shuffled)]).match(digest) == matches


def test_exact_beats_perceptual_and_order_of_exact() -> None:
    rng = random.Random(RNG_SEED)
    digest = make_digest(rng)
    entries = [
        ListEntry("pdq", digest.pdq or "", "x", ""),
        ListEntry("md5", digest.md5, "x", ""),
        ListEntry("sha1", digest.sha1, "x", ""),
    ]
    assert only(Matcher([HashList("l", entries)]).match(digest)).algorithm == "sha1"


def test_duplicate_list_names_refused() -> None:
    with pytest.raises(HashListError, match="more than once"):
        Matcher([HashList("a", []), HashList("a", [])])


def test_empty_matcher() -> None:
    assert Matcher([]).match(make_digest(random.Random(1))) == []
