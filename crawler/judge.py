"""Judging a re-fetched image URL: is the noticed content still online, removed, or unknown?

The recheck spider (:mod:`crawler.spiders.recheck`) fetches a noticed URL; this module judges
what came back (the final response, after redirects) against the noticed image's hashes
(:class:`store.rechecks.RecheckTarget`) and turns the judgement into the
:class:`store.rechecks.RecheckResult` that takedown acts on:

concurrently: reports are serialised and a poll only happens when nothing is in flight.

How a fetch is judged (the final response, after redirects):

=================================================  ===========  ===============================
outcome                                            state        reason
=================================================  ===========  ===============================
404, 410, 451                                      removed      ``http 404`` ...
2xx, the bytes' SHA-256 equals the original's      online       ``same bytes``
2xx image, PDQ within the list's confirm           online       ``pdq distance 4``
threshold (fetched PDQ quality >= 50), or pHash                 ``phash distance 2``
within its threshold (dihedral variants count)
2xx animated image of more than 64 frames whose    online       ``frame pdq distance 3``
frames sampled as a video's include one within
the PDQ confirm threshold
2xx image that matches neither                     removed      ``content changed``
2xx body that is not an image                      removed      ``not an image (text/html)``
2xx body other than the noticed file (a video, an  removed      ``not the same file``
archive...: matched by its exact hashes only)
2xx video, noticed for a frame: a sampled frame    online       ``frame pdq distance 3``
within the PDQ confirm threshold of that frame
2xx video without such a frame                     removed      ``video changed``
2xx video that cannot be sampled                   unreachable  ``video not decodable
                                                                (corrupt)``
2xx archive still holding the noticed member       online       ``same archive``,
(by SHA-256), or the same archive                               ``member still in the
                                                                archive``
2xx archive not read in full (bomb guards,         unreachable  ``archive not read``
corrupt or encrypted members) without the member
2xx body that is no archive holding it             removed      ``not in the archive``
2xx image that cannot be decoded (truncated,       unreachable  ``image not decodable
corrupt, too large) and is not the same bytes                   (truncated)``
any other status (3xx without Location, 401,       unreachable  ``http 403`` ...
403, 429, 5xx after the retry ...)
DNS failure, refused connection, timeout, lost     unreachable  ``dns lookup failed``,
connection, too many redirects, a body over                     ``connection refused``,
``DOWNLOAD_MAXSIZE``                                            ``timeout``, ``too large`` ...
refused by the address policy                      unreachable  ``blocked: private network``
=================================================  ===========  ===============================

An undecodable image is *unreachable*, not removed: it is neither the notified picture for
certain nor certainly something else (a browser shows a truncated JPEG), so the scheduler tries
again. "Blocked" covers an IP-literal URL or redirect target outside the address policy and a
response served from a refused peer; a *hostname* that resolves only to refused addresses is
dropped by :class:`~crawler.safety.SafeResolver` before any connection and so reads as
``dns lookup failed`` (the resolver logs which addresses it refused). A page that answers with
HTML, even one with a meta refresh to the picture elsewhere, no longer serves the image at the
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotSupported,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.web.client import ResponseFailed

from crawler.safety import literal_ip
from matchers.algorithms import EXACT_ALGORITHMS, MAX_IMAGE_PIXELS, PDQ_MIN_QUALITY, hamming
from matchers.archives import ArchiveLimits, digest_archive
from matchers.digest import ImageDigest, digest_bytes
from matchers.errors import MatcherError
from matchers.sniff import FILE_SNIFF_BYTES, sniff_file, sniff_image
from matchers.video import VideoDigest, VideoLimits, digest_video, sampled_as_video
from store.addresses import AddressPolicy
from store.clock import now_iso
from store.rechecks import RecheckProfile, RecheckResult, RecheckState, RecheckTarget

__all__ = [
    "REMOVED_STATUSES",
    "Verdict",
    "compare_digest",
    "judge_body",
    "judge_failure",
    "judge_status",
    "result_for",
]

#: Statuses that say the content was taken down.
REMOVED_STATUSES: Final = frozenset({404, 410, 451})
#: A Content-Type shown in a reason must look like one (it comes from an untrusted server).
_MEDIA_TYPE: Final = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,40}/[a-z0-9][a-z0-9.+-]{0,60}$")
_REDIRECT_LIMIT_MESSAGE: Final = "max redirections reached"
_REFUSED_PEER_MESSAGE: Final = "non-public address"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judgement without the bookkeeping (which target, when)."""

    state: RecheckState
    reason: str
    sha256: str | None = None


# -- judging --------------------------------------------------------------------------------


