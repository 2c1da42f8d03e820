"""What a recheck fetches and what it found: the values the crawler and takedown share.

A recheck is asked for by takedown (:class:`takedown.recheck.RecheckBook` claims due notices
as :class:`RecheckTarget`), done by the crawler (the recheck spider fetches and judges each
target) and answered with a :class:`RecheckResult`, which the book turns into the notice's
next state. ``crawler`` and ``takedown`` never import each other, so both types live here:
plain frozen values, no Redis and no Scrapy.

A target is validated where it is made (the edge): an http(s) URL and well-formed hashes
(normalised to lowercase hex; uppercase accepted), thresholds not negative; anything else
raises ``ValueError`` naming the notice. A result carries the SHA-256 of what was fetched,
never bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from matchers.algorithms import PDQ_CONFIRM_THRESHOLD, PHASH_CONFIRM_THRESHOLD, normalize_hash
from matchers.errors import MatcherError

__all__ = ["RECHECK_STATES", "RecheckProfile", "RecheckResult", "RecheckState", "RecheckTarget"]

#: online: the noticed image is still served; removed: it is gone; unreachable: cannot tell;
#: refused: the recheck's own address policy refused the fetch (a configuration error, which
#: says nothing about the content).
RecheckState = Literal["online", "removed", "unreachable", "refused"]
RECHECK_STATES: Final[tuple[RecheckState, ...]] = ("online", "removed", "unreachable", "refused")
#: The fetch profiles: the crawl's own, and the browser-like second look that must agree before
#: a notice is closed.
RecheckProfile = Literal["crawl", "browser"]
#: The URL schemes a recheck can fetch (a ``data:`` image lives inside its page).
_FETCHABLE_SCHEMES: Final = frozenset({"http", "https"})


#: The hash fields of a :class:`RecheckTarget` and the algorithm each is written in.
_HASH_FIELDS = (
    ("sha256", "sha256"),
    ("pdq", "pdq"),
    ("phash", "phash"),
    ("container_sha256", "sha256"),
)


@dataclass(frozen=True, slots=True)
class RecheckTarget:
    """One noticed image URL to fetch again, with the hashes of what was noticed and the
    confirm thresholds of the list it matched. ``referer`` is the page the image was found on
    (the browser-like second look sends it, as a browser showing that page would)."""

    notice_id: str
    url: str
    sha256: str
    pdq: str | None = None
    phash: str | None = None
    pdq_threshold: int = PDQ_CONFIRM_THRESHOLD
    phash_threshold: int = PHASH_CONFIRM_THRESHOLD
    referer: str | None = None
    #: What was noticed: ``image``, or a file matched by its exact hashes (``video``,
    #: ``archive``...), which is online only while the same bytes are served.
    media_type: str = "image"
    #: For a member of an archive (``media_type`` ``archive_member``): the SHA-256 of the
    #: archive it was found in; the URL is the archive's.
    container_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.referer is not None and urlsplit(self.referer).scheme.lower() not in (
            _FETCHABLE_SCHEMES
        ):
            object.__setattr__(self, "referer", None)
        if urlsplit(self.url).scheme.lower() not in _FETCHABLE_SCHEMES:
            raise ValueError(f"notice {self.notice_id}: not an http(s) URL: {self.url[:80]!r}")
        for name, algorithm in _HASH_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            try:
                object.__setattr__(self, name, normalize_hash(algorithm, value, lenient=True))
            except MatcherError as exc:
                raise ValueError(f"notice {self.notice_id}: {exc}") from None
        if self.pdq_threshold < 0 or self.phash_threshold < 0:
            raise ValueError(f"notice {self.notice_id}: thresholds must not be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecheckTarget:
        """Build from a plain mapping (:meth:`to_dict`'s keys); missing thresholds take the
        matchers' defaults. Raises ``ValueError`` for a missing field or a bad value."""
        try:
            return cls(
                notice_id=str(data["notice_id"]),
                url=str(data["url"]),
                sha256=str(data["sha256"]),
                pdq=None if data.get("pdq") is None else str(data["pdq"]),
                phash=None if data.get("phash") is None else str(data["phash"]),
                pdq_threshold=int(data.get("pdq_threshold", PDQ_CONFIRM_THRESHOLD)),
                phash_threshold=int(data.get("phash_threshold", PHASH_CONFIRM_THRESHOLD)),
                referer=None if data.get("referer") is None else str(data["referer"]),
                media_type=str(data.get("media_type") or "image"),
                container_sha256=(
                    None if data.get("container_sha256") is None else str(data["container_sha256"])
                ),
            )
        except KeyError as exc:
            raise ValueError(f"recheck target lacks the field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"bad recheck target: {exc}") from None


@dataclass(frozen=True, slots=True)
class RecheckResult:
    """What one recheck found. ``checked_at`` is ISO 8601 UTC; ``http_status`` is that of the
    final response (none after a network failure); ``sha256`` is that of the fetched image,
    when one was fetched; ``profile`` is the fetch profile whose answer the verdict is."""

    notice_id: str
    url: str
    state: RecheckState
    reason: str
    http_status: int | None
    checked_at: str
    sha256: str | None = None
    profile: RecheckProfile = "crawl"

    def __post_init__(self) -> None:
        if self.state not in RECHECK_STATES:
            raise ValueError(f"notice {self.notice_id}: unknown recheck state {self.state!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
