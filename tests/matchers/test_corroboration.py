"""Corroborated matches: a PDQ and a pHash both within the review radii of one entry confirm
(lists with ``Thresholds.corroborate``). Oracle tests at the radii and one bit past them."""

from __future__ import annotations

import random

import pytest

from matchers.errors import HashListError
from matchers.index import CONFIRMED, REVIEW, Matcher
from matchers.lists import HashList, ListEntry, Thresholds
from tests.matchers.hashgen import flip, random_hash
from tests.matchers.test_index import make_digest

PDQ = random_hash(random.Random(1), 256)
PHASH = random_hash(random.Random(2), 64)


def _matcher(
    *, corroborate: bool = True, shared_id: bool = True, thresholds: Thresholds | None = None
) -> Matcher:
    """One list: an entry ``e1`` holding a PDQ and a pHash (under one id unless not
    ``shared_id``), and an unrelated entry."""
    rng = random.Random(3)
    entries = [
        ListEntry("pdq", PDQ, "e1", "c1"),
        ListEntry("phash", PHASH, "e1" if shared_id else "e1-phash", "c1"),
        ListEntry("pdq", random_hash(rng, 256), "e2"),
        ListEntry("phash", random_hash(rng, 64), "e2"),
    ]
    rules = thresholds or Thresholds()
    rules = Thresholds(**{**rules.as_dict(), "corroborate": corroborate})  # type: ignore[arg-type]
    return Matcher([HashList("known", entries, rules)])


MATCHER = _matcher()


def _query(pdq_distance: int, phash_distance: int) -> list[tuple[object, ...]]:
    rng = random.Random(pdq_distance * 100 + phash_distance)
    digest = make_digest(
        rng,
        pdq=flip(PDQ, pdq_distance, rng),
        phash=flip(PHASH, phash_distance, rng),
    )
    return [
        (m.entry, m.algorithm, m.distance, m.verdict, m.corroborated_by)
        for m in MATCHER.match(digest)
    ]


@pytest.mark.parametrize(
    ("pdq", "phash", "expected"),
    [
        # Both at their review radii (50, 10): confirmed, the PDQ's distance, the pHash's with it.
        (50, 10, ("e1", "pdq", 50, CONFIRMED, 10)),
        (40, 7, ("e1", "pdq", 40, CONFIRMED, 7)),
        # One bit past either radius: the other alone is a review item, as without the rule.
        (51, 10, ("e1", "phash", 10, REVIEW, None)),
        (50, 11, ("e1", "pdq", 50, REVIEW, None)),
        # Confirmed on its own: no corroboration recorded.
        (31, 10, ("e1", "pdq", 31, CONFIRMED, None)),
        (45, 6, ("e1", "phash", 6, CONFIRMED, None)),
    ],
)
def test_both_hashes_within_their_review_radii_confirm_and_one_bit_past_does_not(
    pdq: int, phash: int, expected: tuple[object, ...]
) -> None:
    assert _query(pdq, phash) == [expected]


def test_nothing_is_corroborated_without_the_rule_or_across_entries() -> None:
    rng = random.Random(4)
    digest = make_digest(rng, pdq=flip(PDQ, 45, rng), phash=flip(PHASH, 9, rng))
    off = _matcher(corroborate=False).match(digest)
    assert [(m.algorithm, m.verdict, m.corroborated_by) for m in off] == [("pdq", REVIEW, None)]
    # The PDQ and the pHash under different ids are two entries: each a review item.
    apart = _matcher(shared_id=False).match(digest)
    assert sorted((m.entry, m.verdict) for m in apart) == [("e1", REVIEW), ("e1-phash", REVIEW)]
    # A PDQ too weak to match (quality under the list's minimum) corroborates nothing.
    weak = make_digest(rng, pdq=flip(PDQ, 45, rng), phash=flip(PHASH, 9, rng), quality=10)
    assert [(m.algorithm, m.verdict) for m in _matcher().match(weak)] == [("phash", REVIEW)]


def test_the_list_s_own_review_radii_bound_corroboration() -> None:
    narrow = _matcher(thresholds=Thresholds(pdq_review=40, phash_review=8))
    rng = random.Random(5)
    inside = make_digest(rng, pdq=flip(PDQ, 40, rng), phash=flip(PHASH, 8, rng))
    assert [(m.verdict, m.corroborated_by) for m in narrow.match(inside)] == [(CONFIRMED, 8)]
    outside = make_digest(rng, pdq=flip(PDQ, 41, rng), phash=flip(PHASH, 8, rng))
    assert [(m.algorithm, m.verdict) for m in narrow.match(outside)] == [("phash", REVIEW)]


def test_an_unrelated_image_is_not_corroborated() -> None:
    rng = random.Random(6)
    assert _matcher().match(make_digest(rng)) == []


def test_the_rule_is_stored_with_the_list_and_checked() -> None:
    assert Thresholds().corroborate is False
    assert Thresholds(corroborate=True).as_dict()["corroborate"] is True
    with pytest.raises(HashListError, match="corroborate"):
        Thresholds(corroborate=1)  # type: ignore[arg-type]