def judge_status(status: int) -> Verdict | None:
    """The verdict a status alone gives, or ``None`` when the body must be looked at (2xx)."""
    if status in REMOVED_STATUSES:
        return Verdict("removed", f"http {status}")
    if 200 <= status < 300:
        return None
    return Verdict("unreachable", f"http {status}")


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    return media if _MEDIA_TYPE.match(media) else None


def judge_body(
    target: RecheckTarget,
    body: bytes,
    content_type: str | None = None,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_quality: int = PDQ_MIN_QUALITY,
    archive_limits: ArchiveLimits | None = None,
    video_limits: VideoLimits | None = None,
) -> Verdict:
    """Judge a 2xx body against the noticed image (blocking: run it off the reactor).

    Archives and videos are read within ``archive_limits`` and ``video_limits`` (the crawl's
    ``MATCHER_ARCHIVE_*`` and ``MATCHER_VIDEO_*`` settings; the matcher's defaults when None).
    """
    sha256 = hashlib.sha256(body).hexdigest()
    if sha256 == target.sha256:
        return Verdict("online", "same bytes", sha256)
    if target.media_type == "archive_member":
        return _judge_archive(target, body, sha256, max_pixels, archive_limits)
    if target.media_type == "video" and target.pdq is not None:
        return _judge_video(target, body, sha256, min_quality, video_limits)
    if target.media_type != "image":
        return Verdict("removed", "not the same file", sha256)
    if sniff_image(body) is None:
        media = _media_type(content_type)
        what = "empty body" if not body else media
        return Verdict("removed", f"not an image ({what})" if what else "not an image")
    try:
        digest = digest_bytes(body, max_pixels=max_pixels)
    except MatcherError:  # sniffed as an image above; kept for a decoder that disagrees
        return Verdict("removed", "not an image")
    verdict = compare_digest(target, digest, min_quality=min_quality)
    if verdict.state == "removed" and target.pdq is not None and sampled_as_video(digest):
        # A long animation (noticed, maybe, for a frame past those an image's hashing looks
        # into) is sampled as the crawl sampled it.
        video = digest_video(
            body, format=digest.format, algorithms=("sha256", "pdq"), limits=video_limits
        )
        distance = _frame_distance(target, video, min_quality)
        if distance is not None:
            return Verdict("online", f"frame pdq distance {distance}", sha256)
    return verdict


def _judge_video(
    target: RecheckTarget,
    body: bytes,
    sha256: str,
    min_quality: int,
    limits: VideoLimits | None,
) -> Verdict:
    """A video noticed for a matching frame is online while any frame sampled from what the
    URL serves now is within the PDQ confirm threshold of that frame (another encoding of the
    same video); a body that cannot be sampled is not judged removed."""
    kind = sniff_file(body[:FILE_SNIFF_BYTES])
    if kind is None or kind.media_type != "video":
        return Verdict("removed", "not the same file", sha256)
    video = digest_video(body, format=kind.format, algorithms=("sha256", "pdq"), limits=limits)
    if video.digest.error is not None:
        return Verdict("unreachable", f"video not decodable ({video.digest.error})", sha256)
    distance = _frame_distance(target, video, min_quality)
    if distance is not None:
        return Verdict("online", f"frame pdq distance {distance}", sha256)
    return Verdict("removed", "video changed", sha256)


def _frame_distance(target: RecheckTarget, video: VideoDigest, min_quality: int) -> int | None:
    """The smallest PDQ distance of a sampled frame to the noticed one, when within the
    target's confirm threshold; None otherwise."""
    distances = [
        min(hamming(target.pdq or "", variant) for variant in frame.pdq_variants)
        for frame in video.frames
        if frame.pdq_variants and (frame.pdq_quality or 0) >= min_quality
    ]
    if distances and min(distances) <= target.pdq_threshold:
        return min(distances)
    return None


def _judge_archive(
    target: RecheckTarget,
    body: bytes,
    sha256: str,
    max_pixels: int,
    limits: ArchiveLimits | None,
) -> Verdict:
    """A noticed member of an archive is online while the URL serves the same archive, or any
    archive still holding the same member (by its SHA-256)."""
    if sha256 == target.container_sha256:
        return Verdict("online", "same archive", sha256)
    kind = sniff_file(body[:FILE_SNIFF_BYTES])
    if kind is not None and kind.media_type == "archive":
        report = digest_archive(
            body, algorithms=EXACT_ALGORITHMS, max_pixels=max_pixels, limits=limits
        )
        if any(m.digest.sha256 == target.sha256 for m in report.members):
            return Verdict("online", "member still in the archive", sha256)
        if report.refused or report.encrypted:  # the member may be in what was not read
            return Verdict("unreachable", "archive not read", sha256)
    return Verdict("removed", "not in the archive", sha256)


