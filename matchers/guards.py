"""Guards on match quality, applied per crawl after :class:`matchers.index.Matcher`.

:class:`FloodGuard` stops one list entry from flooding providers with notices: a degenerate
perceptual hash (the pHash of a near-uniform picture, a PDQ hash that slipped in with low
quality) or a wrong entry (a logo, an empty file's MD5) matches image after image, and every
confirmed match becomes a notice. Past a limit, the entry's further confirmed matches are
demoted to review, where an analyst looks before anything is sent.

:func:`match_stat_keys` names the crawl stats (``matcher/confirmed``, ``matcher/review``,
``matcher/low_quality``, ``matcher/decode_error``, ...) one image contributes, so every
pipeline counts the same things the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from matchers.algorithms import PDQ_MIN_QUALITY
from matchers.digest import ImageDigest
from matchers.index import CONFIRMED, REVIEW, Match

__all__ = [
    "FLOOD_LIMIT",
    "STAT_ALLOWED",
    "STAT_DECODE_ERROR",
    "STAT_FLOOD_DEMOTED",
    "STAT_LOW_QUALITY",
    "STAT_NO_MATCH",
    "FloodGuard",
    "GuardResult",
    "match_stat_keys",
]

#: Distinct image URLs one list entry may confirm per crawl before its further confirmed
#: matches go to review.
#:
#: Why 25: a crawl covers the pages an analyst was handed (200 pages per seed by default). A
#: genuine listed image turns up in it a few times - the reported page, a mirror, a thumbnail
#: and a full-size copy, the same file on a gallery's pages - so an honest entry stays far below
#: 25 in practice, and one that gets there is still only delayed (review), never dropped. A
#: degenerate hash matches every picture of its kind - dozens to hundreds in one crawl of an
#: image board - so it trips after at most 25 notices, not hundreds, and the log names it.
FLOOD_LIMIT: Final = 25

#: Stats key counting confirmed matches the flood guard turned into review items.
STAT_FLOOD_DEMOTED: Final = "matcher/flood_demoted"
#: Images whose PDQ quality was below the minimum: not matched by PDQ (exact hashes still are).
STAT_LOW_QUALITY: Final = "matcher/low_quality"
#: Images that could not be decoded: matched by their exact hashes only.
STAT_DECODE_ERROR: Final = "matcher/decode_error"
#: Images silenced by an allow-list entry.
STAT_ALLOWED: Final = "matcher/allowed"
#: Images that matched nothing.
STAT_NO_MATCH: Final = "matcher/no_match"


@dataclass(frozen=True, slots=True)
class GuardResult:
    """What :meth:`FloodGuard.apply` made of one image's matches.

    ``matches``: the matches to queue (same order, demoted ones now ``review``);
    ``demoted``: how many confirmed matches of this image were demoted (add to
    :data:`STAT_FLOOD_DEMOTED`); ``tripped``: the ``(list, entry)`` pairs that reached their
    limit with this image - each pair appears here once per guard, so log it then.
    """

    matches: list[Match]
    demoted: int = 0
    tripped: list[tuple[str, str]] = field(default_factory=list)


class FloodGuard:
    """Per crawl: demote an entry's confirmed matches to review once it has confirmed more than
    ``limit`` distinct images.

    Images are counted by URL, not by SHA-256: what floods a provider is notices, and there is
    one notice per (image URL, list entry), so the URL count is the notice count. Counting by
    content would miss the wrong exact entry (a logo's MD5 listed by mistake) served at a
    thousand URLs. ``data:`` images are counted by the ``data:<type>;sha256=...`` URL the
    crawler records for them. Seeing the same URL again changes nothing: one of the first
    ``limit`` URLs stays confirmed, any later one stays demoted. Review matches pass through
    and are not counted.

    Memory is bounded: at most ``limit`` URLs per matched entry. Not thread-safe (a pipeline
    calls it on the reactor thread); make one per crawl.
    """

    def __init__(self, limit: int = FLOOD_LIMIT) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"flood limit must be a positive integer, got {limit!r}")
        self.limit = limit
        self._confirmed: dict[tuple[str, str], set[str]] = {}
        self._tripped: set[tuple[str, str]] = set()

    def apply(self, url: str, matches: Sequence[Match]) -> GuardResult:
        """Check one image's matches; returns them with flood-demoted ones as review."""
        kept: list[Match] = []
        demoted = 0
        tripped: list[tuple[str, str]] = []
        for match in matches:
            if match.verdict != CONFIRMED:
                kept.append(match)
                continue
            key = (match.list, match.entry)
            urls = self._confirmed.setdefault(key, set())
            if url in urls or len(urls) < self.limit:
                urls.add(url)
                kept.append(match)
                continue
            kept.append(replace(match, verdict=REVIEW))
            demoted += 1
            if key not in self._tripped:
                self._tripped.add(key)
                tripped.append(key)
        return GuardResult(kept, demoted, tripped)

    def tripped(self) -> list[tuple[str, str]]:
        """Every ``(list, entry)`` that has reached its limit in this crawl, sorted."""
        return sorted(self._tripped)


def match_stat_keys(
    digest: ImageDigest,
    matches: Sequence[Match],
    *,
    allowed: bool = False,
    min_quality: int = PDQ_MIN_QUALITY,
) -> list[str]:
    """The crawl stats keys one hashed image adds 1 to.

    ``matcher/<verdict>`` once per match (after the flood guard), ``matcher/allowed`` when an
    allow-list silenced the image, ``matcher/no_match`` when nothing matched and nothing was
    allowed, ``matcher/decode_error`` and ``matcher/decode_error/<code>`` when the picture could
    not be decoded, ``matcher/low_quality`` when its PDQ quality is below ``min_quality`` (the
    lowest ``pdq_min_quality`` of the loaded lists, so the count means "no list matched it by
    PDQ").
    """
    keys = [f"matcher/{match.verdict}" for match in matches]
    if allowed:
        keys.append(STAT_ALLOWED)
    elif not matches:
        keys.append(STAT_NO_MATCH)
    if digest.error is not None:
        keys += [STAT_DECODE_ERROR, f"{STAT_DECODE_ERROR}/{digest.error}"]
    elif digest.pdq_quality is not None and digest.pdq_quality < min_quality:
        keys.append(STAT_LOW_QUALITY)
    return keys
