"""The one item the spider yields: an image or file it met, as hashes and response metadata.

No field ever holds image or file bytes: the spider hashes the body and drops it before the
item exists, so Scrapy's item logging, feed exports and pipelines cannot leak content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matchers.digest import ImageDigest
from matchers.index import Match
from matchers.video import FrameHashes


@dataclass
class ImageItem:
    url: str  # the image or file URL; for a data: URI, "data:<type>;sha256=<hex>"
    page: str  # the page the image or file was found on
    seed: str
    embedding: str
    digest: ImageDigest
    fetched_at: str  # ISO 8601 UTC
    ip: str | None = None
    status: int | None = None
    content_type: str | None = None
    content_length: int | None = None
    server: str | None = None
    # image | video | audio | archive | file (matchers.sniff.MEDIA_TYPES); the format is the
    # digest's (jpeg, mp4, zip, pdf..., empty for an unknown file)
    media_type: str = "image"
    # An archive's member: its path (nested archives joined by "!/"), media_type
    # "archive_member", and the SHA-256 of the archive it came in (the URL is the archive's)
    member: str = ""
    container_sha256: str = ""
    # A video's sampled frames (matchers.video): matched frame by frame
    frames: tuple[FrameHashes, ...] = ()
    matches: list[Match] = field(default_factory=list)