def compare_digest(
    target: RecheckTarget, digest: ImageDigest, *, min_quality: int = PDQ_MIN_QUALITY
) -> Verdict:
    """Perceptual comparison of a fetched image (not byte-identical) with the noticed one."""
    if digest.error is not None:
        return Verdict("unreachable", f"image not decodable ({digest.error})", digest.sha256)
    quality = digest.pdq_quality if digest.pdq_quality is not None else -1
    if target.pdq is not None and digest.pdq is not None and quality >= min_quality:
        distance = min(hamming(target.pdq, v) for v in digest.pdq_variants or (digest.pdq,))
        if distance <= target.pdq_threshold:
            return Verdict("online", f"pdq distance {distance}", digest.sha256)
    if target.phash is not None and digest.phash is not None:
        distance = min(hamming(target.phash, v) for v in digest.phash_variants or (digest.phash,))
        if distance <= target.phash_threshold:
            return Verdict("online", f"phash distance {distance}", digest.sha256)
    return Verdict("removed", "content changed", digest.sha256)


_DNS_ERRORS: Final = (net_error.DNSLookupError, CannotResolveHostError)
_REFUSED_ERRORS: Final = (net_error.ConnectionRefusedError, DownloadConnectionRefusedError)
_TIMEOUT_ERRORS: Final = (
    DownloadTimeoutError,
    net_error.TimeoutError,
    net_error.TCPTimedOutError,
    defer.TimeoutError,
    TimeoutError,
)
_LOST_ERRORS: Final = (
    ResponseDataLossError,
    ResponseFailed,
    net_error.ConnectionLost,
    net_error.ConnectionDone,
)


_POLICY_ADVICE: Final = (
    "the recheck's address policy refused it (a configuration error: recheck with "
    "--allow-private-networks or --allow-network if the hotline really reports such hosts)"
)


def judge_failure(
    exc: BaseException,
    url: str,
    policy: AddressPolicy,
    refused_addresses: tuple[str, ...] = (),
) -> Verdict:
    """Judge a request that got no response; ``url`` is the last URL requested (after
    redirects), checked against ``policy`` to tell a refused address from other refusals;
    ``refused_addresses`` are the addresses the resolver refused for its host (all of them).

    A fetch the policy refused is ``refused``: it says nothing about the content."""
    if isinstance(exc, IgnoreRequest):
        message = str(exc)
        ip = literal_ip(url)
        if ip is not None and not policy.allows(ip):
            return Verdict("refused", f"{ip}: {_POLICY_ADVICE}")
        if _REFUSED_PEER_MESSAGE in message:
            return Verdict("refused", f"served from a non-public address: {_POLICY_ADVICE}")
        if _REDIRECT_LIMIT_MESSAGE in message:
            return Verdict("unreachable", "too many redirects")
        return Verdict("unreachable", "request ignored")
    if isinstance(exc, _DNS_ERRORS):
        if refused_addresses:
            return Verdict("refused", f"{', '.join(refused_addresses)}: {_POLICY_ADVICE}")
        return Verdict("unreachable", "dns lookup failed")
    if isinstance(exc, _REFUSED_ERRORS):
        return Verdict("unreachable", "connection refused")
    if isinstance(exc, _TIMEOUT_ERRORS):
        return Verdict("unreachable", "timeout")
    if isinstance(exc, DownloadCancelledError):  # over DOWNLOAD_MAXSIZE
        return Verdict("unreachable", "too large")
    if isinstance(exc, defer.CancelledError):
        return Verdict("unreachable", "cancelled")
    if isinstance(exc, _LOST_ERRORS):
        return Verdict("unreachable", "connection lost")
    if isinstance(exc, net_error.ConnectError | DownloadFailedError):
        return Verdict("unreachable", "connection failed")
    if isinstance(exc, UnsupportedURLSchemeError | NotSupported):
        return Verdict("unreachable", "unsupported url")
    return Verdict("unreachable", f"error: {type(exc).__name__}")


def result_for(
    target: RecheckTarget,
    verdict: Verdict,
    status: int | None,
    *,
    profile: RecheckProfile = "crawl",
) -> RecheckResult:
    """The result of rechecking ``target``, judged ``verdict``, checked now."""
    return RecheckResult(
        notice_id=target.notice_id,
        url=target.url,
        state=verdict.state,
        reason=verdict.reason,
        http_status=status,
        checked_at=now_iso(),
        sha256=verdict.sha256,
        profile=profile,
    )
