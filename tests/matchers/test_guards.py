"""The flood guard and the per-image match stats."""

from __future__ import annotations

from dataclasses import replace

import pytest

from matchers.digest import ImageDigest
from matchers.guards import (
    FLOOD_LIMIT,
    STAT_FLOOD_DEMOTED,
    FloodGuard,
    match_stat_keys,
)
from matchers.index import CONFIRMED, REVIEW, Match

HIT = Match("known", "e1", "c", "phash", 2, CONFIRMED)
OTHER = Match("known", "e2", "c", "sha256", 0, CONFIRMED)


def urls(n: int, start: int = 0) -> list[str]:
    return [f"http://img.example/{i}.jpg" for i in range(start, start + n)]


def test_default_limit_is_the_named_constant() -> None:
    assert FloodGuard().limit == FLOOD_LIMIT
    assert STAT_FLOOD_DEMOTED == "matcher/flood_demoted"


def test_trips_at_limit_plus_one_and_not_before() -> None:
    guard = FloodGuard(limit=3)
    for url in urls(3):
        result = guard.apply(url, [HIT])
        assert result.matches == [HIT] and result.demoted == 0 and result.tripped == []
    fourth = guard.apply("http://img.example/3.jpg", [HIT])
    assert fourth.matches == [replace(HIT, verdict=REVIEW)]
    assert (fourth.demoted, fourth.tripped) == (1, [("known", "e1")])
    fifth = guard.apply("http://img.example/4.jpg", [HIT])
    assert (fifth.matches[0].verdict, fifth.demoted) == (REVIEW, 1)
    assert fifth.tripped == []  # logged once, at the trip
    assert guard.tripped() == [("known", "e1")]


def test_same_image_twice_counts_once() -> None:
    guard = FloodGuard(limit=2)
    for url in [*urls(2), *urls(2)]:
        assert guard.apply(url, [HIT]).matches == [HIT]
    assert guard.apply(urls(1, start=2)[0], [HIT]).demoted == 1
    # One of the first two URLs seen again stays confirmed; the demoted one stays demoted.
    assert guard.apply(urls(1)[0], [HIT]).matches == [HIT]
    assert guard.apply(urls(1, start=2)[0], [HIT]).matches[0].verdict == REVIEW


def test_entries_and_lists_are_counted_separately() -> None:
    guard = FloodGuard(limit=2)
    same_id_other_list = replace(HIT, list="other")
    for url in urls(2):
        guard.apply(url, [HIT])
    result = guard.apply("http://img.example/new.jpg", [HIT, OTHER, same_id_other_list])
    assert [m.verdict for m in result.matches] == [REVIEW, CONFIRMED, CONFIRMED]
    assert result.demoted == 1


def test_review_matches_pass_through_and_are_not_counted() -> None:
    guard = FloodGuard(limit=1)
    near = replace(HIT, verdict=REVIEW, distance=11)
    for url in urls(5):
        assert guard.apply(url, [near]).matches == [near]
    assert guard.apply("http://img.example/x.jpg", [HIT]).matches == [HIT]


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_limit_must_be_a_positive_integer(limit: object) -> None:
    with pytest.raises(ValueError, match="flood limit"):
        FloodGuard(limit)  # type: ignore[arg-type]


def digest(*, quality: int | None = 90, error: str | None = None) -> ImageDigest:
    perceptual = error is None
    return ImageDigest(
        md5="0" * 32,
        sha1="0" * 40,
        sha256="0" * 64,
        pdq="1" * 64 if perceptual else None,
        pdq_quality=quality if perceptual else None,
        phash="2" * 16 if perceptual else None,
        format="jpeg",
        width=10 if perceptual else None,
        height=10 if perceptual else None,
        frames=1,
        error=error,
    )


def test_match_stat_keys() -> None:
    review = replace(HIT, verdict=REVIEW)
    assert match_stat_keys(digest(), [HIT, review]) == ["matcher/confirmed", "matcher/review"]
    assert match_stat_keys(digest(), []) == ["matcher/no_match"]
    assert match_stat_keys(digest(), [], allowed=True) == ["matcher/allowed"]
    assert match_stat_keys(digest(quality=49), []) == ["matcher/no_match", "matcher/low_quality"]
    assert match_stat_keys(digest(quality=49), [], min_quality=40) == ["matcher/no_match"]
    assert match_stat_keys(digest(error="truncated"), [OTHER]) == [
        "matcher/confirmed",
        "matcher/decode_error",
        "matcher/decode_error/truncated",
    ]
